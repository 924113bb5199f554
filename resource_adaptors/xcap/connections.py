"""
The XCAP server's connections and what each may cost: how many there are,
how slowly a request may arrive, how long an idle one stays open, and how
one ends after an answer given before its request was read to the end.

How many (L{BoundedSite}): at most C{max-connections} open, and
C{max-connections-per-peer} from one address (a UNIX socket's clients
have none, and only the first bound applies to them).  A connection
beyond either is closed as soon as it is accepted, and the refusal logged
(once a minute at most, with a count of those held back), while those
open carry on.

How slowly (L{Channel}), after Apache's mod_reqtimeout
(C{RequestReadTimeout header=20 body=20,MinRate=500}) rather than nginx's
client_header_timeout and client_body_timeout, which bound the time
between two reads only, so that a client sending a byte every few seconds
holds its connection for ever:

- the request line and header fields must all have come within
  C{header-timeout} seconds of the request's first byte (of the
  connection, for its first request: a client connects to send one);
- the body within C{body-timeout} seconds of the end of the header
  fields, plus a second for every C{body-min-rate} bytes received: a
  client that keeps that rate up is never cut off, whatever the size of
  its body (a 1 MiB document over a 40 kbit/s GPRS link is 20 times
  faster), one that dribbles is;
- past either, the client gets 408 and the connection ends as below.

Between two requests a connection may stay idle C{idle-timeout} seconds
(twisted.web's own timeout, which also bounds the silence between two
reads within a request).

How it ends after an early answer (L{Channel.answer_early}): an answer
written before its request was read to the end (413 for a too large body,
400 for a malformed head or a too long line, 408) carries C{Connection:
close}, and then the connection lingers, as nginx's lingering_close does:
what the client still sends is read and thrown away, for at most
C{lingering-time} seconds and C{lingering-size} bytes, until the client
closes its side.  Closing at once would leave unread bytes in the kernel,
which answers them with a reset: a client that sends its whole body before
reading, as most do, would get that reset instead of the answer.  Over
plain TCP the write side is shut (FIN) as soon as the answer is out: a
client reading to the end of the connection then knows the answer is
whole and closes, which ends the lingering at once.  TLS has no half-close
(its close_notify ends both directions), so there the lingering lasts
until the client closes or a bound is reached.
"""

from collections import Counter
from dataclasses import dataclass

from twisted.internet import defer
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web import http, server

from slee.log_limits import RateLimitedWarning
from slee.resources import Property, positive
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.xcap.connections", observer=log_observer)

#: The XCAP server RA's properties for its connections (see the README).
PROPERTIES = {
    "max-connections": Property(int, 1024, positive),
    "max-connections-per-peer": Property(int, 128, positive),
    "idle-timeout": Property(float, 60.0, positive),
    "header-timeout": Property(float, 20.0, positive),
    "body-timeout": Property(float, 20.0, positive),
    "body-min-rate": Property(int, 500, positive),
    "lingering-time": Property(float, 5.0, positive),
    "lingering-size": Property(int, 1 << 20, positive),
}


@dataclass(frozen=True)
class ConnectionLimits:
    """The values of L{PROPERTIES}, under their names with underscores."""

    max_connections: int
    max_connections_per_peer: int
    idle_timeout: float
    header_timeout: float
    body_timeout: float
    body_min_rate: int
    lingering_time: float
    lingering_size: int

    @classmethod
    def from_config(cls, config):
        """@return: the limits of an RA's validated properties."""
        return cls(**{name.replace("-", "_"): config[name] for name in PROPERTIES})


class Channel(http.HTTPChannel):
    """
    An HTTP/1.1 connection of a L{BoundedSite}: each request must arrive
    within its deadlines, and an early answer is followed by a lingering
    close (see the module's docstring).

    @ivar peer: the client's address (None over a UNIX socket).
    """

    peer = None
    _deadline = None     # the _ReadDeadline of the part of a request being read
    _lingering = None    # the _Lingering once an early answer is written

    def connectionMade(self):
        super().connectionMade()
        self.site.channel_opened(self)
        self._read_within(self.site.limits.header_timeout)

    def dataReceived(self, data):
        if self._lingering is not None:
            self._lingering.discard(len(data))
            return
        if self._deadline is None and not self._handlingRequest:
            self._read_within(self.site.limits.header_timeout)   # a new request begins
        super().dataReceived(data)

    def allHeadersReceived(self):
        super().allHeadersReceived()
        if self._lingering is None and self.length != 0:
            limits = self.site.limits
            self._read_within(limits.body_timeout, limits.body_min_rate)

    def rawDataReceived(self, data):
        if self._lingering is not None:
            self._lingering.discard(len(data))
            return
        if self._deadline is not None:
            self._deadline.received += len(data)
        super().rawDataReceived(data)

    def allContentReceived(self):
        self._stop_reading_deadline()
        if self._lingering is None:     # else answered already: not to be served
            super().allContentReceived()

    def lineLengthExceeded(self, line):
        self.answer_early(b"400 Line Too Long")

    def _respondToBadRequestAndDisconnect(self):
        """twisted.web's own answer to a malformed request head: lingering too."""
        self.answer_early(b"400 Bad Request")

    def answer_early(self, status):
        """
        Answer C{status} (code and phrase, no body) to the request being
        read, then close with a lingering close.  Once is all: a request
        may prove too large again as more of it is parsed.
        """
        if self._lingering is not None:
            return
        self._stop_reading_deadline()
        self.setTimeout(None)
        if self.requests:
            # twisted.web sends 100 Continue after the length is known: not after an answer.
            self.requests[-1].requestHeaders.removeHeader(b"expect")
        self.transport.write(b"HTTP/1.1 " + status +
                             b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        limits = self.site.limits
        self._lingering = _Lingering(self.transport, self.site.reactor, limits.lingering_time,
                                     limits.lingering_size)
        self.setRawMode()   # what the parser holds still is thrown away (rawDataReceived)

    def _read_within(self, timeout, min_rate=None):
        self._stop_reading_deadline()
        self._deadline = _ReadDeadline(self.site.reactor, timeout, min_rate, self._too_slow)

    def _stop_reading_deadline(self):
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self):
        self._deadline = None
        log.debug("XCAP client {peer} too slow: 408", peer=self.peer)
        self.answer_early(b"408 Request Timeout")

    def timeoutConnection(self):
        """
        Idle for C{idle-timeout}: closed as twisted.web does, but logged at
        debug (its own line is at info, one for every idle client).
        """
        log.debug("closing the idle XCAP connection of {peer}", peer=self.peer)
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def connectionLost(self, reason):
        self._stop_reading_deadline()
        if self._lingering is not None:
            self._lingering.stop()
        super().connectionLost(reason)
        self.site.channel_closed(self)


class _ReadDeadline:
    """
    When the part of a request being read must have come by: C{timeout}
    seconds from now, pushed back a second for every C{min_rate} bytes
    received (C{received}, counted by the channel) when there is a rate.
    One timer, moved only when it fires early.
    """

    received = 0

    def __init__(self, clock, timeout, min_rate, expired):
        self._clock = clock
        self._due = clock.seconds() + timeout
        self._min_rate = min_rate
        self._expired = expired
        self._call = clock.callLater(timeout, self._check)

    def _check(self):
        due = self._due + (self.received / self._min_rate if self._min_rate else 0)
        left = due - self._clock.seconds()
        if left > 0:
            self._call = self._clock.callLater(left, self._check)
        else:
            self._expired()

    def cancel(self):
        if self._call.active():
            self._call.cancel()


class _Lingering:
    """The lingering close of a connection whose answer is written (see the module)."""

    def __init__(self, transport, clock, time, size):
        self._transport = transport
        self._left = size
        self._end = clock.callLater(time, transport.abortConnection)
        if not ISSLTransport.providedBy(transport):
            transport.loseWriteConnection()

    def discard(self, size):
        """Throw away C{size} bytes received; past the bound, close."""
        self._left -= size
        if self._left < 0:
            self.stop()
            self._transport.abortConnection()

    def stop(self):
        if self._end.active():
            self._end.cancel()


class BoundedSite(server.Site):
    """
    A site that refuses connections beyond its L{ConnectionLimits} and
    knows those it keeps, so that they can all be closed.

    @ivar channels: the open L{Channel}s.
    """

    protocol = Channel

    def __init__(self, root, limits, clock):
        super().__init__(root, timeout=limits.idle_timeout, reactor=clock)
        self.limits = limits
        self.channels = set()
        self._per_peer = Counter()
        self._waiting = []
        self._refusal_warning = RateLimitedWarning(clock)

    def buildProtocol(self, addr):
        peer = getattr(addr, "host", None)
        if len(self.channels) >= self.limits.max_connections:
            return self._refuse(peer, "{max_connections} connections are open",
                                max_connections=self.limits.max_connections)
        if peer is not None and self._per_peer[peer] >= self.limits.max_connections_per_peer:
            return self._refuse(peer, "{per_peer} connections from it are open",
                                per_peer=self.limits.max_connections_per_peer)
        channel = super().buildProtocol(addr)
        channel.peer = peer
        return channel

    def _refuse(self, peer, why, **values):
        self._refusal_warning(log, "refusing an XCAP connection from {peer}: " + why,
                              peer=peer, **values)
        return _Refused()

    def channel_opened(self, channel):
        self.channels.add(channel)
        self._per_peer[channel.peer] += 1

    def channel_closed(self, channel):
        self.channels.discard(channel)
        self._per_peer[channel.peer] -= 1
        if not self._per_peer[channel.peer]:
            del self._per_peer[channel.peer]
        if not self.channels:
            waiting, self._waiting = self._waiting, []
            for closed in waiting:
                closed.callback(None)

    def close_all(self):
        """@return: a Deferred that fires once every connection is closed."""
        if not self.channels:
            return defer.succeed(None)
        closed = defer.Deferred()
        self._waiting.append(closed)
        for channel in list(self.channels):
            channel.transport.loseConnection()
        return closed


class _Refused(Protocol):
    """Closes a connection beyond the bounds as soon as it is made."""

    def connectionMade(self):
        self.transport.abortConnection()
