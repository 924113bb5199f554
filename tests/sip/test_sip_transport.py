"""
The SIP transports over real UDP, TCP and TLS sockets on 127.0.0.1: Via
stamping and response routing (RFC 3261 §18, RFC 3581), connection reuse,
keep-alives, limits, bad input, and sending requests.
"""

import gc
import ipaddress
import socket
from unittest.mock import ANY

import pytest
import pytest_twisted
from twisted.internet import defer, udp
from twisted.internet.error import InvalidAddressError, MessageLengthError
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from resource_adaptors.sip import addresses as addresses_module
from resource_adaptors.sip import datagram as datagram_module
from resource_adaptors.sip.core.message import Request, Response, make_response
from resource_adaptors.sip.core.parser import Limits, parse_message
from resource_adaptors.sip.core.listen import ListenDescription, parse_listen_description
from resource_adaptors.sip.core.routing import ListeningPoint, Peer, TransportError
from resource_adaptors.sip.interfaces import IFlows, ITransports
from sipclient import StreamPeer, options
from transport_harness import (  # noqa: F401 (fixtures)
    answered, certificate, network, warnings, within)

LOCAL = "interface=127.0.0.1"


def test_the_transports_provide_their_interfaces(network):
    stack = network.stack()
    verifyObject(ITransports, stack)
    verifyObject(IFlows, stack)


async def udp_service(network, **options):
    """A stack listening on UDP, and a UDP client of it: (stack, point, client)."""
    stack = network.stack(**options)
    point = await stack.listen(f"udp:0:{LOCAL}")
    return stack, point, network.udp_peer(point.port)


async def tcp_service(network, **options):
    """A stack listening on TCP, and a client connected to it: (stack, point, client)."""
    stack = network.stack(**options)
    point = await stack.listen(f"tcp:0:{LOCAL}")
    return stack, point, await network.stream_peer(point.port)


# -- listening descriptions ----------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("udp:5060", ListenDescription("udp", 5060)),
    ("UDP:0:interface=127.0.0.1", ListenDescription("udp", 0, "127.0.0.1")),
    ("tcp:5060:interface=\\:\\:1", ListenDescription("tcp", 5060, "::1")),
    ("tls:5061:privateKey=key.pem:certKey=cert.pem",
     ListenDescription("tls", 5061, private_key="key.pem", cert_key="cert.pem")),
    ("ws:8088:interface=0.0.0.0:host=sip.example.com",
     ListenDescription("ws", 8088, "0.0.0.0", host="sip.example.com")),
    ("wss:8089:privateKey=C\\:\\\\keys\\\\k.pem",
     ListenDescription("wss", 8089, private_key="C:\\keys\\k.pem")),
])
def test_listen_descriptions(text, expected):
    assert parse_listen_description(text) == expected


def test_stream_descriptions_become_twisted_endpoints():
    assert parse_listen_description("tcp:5060:interface=\\:\\:1").endpoint == \
        "tcp:5060:interface=\\:\\:1"
    assert parse_listen_description("wss:443:privateKey=a\\:b.pem").endpoint == \
        "ssl:443:privateKey=a\\:b.pem:certKey=a\\:b.pem"


@pytest.mark.parametrize("text, complaint", [
    ("sctp:5060", "must be one of udp, tcp, tls, ws, wss"),
    ("udp", "expected a port number"),
    ("udp:interface=127.0.0.1", "expected a port number"),
    ("udp:5060:5061", "expected key=value, not '5061'"),
    ("tcp:5060:interface=::1", r"written \\:, as in interface=\\:\\:1"),
    ("udp:http", "the port must be a number"),
    ("tcp:70000", "the port must be a number from 0 to 65535"),
    ("tcp:5060:backlog=5", "unknown option 'backlog'"),
    ("tcp:5060:interface=localhost", "interface must be an IP address"),
    ("tcp:5060:interface=", "needs a value"),
    ("tcp:5060:interface=127.0.0.1:interface=\\:\\:1", "given twice"),
    ("tls:5061", "tls needs privateKey"),
    ("udp:5060:privateKey=k.pem", "for tls and wss only"),
])
def test_bad_listen_descriptions(text, complaint):
    with pytest.raises(ValueError, match=complaint) as raised:
        parse_listen_description(text)
    assert repr(text) in str(raised.value)


@pytest_twisted.ensureDeferred
async def test_listen_reports_listening_points(network):
    stack = network.stack()
    udp = await stack.listen(f"udp:0:{LOCAL}")
    tcp = await stack.listen(f"tcp:0:{LOCAL}:host=sip.example.com")
    assert udp == ListeningPoint("udp", "127.0.0.1", udp.port) and udp.port > 0
    assert tcp == ListeningPoint("tcp", "sip.example.com", tcp.port) and tcp.port > 0
    assert stack.listening == [udp, tcp]
    assert stack.listening_point("tcp") is tcp
    with pytest.raises(ValueError, match="unknown option"):
        await stack.listen("udp:0:colour=red")


@pytest_twisted.ensureDeferred
async def test_a_wildcard_listener_advertises_the_primary_address(network, monkeypatch):
    monkeypatch.setattr(addresses_module, "primary_address",
                        lambda version=4: {4: "192.0.2.7", 6: "2001:db8::7"}[version])
    stack = network.stack()
    assert (await stack.listen("udp:0")).host == "192.0.2.7"
    assert (await stack.listen("tcp:0:interface=0.0.0.0")).host == "192.0.2.7"
    assert (await stack.listen("tcp:0:interface=0.0.0.0:host=sip.example.com")).host \
        == "sip.example.com"
    assert (await stack.listen("tcp:0:interface=\\:\\:")).host == "[2001:db8::7]"


def test_the_primary_address_is_where_packets_to_the_world_leave_from():
    address = ipaddress.ip_address(addresses_module.primary_address())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            expected = probe.getsockname()[0]
        except OSError:
            expected = "127.0.0.1"   # no route out of this machine
    assert address.version == 4 and str(address) == expected


def test_the_primary_address_is_loopback_without_a_route(monkeypatch):
    class Unroutable(socket.socket):
        def connect(self, address):
            raise OSError("Network is unreachable")

    monkeypatch.setattr(addresses_module.socket, "socket", Unroutable)
    assert addresses_module.primary_address(4) == "127.0.0.1"
    assert addresses_module.primary_address(6) == "::1"


# -- UDP -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_udp_request_is_stamped_and_answered_to_its_source(network):
    stack, point, client = await udp_service(network)
    response = await answered(client, options(point.port, local_port=client.port))

    request, peer = await stack.receiver.next()
    assert peer == Peer("udp", "127.0.0.1", client.port)
    assert peer.connection is None and peer.local == point and not peer.reliable
    [via] = request.via
    assert (via.received, via.rport) == ("127.0.0.1", client.port)
    assert response.status == 200
    assert response.via[0].rport == client.port
    assert client.sources == [("127.0.0.1", point.port)]


@pytest_twisted.ensureDeferred
async def test_udp_via_left_alone_when_sent_by_is_the_source(network):
    stack, point, client = await udp_service(network)
    data = options(point.port, local_port=client.port).replace(b";rport", b"")
    await answered(client, data)
    request, _ = await stack.receiver.next()
    assert request.headers.get("Via") == parse_message(data).headers.get("Via")


@pytest_twisted.ensureDeferred
async def test_udp_response_goes_to_received_and_sent_by_port_without_rport(network):
    """RFC 3261 §18.2.2: no rport, so the sent-by port, at the source address."""
    stack = network.stack()
    point = await stack.listen(f"udp:0:{LOCAL}")
    sender, listener = network.udp_peer(point.port), network.udp_peer(point.port)
    sender.send(options(point.port, local_port=listener.port).replace(b";rport", b"")
                .replace(b"127.0.0.1:%d" % listener.port, b"client.invalid:%d" % listener.port))
    response = await listener.next()
    request, _ = await stack.receiver.next()
    assert request.via[0].received == "127.0.0.1"
    assert request.via[0].rport is None
    assert response.status == 200 and response.via[0].host == "client.invalid"
    assert sender.inbox.messages == []


@pytest_twisted.ensureDeferred
async def test_udp_response_goes_to_rport(network):
    stack = network.stack()
    point = await stack.listen(f"udp:0:{LOCAL}")
    sender, listener = network.udp_peer(point.port), network.udp_peer(point.port)
    response = await answered(sender, options(point.port, local_port=listener.port))
    assert response.via[0].rport == sender.port
    assert listener.inbox.messages == []


@pytest_twisted.ensureDeferred
async def test_udp_response_leaves_from_the_socket_the_request_came_to(network):
    stack = network.stack()
    first = await stack.listen(f"udp:0:{LOCAL}")
    second = await stack.listen(f"udp:0:{LOCAL}")
    client = network.udp_peer(second.port)
    await answered(client, options(second.port, local_port=client.port))
    assert client.sources == [("127.0.0.1", second.port)] and first.port != second.port


@pytest_twisted.ensureDeferred
async def test_a_response_prepared_for_udp_is_untracked_by_the_garbage_collector(network):
    stack = network.stack()
    point = await stack.listen(f"udp:0:{LOCAL}")
    request = parse_message(options(point.port, local_port=5999))
    prepared = stack.prepare_response(make_response(request, 200), Peer("udp", "127.0.0.1", 5999,
                                                                        None, point))
    gc.collect()
    assert not gc.is_tracked(prepared)


@pytest_twisted.ensureDeferred
async def test_udp_sockets_get_the_receive_buffer_asked_for(network):
    stack = network.stack(udp_receive_buffer=300_000)
    await stack.listen(f"udp:0:{LOCAL}")
    (server,) = stack._datagram_sockets.values()
    # Linux doubles what it is asked for (its bookkeeping), below rmem_max.
    granted = server.socket_port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    assert granted >= min(300_000, _rmem_max())


def _rmem_max():
    with open("/proc/sys/net/core/rmem_max") as limit:
        return int(limit.read())


@pytest_twisted.ensureDeferred
async def test_a_udp_source_address_has_one_peer_while_not_too_many_send(network, monkeypatch):
    stack, point, client = await udp_service(network)
    for _ in range(2):
        await answered(client, options(point.port, local_port=client.port))
    (_, first), (_, second) = [await stack.receiver.next() for _ in range(2)]
    assert first is second
    (server,) = stack._datagram_sockets.values()
    monkeypatch.setattr(datagram_module, "KNOWN_PEERS", 2)
    other = server._new_peer(("192.0.2.1", 1))     # the second kept: as many as may be
    assert other == Peer("udp", "192.0.2.1", 1) and other.local == point
    assert list(server._peers.values()) == [first, other]
    last = server._new_peer(("192.0.2.1", 2))      # one too many: all are forgotten
    assert list(server._peers.values()) == [last]


@pytest_twisted.ensureDeferred
async def test_udp_writes_to_ip_addresses_skip_twisteds_address_checks(network, monkeypatch):
    stack, point, client = await udp_service(network)
    (server,) = stack._datagram_sockets.values()

    def checked_write(*args):
        raise AssertionError("udp.Port.write called")
    monkeypatch.setattr(udp.Port, "write", checked_write)
    request = options(point.port, local_port=client.port)
    server.socket_port.write(bytes(make_response(parse_message(request), 200)),
                             ("127.0.0.1", client.port))
    assert (await client.next()).status == 200


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize("host", ["localhost", "::1", "127.0.0"])
async def test_udp_writes_to_anything_else_go_through_twisted(network, monkeypatch, host):
    """Names, addresses of the other family...: Twisted's write refuses them."""
    stack = network.stack()
    await stack.listen(f"udp:0:{LOCAL}")
    (server,) = stack._datagram_sockets.values()
    calls = []
    twisted_write = udp.Port.write

    def write(port, datagram, address):
        calls.append(address)
        return twisted_write(port, datagram, address)
    monkeypatch.setattr(udp.Port, "write", write)
    with pytest.raises(InvalidAddressError):
        server.socket_port.write(b"x", (host, 5060))
    assert calls == [(host, 5060)]


@pytest_twisted.ensureDeferred
async def test_udp_writes_too_long_for_a_datagram_fail_as_twisteds(network):
    stack, point, client = await udp_service(network)
    (server,) = stack._datagram_sockets.values()
    with pytest.raises(MessageLengthError):
        server.socket_port.write(b"x" * 70000, ("127.0.0.1", client.port))


@pytest_twisted.ensureDeferred
async def test_udp_keepalives_are_ignored(network, warnings):
    stack, point, client = await udp_service(network)
    client.send(b"\r\n\r\n")
    client.send(b"\r\n")
    await answered(client, options(point.port, local_port=client.port))
    request, _ = await stack.receiver.next()
    assert request.method == "OPTIONS" and stack.receiver.pending == 0
    assert warnings == []


@pytest_twisted.ensureDeferred
async def test_garbage_datagrams_are_dropped_with_a_rate_limited_warning(network, warnings):
    clock = Clock()
    stack, point, client = await udp_service(network, clock=clock)
    for n in range(50):
        client.send(b"\x00\xff garbage %d" % n)
    response = await answered(client, options(point.port, local_port=client.port))
    assert response.status == 200
    assert len(warnings) == 5 and all("127.0.0.1" in warning for warning in warnings)

    clock.advance(61)
    client.send(b"more garbage\r\n\r\n")
    await answered(client, options(point.port, local_port=client.port))
    assert len(warnings) == 6 and "45 more lines about this peer" in warnings[5]
    requests = [(await stack.receiver.next())[0] for _ in range(2)]
    assert [r.method for r in requests] == ["OPTIONS", "OPTIONS"]
    assert stack.receiver.pending == 0


def with_content_length(length, body=""):
    return lambda port, local: options(port, local_port=local, body=body).replace(
        b"Content-Length: %d" % len(body), b"Content-Length: " + length)


ANSWERED = {  # what is wrong -> (the request, the status of the answer)
    "truncated body": (with_content_length(b"500", "hello"), 400),
    "absurd Content-Length": (with_content_length(b"99999999999999999999"), 400),
    "bad Content-Length": (with_content_length(b"-1"), 400),
    "bad SIP version": (lambda port, local: options(port, local_port=local).replace(
        b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1), 505),
}


@pytest.mark.parametrize("kind", ANSWERED)
@pytest_twisted.ensureDeferred
async def test_bad_udp_requests_get_a_stateless_error(network, kind):
    make, status = ANSWERED[kind]
    stack, point, client = await udp_service(network)
    response = await answered(client, make(point.port, client.port))
    assert response.status == status and response.reason
    assert response.via[0].rport == client.port
    good = await answered(client, options(point.port, local_port=client.port))
    assert good.status == 200
    request, _ = await stack.receiver.next()
    assert request.call_id == good.call_id and stack.receiver.pending == 0


DROPPED = {  # what is wrong -> the datagram, with nothing to answer
    "NUL in a header": lambda port: options(port, headers="Subject: a\x00b\r\n"),
    # (a huge Subject is answered 513: test_sip_malformed)
    "huge Via": lambda port: options(port).replace(
        b"Via: ", b"Via: SIP/2.0/UDP " + b"h" * 20000 + b"\r\nVia: ", 1),
    "no end of headers": lambda port: options(port)[:-4],
    "bad request line": lambda port: b"OPTIONS\r\n" + options(port).split(b"\r\n", 1)[1],
    "no Via": lambda port: b"\r\n".join(line for line in options(port).split(b"\r\n")
                                         if not line.startswith(b"Via:")),
}


@pytest.mark.parametrize("kind", DROPPED)
@pytest_twisted.ensureDeferred
async def test_unanswerable_udp_input_is_dropped_with_a_warning(network, warnings, kind):
    stack, point, client = await udp_service(network)
    client.send(DROPPED[kind](point.port))
    good = options(point.port, local_port=client.port)
    response = await answered(client, good)
    assert response.call_id == parse_message(good).call_id
    request, _ = await stack.receiver.next()
    assert request.call_id == response.call_id and stack.receiver.pending == 0
    assert len(warnings) == 1 and f"127.0.0.1:{client.port}" in warnings[0]


def response_to(point, branch="z9hG4bK-ours", host="127.0.0.1", transport="UDP"):
    return (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/{transport} {host}:{point.port};branch={branch}\r\n"
            "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
            "Call-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()


@pytest_twisted.ensureDeferred
async def test_responses_pass_only_with_our_via(network):
    """RFC 3261 §18.1.2."""
    stack, point, client = await udp_service(network)
    client.send(response_to(point, "z9hG4bK-foreign", host="192.0.2.1"))
    client.send(response_to(point, "z9hG4bK-wrong-transport", transport="TCP"))
    client.send(response_to(point))
    response, peer = await stack.receiver.next()
    assert isinstance(response, Response) and response.via[0].branch == "z9hG4bK-ours"
    assert peer == Peer("udp", "127.0.0.1", client.port)


# -- TCP -----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_tcp_requests_are_answered_on_their_connection(network):
    stack, point, client = await tcp_service(network)
    first = options(point.port, "TCP", client.port)
    second = options(point.port, "TCP", client.port)
    third = options(point.port, "TCP", client.port)
    client.send(first + second + third[:50])  # two in one segment, one split
    client.send(third[50:])
    responses = [await client.next() for _ in range(3)]
    assert [r.status for r in responses] == [200, 200, 200]
    assert [r.call_id for r in responses] == [parse_message(m).call_id
                                              for m in (first, second, third)]

    request, peer = await stack.receiver.next()
    assert peer == Peer("tcp", "127.0.0.1", client.port) and peer.reliable
    connection = peer.connection
    assert connection.peer is peer and not connection.closed
    assert stack.find_connection(connection.id) is connection
    assert request.via[0].received == "127.0.0.1" and request.via[0].rport == client.port


@pytest_twisted.ensureDeferred
async def test_tcp_keepalive_ping_gets_a_pong(network):
    """RFC 5626 §4.4.1: a double CRLF is answered with one CRLF."""
    stack, point, client = await tcp_service(network)
    client.send(b"\r\n\r\n")
    await answered(client, options(point.port, "TCP", client.port))
    assert bytes(client.raw).startswith(b"\r\nSIP/2.0 200 ")


@pytest_twisted.ensureDeferred
async def test_tcp_stream_that_cannot_be_framed_is_closed(network, warnings):
    stack = network.stack()
    point = await stack.listen(f"tcp:0:{LOCAL}")
    bad, good = await network.stream_peer(point.port), await network.stream_peer(point.port)
    bad.send(options(point.port, "TCP", bad.port).replace(b"Content-Length: 0\r\n", b""))
    await within(bad.closed)
    assert bad.inbox.messages == []
    assert (await answered(good, options(point.port, "TCP", good.port))).status == 200
    assert len(warnings) == 1 and "Missing Content-Length" in warnings[0]


TOO_LARGE = {  # what is too large -> (the request, the answer before the close)
    "body": (lambda port, local: options(port, "TCP", local, body="x" * 3000),
             (413, "Body too large")),
    "message": (lambda port, local: options(port, "TCP", local, body="x" * 1900),
                (513, "Message Too Large")),
    "header section": (lambda port, local: options(
        port, "TCP", local, headers="Subject: " + "x" * 2500 + "\r\n"), (513, "Message Too Large")),
}


@pytest.mark.parametrize("kind", TOO_LARGE)
@pytest_twisted.ensureDeferred
async def test_tcp_message_too_large_is_answered_before_the_close(network, kind):
    make, answer = TOO_LARGE[kind]
    limits = Limits(max_message_size=2000, max_body_size=2000, max_line_length=4000)
    stack, point, client = await tcp_service(network, limits=limits)
    client.send(make(point.port, client.port))
    response = await client.next()
    assert (response.status, response.reason) == answer
    assert response.via[0].received == "127.0.0.1"
    await within(client.closed)
    assert stack.receiver.pending == 0


@pytest_twisted.ensureDeferred
async def test_tcp_message_too_large_without_a_route_is_dropped(network, warnings):
    stack, point, client = await tcp_service(network, limits=Limits(max_body_size=100))
    client.send(options(point.port, "TCP", client.port, body="x" * 300).replace(b"Via:", b"Vja:"))
    await within(client.closed)
    assert bytes(client.raw) == b""
    assert len(warnings) == 1 and "Body too large" in warnings[0]


@pytest_twisted.ensureDeferred
async def test_tcp_malformed_message_is_answered_and_the_stream_goes_on(network):
    stack, point, client = await tcp_service(network)
    bad = options(point.port, "TCP", client.port).replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1)
    client.send(bad + options(point.port, "TCP", client.port))
    assert (await client.next()).status == 505
    assert (await client.next()).status == 200
    assert not client.closed.called


@pytest_twisted.ensureDeferred
async def test_tcp_message_in_100k_one_byte_segments(network):
    """
    Reassembly is linear: a message of 100 000 bytes arriving one byte per
    segment (one write per turn of the reactor, no Nagle) is received well
    within the test's bound.
    """
    from twisted.internet import reactor
    limits = Limits(max_message_size=200_000, max_body_size=200_000)
    stack, point, client = await tcp_service(network, limits=limits)
    client.transport.setTcpNoDelay(True)
    data = options(point.port, "TCP", client.port, body="x" * 99_700,
                   headers="Content-Type: text/plain\r\n")
    assert len(data) >= 100_000
    written = defer.Deferred()

    def write_from(index):
        if index == len(data):
            written.callback(None)
            return
        client.send(data[index:index + 1])
        reactor.callLater(0, write_from, index + 1)

    write_from(0)
    await within(written, 60)
    request, _ = await stack.receiver.next()
    assert request.body == b"x" * 99_700


@pytest_twisted.ensureDeferred
async def test_receiver_failure_does_not_close_the_connection(network):
    stack, point, client = await tcp_service(network)
    calls = []

    def fail_once(message, peer, waited=0.0):
        calls.append(message)
        if len(calls) == 1:
            raise RuntimeError("a bug above the transport")
        stack.send_response(make_response(message, 200), peer)

    stack.receiver.message_received = fail_once
    client.send(options(point.port, "TCP", client.port))
    assert (await answered(client, options(point.port, "TCP", client.port))).status == 200
    assert len(calls) == 2


# -- limits --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_connections_over_the_cap_are_closed_at_once(network, warnings):
    stack = network.stack(max_connections=5)
    point = await stack.listen(f"tcp:0:{LOCAL}")
    kept = [await network.stream_peer(point.port) for _ in range(5)]
    for client in kept:
        await answered(client, options(point.port, "TCP", client.port))
    refused = [await network.stream_peer(point.port) for _ in range(100)]
    await within(defer.gatherResults([client.closed for client in refused]))
    assert len(warnings) == 5 and "5 connections are open" in warnings[0]
    assert (await answered(kept[0], options(point.port, "TCP", kept[0].port))).status == 200

    # Once one goes, there is room for a new one.
    connections = {peer.port: peer.connection
                   for _, peer in [await stack.receiver.next() for _ in range(6)]}
    await within(connections[kept[1].port].close())
    await within(kept[1].closed)
    newcomer = await network.stream_peer(point.port)
    assert (await answered(newcomer, options(point.port, "TCP", newcomer.port))).status == 200


@pytest_twisted.ensureDeferred
async def test_idle_connections_are_closed(network):
    clock = Clock()
    stack = network.stack(clock=clock, idle_timeout=30)
    stack.receiver.answer = False  # what keeps the connection is what it receives

    async def received_at(seconds):
        clock.advance(seconds - clock.seconds())
        client.send(options(point.port, "TCP", client.port))
        await stack.receiver.next()

    point = await stack.listen(f"tcp:0:{LOCAL}")
    client = await network.stream_peer(point.port)
    await received_at(0)
    await received_at(20)
    await received_at(40)  # idle for 20 s only
    assert not client.closed.called
    clock.advance(29)
    assert not client.closed.called
    clock.advance(1)
    await within(client.closed)


# -- sending -------------------------------------------------------------------


def request_to(port, transport="UDP", via_port=9):
    """A request whose top Via is a placeholder (sent-by port 9) to be made ours."""
    return parse_message(options(port, transport, via_port))


@pytest_twisted.ensureDeferred
async def test_udp_request_gets_our_via(network):
    stack, point, client = await udp_service(network)
    request = request_to(client.port)
    branch = request.via[0].branch
    stack.send_request(request, Peer("udp", "127.0.0.1", client.port))
    got = await client.next()
    [via] = got.via
    assert (via.transport, via.sent_by, via.branch) == ("UDP", ("127.0.0.1", point.port), branch)
    assert client.sources == [("127.0.0.1", point.port)]
    assert str(stack.via_for("udp", "z9hG4bKabc")) == \
        f"SIP/2.0/UDP 127.0.0.1:{point.port};branch=z9hG4bKabc;rport"


@pytest_twisted.ensureDeferred
async def test_sending_needs_a_listening_point_of_the_transport(network):
    stack = network.stack()
    await stack.listen(f"udp:0:{LOCAL}")
    with pytest.raises(TransportError, match="no tcp listening point"):
        stack.send_request(request_to(5060), Peer("tcp", "127.0.0.1", 5060))
    with pytest.raises(TransportError, match="no tls listening point"):
        stack.via_for("tls", "z9hG4bK1")


@pytest_twisted.ensureDeferred
async def test_unresolvable_udp_destination_is_a_transport_error(network):
    stack = network.stack()
    await stack.listen(f"udp:0:{LOCAL}")
    destination = Peer("udp", "nowhere.invalid", 5060)
    stack.send_request(request_to(5060), destination)
    peer, reason = await stack.receiver.next_error()
    assert peer == destination
    assert isinstance(reason, TransportError) and "nowhere.invalid" in str(reason)


@pytest_twisted.ensureDeferred
async def test_tcp_requests_open_one_connection_and_reuse_it(network):
    alice, bob = network.stack(), network.stack()
    alice_point = await alice.listen(f"tcp:0:{LOCAL}")
    bob_point = await bob.listen(f"tcp:0:{LOCAL}")
    to_bob = Peer("tcp", "127.0.0.1", bob_point.port)
    alice.send_request(request_to(bob_point.port, "TCP"), to_bob)  # queued while connecting
    alice.send_request(request_to(bob_point.port, "TCP"), to_bob)
    (first, at_bob), (_, again) = [await bob.receiver.next() for _ in range(2)]
    assert first.via[0].sent_by == ("127.0.0.1", alice_point.port)
    assert first.via[0].transport == "TCP"
    assert at_bob.connection is again.connection

    # Bob's 200s come back on the connection Alice opened.
    responses = [await alice.receiver.next() for _ in range(2)]
    assert [r.status for r, _ in responses] == [200, 200]
    outbound = responses[0][1].connection
    assert responses[0][1] == to_bob and outbound is responses[1][1].connection

    # Bob's request to Alice's address on that connection takes it too.
    bob.send_request(request_to(at_bob.port, "TCP"), Peer("tcp", "127.0.0.1", at_bob.port))
    request, peer = await alice.receiver.next()
    assert isinstance(request, Request) and peer.connection is outbound
    response, _ = await bob.receiver.next()
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_requests_on_a_named_connection(network):
    stack, point, client = await tcp_service(network)
    await answered(client, options(point.port, "TCP", client.port))
    _, peer = await stack.receiver.next()
    connection = stack.find_connection(peer.connection.id)
    stack.send_request(request_to(client.port, "TCP"),
                       Peer("tcp", "192.0.2.1", 5060, connection=connection))
    request = await client.next()
    assert request.method == "OPTIONS"
    closing = connection.close()
    late = Peer("tcp", "127.0.0.1", client.port, connection=connection)
    stack.send_request(request_to(client.port, "TCP"), late)  # fails once it is gone
    await within(closing)
    assert await stack.receiver.next_error() == (late, ANY)
    with pytest.raises(TransportError, match="is closed"):
        stack.send_request(request_to(client.port, "TCP"), peer)


@pytest_twisted.ensureDeferred
async def test_connection_refused_is_a_transport_error(network):
    from twisted.internet import reactor
    stack = network.stack()
    await stack.listen(f"tcp:0:{LOCAL}")
    closed = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
    destination = Peer("tcp", "127.0.0.1", closed.getHost().port)
    await closed.stopListening()
    stack.send_request(request_to(destination.port, "TCP"), destination)
    stack.send_request(request_to(destination.port, "TCP"), destination)
    for _ in range(2):
        peer, reason = await stack.receiver.next_error()
        assert peer == destination and "refused" in str(reason).lower()
    assert stack.find_connection("no such id") is None


class Accepting(Factory):
    """A plain TCP server whose connections are L{StreamPeer}s, queued."""

    def __init__(self, network):
        self.network = network
        self.accepted = defer.DeferredQueue()

    def buildProtocol(self, address):
        peer = StreamPeer(self.network.reactor)
        self.network.streams.append(peer)
        self.accepted.put(peer)
        return peer


@pytest_twisted.ensureDeferred
async def test_tcp_response_opens_a_connection_when_the_request_one_is_gone(network):
    """RFC 3261 §18.2.2: to the received address, at the sent-by port."""
    from twisted.internet import reactor
    server = Accepting(network)
    listener = network.track(reactor.listenTCP(0, server, interface="127.0.0.1"))
    stack = network.stack()
    point = await stack.listen(f"tcp:0:{LOCAL}")
    stack.receiver.answer = False
    client = await network.stream_peer(point.port)
    client.send(options(point.port, "TCP", listener.getHost().port))
    request, peer = await stack.receiver.next()
    client.transport.loseConnection()
    await within(peer.connection.close())
    stack.send_response(make_response(request, 200), peer)
    callback = await within(server.accepted.get())
    response = await callback.next()
    assert response.status == 200 and response.call_id == request.call_id


# -- TLS -----------------------------------------------------------------------


def tls(certificate):
    key_file, cert_file, _ = certificate
    return f"tls:0:privateKey={key_file}:certKey={cert_file}:{LOCAL}"


@pytest_twisted.ensureDeferred
async def test_tls_requests_are_answered(network, certificate):
    stack = network.stack()
    point = await stack.listen(tls(certificate))
    client = await network.stream_peer(point.port, trust=certificate[2])
    response = await answered(client, options(point.port, "TLS", client.port))
    assert response.status == 200
    _, peer = await stack.receiver.next()
    assert peer == Peer("tls", "127.0.0.1", client.port)


@pytest_twisted.ensureDeferred
async def test_tls_requests_between_stacks(network, certificate):
    from twisted.internet.ssl import Certificate
    alice = network.stack(trust_root=Certificate.loadPEM(certificate[2]))
    bob = network.stack()
    await alice.listen(tls(certificate))
    bob_point = await bob.listen(tls(certificate))
    alice.send_request(request_to(bob_point.port, "TLS"), Peer("tls", "127.0.0.1", bob_point.port))
    request, _ = await bob.receiver.next()
    assert request.via[0].transport == "TLS"
    response, peer = await alice.receiver.next()
    assert response.status == 200 and peer.transport == "tls"


@pytest_twisted.ensureDeferred
async def test_tls_server_we_do_not_trust_is_a_transport_error(network, certificate):
    alice, bob = network.stack(), network.stack()
    await alice.listen(tls(certificate))
    bob_point = await bob.listen(tls(certificate))
    destination = Peer("tls", "127.0.0.1", bob_point.port)
    alice.send_request(request_to(bob_point.port, "TLS"), destination)
    peer, reason = await alice.receiver.next_error()
    assert peer == destination and "certificate" in str(reason).lower()
    assert bob.receiver.pending == 0


# -- stopping ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stop_closes_everything(network):
    stack = network.stack()
    await stack.listen(f"udp:0:{LOCAL}")
    point = await stack.listen(f"tcp:0:{LOCAL}")
    client = await network.stream_peer(point.port)
    await answered(client, options(point.port, "TCP", client.port))
    await within(stack.stop())
    await within(client.closed)
    assert stack.listening == []
    with pytest.raises(ConnectionRefusedError):
        probe = socket.create_connection(("127.0.0.1", point.port), timeout=5)
        probe.close()


@pytest.mark.parametrize("transport", ["tls", "ws"])
@pytest_twisted.ensureDeferred
async def test_stop_closes_connections_that_never_opened(network, certificate, transport):
    """A client that connects and says nothing (no TLS or WebSocket handshake)
    does not hold up stopping."""
    stack = network.stack()
    point = await stack.listen(tls(certificate) if transport == "tls" else f"ws:0:{LOCAL}")
    silent = await network.stream_peer(point.port)
    await within(stack.stop(), 5)
    await within(silent.closed)


@pytest.mark.parametrize("transport", ["tls", "ws"])
@pytest_twisted.ensureDeferred
async def test_connections_that_do_not_open_in_time_are_closed(network, certificate, transport):
    stack = network.stack(connect_timeout=0.2)
    point = await stack.listen(tls(certificate) if transport == "tls" else f"ws:0:{LOCAL}")
    silent = await network.stream_peer(point.port)
    await within(silent.closed, 5)
    assert stack.listening  # closed by the timeout, not by stopping
