"""
SIP over WebSocket (RFC 7118), the server side, on autobahn.

A WebSocket connection is a reliable flow like TCP (a L{Connection} in the
transport layer's table) but frames like UDP: each WebSocket message holds
exactly one SIP message (RFC 7118 §5), so it is parsed whole, as a
datagram is (C{Parser.parse}).  The clients are browsers: they cannot be connected to,
and put C{.invalid} hosts in their Via and Contact, so responses and
requests reach them only on the connection they opened (the transport
layer sees to that).

The opening handshake must offer the C{sip} subprotocol (§4.1); one that
does not is refused.  A text message of a double CRLF is a keep-alive ping,
as on TCP (RFC 5626 §4.4.1; SIP.js and JsSIP send them), answered with a
CRLF; a lone CRLF is ignored.  Messages go out as text frames when they are UTF-8, as binary ones
otherwise (§4.2.1).  A message over the parser's C{max_message_size} closes
the connection (autobahn enforces it before buffering more).

What autobahn logs about a connection (a failed handshake, a connection
dropped for a protocol error: a peer's doing) goes through the transport
layer's L{PeerLogLimit}, so that no peer floods the log; its chatter is
debug, under this module's namespace.
"""

from autobahn.exception import Disconnected
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from resource_adaptors.sip.core.parser import KEEPALIVE, ParseError
from resource_adaptors.sip.core.routing import TransportError
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.websocket", observer=log_observer)

SUBPROTOCOL = "sip"
PING = b"\r\n\r\n"

CLOSE_NORMAL = 1000  # RFC 6455 §7.4.1: for idle connections and when stopping


class SipWebSocketFactory(WebSocketServerFactory):
    """Accepts WebSocket connections (ws or wss) for one listening point."""

    def __init__(self, transports, transport):
        super().__init__(reactor=transports.reactor)
        self.transports = transports
        self.transport = transport
        self.point = None
        limit = transports.limits.max_message_size
        self.setProtocolOptions(maxFramePayloadSize=limit, maxMessagePayloadSize=limit)

    def buildProtocol(self, address):
        protocol = self.transports.accept(SipWebSocketProtocol, self.transport, address,
                                          self.point)
        protocol.factory = self
        return protocol


class SipWebSocketProtocol(WebSocketServerProtocol):
    """One browser's connection, and the pipe of its L{Connection}."""

    def __init__(self, connection, parser):
        """C{parser}: the stack's L{Parser}; each WebSocket message is one SIP message."""
        super().__init__()
        self.connection = connection
        self.parser = parser

    def onConnect(self, request):
        if SUBPROTOCOL not in request.protocols:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST,
                                 "SIP over WebSocket needs the 'sip' subprotocol")
        return SUBPROTOCOL

    def connectionMade(self):
        self.log = _PeerLog(self.factory.transports.peer_log, self.connection.peer.host)
        super().connectionMade()
        self.connection.attached(self)

    def onOpen(self):
        self.connection.opened()

    def onMessage(self, payload, isBinary):
        if payload == PING:
            self.connection.received(KEEPALIVE)
            return
        if not payload.strip(b"\r\n"):
            return  # a lone CRLF: a pong, or padding
        try:
            message = self.parser.parse(payload)
        except ParseError as error:
            self.connection.malformed(error)
        else:
            self.connection.received(message)

    def write(self, data):
        try:
            self.sendMessage(data, isBinary=not _is_utf8(data))
        except Disconnected as error:  # the browser is closing the connection
            raise TransportError(str(error)) from error

    def close(self):
        self.sendClose(CLOSE_NORMAL)

    def abort(self):
        self.transport.abortConnection()

    def connectionLost(self, reason):
        super().connectionLost(reason)
        # autobahn leaves its close-handshake timer running when the TCP
        # connection goes before the peer answered our close: nothing is
        # left for it to do.
        if self.closeHandshakeTimeoutCall is not None:
            self.closeHandshakeTimeoutCall.cancel()
            self.closeHandshakeTimeoutCall = None
        self.connection.lost(reason)


class _PeerLog:
    """
    The logger autobahn gets for one connection (its C{txaio} logger
    interface): warnings and errors, held back per peer; the rest at debug.
    """

    def __init__(self, peer_log, host):
        self._peer_log = peer_log
        self._host = host

    def warn(self, format, **kwargs):
        self._peer_log.warn(log, self._host, format, **kwargs)

    critical = error = warn

    def debug(self, format, **kwargs):
        log.debug(format, **kwargs)

    info = trace = debug


def _is_utf8(data):
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
