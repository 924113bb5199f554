"""
Frozen values that ZODB stores as one string of bytes.

ZODB pickles an SBB entity's CMP fields with a hook that it calls for every
object in them, in Python, to find references to persistent objects.  A
value made of many small objects (a dataclass of enums and frozensets, say)
costs one such call per object every time the entity is written: for the
presence server's subscriptions, most of the cost of a commit.

A value that holds no persistent object needs no such search.  L{Compact}
values are pickled on their own by the C pickler, hookless, and handed to
ZODB as one C{bytes} object: one call instead of dozens.  A hashable value
is encoded once, however many entities store it (a watcher's
authorization decision, say, which most watchers share).

Only for plain data: a L{Compact} value must hold no persistent object (it
would be copied, not referenced) and must be rebuilt by calling its class
with its dataclass fields, in order.  That order is stored, so it changes
only as L{slee.layouts} says: a field is appended, with a default.
"""

import pickle
from dataclasses import dataclass, fields
from functools import lru_cache

#: Distinct hashable values whose encoding is kept.
ENCODED_CACHE_SIZE = 4096


class Compact:
    """A frozen dataclass mixin: pickled as its class and one bytes string."""

    __slots__ = ()

    #: Whether equal values recur (a decision most watchers share, a value
    #: in a list written again at each change of the list), so that an
    #: encoding is worth keeping.  A class of values each made once (a
    #: subscription) says False, sparing the cache; so does one that holds
    #: a dict, which cannot be hashed.  Set without an annotation: it is
    #: not a field.
    recurring = True

    def __reduce__(self):
        cls = type(self)
        values = tuple([getattr(self, name) for name in _field_names(cls)])
        if cls.recurring:
            try:
                # Keyed by the value and its fields' types: 1 == 1.0 == True.
                return _decode, (_encoded(self, tuple([type(value) for value in values])),)
            except TypeError:       # unhashable after all (a dict inside)
                pass
        return _decode, (_encode(cls, values),)


@dataclass(frozen=True)
class Packed(Compact):
    """
    Any plain data (a dict of text and numbers, say) a CMP field stores
    as one bytes string: C{value}, which must not be changed in place.
    """

    value: object

    recurring = False


@lru_cache(maxsize=None)
def _field_names(cls):
    """The names of the dataclass fields of C{cls}, in order (asked for at every store)."""
    return tuple([field.name for field in fields(cls)])


def _encode(cls, values):
    return pickle.dumps((cls, values), protocol=pickle.HIGHEST_PROTOCOL)


@lru_cache(maxsize=ENCODED_CACHE_SIZE)
def _encoded(value, types):
    """The encoding of a hashable value, kept for the next value equal to it, field types too."""
    cls = type(value)
    return _encode(cls, tuple([getattr(value, name) for name in _field_names(cls)]))


def _decode(data):
    """The value L{Compact.__reduce__} encoded in C{data}."""
    cls, values = pickle.loads(data)
    return cls(*values)
