"""
The SIP transport layer (RFC 3261 §18): UDP, TCP and TLS on Twisted, with
WebSocket (RFC 7118) from L{resource_adaptors.sip.websocket}.

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

import ipaddress
import resource
import socket
import struct
import sys
import time
import uuid
from dataclasses import dataclass, field
from errno import ECONNREFUSED, EINTR, EMSGSIZE
from functools import partial

from twisted.internet import defer, udp
from twisted.internet.endpoints import HostnameEndpoint, serverFromString, wrapClientTLS
from twisted.internet.error import CannotListenError, InvalidAddressError, MessageLengthError
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from zope.interface import implementer

from resource_adaptors.sip import message_log
from resource_adaptors.sip.headers import Params, Via
from resource_adaptors.sip.message import Request, make_response
from resource_adaptors.sip.parser import (
    KEEPALIVE, FramingError, Limits, ParseError, StreamParser, parse_message)
from slee.runtime import cannot_listen
from slee.log_limits import PeerLogLimit, source_key
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.transport", observer=log_observer)

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
SECURE_TRANSPORTS = frozenset(("tls", "wss"))
WEBSOCKET_TRANSPORTS = frozenset(("ws", "wss"))

# A CRLF answers a double-CRLF keep-alive ping (RFC 5626 §4.4.1).
PONG = b"\r\n"

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

# The biggest UDP payload; a datagram is read whole up to the parser's
# limit plus one byte, so that an oversized one is seen as oversized.
MAX_DATAGRAM = 65535


class TransportError(Exception):
    """A message could not be sent; C{str()} says why."""


@dataclass(frozen=True, slots=True)
class ListeningPoint:
    """
    Where we listen: C{host} and C{port} are what goes into our Via
    sent-by and Contacts (an IPv6 host in brackets).
    """

    transport: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Peer:
    """
    The other end of a message: its transport and address (C{host} an IP
    address, or a name to resolve; IPv6 with or without brackets).

    C{connection} is the L{Connection} a message arrived on (None for UDP);
    given to C{send_request}, the request goes on that connection and no
    other.  C{local} is the listening point a message arrived on, so that
    a UDP response leaves from the socket the request came to.  Neither
    takes part in comparisons: a peer is its address.
    """

    transport: str
    host: str
    port: int
    connection: "Connection | None" = field(default=None, compare=False)
    local: ListeningPoint | None = field(default=None, compare=False)

    @property
    def reliable(self):
        return self.transport != "udp"


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


# -- listening descriptions --------------------------------------------------


@dataclass(frozen=True)
class ListenDescription:
    """
    A checked listening description.  C{host}, when given, is the name or
    address to advertise in Via and Contact instead of the interface (needed
    behind NAT); on all interfaces, the machine's primary address is
    advertised unless it is given (see L{_advertised_host}).
    """

    transport: str
    port: int
    interface: str = ""
    private_key: str | None = None
    cert_key: str | None = None
    host: str | None = None

    @property
    def endpoint(self):
        """The Twisted server endpoint string for a stream transport."""
        fields = ["ssl" if self.transport in SECURE_TRANSPORTS else "tcp", str(self.port)]
        if self.interface:
            fields.append("interface=" + _escape(self.interface))
        if self.transport in SECURE_TRANSPORTS:
            fields.append("privateKey=" + _escape(self.private_key))
            fields.append("certKey=" + _escape(self.cert_key or self.private_key))
        return ":".join(fields)


_OPTIONS = {"interface": "interface", "privateKey": "private_key", "certKey": "cert_key",
            "host": "host"}


def parse_listen_description(text):
    """
    Check a listening description and return its L{ListenDescription}.

    The form is Twisted's endpoint syntax, C{transport:port[:key=value]...}
    with C{\\:} for a colon inside a value: C{udp:5060},
    C{tcp:0:interface=127.0.0.1},
    C{tls:5061:privateKey=key.pem:certKey=cert.pem}, C{ws:8088},
    C{wss:8089:privateKey=key.pem}.  Options: C{interface} (an IP address),
    C{privateKey} and C{certKey} (PEM files; tls and wss only, privateKey
    required there, certKey defaults to it), C{host} (what to advertise).

    Raises C{ValueError} saying what is wrong; files are not looked at.
    """
    fields = _split_fields(text)
    transport = fields[0].lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"{text!r}: the transport must be one of {', '.join(TRANSPORTS)}, "
                         f"not {fields[0]!r}")
    if len(fields) < 2 or "=" in fields[1]:
        raise ValueError(f"{text!r}: expected a port number after {transport}:")
    port = _port(text, fields[1])
    for option in fields[2:]:
        if "=" not in option:
            raise ValueError(f"{text!r}: expected key=value, not {option!r} (a colon inside "
                             "a value is written \\:, as in interface=\\:\\:1)")
    options = {}
    for option in fields[2:]:
        key, value = option.split("=", 1)
        if key not in _OPTIONS:
            raise ValueError(f"{text!r}: unknown option {key!r} "
                             f"(known: {', '.join(_OPTIONS)})")
        if _OPTIONS[key] in options:
            raise ValueError(f"{text!r}: option {key!r} given twice")
        if not value:
            raise ValueError(f"{text!r}: option {key!r} needs a value")
        options[_OPTIONS[key]] = value
    if "interface" in options:
        _check_address(text, options["interface"])
    secure = transport in SECURE_TRANSPORTS
    if secure and "private_key" not in options:
        raise ValueError(f"{text!r}: {transport} needs privateKey=<PEM file>")
    if not secure and ({"private_key", "cert_key"} & options.keys()):
        raise ValueError(f"{text!r}: privateKey and certKey are for tls and wss only")
    return ListenDescription(transport, port, **options)


def _split_fields(text):
    """Split on colons, as Twisted does: a backslash escapes the next character."""
    fields, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _port(text, value):
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535, not {value!r}")
    return int(value)


def _check_address(text, value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{text!r}: interface must be an IP address, not {value!r}") from None


def _advertised_host(description):
    """
    The sent-by host for a listening point: the C{host} of its description,
    else its interface; on a wildcard interface, the machine's primary
    address of that family (L{primary_address}).  Not the machine's name:
    peers often cannot resolve it, and answers to a Via they cannot route
    are lost.
    """
    host = description.host
    if host is None:
        interface = description.interface or "0.0.0.0"
        address = ipaddress.ip_address(interface)
        host = primary_address(address.version) if address.is_unspecified else interface
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


#: Per IP version: a documentation address (RFC 5737, RFC 3849), which
#: stands for the rest of the world, and the loopback address.
_PROBES = {4: (socket.AF_INET, "192.0.2.1", "127.0.0.1"),
           6: (socket.AF_INET6, "2001:db8::1", "::1")}


def primary_address(version=4):
    """
    @return: the address of IP C{version} the machine's packets to the
        rest of the world leave from (a UDP socket connected to a
        documentation address: the kernel picks the route and the source
        address, and nothing is sent); the loopback address when there is
        no such route.
    """
    family, probe, loopback = _PROBES[version]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe_socket:
            probe_socket.connect((probe, 9))
            return probe_socket.getsockname()[0].split("%", 1)[0]
    except OSError:
        return loopback


# -- the transport layer -----------------------------------------------------


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
            server = _DatagramSocket(self)
            port = _DatagramPort(description.port, server, description.interface,
                                 min(self.limits.max_message_size + 1, MAX_DATAGRAM),
                                 self.reactor)
            port.startListening()
            server.socket_port = port
            port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.udp_receive_buffer)
        else:
            server = self._stream_factory(description.transport)
            port = await serverFromString(self.reactor, description.endpoint).listen(server)
        point = ListeningPoint(description.transport, _advertised_host(description),
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
        return _StreamFactory(self, transport)

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
        point = self._own_top_via(request, destination.transport)
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
        transport, host, port = response_destination(_top_via(response))
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

    def _own_top_via(self, request, transport):
        """The listening point the request goes out from; its top Via is
        made to name it."""
        vias = _vias(request)
        top = vias[0]
        point = self._points.get((top.transport.lower(), top.host.lower(), top.port))
        if point is None or point.transport != transport:
            point = self.listening_point(transport)
            top.transport, top.host, top.port = transport.upper(), point.host, point.port
            request.via = vias
        return point

    def _connection_to(self, destination):
        key = (destination.transport, _bare(destination.host), destination.port)
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
        endpoint = HostnameEndpoint(self.reactor, host, port, timeout=self.connect_timeout)
        if transport == "tls":
            options = optionsForClientTLS(host, trustRoot=self.trust_root)
            endpoint = wrapClientTLS(options, endpoint)
        factory = Factory.forProtocol(partial(_stream_protocol(transport), connection, self.limits))
        connection.connecting(endpoint.connect(factory))
        return connection

    def _send_datagram(self, server, data, host, port):
        address = (_bare(host), port)
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
        C{protocol_class(connection, limits)}; or, over the cap, one that
        closes it at once.
        """
        if not self._admit(transport, address.host, address.port, inbound=True):
            return _Refused()
        return protocol_class(Connection(self, transport, address.host, address.port, point),
                              self.limits)

    def _add(self, connection):
        peer = connection.peer
        self._connections_by_id[connection.id] = connection
        self._connections[(peer.transport, peer.host, peer.port)] = connection
        if connection.inbound:
            source = source_key(peer.host)
            self._inbound[source] = self._inbound.get(source, 0) + 1

    def _remove(self, connection):
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

    def _deliver(self, message, peer, waited=0.0):
        """Pass a received message up, once it is checked and its Via stamped."""
        try:
            if isinstance(message, Request):
                _stamp_via(message, peer)
            elif self._not_ours(_top_via(message)):
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

    def _reject(self, error, peer):
        """
        Answer what did not parse with a stateless error response when the
        request is readable enough to route one; else drop it with a
        (rate-limited) warning.
        """
        if error.request is not None:
            try:
                _stamp_via(error.request, peer)
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
        port = via.port or _default_port(via.transport)
        return (via.transport.lower(), via.host.lower(), port) not in self._points


def _vias(message):
    vias = message.via
    if not vias:
        raise TransportError("the message has no Via")
    return vias


def _top_via(message):
    return _vias(message)[0]


def _stamp_via(request, peer):
    """Stamp the top Via of a received request (L{stamp_source})."""
    vias = _vias(request)
    if stamp_source(vias[0], peer):
        request.via = vias


def stamp_source(via, peer):
    """
    Add C{received} to the top Via of a request from C{peer} when its
    sent-by host is not the source address (RFC 3261 §18.2.1), and fill an
    empty C{rport} with the source port, with C{received} then always
    (RFC 3581 §4).

    @return: whether C{via} changed.
    """
    wants_rport = via.rport is True
    if not wants_rport and _same_host(via.host, peer.host):
        return False
    via.received = peer.host
    if wants_rport:
        via.rport = peer.port
    return True


def _same_host(via_host, address):
    """Whether a Via host names the source address (IPv6 has many spellings)."""
    if via_host == address:
        return True
    if ":" not in address:
        return False
    try:
        return ipaddress.ip_address(_bare(via_host)) == ipaddress.ip_address(address)
    except ValueError:
        return False


def response_destination(via):
    """
    Where a response goes when not on the request's connection (§18.2.2):
    (transport, host, port).
    """
    transport = via.transport.lower()
    if transport not in TRANSPORTS:
        raise TransportError(f"cannot send a response over {via.transport}")
    port = via.port or _default_port(transport)
    if transport != "udp":
        return transport, via.received or via.host, port
    maddr = via.params.get("maddr")
    if maddr:
        return transport, maddr, port
    rport = via.rport
    if rport is not None and rport is not True:
        port = rport
    return transport, via.received or via.host, port


def _default_port(transport):
    return 5061 if transport.lower() in SECURE_TRANSPORTS else 5060


def _bare(host):
    """An IPv6 host without its brackets, as sockets want it."""
    return host[1:-1] if host.startswith("[") else host


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


# -- one reliable flow ---------------------------------------------------------


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
    L{SipTransports.find_connection}).  C{local} is the listening point of
    an inbound connection, None for one we made.

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
        transports._add(self)

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
            self._transports._deliver(item, self.peer)

    def malformed(self, error):
        """A message came in that did not parse."""
        self._transports._reject(error, self.peer)

    def lost(self, reason):
        """The connection is gone, or could not be made."""
        if self.closed:
            return
        self.closed = True
        self._users.clear()
        self._transports._remove(self)
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


# -- Twisted protocols ---------------------------------------------------------


#: How many source addresses a UDP listening point keeps the L{Peer} of.
_KNOWN_PEERS = 4096


class _DatagramSocket(DatagramProtocol):
    """
    One UDP listening point: each datagram is a message.  This is the hot
    path: no logging, one parse, and the Peer of the source address made
    once, not for each datagram (clients send again and again).
    """

    def __init__(self, transports):
        self.transports = transports
        self.socket_port = None
        self.point = None
        self._peers = {}    # source address -> its Peer

    def datagramReceived(self, data, address):
        self.datagram_arrived(data, address, 0.0)

    def datagram_arrived(self, data, address, waited):
        """A datagram came from C{address}, after C{waited} seconds in the
        socket's buffer (see L{_DatagramPort.doRead})."""
        if data[:1] in (b"\r", b"\n") and not data.strip(b"\r\n"):
            return  # a keep-alive: there is nothing to answer over UDP
        peer = self._peers.get(address) or self._new_peer(address)
        shedder = self.transports.shedder
        if shedder is not None and shedder(data, peer, waited):
            return
        try:
            message = parse_message(data, self.transports.limits)
        except ParseError as error:
            self.transports._reject(error, peer)
            return
        self.transports._deliver(message, peer, waited)

    def _new_peer(self, address):
        """@return: the Peer of a source address, kept; all are forgotten
        when there are too many (addresses come from the network)."""
        if len(self._peers) >= _KNOWN_PEERS:
            self._peers.clear()
        peer = self._peers[address] = Peer("udp", address[0], address[1], None, self.point)
        return peer


#: Linux's SO_TIMESTAMPNS: each datagram read comes with the time the
#: kernel received it, a C{struct timespec} (seconds and nanoseconds).
#: Python's socket module does not name it: 35 is its value on the
#: architectures Debian builds for but a few (alpha, hppa, mips, sparc).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS",
                          35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@ll")
_TIMESPEC_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


class _DatagramPort(udp.Port):
    """
    The UDP port of a listening point (what C{reactor.listenUDP} makes),
    with two departures from Twisted's.

    It reads each datagram with the time the kernel received it
    (SO_TIMESTAMPNS, where the system has it), and tells its protocol how
    long the datagram waited in the socket's buffer.  That buffer is where
    the backlog of an overloaded server piles up, unseen from inside the
    process: the door (L{resource_adaptors.sip.admission}) sheds new
    requests by that wait.  C{wall_clock} is what the kernel's stamps are
    compared with.

    Its C{write} sends to an IP address of the socket's family at once.
    Twisted's tests the address up to five ways before it sends, some 1.5 us
    a datagram; one C{inet_pton} says the same of the addresses answers go
    to, the sources of requests.  Anything else (a name, an address of the
    other family) goes to Twisted's C{write}, which refuses it as it should.
    """

    wall_clock = staticmethod(time.time)
    #: Bytes read per turn of the reactor (Twisted's 256 KiB): under
    #: overload most of what is read is refused at once, and the door bounds
    #: what is taken in, so a turn may read the buffer's backlog further.
    maxThroughput = 1024 * 1024

    def startListening(self):
        super().startListening()
        if _SO_TIMESTAMPNS is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def doRead(self):
        """Twisted's C{doRead}, but with C{recvmsg}, for the kernel's time stamps."""
        read = 0
        while read < self.maxThroughput:
            try:
                data, ancillary, _, address = self.socket.recvmsg(self.maxPacketSize,
                                                                  _TIMESPEC_SPACE)
            except OSError as error:
                if error.errno in udp._sockErrReadIgnore or \
                        error.errno in udp._sockErrReadRefuse:
                    return
                raise
            read += len(data)
            waited = 0.0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack(value)
                    waited = max(0.0, self.wall_clock() - seconds - nanoseconds * 1e-9)
            try:
                self.protocol.datagram_arrived(data, address[:2], waited)
            except BaseException:
                self.protocol.transports.peer_log.failure(
                    log, address[0], "the SIP stack failed on a datagram from {address}",
                    address=address[:2])

    def write(self, datagram, addr=None):
        if addr is None or self._connectedAddr:
            return super().write(datagram, addr)
        try:
            socket.inet_pton(self.addressFamily, addr[0])
        except (OSError, ValueError):
            return super().write(datagram, addr)
        try:
            return self.socket.sendto(datagram, addr)
        except OSError as error:
            # What udp.Port.write does with them.
            if error.errno == EINTR:
                return self.write(datagram, addr)
            if error.errno == EMSGSIZE:
                raise MessageLengthError("message too long") from error
            if error.errno == ECONNREFUSED:
                return None
            raise


class _StreamFactory(Factory):
    """Accepts TCP or TLS connections for one listening point."""

    def __init__(self, transports, transport):
        self.transports = transports
        self.transport = transport
        self.point = None

    def buildProtocol(self, address):
        protocol = self.transports.accept(_stream_protocol(self.transport), self.transport,
                                          address, self.point)
        protocol.factory = self
        return protocol


class _Refused(Protocol):
    """Closes a connection that is over the cap as soon as it is made."""

    def connectionMade(self):
        self.transport.abortConnection()


class _StreamProtocol(Protocol):
    """
    A TCP connection: frames the byte stream into messages for its
    L{Connection}, and is that connection's pipe.
    """

    def __init__(self, connection, limits):
        self.connection = connection
        self.parser = StreamParser(limits)

    def connectionMade(self):
        self.connection.attached(self)
        self.connection.opened()

    def dataReceived(self, data):
        while True:
            try:
                for item in self.parser.feed(data):
                    self.connection.received(item)
                return
            except FramingError as error:
                self.connection.malformed(error)
                self.close()
                return
            except ParseError as error:
                self.connection.malformed(error)
                data = b""  # go on with what the parser holds after the bad message

    def write(self, data):
        self.transport.write(data)

    def close(self):
        self.transport.loseConnection()

    def abort(self):
        self.transport.abortConnection()

    def connectionLost(self, reason):
        self.connection.lost(reason)


@implementer(IHandshakeListener)
class _TLSStreamProtocol(_StreamProtocol):
    """A TLS connection: it opens when the handshake is done, so that
    messages sent before then wait, and are reported if it fails."""

    def connectionMade(self):
        self.connection.attached(self)

    def handshakeCompleted(self):
        self.connection.opened()


def _stream_protocol(transport):
    return _TLSStreamProtocol if transport == "tls" else _StreamProtocol
