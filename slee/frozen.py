"""
Frozen CMP field values: why changing a field's value in place is refused.

ZODB writes an SBB entity's CMP state when the state object is marked
changed, which happens when a field is assigned.  A list stored in a field
and appended to in place changes nothing ZODB can see: the process shows
the new item until the object leaves the cache, and a restart loses it.

The container therefore freezes every plain container a field is set to,
recursively: a list becomes a L{FrozenList} (a tuple), a set a
L{FrozenSet} (a frozenset), a dict a L{FrozenDict} (a dict that refuses
changes), a bytearray bytes; tuples, frozensets and scalars are immutable
already.  Each still reads, compares, pickles and serializes to JSON as the
plain type does; every method that would change it in place raises a
L{TypeError} naming the field, so a handler changes a field by assigning
it a new value::

    self.history += [item]                  # a FrozenList plus a list
    self.seen = {**self.seen, who: state}

This was chosen over persistent containers that track themselves
(PersistentList, PersistentMapping) because a frozen value is a value: it
can be shared, cached in the process and compared without a database
read, a rolled-back handler cannot leave it changed in memory, and a
field stays one small database object instead of one per container.
What must change in place at scale (thousands of keys) belongs in a
persistent object, which is stored as it is and tracks itself (a BTree,
as C{default_factory=OOBTree}).
"""

import dataclasses

from persistent import Persistent


class _Frozen:
    """
    What the frozen types share: the field they belong to (for the
    message), made and pickled with it.  C{_plain} names the type it
    stands for, C{_base} the immutable type it pickles as.
    """

    __slots__ = ()

    def __new__(cls, items=(), field=None):
        self = super().__new__(cls, items)
        self._field = field
        return self

    def __reduce__(self):
        # Unpickling must not go through a refused method (__setitem__).
        return type(self), (self._base(self), self._field)

    def _refuse(self, *args, **kwargs):
        field = self._field or "?"
        raise TypeError(
            f"CMP field {field!r} holds a frozen {self._plain}: assign the field a new value "
            f"(self.{field} = ...) instead of changing it in place")


def _refusing(*names):
    """Class decorator: make the methods C{names} of the class refuse."""
    def decorate(cls):
        for name in names:
            setattr(cls, name, _Frozen._refuse)
        return cls
    return decorate


@_refusing("append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse",
           "__setitem__", "__delitem__")
class FrozenList(_Frozen, tuple):
    """A list stored in a CMP field: a tuple that says why it is one."""

    # A tuple subtype cannot have slots: the field name lives in __dict__.
    _plain, _base = "list", tuple

    # What it reads as, a list: a new value is made as from a list
    # (self.history += [item]), and stays one.
    def __add__(self, other):
        if not isinstance(other, (list, tuple)):
            return NotImplemented
        return FrozenList(tuple.__add__(self, tuple(freeze(item, self._field) for item in other)),
                          self._field)

    def __radd__(self, other):
        if isinstance(other, list):
            return other + list(self)
        return NotImplemented


@_refusing("add", "discard", "remove", "pop", "clear", "update", "difference_update",
           "intersection_update", "symmetric_difference_update")
class FrozenSet(_Frozen, frozenset):
    """A set stored in a CMP field."""

    __slots__ = ("_field",)
    _plain, _base = "set", frozenset


@_refusing("__setitem__", "__delitem__", "__ior__", "pop", "popitem", "clear", "update",
           "setdefault")
class FrozenDict(_Frozen, dict):
    """A dict stored in a CMP field: it reads as a dict, and refuses changes."""

    __slots__ = ("_field",)
    _plain, _base = "dict", dict

    def __init__(self, items=(), field=None):
        dict.__init__(self, items)


#: Values frozen as they are.
_IMMUTABLE = frozenset((type(None), bool, int, float, complex, str, bytes, range))


def freeze(value, field=None):
    """
    @return: C{value} with every plain container in it frozen (see the
        module docstring), or C{value} itself when nothing in it needs to
        be; persistent objects and anything else are kept as they are.
    @raise TypeError: C{value} is or holds an instance of a dataclass that
        is not frozen: it could be changed in place, unseen.
    """
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is FrozenDict or kind is FrozenList or kind is FrozenSet:
        if value._field == field:
            return value
        return _FREEZERS[kind](value, field)
    freezer = _FREEZERS.get(kind)
    if freezer is not None:
        return freezer(value, field)
    if isinstance(value, Persistent):
        return value
    params = getattr(kind, "__dataclass_params__", None)
    if params is not None and not params.frozen and dataclasses.is_dataclass(value):
        raise TypeError(f"CMP field {field!r} cannot hold a {kind.__name__}: it is a mutable "
                        f"dataclass, whose changes would be lost (make it frozen=True)")
    return value


def _freeze_tuple(value, field):
    items = [freeze(item, field) for item in value]
    if all(new is old for new, old in zip(items, value)):
        return value        # a tuple of immutable values: as it is
    return tuple(items)


def _freeze_list(value, field):
    return FrozenList([freeze(item, field) for item in value], field)


def _freeze_dict(value, field):
    return FrozenDict({key: freeze(item, field) for key, item in value.items()}, field)


#: Type -> how a value of it is frozen for C{field}.
_FREEZERS = {
    tuple: _freeze_tuple,
    list: _freeze_list,
    FrozenList: _freeze_list,
    set: FrozenSet,
    FrozenSet: FrozenSet,
    frozenset: lambda value, field: value,
    dict: _freeze_dict,
    FrozenDict: _freeze_dict,
    bytearray: lambda value, field: bytes(value),
}
