"""
Admission at the door: whether the SIP stack takes a new request in, or
sheds it at once with 503 and Retry-After.

A server offered more than it can do collapses if it takes everything in:
its answers come later and later, clients retransmit (over UDP every T1,
half a second, at first), the retransmissions crowd the socket, and soon
every answer comes after the client gave up: the server works flat out
and almost nothing it does succeeds.  The cure is to refuse early and
cheaply what cannot be answered in time, and to answer well what is
taken in (RFC 5390 §4).

The door decides for each I{new} request: the transaction layer absorbs
the retransmissions of requests already taken in before it asks, and
CANCELs are never asked about (they lighten the load).  Its measure is the
I{delay} the request's answer would have, in seconds, not the length of a
queue, since a queued PUBLISH that notifies a hundred watchers costs a
hundred times what a queued activity end does:

- what the request has waited already: over UDP, the time since the
  kernel received the datagram (its socket buffer is where an overloaded
  server's backlog piles up; see L{resource_adaptors.sip.datagram});
- plus what is queued in the container ahead of it
  (L{slee.interfaces.ISleeEndpoint.queue_delay}).

The policy:

- a request outside any dialog is refused once the delay passes
  C{max_delay} (the RA's C{max-queue-delay});
- a request that goes on with work taken in already goes first: one within
  a dialog (it has a To tag: a refresh, a NOTIFY to us, a BYE), and a
  PUBLISH that refreshes, modifies or removes a publication (it has a
  SIP-If-Match, RFC 3903 §4.4).  Refusing it would waste what was done
  for it so far, and let state the client keeps up lapse.  It is refused
  only past L{GOING_ON_FACTOR} times C{max_delay}, so that the backlog
  stays bounded all the same;
- the refusal is a 503 with a Retry-After sized by the delay: at least
  the time the backlog takes to clear, and a random share more, so that
  the clients turned away do not all come back in the same second.

Shedding is logged in a summary at most once a minute (L{Door.shed}
counts the refusals, L{Door.dropped} the requests dropped unanswered past
the fast lane's budget, L{resource_adaptors.sip.shedding}), not one line
per refusal: under overload, logging each would cost what the refusal
saves.
"""

import math
import random

from twisted.logger import Logger

from slee.trace import log_observer

#: How much later than a new request one that goes on with work taken in
#: may be answered before it too is refused.  At the default C{max_delay}
#: (0.25 s) that is SIP's T1, 500 ms, after which a client over UDP sends
#: its request again: let in later, each such request came again and was
#: read again before its answer left.  At 2,960 calls/s offered (SIPp,
#: bench/overload/publish.xml, 60 s, two runs each), four times let 5,600
#: second PUBLISHes a minute be sent again and served 62,514 and 67,289
#: calls; twice, 3,000 to 3,400 and 67,042 and 75,199.
GOING_ON_FACTOR = 2
#: The longest Retry-After given, in seconds.
MAX_RETRY_AFTER = 60
#: The reason phrase of a refusal.
REASON = "Service Unavailable (overloaded)"
#: How often, at most, shedding is logged, in seconds.
LOG_INTERVAL = 60.0

log = Logger(namespace="resource_adaptors.sip.admission", observer=log_observer)


def retry_after(delay, share):
    """
    @param delay: the delay that made the door refuse, in seconds.
    @param share: a number in [0, 1): the random share added.
    @return: the seconds of a Retry-After: the delay rounded up, at least
        one, plus up to as much again, at most L{MAX_RETRY_AFTER}.
    """
    base = max(1, math.ceil(delay))
    return min(MAX_RETRY_AFTER, base + int(share * (base + 1)))


def _goes_on(request):
    """Whether C{request} goes on with work taken in already (see the module
    docstring)."""
    return request.to.tag is not None or "SIP-If-Match" in request.headers


class Door:
    """
    See the module docstring.

    @ivar shed: how many requests the door has refused.
    @ivar dropped: how many it has dropped unanswered.
    """

    def __init__(self, queue_delay, max_delay, clock, share=random.random):
        """
        @param queue_delay: a callable: the container's queue delay now.
        @param max_delay: the delay past which new requests are refused.
        @param clock: an C{IReactorTime}, for the log's pace.
        @param share: a callable returning a number in [0, 1) for each
            refusal (the random share of its Retry-After).
        """
        self._queue_delay = queue_delay
        self.max_delay = max_delay
        self._clock = clock
        self._share = share
        self.shed = 0
        self.dropped = 0
        self._logged = (0, 0)
        self._quiet_until = float("-inf")

    def delay(self, waited):
        """@return: how late the answer to a request that waited C{waited}
        seconds before it was read would come, in seconds."""
        return waited + self._queue_delay()

    def refusal(self, request, waited):
        """
        @param request: a new request (not a retransmission, not a CANCEL).
        @param waited: the seconds it has waited already before it was read.
        @return: C{None} to take it in, else (status, reason, headers): the
            answer to send instead, statelessly.
        """
        delay = self.delay(waited)
        limit = self.max_delay
        if delay <= limit:
            return None
        if delay <= limit * GOING_ON_FACTOR and _goes_on(request):
            return None
        return self.refuse(delay)

    def refuse(self, delay):
        """
        Refuse a request whose answer would come C{delay} seconds late
        (the fast lane, L{resource_adaptors.sip.shedding}, decides itself).

        @return: (status, reason, headers) of the refusal.
        """
        self.shed += 1
        self._log(delay)
        return 503, REASON, [("Retry-After", str(retry_after(delay, self._share())))]

    def drop(self, delay):
        """A request whose answer would come C{delay} seconds late was dropped
        unanswered (by the fast lane, past its budget)."""
        self.dropped += 1
        self._log(delay)

    def _log(self, delay):
        now = self._clock.seconds()
        if now < self._quiet_until:
            return
        self._quiet_until = now + LOG_INTERVAL
        shed, dropped = self._logged
        log.warn("overloaded: answering new requests 503 while their answers would come "
                 "{delay:.2f} s late (max-queue-delay {limit} s); {count} refused and "
                 "{dropped} dropped since the last such line", delay=delay,
                 limit=self.max_delay, count=self.shed - shed, dropped=self.dropped - dropped)
        self._logged = (self.shed, self.dropped)
