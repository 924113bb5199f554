"""
One reliable flow (TCP, TLS or WebSocket, inbound or outbound) as the SIP
layers see it: a L{Connection}, whatever Twisted protocol carries it.  It
queues what is sent before it opens, answers keep-alives, closes when idle
unless a dialog or a registration holds it, and reports what could not be
sent when it fails.
"""

import uuid

from twisted.internet import defer
from twisted.logger import Logger

from resource_adaptors.sip.core.parser import KEEPALIVE
from resource_adaptors.sip.core.routing import Peer, TransportError
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.connections", observer=log_observer)

# A CRLF answers a double-CRLF keep-alive ping (RFC 5626 §4.4.1).
PONG = b"\r\n"


class Connection:
    """
    A reliable flow to one peer (TCP, TLS or WebSocket, inbound or
    outbound), as the SIP layers see it.

    The Twisted protocol under it frames the bytes and is its I{pipe}: an
    object with C{write(data)}, C{close()} (graceful) and C{abort()}, given
    to L{attached} when its connection is made.  Data flows once the pipe
    reports L{opened} (at once for TCP, after the TLS or WebSocket
    handshake); until then what is sent waits here, and closing aborts.
    A pipe raises L{TransportError} from C{write} when it cannot take data.
    C{id} names the connection in flow tokens (see
    L{resource_adaptors.sip.interfaces.ITransports.find_connection}).
    C{local} is the listening point of an inbound connection, None for one
    we made.  C{transports} is the L{resource_adaptors.sip.interfaces.IFlows}
    that owns it.

    A connection closes once nothing has come or gone on it for the idle
    timeout, unless it is held (L{hold}): by a dialog or a registration
    whose requests it carries, which the peer could not get without it
    (a client behind NAT cannot be connected to).
    """

    def __init__(self, transports, transport, host, port, local=None):
        self.id = uuid.uuid4().hex
        self.peer = Peer(transport, host, port, self, local)
        self.closed = False
        self._transports = transports
        self._pipe = None
        self._open = False
        self._waiting = []  # (data, destination) sent before the pipe opened
        self._connect = None  # the Deferred of an outbound connection being made
        self._when_lost = []
        self._users = {}  # who holds the connection -> until when (None: until released)
        clock = transports.clock
        self._last_activity = clock.seconds()
        self._idle_call = clock.callLater(transports.connect_timeout, self._check_idle)
        transports.connection_added(self)

    def __repr__(self):
        return f"<Connection {self.id} {self.peer.transport} {self.peer.host}:{self.peer.port}>"

    @property
    def inbound(self):
        """Whether the peer opened the connection (it counts towards its
        source's bound)."""
        return self.peer.local is not None

    def hold(self, user, until=None):
        """
        Keep the connection open, however idle, while C{user} (any hashable:
        a dialog id, a registration) uses it: until L{release}d, or until
        the clock reads C{until}.  A user's hold replaces its earlier one.
        The peer closing the connection, or an error, still closes it.
        """
        if not self.closed:
            self._users[user] = until

    def release(self, user):
        """C{user} no longer uses the connection: it closes once idle for
        the idle timeout, unless others hold it."""
        self._users.pop(user, None)

    def send(self, data, destination=None):
        if self.closed:
            raise TransportError(f"the {self.peer.transport} connection to "
                                 f"{self.peer.host}:{self.peer.port} is closed")
        self._last_activity = self._transports.clock.seconds()
        if self._open:
            self._pipe.write(data)
        else:
            self._waiting.append((data, destination or self.peer))

    def close(self):
        """Close the connection; a Deferred that fires once it is gone."""
        if self.closed:
            return defer.succeed(None)
        lost = defer.Deferred()
        self._when_lost.append(lost)
        if self._open:
            self._open = False  # what is sent from now on fails when it is gone
            self._pipe.close()
        elif self._pipe is not None:
            self._pipe.abort()
        else:
            self._connect.cancel()
        return lost

    # -- from the protocol under it

    def connecting(self, connect):
        """An outbound connection is being made: C{connect} fires when it is
        (the protocol then calls L{opened}), or fails."""
        self._connect = connect
        connect.addErrback(self.lost)

    def attached(self, pipe):
        self._pipe = pipe

    def opened(self):
        self._open = True
        waiting, self._waiting = self._waiting, []
        for data, _ in waiting:
            self._pipe.write(data)

    def received(self, item):
        """A message or a keep-alive ping came in."""
        self._last_activity = self._transports.clock.seconds()
        if item is KEEPALIVE:
            self._pipe.write(PONG)
        else:
            self._transports.deliver(item, self.peer)

    def malformed(self, error):
        """A message came in that did not parse."""
        self._transports.reject(error, self.peer)

    def lost(self, reason):
        """The connection is gone, or could not be made."""
        if self.closed:
            return
        self.closed = True
        self._users.clear()
        self._transports.connection_removed(self)
        if self._idle_call.active():
            self._idle_call.cancel()
        for _, destination in self._waiting:
            self._transports.receiver.transport_error(destination, TransportError(
                f"{self.peer.transport} connection to {self.peer.host}:{self.peer.port} "
                f"failed: {_failure_text(reason)}"))
        self._waiting = []
        when_lost, self._when_lost = self._when_lost, []
        for lost in when_lost:
            lost.callback(None)

    def _check_idle(self):
        """Close the connection if it has not opened within the connect
        timeout (a peer that never finishes its handshake), or when nothing
        has come or gone for the idle timeout and nobody holds it; else
        look again when that may have changed."""
        if not self._open:
            log.debug("closing {connection}: not open after {timeout} s", connection=self,
                      timeout=self._transports.connect_timeout)
            self.close()
            return
        clock = self._transports.clock
        now = clock.seconds()
        idle = now - self._last_activity
        timeout = self._transports.idle_timeout
        if idle < timeout:
            self._idle_call = clock.callLater(timeout - idle, self._check_idle)
            return
        self._users = {user: until for user, until in self._users.items()
                       if until is None or until > now}
        if self._users:
            wait = min([timeout] + [until - now for until in self._users.values()
                                    if until is not None])
            self._idle_call = clock.callLater(wait, self._check_idle)
            return
        log.debug("closing {connection}: idle for {idle:.0f} s", connection=self, idle=idle)
        self.close()


def _failure_text(reason):
    error = getattr(reason, "value", reason)  # a Failure, or an exception
    return str(error) or type(error).__name__
