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
caller on the hot path (C{memo.kept.get(key)}); a miss costs the work the
memo saves, then L{note}.  The headers whose values are new in every request
by design (see L{NEW_IN_EVERY_REQUEST}) are not noted at all.

The memos are a parser's (L{Memos}, held by a
L{resource_adaptors.sip.core.parser.Parser}), not the module's: two stacks
in one process, or a test, do not share (or see) each other's.
"""

#: The keys of the headers whose values are new in every request: RFC 3261
#: makes the Via branch, the From tag and the Call-ID unique.
NEW_IN_EVERY_REQUEST = frozenset(("via", "from", "call-id"))


class RecurringMemo:
    """
    @ivar kept: key -> value for the keys seen at least twice lately; read
        it directly, and call L{note} on a miss.
    """

    __slots__ = ("kept", "_once", "_max_size")

    def __init__(self, max_size):
        """@param max_size: the most entries each of the two tables holds."""
        self.kept = {}
        self._once = {}
        self._max_size = max_size

    def note(self, key, value):
        """
        C{key}, not in C{kept}, was seen with C{value}: it waits in C{once},
        or moves to C{kept} if it was waiting there already.
        """
        once = self._once
        if once.pop(key, None) is None:
            if len(once) >= self._max_size:
                once.clear()
            once[key] = value
        else:
            kept = self.kept
            if len(kept) >= self._max_size:
                kept.clear()
            kept[key] = value


def usual_groups(pattern, text, memo):
    """
    @return: the groups of C{text} matched in full by C{pattern} (an
        expression of a usual shape, such as a plain SIP URI), or None.
    @param memo: a L{RecurringMemo} of C{text} to its groups, or None: a
        client sends the same Request-URI and To again and again, and
        matching them is the dearest part of reading them.  The callers
        look in C{memo.kept} first themselves (one dict lookup, no call).
    """
    match = pattern.fullmatch(text)
    if match is None:
        return None
    groups = match.groups()
    if memo is not None:
        memo.note(text, groups)
    return groups


#: How many header name spellings a parser remembers.
MAX_NAMES = 4096


class Memos:
    """
    The memo tables of one parser: header lines to their field tuples
    (C{lines}), header name spellings to their (key, name) (C{names}, at
    most L{MAX_NAMES}), Request-URIs and addresses (a To, Contact, Route
    value) to the groups of their usual shape (C{uris}, C{addresses}: see
    L{usual_groups}), and per header key the values of a usual shape seen
    to recur (C{usual_values}, see L{_UsualValues}), for validation.  The messages it parses
    carry it, so that reading and validating them reads its tables.
    """

    __slots__ = ("lines", "names", "uris", "addresses", "usual_values")

    def __init__(self):
        self.lines = RecurringMemo(4096)
        self.names = {}
        self.uris = RecurringMemo(1024)
        self.addresses = RecurringMemo(1024)
        self.usual_values = _UsualValues()


class _UsualValues(dict):
    """
    Header key -> the L{RecurringMemo} of its values known to be of its
    usual shape, None for the headers new in every request; an entry is
    made when first asked for (C{usual_values[key]}), so that the keys of
    the typed headers, a fixed few, are each one dict lookup after that.
    """

    __slots__ = ()

    def __missing__(self, key):
        memo = self[key] = None if key in NEW_IN_EVERY_REQUEST else RecurringMemo(1024)
        return memo
