"""
The record a transaction leaves in the transaction layer's tables while it
lingers to absorb retransmissions (see L{resource_adaptors.sip.transaction_layer}).

A record is a plain C{tuple}, made by L{record} and read by the functions
below, never indexed elsewhere; the tables hold records and live
transactions side by side, and L{is_record} tells them apart.  It is a
plain tuple on purpose: CPython's garbage collector untracks an exact
tuple that holds only untracked values (numbers, strings, None, and the
transports' prepared UDP messages, themselves such tuples) when it first
looks at it, so the quarter of a million records a loaded UDP server keeps
for 32 s cost each collection nothing.  A tuple subclass (a namedtuple, a
dataclass with slots) is never untracked: every collection would walk them
all.  The tests hold records to that (C{gc.is_tracked}).

Records that last the same time end in the order they started: a
L{LingerQueue} per table and duration expires them with one timer.
"""

import collections

__all__ = ["record", "is_record", "deadline", "accepted", "to_tag", "resend", "LingerQueue"]


def record(deadline, accepted, to_tag, resend):
    """
    @param deadline: when the record ends (clock seconds).
    @param accepted: whether it is an INVITE server in the Accepted state
        (RFC 6026), which leaves the ACKs of its 2xx to the user.
    @param to_tag: an INVITE server's last To tag (CANCEL and RFC 2543 ACK
        matching need it), else None.
    @param resend: the prepared message each retransmission gets again, or None.
    """
    return (deadline, accepted, to_tag, resend)


def is_record(entry):
    """Whether a table entry is a record, not a live transaction."""
    return type(entry) is tuple


def deadline(entry):
    return entry[0]


def accepted(entry):
    return entry[1]


def to_tag(entry):
    return entry[2]


def resend(entry):
    return entry[3]


class LingerQueue:
    """
    The lingering records of one table that last the same time: they end in
    the order they started, so a FIFO with one C{callLater} for its head
    replaces a timer each.  The FIFO is two deques in step, of deadlines
    and of keys: no object is made per record to pair them.
    """

    def __init__(self, clock, delay, table):
        self._clock = clock
        self._delay = delay
        self._table = table
        # Oldest first.
        self._deadlines = collections.deque()
        self._keys = collections.deque()
        self._call = None

    def add(self, due, key):
        """The record of C{key} in the table ends at C{due} (clock seconds)."""
        self._deadlines.append(due)
        self._keys.append(key)
        if self._call is None:
            self._call = self._clock.callLater(self._delay, self._expire)

    def stop(self):
        if self._call is not None:
            self._call.cancel()
            self._call = None
        self._deadlines.clear()
        self._keys.clear()

    def _expire(self):
        now = self._clock.seconds()
        deadlines, keys, table = self._deadlines, self._keys, self._table
        while deadlines and deadlines[0] <= now:
            due = deadlines.popleft()
            key = keys.popleft()
            entry = table.get(key)
            # Not a live transaction, nor a later record, that took the key since.
            if is_record(entry) and deadline(entry) == due:
                del table[key]
        self._call = self._clock.callLater(deadlines[0] - now, self._expire) \
            if deadlines else None
