"""
The SIP transport layer (RFC 3261 §18) on Twisted: L{SipTransports}, the
L{ITransports} of a stack, over UDP (L{resource_adaptors.sip.datagram}), TCP
and TLS (L{resource_adaptors.sip.stream}) and WebSocket, RFC 7118
(L{resource_adaptors.sip.websocket}, loaded only by those who listen on it),
each reliable flow a L{resource_adaptors.sip.connections.Connection}.  The
rules that need no socket (routing responses, stamping Via, the listening
descriptions) are the core's: L{resource_adaptors.sip.core.routing} and
L{resource_adaptors.sip.core.listen}.

L{SipTransports} listens on endpoint-like descriptions (see
L{parse_listen_description}), turns what arrives into messages for its
receiver (the transaction layer), and sends what it is given:

- Requests that arrive get C{received} and C{rport} on their top Via
  (RFC 3261 §18.2.1, RFC 3581), so that the layers above and the response
  routing know where the request really came from.  Responses that arrive
  are passed up only when their top Via is one we put there (§18.1.2).
- Responses are routed by their top Via (§18.2.2): on reliable transports
  back on the connection the request came on while it is open, else to
  C{received} (or the sent-by host) at the sent-by port; on UDP to
  C{received} and C{rport}.  On WebSocket only the connection itself will
  do: browsers put unreachable C{.invalid} hosts in their Via.
- Requests go to a L{Peer}, on the connection it names, else on the open
  connection to that address, else on a new one (queued until it is made);
  WebSocket peers can only be reached on a connection they opened.

Each message received (once parsed) and sent (once prepared, not again
for each retransmission) is shown to L{message_log}, which logs it at
debug.

Every reliable flow is a L{Connection}, whatever carries it.  The layer
defends itself: a cap on open connections and one on the inbound
connections of each source (L{slee.log_limits.source_key}), an idle timeout for the
connections no dialog or registration holds (L{Connection.hold}), the
parser's L{Limits} per message and per connection buffer, a stateless
error response (400, 505, 413...) to what did not parse but can be
answered, even just before a connection closes for a message too large,
and a warning for what cannot, held back per peer (L{slee.log_limits.PeerLogLimit}) so
that no input makes the log grow faster than itself.

Errors: a send that cannot even start (no listening point for the
transport, no Via, no connection to a WebSocket peer, a socket error)
raises L{TransportError}; a failure found later (connection refused or
timed out, name not resolved) is reported as
C{receiver.transport_error(peer, TransportError)} with the destination
the caller gave, once per message that was not sent.
"""


import resource
import socket

from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError, InvalidAddressError, MessageLengthError
from twisted.logger import Logger
from zope.interface import implementer

from resource_adaptors.sip import message_log
from resource_adaptors.sip.addresses import advertised_host
from resource_adaptors.sip.connections import Connection
from resource_adaptors.sip.core.headers import Params, Via
from resource_adaptors.sip.core.listen import parse_listen_description
from resource_adaptors.sip.core.message import Request, make_response
from resource_adaptors.sip.core.parser import Limits, ParseError, Parser
from resource_adaptors.sip.core.routing import (
    WEBSOCKET_TRANSPORTS, ListeningPoint, Peer, TransportError, bare_host, default_port,
    response_destination, stamp_via, top_via, vias)
from resource_adaptors.sip.datagram import MAX_DATAGRAM, DatagramPort, DatagramSocket
from resource_adaptors.sip.interfaces import IFlows, ITransports
from resource_adaptors.sip.stream import Refused, StreamFactory, connect
from slee.runtime import cannot_listen
from slee.log_limits import PeerLogLimit, source_key
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.transports", observer=log_observer)

# What UDP sockets ask the kernel to buffer, in bytes: a few thousand
# requests, a fraction of a second at full load.
DEFAULT_UDP_RECEIVE_BUFFER = 4 * 1024 * 1024

# Connections open at once, and inbound ones from one source: room for
# thousands of idle clients, and a source must be many to fill it.
DEFAULT_MAX_CONNECTIONS = 10000
DEFAULT_MAX_CONNECTIONS_PER_PEER = 500

# Files the process keeps open besides its SIP connections: listening
# sockets, the database, logs, the other resource adaptors' connections.
OTHER_DESCRIPTORS = 256


# A message made ready to send by SipTransports.prepare_request or
# prepare_response, for SipTransports.send: serialized and routed once, then
# sent as many times as the transaction needs (retransmissions, answers to
# retransmitted requests) without keeping the message itself.  It is the
# exact tuple
#
#     (data, transport, host, port, local_host, local_port, connection, bound)
#
# where transport, host and port say where it goes; over UDP, local_host and
# local_port name the listening point it leaves from; connection is the
# Connection a response's request came on (used while open: bound false) or
# the one a request was given (used whatever its state: bound true), else
# None.  Over UDP it holds only bytes, str, int and None: Python's garbage
# collector untracks such a tuple, so the answers that lingering
# transactions keep (tens of thousands at full load) cost it no work.


@implementer(ITransports, IFlows)
class SipTransports:
    """
    All listening points and connections of one SIP stack; see the module
    docstring.

    C{receiver} gets C{message_received(message, peer, waited)} (C{waited}:
    the seconds a datagram waited in the socket's buffer, 0 for streams) and
    C{transport_error(peer, reason)}; it may be set after construction.

    Limits: C{limits} (the parser's, per message and per connection
    buffer); C{max_connections} open at once, inbound and outbound, and
    C{max_connections_per_peer} inbound ones from one source (L{slee.log_limits.source_key}):
    beyond them new ones are closed at once, those open go on;
    C{idle_timeout} seconds without a message either way closes a
    connection nobody holds (L{Connection.hold}); C{connect_timeout} seconds
    bound the opening of one, either way: the TCP connect, and the TLS or
    WebSocket handshake.  C{clock} (default: the reactor) runs these
    timeouts and the log rate limits.  C{trust_root} verifies the servers
    we connect to over TLS (default: the platform's trust store).
    C{udp_receive_buffer} is the kernel buffer (SO_RCVBUF, bytes) asked for
    each UDP socket: requests that arrive while the process is busy (a
    batch commit, a garbage collection) wait there instead of being
    dropped; the kernel caps it at C{net.core.rmem_max}.

    C{shedder}, when set, is called with each datagram before it is parsed,
    as C{shedder(data, peer, waited)}: it returns true when it answered the
    datagram itself (L{resource_adaptors.sip.shedding.Shedder}).
    """

    def __init__(self, reactor, receiver, limits=Limits(),
                 max_connections=DEFAULT_MAX_CONNECTIONS,
                 max_connections_per_peer=DEFAULT_MAX_CONNECTIONS_PER_PEER,
                 idle_timeout=300.0, connect_timeout=10.0, clock=None, trust_root=None,
                 udp_receive_buffer=DEFAULT_UDP_RECEIVE_BUFFER):
        self.reactor = reactor
        self.clock = clock or reactor
        self.receiver = receiver
        self.limits = limits
        #: what reads every message received: its memos serve every socket.
        self.parser = Parser(limits)
        self.max_connections = max_connections
        self.max_connections_per_peer = max_connections_per_peer
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self.trust_root = trust_root
        self.udp_receive_buffer = udp_receive_buffer
        self.shedder = None
        self.listening = []
        self._ports = []
        self._datagram_sockets = {}  # (host, port) of a listening point -> its UDP protocol
        self._points = {}  # (transport, host, port) -> ListeningPoint, to recognize our Vias
        self._connections = {}  # (transport, host, port) -> Connection
        self._connections_by_id = {}  # every Connection, also those not open yet
        self._inbound = {}  # source_key -> how many inbound connections it has open
        #: what peers cause to be logged goes through it (see L{PeerLogLimit}).
        self.peer_log = PeerLogLimit(self.clock)

    # -- listening

    def listen(self, description):
        """Listen as the description says (see L{parse_listen_description});
        a Deferred firing with the L{ListeningPoint}, or failing with a
        L{TransportError} naming the description when the address cannot
        be listened on (in use, not the machine's)."""
        return defer.ensureDeferred(self._listen(description))

    async def _listen(self, text):
        try:
            return await self._listen_on(parse_listen_description(text))
        except CannotListenError as error:
            raise TransportError(cannot_listen(text, error)) from None

    async def _listen_on(self, description):
        if description.transport == "udp":
            server = DatagramSocket(self)
            port = DatagramPort(description.port, server, description.interface,
                                 min(self.limits.max_message_size + 1, MAX_DATAGRAM),
                                 self.reactor)
            port.startListening()
            server.socket_port = port
            port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.udp_receive_buffer)
        else:
            server = self._stream_factory(description.transport)
            port = await serverFromString(self.reactor, description.endpoint).listen(server)
        point = ListeningPoint(description.transport, advertised_host(description),
                               port.getHost().port)
        server.point = point
        if description.transport == "udp":
            self._datagram_sockets[point.host, point.port] = server
        self._ports.append(port)
        self.listening.append(point)
        self._points.setdefault((point.transport, point.host.lower(), point.port), point)
        return point

    def listening_point(self, transport):
        """The first listening point of a transport: what our Via and Contact
        name for it.  Raises L{TransportError} when there is none."""
        for point in self.listening:
            if point.transport == transport:
                return point
        raise TransportError(f"no {transport} listening point")

    def _stream_factory(self, transport):
        if transport in WEBSOCKET_TRANSPORTS:
            # autobahn is loaded only by those who listen on WebSocket.
            from resource_adaptors.sip.websocket import SipWebSocketFactory
            return SipWebSocketFactory(self, transport)
        return StreamFactory(self, transport)

    def stop(self):
        """Close every listening point and connection; a Deferred that
        fires when all are closed."""
        closing = [defer.maybeDeferred(port.stopListening) for port in self._ports]
        closing += [connection.close() for connection in list(self._connections_by_id.values())]
        self._ports.clear()
        self.listening.clear()
        self._datagram_sockets.clear()
        self._points.clear()
        return defer.gatherResults(closing, consumeErrors=True).addCallback(lambda _: None)

    # -- sending

    def via_for(self, transport, branch):
        """A Via for a request we send on C{transport}: our sent-by, the
        branch, and an empty C{rport} asking for symmetric responses."""
        point = self.listening_point(transport)
        return Via(transport.upper(), point.host, point.port,
                   Params([("branch", branch), ("rport", None)]))

    def prepare_request(self, request, destination):
        """
        Make a request ready to go to a L{Peer}: on the connection the peer
        names (and no other), else on the open connection to its address,
        else on a new one; over UDP from the socket our top Via names.  The
        top Via is made ours if it is not (its transport, host and port set
        from our listening point), so a caller may put any placeholder
        there, or use L{via_for}.

        @return: the prepared message, for L{send}.
        """
        point = self._owntop_via(request, destination.transport)
        message_log.sent(request, destination)
        local_host, local_port = (None, None) if destination.reliable else (point.host, point.port)
        connection = destination.connection
        return (bytes(request), destination.transport, destination.host, destination.port,
                local_host, local_port, connection, connection is not None)

    def prepare_response(self, response, peer=None):
        """
        Make a response ready to go where its top Via says (RFC 3261
        §18.2.2, RFC 3581); C{peer} is where the request came from: its
        connection is used while it is open, and a UDP response leaves from
        the socket the request came to.

        @return: the prepared message, for L{send}.
        """
        transport, host, port = response_destination(top_via(response))
        message_log.sent(response, peer or Peer(transport, host, port))
        local_host = local_port = None
        if transport == "udp":
            point = peer.local if peer is not None else None
            if point is None or (point.host, point.port) not in self._datagram_sockets:
                point = self.listening_point("udp")
            local_host, local_port = point.host, point.port
        connection = peer.connection if peer is not None else None
        return bytes(response), transport, host, port, local_host, local_port, connection, False

    def send(self, prepared):
        """Send a prepared message (again: it is routed once, sent as often as needed)."""
        data, transport, host, port, local_host, local_port, connection, bound = prepared
        if connection is not None and (bound or not connection.closed):
            connection.send(data, Peer(transport, host, port))
        elif local_host is None:
            destination = Peer(transport, host, port)
            self._connection_to(destination).send(data, destination)
        else:
            self._send_datagram(self._datagram_sockets[local_host, local_port], data, host, port)

    def send_request(self, request, destination):
        """Send a request once (see L{prepare_request})."""
        self.send(self.prepare_request(request, destination))

    def send_response(self, response, peer=None):
        """Send a response once (see L{prepare_response})."""
        self.send(self.prepare_response(response, peer))

    def find_connection(self, connection_id):
        """The open (or opening) L{Connection} with this id, or None: for
        flow tokens (RFC 5626) that name a connection in a Contact."""
        return self._connections_by_id.get(connection_id)

    def _owntop_via(self, request, transport):
        """The listening point the request goes out from; its top Via is
        made to name it."""
        values = vias(request)
        top = values[0]
        point = self._points.get((top.transport.lower(), top.host.lower(), top.port))
        if point is None or point.transport != transport:
            point = self.listening_point(transport)
            top.transport, top.host, top.port = transport.upper(), point.host, point.port
            request.via = values
        return point

    def _connection_to(self, destination):
        key = (destination.transport, bare_host(destination.host), destination.port)
        connection = self._connections.get(key)
        if connection is not None:
            return connection
        if destination.transport in WEBSOCKET_TRANSPORTS:
            raise TransportError(f"no WebSocket connection to {key[1]}:{key[2]}: "
                                 "WebSocket peers are reached only on connections they opened")
        return self._connect(*key)

    def _connect(self, transport, host, port):
        if not self._admit(transport, host, port, inbound=False):
            raise TransportError(f"cannot connect to {host}:{port}: too many connections")
        connection = Connection(self, transport, host, port)
        connect(self, connection, self.trust_root)
        return connection

    def _send_datagram(self, server, data, host, port):
        address = (bare_host(host), port)
        try:
            server.socket_port.write(data, address)
        except InvalidAddressError:
            self._resolve_and_send(server, data, Peer("udp", host, port))
        except (OSError, MessageLengthError) as error:
            raise TransportError(f"cannot send to {address[0]}:{address[1]}: {error}") from error

    def _resolve_and_send(self, server, data, destination):
        def resolved(address):
            try:
                server.socket_port.write(data, (address, destination.port))
            except (OSError, MessageLengthError) as error:
                failed(error)

        def failed(error):
            self.receiver.transport_error(destination, TransportError(
                f"cannot send to {destination.host}:{destination.port}: {error}"))

        self.reactor.resolve(destination.host).addCallbacks(
            resolved, lambda failure: failed(failure.value))

    # -- connections

    def _admit(self, transport, host, port, inbound):
        """Whether one more connection with C{host} may open; a refusal
        is logged (held back per peer)."""
        source = source_key(host)
        if len(self._connections_by_id) >= self.max_connections:
            reason = f"{self.max_connections} connections are open"
        elif inbound and self._inbound.get(source, 0) >= self.max_connections_per_peer:
            reason = f"{self.max_connections_per_peer} connections from {source} are open"
        else:
            return True
        self.peer_log.warn(log, host, "refusing the {transport} connection with "
                           "{host}:{port}: {reason}",
                           transport=transport, host=host, port=port, reason=reason)
        return False

    def accept(self, protocol_class, transport, address, point):
        """
        For the factories of the listening points: the protocol for an
        incoming connection from C{address} to C{point}, made as
        C{protocol_class(connection, parser)}; or, over the cap, one that
        closes it at once.
        """
        if not self._admit(transport, address.host, address.port, inbound=True):
            return Refused()
        return protocol_class(Connection(self, transport, address.host, address.port, point),
                              self.parser)

    def connection_added(self, connection):
        peer = connection.peer
        self._connections_by_id[connection.id] = connection
        self._connections[(peer.transport, peer.host, peer.port)] = connection
        if connection.inbound:
            source = source_key(peer.host)
            self._inbound[source] = self._inbound.get(source, 0) + 1

    def connection_removed(self, connection):
        peer = connection.peer
        key = (peer.transport, peer.host, peer.port)
        del self._connections_by_id[connection.id]
        if self._connections.get(key) is connection:
            del self._connections[key]
        if connection.inbound:
            source = source_key(peer.host)
            self._inbound[source] -= 1
            if not self._inbound[source]:
                del self._inbound[source]

    # -- receiving

    def deliver(self, message, peer, waited=0.0):
        """Pass a received message up, once it is checked and its Via stamped."""
        try:
            if isinstance(message, Request):
                stamp_via(message, peer)
            elif self._not_ours(top_via(message)):
                log.debug("dropped a response whose top Via is not ours, from {peer}",
                          peer=peer)
                return
        except (ParseError, TransportError) as error:
            self.peer_log.warn(log, peer.host, "dropped a message from {host}:{port} "
                               "({transport}): {reason}", host=peer.host, port=peer.port,
                               transport=peer.transport, reason=_reason(error))
            return
        message_log.received(message, peer)
        try:
            self.receiver.message_received(message, peer, waited)
        except Exception:
            self.peer_log.failure(log, peer.host, "the receiver failed on a message from "
                                  "{peer}", peer=peer)

    def reject(self, error, peer):
        """
        Answer what did not parse with a stateless error response when the
        request is readable enough to route one; else drop it with a
        (rate-limited) warning.
        """
        if error.request is not None:
            try:
                stamp_via(error.request, peer)
                response = make_response(error.request, error.status, error.reason)
                message_log.refused(error.request, response, peer)
                self.send_response(response, peer)
                return
            except (ParseError, TransportError):
                pass
        self.peer_log.warn(log, peer.host, "dropped unreadable input from {host}:{port} "
                           "({transport}): {reason}", host=peer.host, port=peer.port,
                           transport=peer.transport, reason=_reason(error))

    def _not_ours(self, via):
        port = via.port or default_port(via.transport)
        return (via.transport.lower(), via.host.lower(), port) not in self._points



def _reason(error):
    return getattr(error, "reason", None) or str(error)


def reserve_descriptors(connections):
    """
    Let the process hold C{connections} sockets besides its other files
    (L{OTHER_DESCRIPTORS}): raise the soft limit on open files
    (C{RLIMIT_NOFILE}) as far as the hard limit allows, as needed.  Only
    root may raise the hard limit (ulimit -Hn, systemd's C{LimitNOFILE}).

    @return: the limit when it is still too low, else None.
    """
    needed = connections + OTHER_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (OSError, ValueError) as error:
            log.debug("cannot raise the open file limit to {wanted}: {error}",
                      wanted=wanted, error=error)
    return soft if soft < needed else None

