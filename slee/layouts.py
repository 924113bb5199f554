"""
The positional layouts of stored states, and how a state of an older
layout is read.

The container's records (L{slee.records.Record}) and the services' compact
values (L{slee.compact.Compact}) are stored as the tuple of their values in
a fixed order, not as a dict of names: the names would be pickled again in
every state written, at every event.  A tuple says nothing of its fields,
so its layout is a contract with every state already on disk.  It changes
by one rule only:

    A layout grows at its end.  A new field is appended, with the default
    that a state written before it was added reads as; no field is removed,
    renamed or moved (one no longer used keeps its place, and is left None).

A layout's versions are then told apart by their lengths: a state of N
values was written by the version with N fields, and reads with the
defaults of the fields after them.  L{Layout} does this for records; a
compact value's layout is its dataclass fields, whose defaults do it (the
fields added later must have one).  C{tests/test_layouts.py} holds every
stored layout to the rule against the layouts it was first released with.
"""

__all__ = ["Layout", "LayoutError"]


class LayoutError(ValueError):
    """A stored state whose length fits no version of its layout."""


class Layout:
    """
    The fields of a stored state, in order, and the defaults of those added
    after its first version.

    @ivar fields: the names of the current version's fields, in order.
    """

    __slots__ = ("fields", "_first", "_defaults")

    def __init__(self, *fields, added=()):
        """
        @param fields: the field names, in their stored order.
        @param added: (name, default) pairs of the fields appended since
            the first version, in the order they were: the last fields.
        @raise ValueError: when C{added} is not the end of C{fields}.
        """
        added = tuple(added)
        first = len(fields) - len(added)
        if first < 0 or tuple(name for name, _ in added) != fields[first:]:
            raise ValueError("a layout grows at its end: the fields added since its first "
                             f"version must be its last ones, in order, not {added!r}")
        self.fields = fields
        self._first = first
        self._defaults = tuple(default for _, default in added)

    def dump(self, values):
        """@return: the state of C{values} (a mapping of names), a tuple."""
        return tuple([values.get(name) for name in self.fields])

    def load(self, state):
        """
        @return: name -> value of a stored C{state}, of this version or an
            earlier one (its missing fields at their defaults).
        @raise LayoutError: for a state no version of this layout wrote (a
            later version's, or a corrupt one).
        """
        count = len(state)
        if count != len(self.fields):
            if not self._first <= count < len(self.fields):
                raise LayoutError(f"a stored state of {count} values fits no version of "
                                  f"the layout {self.fields}")
            state = (*state, *self._defaults[count - self._first:])
        return dict(zip(self.fields, state))
