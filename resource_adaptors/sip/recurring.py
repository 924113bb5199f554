"""
A bounded memo of what recurs in the messages a server receives.

A client sends much the same header lines in every request (Max-Forwards,
To, Contact, Accept, Content-Length...), among lines new in each one (Via
with its branch, From with its tag, Call-ID).  The parser splits a line, and
validation matches a value, once for all its recurrences, if it remembers
them; but what it remembers comes from the network, so it must be bounded,
and the new lines must not push out the recurring ones.

Hence two tables.  A key seen for the first time waits in C{once}, which is
emptied when full; seen again while it waits, it moves to C{kept}, which
only what recurs reaches.  A hit in C{kept} is one dict lookup, done by the
caller on the hot path (C{memo.kept.get(key)}).
"""


class RecurringMemo:
    """
    @ivar kept: key -> value for the keys seen at least twice lately; read
        it directly, and call L{recall} when it has no entry.
    """

    __slots__ = ("kept", "_once", "_max_size")

    def __init__(self, max_size):
        """@param max_size: the most entries each of the two tables holds."""
        self.kept = {}
        self._once = {}
        self._max_size = max_size

    def recall(self, key):
        """
        @return: the value remembered for C{key}, or None; a key waiting in
            C{once} moves to C{kept}.
        """
        value = self._once.pop(key, None)
        if value is not None:
            kept = self.kept
            if len(kept) >= self._max_size:
                kept.clear()
            kept[key] = value
        return value

    def remember(self, key, value):
        """Remember C{value} (not None) for C{key}, seen for the first time."""
        once = self._once
        if len(once) >= self._max_size:
            once.clear()
        once[key] = value
