"""
The RFC 3261 §18 rules of the transport layer that need no socket: who a
message is from or for (L{Peer}, L{ListeningPoint}), where a response goes
(L{response_destination}, §18.2.2 with RFC 3581) and how a received
request's top Via records its source (L{stamp_source}, §18.2.1).

The shell (L{resource_adaptors.sip.transports}) applies them to what it
receives and sends; the door's fast lane (L{resource_adaptors.sip.shedding})
applies them to the requests it answers itself.
"""

import ipaddress
from dataclasses import dataclass, field

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")
SECURE_TRANSPORTS = frozenset(("tls", "wss"))
WEBSOCKET_TRANSPORTS = frozenset(("ws", "wss"))


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

    C{connection} is the connection a message arrived on (None for UDP; a
    L{resource_adaptors.sip.connections.Connection} in the shell); given to
    C{send_request}, the request goes on that connection and no other.
    C{local} is the listening point a message arrived on, so that a UDP
    response leaves from the socket the request came to.  Neither takes
    part in comparisons: a peer is its address.
    """

    transport: str
    host: str
    port: int
    connection: object = field(default=None, compare=False)
    local: ListeningPoint | None = field(default=None, compare=False)

    @property
    def reliable(self):
        return self.transport != "udp"


def vias(message):
    """The Via values of a message; L{TransportError} when it has none."""
    values = message.via
    if not values:
        raise TransportError("the message has no Via")
    return values


def top_via(message):
    return vias(message)[0]


def stamp_via(request, peer):
    """Stamp the top Via of a request received from C{peer} (L{stamp_source})."""
    values = vias(request)
    if stamp_source(values[0], peer):
        request.via = values


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
        return ipaddress.ip_address(bare_host(via_host)) == ipaddress.ip_address(address)
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
    port = via.port or default_port(transport)
    if transport != "udp":
        return transport, via.received or via.host, port
    maddr = via.params.get("maddr")
    if maddr:
        return transport, maddr, port
    rport = via.rport
    if rport is not None and rport is not True:
        port = rport
    return transport, via.received or via.host, port


def default_port(transport):
    """The port a URI or Via without one means (RFC 3261 §19.1.2)."""
    return 5061 if transport.lower() in SECURE_TRANSPORTS else 5060


def bare_host(host):
    """An IPv6 host without its brackets, as sockets want it."""
    return host[1:-1] if host.startswith("[") else host
