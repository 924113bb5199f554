"""
The door's fast lane: new UDP requests refused from their bytes, without
parsing them.

While the door (L{resource_adaptors.sip.admission}) is shut, most of what
is read gets a 503.  Parsing each such request in full (every header
line checked, From and To read as name-addrs) only to copy five of its
header lines into the answer cost a third of what serving a PUBLISH
costs, and a server that spends its time refusing serves less: under
twice its capacity, goodput fell to two thirds of it.  Here a refusal
reads only what it needs:

- the request line: a request, not an ACK or a CANCEL;
- the line ends: a bare CR or LF anywhere in the head is not plain;
- the header lines' names, for the lines the answer copies (Via, From,
  To, Call-ID, CSeq: RFC 3261 §8.2.6.2) and for a SIP-If-Match;
- the top Via, parsed: the transaction's key (is this a retransmission
  of a request taken in?) and where the answer goes (RFC 3581).

Whatever is not plain goes the usual way, where the door decides again
on the parsed request: a line folded onto the next, a Via line with
several values, a header missing or repeated, a To with a tag or a
SIP-If-Match (work going on, which the door lets in longer), a CSeq
whose method is not the request's, an RFC 2543 branch.  So the fast lane
never refuses what the usual path would take in.

Even cheap, refusals cost: reading, parsing and sending a 503 is some
tenth of serving a PUBLISH.  Offered ten times what it can serve, a server
that answered every request it sheds would spend all its time refusing:
datagrams would wait in the socket's buffer longer than the door allows,
so every one would be refused, and nothing served (a receive livelock).
So refusals have a budget (L{RefusalBudget}): a share of the server's
time.  Past it, plain new requests the door sheds are dropped unanswered,
which costs only their reading; their clients send them again (over UDP)
or time out, as they would if the kernel had dropped them.  The
retransmissions of requests taken in and the work going on still go the
usual way.

L{plain_request} and L{RefusalBudget} are sans-IO; L{Shedder} is what the
UDP listening points call
(L{resource_adaptors.sip.interfaces.ITransports.shedder}).
"""

import time

from resource_adaptors.sip.core.headers import Via
from resource_adaptors.sip.core.randomness import random_hex
from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.matching import is_rfc3261_branch
from resource_adaptors.sip.core.routing import TransportError, response_destination, stamp_source

#: The header lines an answer copies, by their names (full and compact)
#: in lower case.
_COPIED = {b"via": "via", b"v": "via", b"from": "from", b"f": "from", b"to": "to", b"t": "to",
           b"call-id": "call-id", b"i": "call-id", b"cseq": "cseq"}


class PlainRequest:
    """
    What a refusal needs of a plain new request (see L{plain_request}).

    @ivar method: the method, as text.
    @ivar top_via: the top Via, parsed (L{Via}).
    @ivar lines: the header lines the answer copies, in order, as read
        (bytes).
    """

    __slots__ = ("method", "top_via", "lines", "_via_index", "_to_index")

    def __init__(self, method, top_via, lines, via_index, to_index):
        self.method = method
        self.top_via = top_via
        self.lines = lines
        self._via_index = via_index
        self._to_index = to_index

    def key(self):
        """@return: the key of the server transaction it would start
        (L{resource_adaptors.sip.core.transaction.server_key})."""
        via = self.top_via
        return via.branch, via.host.lower(), via.port, self.method

    def answer(self, status, reason, headers, to_tag):
        """
        @return: the bytes of the answer: the top Via as C{top_via} now
            says (stamped with the source), the other copied lines as they
            were, C{to_tag} added to To, then C{headers}.
        """
        lines = list(self.lines)
        lines[self._via_index] = b"Via: " + str(self.top_via).encode()
        lines[self._to_index] += b";tag=" + to_tag.encode()
        lines.extend(f"{name}: {value}".encode() for name, value in headers)
        return b"\r\n".join([f"SIP/2.0 {status} {reason}".encode(), *lines,
                             b"Content-Length: 0", b"", b""])


def plain_request(data):
    """
    @param data: a datagram.
    @return: a L{PlainRequest} if C{data} is a plain new request (see the
        module docstring), else None.
    """
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return None
    head = data[:head_end]
    line_ends = head.count(b"\r\n")
    if head.count(b"\r") != line_ends or head.count(b"\n") != line_ends:
        return None                             # a bare CR or LF: a line the answer must not echo
    lines = head.split(b"\r\n")
    start = lines[0].split(b" ")
    if len(start) != 3 or start[2] != b"SIP/2.0" or start[0] in (b"ACK", b"CANCEL") \
            or start[0].startswith(b"SIP/"):
        return None
    method = start[0]
    copied = []
    seen = {}
    to_index = via_index = None
    for line in lines[1:]:
        colon = line.find(b":")
        if colon <= 0 or line[:1] in (b" ", b"\t"):
            return None                         # folded, or not a header line
        name = line[:colon].rstrip().lower()
        kind = _COPIED.get(name)
        if kind is None:
            if name == b"sip-if-match":
                return None
            continue
        if kind == "via":
            if via_index is None:
                via_index = len(copied)
        elif kind in seen:
            return None
        elif kind == "to":
            to_index = len(copied)
        seen.setdefault(kind, line[colon + 1:].strip())
        copied.append(line)
    if len(seen) != 5 or b"tag=" in seen["to"].lower() or \
            seen["cseq"].split()[-1:] != [method]:
        return None
    top = seen["via"]
    if b"," in top:
        return None
    try:
        via = Via.parse(top.decode("ascii"))
    except (UnicodeDecodeError, ParseError):
        return None
    if not is_rfc3261_branch(via.branch):
        return None
    return PlainRequest(method.decode("ascii"), via, copied, via_index, to_index)


#: The share of the server's time refusals may take (see the module
#: docstring): at twice its capacity a server spends about a tenth on them.
REFUSAL_SHARE = 0.25


class RefusalBudget:
    """
    The time refusals may take: a bucket that fills with C{share} of every
    second of C{timer}, up to C{share} seconds, and that each refusal
    empties by the time it took.
    """

    def __init__(self, share=REFUSAL_SHARE, timer=time.perf_counter):
        self._share = share
        self._timer = timer
        self._left = share
        self._last = timer()

    def allows(self):
        """@return: whether a refusal may be made now."""
        now = self._timer()
        self._left = min(self._share, self._left + (now - self._last) * self._share)
        self._last = now
        return self._left > 0

    def spent_since(self, started):
        """A refusal started at C{started} (a time of C{timer}) is done."""
        self._left -= self._timer() - started

    def now(self):
        return self._timer()


class Shedder:
    """
    The fast lane of one SIP stack: called by its UDP listening points with
    each datagram before it is parsed.

    @param door: the L{resource_adaptors.sip.admission.Door}.
    @param holds: a callable: whether a server transaction key is held
        (the request is a retransmission: it goes the usual way).
    @param send: a callable C{send(data, host, port, peer)} that sends a
        datagram from the listening point C{peer} came to.
    @param budget: the L{RefusalBudget}.
    """

    def __init__(self, door, holds, send, budget=None):
        self._door = door
        self._holds = holds
        self._send = send
        self._budget = RefusalBudget() if budget is None else budget

    def __call__(self, data, peer, waited):
        """
        @return: True when the datagram was refused here (answered, or
            dropped past the budget), False when it goes the usual way.
        """
        delay = self._door.delay(waited)
        if delay <= self._door.max_delay:
            return False
        budget = self._budget
        started = budget.now()
        request = plain_request(data)
        if request is None or self._holds(request.key()):
            return False
        if not budget.allows():
            self._door.drop(delay)
            return True
        stamp_source(request.top_via, peer)
        try:
            transport, host, port = response_destination(request.top_via)
        except TransportError:
            return False
        if transport != "udp":
            return False
        status, reason, headers = self._door.refuse(delay)
        self._send(request.answer(status, reason, headers, random_hex(8)), host, port, peer)
        budget.spent_since(started)
        return True
