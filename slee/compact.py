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
with its dataclass fields, in order.
"""

import pickle
from dataclasses import dataclass, fields
from functools import lru_cache

#: Distinct hashable values whose encoding is kept.
ENCODED_CACHE_SIZE = 4096


class Compact:
    """A frozen dataclass mixin: pickled as its class and one bytes string."""

    __slots__ = ()

    def __reduce__(self):
        try:
            data = _encoded(self)
        except TypeError:           # unhashable (a dict inside): encoded each time
            data = _encode(self)
        return _decode, (data,)


@dataclass(frozen=True)
class Packed(Compact):
    """
    Any plain data (a dict of text and numbers, say) a CMP field stores
    as one bytes string: C{value}, which must not be changed in place.
    """

    value: object


def _encode(value):
    return pickle.dumps((type(value), tuple(getattr(value, f.name) for f in fields(value))),
                        protocol=pickle.HIGHEST_PROTOCOL)


_encoded = lru_cache(maxsize=ENCODED_CACHE_SIZE)(_encode)


def _decode(data):
    """The value L{Compact.__reduce__} encoded in C{data}."""
    cls, values = pickle.loads(data)
    return cls(*values)
