"""
SIP over WebSocket (RFC 7118) on real sockets on 127.0.0.1, with an
autobahn client playing the browser: one SIP message per WebSocket
message, the C{sip} subprotocol, C{.invalid} Via hosts, responses and
requests on the browser's own connection.
"""

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import Clock

from resource_adaptors.sip.core.message import make_response
from resource_adaptors.sip.core.parser import Limits, parse_message
from resource_adaptors.sip.core.routing import Peer, TransportError
from sipclient import TIMEOUT, options, reply
from transport_harness import (  # noqa: F401 (fixtures)
    answered, certificate, network, warnings, within)

LOCAL = "interface=127.0.0.1"
BROWSER_HOST = b"df7jal23ls0d.invalid"


class Browser(WebSocketClientProtocol):
    """A browser's SIP stack, as far as the tests need one."""

    def __init__(self):
        super().__init__()
        self.inbox = defer.DeferredQueue()
        self.frames = []  # (payload, is_binary) of every message received
        self.closed = defer.Deferred()

    def onMessage(self, payload, isBinary):
        self.frames.append((payload, isBinary))
        self.inbox.put(payload)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.closed.callback(None)

    def send(self, data, binary=False):
        self.sendMessage(data, isBinary=binary)

    async def next_payload(self):
        return await within(self.inbox.get())

    async def next(self):
        return parse_message(await self.next_payload())

    @property
    def port(self):
        return self.transport.getHost().port


async def browser(network, port, trust=None, protocols=("sip",)):
    """A Browser connected to C{port}, its handshake done (or refused)."""
    from twisted.internet import reactor
    scheme = "ws" if trust is None else "wss"
    factory = WebSocketClientFactory(f"{scheme}://127.0.0.1:{port}", protocols=list(protocols))
    factory.protocol = Browser
    if trust is None:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=TIMEOUT)
    else:
        options = optionsForClientTLS("127.0.0.1", trustRoot=Certificate.loadPEM(trust))
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, options, timeout=TIMEOUT)
    client = await within(endpoint.connect(factory))
    network.streams.append(client)
    await within(defer.DeferredList([client.is_open, client.closed], fireOnOneCallback=True))
    return client


def from_browser(port, client, method="OPTIONS", transport="WS"):
    """A request as SIP.js writes it: an unreachable .invalid host in the Via."""
    return options(port, transport, client.port, method=method).replace(
        b"127.0.0.1:%d;branch" % client.port, BROWSER_HOST + b";branch")


async def ws_service(network, **options):
    """A stack listening on WebSocket, and a browser connected to it:
    (stack, point, browser)."""
    stack = network.stack(**options)
    point = await stack.listen(f"ws:0:{LOCAL}")
    return stack, point, await browser(network, point.port)


@pytest_twisted.ensureDeferred
async def test_request_is_stamped_and_answered_on_its_connection(network):
    stack, point, client = await ws_service(network)
    response = await answered(client, from_browser(point.port, client))
    assert response.status == 200 and response.via[0].host == BROWSER_HOST.decode()
    assert client.frames[-1][1] is False  # a text frame

    request, peer = await stack.receiver.next()
    assert peer == Peer("ws", "127.0.0.1", client.port) and peer.reliable
    assert peer.connection.peer is peer and peer.local == point
    via = request.via[0]
    assert (via.host, via.received, via.rport) == (BROWSER_HOST.decode(), "127.0.0.1",
                                                  client.port)


@pytest_twisted.ensureDeferred
async def test_binary_frames_carry_sip_too(network):
    stack, point, client = await ws_service(network)
    client.send(from_browser(point.port, client), binary=True)
    assert (await client.next()).status == 200


@pytest_twisted.ensureDeferred
async def test_handshake_without_the_sip_subprotocol_is_refused(network):
    stack = network.stack()
    point = await stack.listen(f"ws:0:{LOCAL}")
    client = await browser(network, point.port, protocols=("chat",))
    await within(client.closed)
    assert not client.is_open.called
    assert "[400]: SIP over WebSocket needs the 'sip' subprotocol" in client.wasNotCleanReason
    good = await browser(network, point.port)
    assert (await answered(good, from_browser(point.port, good))).status == 200


@pytest_twisted.ensureDeferred
async def test_keepalive_ping_gets_a_pong(network, warnings):
    stack, point, client = await ws_service(network)
    client.send(b"\r\n\r\n")
    assert await client.next_payload() == b"\r\n"
    client.send(b"\r\n")  # a pong: nothing to answer
    assert (await answered(client, from_browser(point.port, client))).status == 200
    assert stack.receiver.pending == 1 and warnings == []


@pytest_twisted.ensureDeferred
async def test_requests_reach_the_browser_on_its_connection(network):
    stack, point, client = await ws_service(network)
    await answered(client, from_browser(point.port, client, "REGISTER"))
    register, peer = await stack.receiver.next()

    # On the connection the REGISTER came on, on the one found by its id,
    # and on the one open to the browser's address.
    contact_host = Peer("ws", BROWSER_HOST.decode(), 5060)
    connection = stack.find_connection(peer.connection.id)
    for destination in (peer, Peer("ws", contact_host.host, 5060, connection=connection),
                        Peer("ws", "127.0.0.1", client.port)):
        stack.send_request(parse_message(options(5060, "WS")), destination)
        request = await client.next()
        assert request.method == "OPTIONS"
        assert request.via[0].transport == "WS"
        assert request.via[0].sent_by == (point.host, point.port)
        client.send(reply(request))
        response, at = await stack.receiver.next()
        assert response.status == 200 and at.connection is peer.connection

    with pytest.raises(TransportError, match="no WebSocket connection"):
        stack.send_request(parse_message(options(5060, "WS")), contact_host)


@pytest_twisted.ensureDeferred
async def test_response_to_a_browser_that_left_is_a_transport_error(network):
    stack = network.stack()
    point = await stack.listen(f"ws:0:{LOCAL}")
    stack.receiver.answer = False
    client = await browser(network, point.port)
    client.send(from_browser(point.port, client))
    request, peer = await stack.receiver.next()
    client.transport.loseConnection()
    await within(peer.connection.close())
    with pytest.raises(TransportError, match="no WebSocket connection"):
        stack.send_response(make_response(request, 200), peer)


@pytest_twisted.ensureDeferred
async def test_bad_messages_are_answered_or_dropped_and_the_connection_stays(network, warnings):
    stack, point, client = await ws_service(network)
    client.send(b"\x00garbage")
    client.send(from_browser(point.port, client).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
    assert (await client.next()).status == 505
    assert (await answered(client, from_browser(point.port, client))).status == 200
    assert len(warnings) == 1 and "ws" in warnings[0]


@pytest_twisted.ensureDeferred
async def test_message_over_the_limit_closes_the_connection(network):
    stack, point, client = await ws_service(network, limits=Limits(max_message_size=2000))
    client.send(from_browser(point.port, client) + b"x" * 3000)
    await within(client.closed)
    assert stack.receiver.pending == 0


@pytest_twisted.ensureDeferred
async def test_secure_websocket(network, certificate):
    key_file, cert_file, pem = certificate
    stack = network.stack()
    point = await stack.listen(f"wss:0:privateKey={key_file}:certKey={cert_file}:{LOCAL}")
    client = await browser(network, point.port, trust=pem)
    response = await answered(client, from_browser(point.port, client, transport="WSS"))
    assert response.status == 200
    _, peer = await stack.receiver.next()
    assert peer.transport == "wss"


@pytest_twisted.ensureDeferred
async def test_idle_websocket_is_closed(network):
    clock = Clock()
    stack, point, client = await ws_service(network, clock=clock, idle_timeout=60)
    await answered(client, from_browser(point.port, client))
    clock.advance(60)
    await within(client.closed)


@pytest.mark.parametrize("bound, refusal", [
    ("max_connections", "2 connections are open"),
    ("max_connections_per_peer", "2 connections from 127.0.0.1 are open"),
])
@pytest_twisted.ensureDeferred
async def test_websocket_connections_count_towards_the_bounds(network, warnings, bound, refusal):
    stack = network.stack(**{bound: 2})
    point = await stack.listen(f"ws:0:{LOCAL}")
    kept = [await browser(network, point.port) for _ in range(2)]
    refused = await browser(network, point.port)
    await within(refused.closed)
    for client in kept:
        assert (await answered(client, from_browser(point.port, client))).status == 200
    assert len(warnings) == 1 and refusal in warnings[0]


@pytest_twisted.ensureDeferred
async def test_a_held_websocket_stays_open_however_idle(network):
    """The idle timeout spares what a dialog or a registration holds, on
    WebSocket as on TCP (a request answered shows the connection open)."""
    clock = Clock()
    stack, point, client = await ws_service(network, clock=clock, idle_timeout=60)
    await answered(client, from_browser(point.port, client))
    _, peer = await stack.receiver.next()
    peer.connection.hold("registration", until=600)
    clock.advance(60)
    assert (await answered(client, from_browser(point.port, client))).status == 200
    clock.advance(600)
    await within(client.closed)


@pytest_twisted.ensureDeferred
async def test_what_autobahn_says_about_a_peer_is_held_back(network, warnings):
    """A peer failing handshake after handshake gets a burst of warnings, no more."""
    stack = network.stack()
    point = await stack.listen(f"ws:0:{LOCAL}")
    for _ in range(20):
        refused = await browser(network, point.port, protocols=("chat",))
        await within(refused.closed)
    assert len(warnings) == 5
    assert all("needs the 'sip' subprotocol" in text for text in warnings)
