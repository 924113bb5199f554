"""
The SIP resource adaptor in a real container on the real reactor, with
the shipped C{sip} and C{options} units and the C{sipprobe} test unit,
driven by SIP peers over real UDP and TCP sockets on 127.0.0.1.
"""

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.protocol import Factory
from slee.container import Container
from slee.settings import shipped_units

from resource_adaptors.sip.adaptor import SipResourceAdaptor
from resource_adaptors.sip.core.dialog import dialog_id
from resource_adaptors.sip.events import REQUEST
from resource_adaptors.sip.transaction_layer import MAX_UDP_REQUEST

from sipclient import TIMEOUT, StreamPeer, UdpPeer, options, reply
from units import UNITS, memory_db

ENDPOINTS = ["udp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1"]


class Slee:
    """A started container whose SIP RA listens on free ports."""

    def __init__(self, container):
        self.container = container
        self.sip = container.registry.ra_entities["sip"].adaptor
        self.ports = {p.transport: p.port for p in self.sip.transports.listening}
        import sipprobe_unit
        self.journal = sipprobe_unit.JOURNAL
        self.journal.clear()


@pytest_twisted.async_yield_fixture
async def slee(tmp_path):
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "sip": {"endpoints": ENDPOINTS, "t1": 0.02}})
    await container.start()
    for unit in (shipped_units() / "sip", shipped_units() / "options", UNITS / "sipprobe"):
        described = await container.deploy(str(unit))
        for service in described["services"]:
            container.activate(service)
    yield Slee(container)
    await container.stop()


async def listening_peer(slee):
    """A UDP peer on a free port of 127.0.0.1 that talks to the container."""
    from twisted.internet import reactor
    peer = UdpPeer(reactor, slee.ports["udp"])
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    yield peer
    await port.stopListening()


#: The client the tests play, and a second peer for the requests services send.
udp = pytest_twisted.async_yield_fixture(name="udp")(listening_peer)
target = pytest_twisted.async_yield_fixture(name="target")(listening_peer)


async def ask(peer, **kwargs):
    """Send a request from C{peer}; @return: the final response."""
    peer.send(options(peer.server[1] if hasattr(peer, "server") else 0,
                      local_port=peer.port, **kwargs))
    while True:
        response = await peer.next()
        if response.status >= 200:
            return response


@pytest_twisted.ensureDeferred
async def test_options_over_udp_lists_what_the_services_offer(udp):
    response = await ask(udp)
    assert response.status == 200
    assert response.to.tag
    assert {"OPTIONS", "MESSAGE", "SUBSCRIBE"} <= set(response.allow)
    assert "REGISTER" not in response.allow
    assert [accept.mime for accept in response.accept] == ["text/plain"]
    assert response.allow_events == ["test"]
    assert "Supported" in response.headers
    # RFC 3581: the server filled in rport and answered to the source port.
    assert response.via[0].rport == udp.port


@pytest_twisted.ensureDeferred
async def test_options_over_tcp(slee):
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
    peer = StreamPeer(reactor)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", slee.ports["tcp"]), peer)
    try:
        peer.send(options(slee.ports["tcp"], transport="TCP", local_port=peer.port))
        response = await peer.next()
        assert response.status == 200
        assert "OPTIONS" in response.allow
    finally:
        peer.transport.loseConnection()
        await peer.closed


@pytest_twisted.ensureDeferred
async def test_a_service_answers_and_a_retransmission_is_absorbed(udp, slee):
    request = options(udp.server[1], local_port=udp.port, method="MESSAGE", body="ok",
                      headers="Content-Type: text/plain\r\n")
    udp.send(request)
    first = await udp.next()
    udp.send(request)
    again = await udp.next()
    assert first.status == again.status == 200
    assert first.to.tag == again.to.tag
    assert slee.journal == [("message", "ok")]


@pytest_twisted.ensureDeferred
async def test_a_handler_that_fails_is_answered_500(udp, slee):
    response = await ask(udp, method="MESSAGE", body="fail",
                         headers="Content-Type: text/plain\r\n")
    assert response.status == 500
    assert slee.container.sbb_entities() == []


@pytest_twisted.ensureDeferred
async def test_a_service_answers_later_from_a_timer(udp, slee):
    response = await ask(udp, method="MESSAGE", body="later",
                         headers="Content-Type: text/plain\r\n")
    assert response.status == 202
    assert slee.container.sbb_entities() == []


@pytest.mark.parametrize("method, headers, status, header, expected", [
    ("FROB", "", 501, "Allow", "OPTIONS"),
    ("REGISTER", "", 405, "Allow", "MESSAGE"),
    ("SUBSCRIBE", "Event: presence\r\nExpires: 60\r\n", 489, "Allow-Events", "test"),
    ("OPTIONS", "Require: 100rel, frobnication\r\n", 420, "Unsupported", "100rel, frobnication"),
])
@pytest_twisted.ensureDeferred
async def test_what_no_service_takes_gets_a_standard_answer(udp, method, headers, status,
                                                           header, expected):
    response = await ask(udp, method=method, headers=headers)
    assert response.status == status
    assert expected in ", ".join(response.headers.get_all(header))


@pytest_twisted.ensureDeferred
async def test_a_request_for_an_unknown_dialog_is_answered_481(udp):
    response = await ask(udp, method="NOTIFY", to_tag="nosuchdialog",
                         headers="Event: test\r\nSubscription-State: active\r\n")
    assert response.status == 481


@pytest_twisted.ensureDeferred
async def test_unsupported_request_uri_scheme_is_answered_416(udp):
    response = await ask(udp, uri="http://example.com/")
    assert response.status == 416


@pytest_twisted.ensureDeferred
async def test_subscribe_makes_a_dialog_with_notifies_and_ends_it(udp, slee):
    from twisted.internet import reactor
    call_id = "dialog-test"
    udp.send(options(udp.server[1], local_port=udp.port, method="SUBSCRIBE", call_id=call_id,
                     headers="Event: test\r\nExpires: 60\r\n"))
    ok = await udp.next()
    assert ok.status == 200
    tag = ok.to.tag
    assert tag and ok.contact, "a dialog-creating 200 has a To tag and a Contact"
    notify = await udp.next()
    assert notify.method == "NOTIFY"
    assert notify.call_id == call_id
    assert notify.from_.tag == tag
    assert notify.headers.get("Subscription-State") == "active;expires=60"
    assert notify.body == b"notify 0"
    udp.send(reply(notify))
    # The refresh that ends it, within the dialog.
    udp.send(_in_dialog(udp, call_id, notify))
    ok = await udp.next()
    assert ok.status == 200
    last = await udp.next()
    assert last.method == "NOTIFY"
    assert last.cseq.number == notify.cseq.number + 1
    assert last.headers.get("Subscription-State").startswith("terminated")
    udp.send(reply(last))
    await slee.journal.wait_for(("notify answered", 200), count=2).addTimeout(5, reactor)
    assert ("subscribe", 60) in slee.journal and ("subscribe", 0) in slee.journal
    # Each answer came on the dialog's activity, for the transaction sent.
    assert slee.journal.count(("answered on its dialog", True)) == 2
    # Sent, each NOTIFY waits for its answer; answered, it waits no more.
    assert [entry for entry in slee.journal if entry[0] == "awaits an answer"] == [
        ("awaits an answer", True), ("awaits an answer", False)] * 2
    assert not slee.sip.dialogs


def _in_dialog(udp, call_id, notify, contact=None):
    """A SUBSCRIBE refresh within the dialog the NOTIFY belongs to (with a
    new C{contact}, the remote target, if given)."""
    return (f"SUBSCRIBE sip:service@127.0.0.1:{udp.server[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{udp.port};branch=z9hG4bKrefresh{call_id};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: {notify.headers.get('To')}\r\n"
            f"To: {notify.headers.get('From')}\r\n"
            f"Call-ID: {call_id}\r\n"
            "CSeq: 2 SUBSCRIBE\r\n"
            + (f"Contact: <{contact}>\r\n" if contact else "") +
            "Event: test\r\nExpires: 0\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def send_via_service(udp, target, uri_params=""):
    """Ask MessageSbb to send a MESSAGE to C{target} and relay its answer."""
    udp.send(options(udp.server[1], local_port=udp.port, method="MESSAGE",
                     body=f"send sip:target@127.0.0.1:{target.port}{uri_params}",
                     headers="Content-Type: text/plain\r\n"))


@pytest_twisted.ensureDeferred
async def test_a_service_sends_a_request_and_relays_the_answer(udp, target):
    send_via_service(udp, target)
    request = await target.next()
    assert request.method == "MESSAGE"
    assert request.via[0].branch.startswith("z9hG4bK")
    target.send(reply(request, 202, "Accepted"))
    response = await udp.next()
    assert response.status == 202


@pytest_twisted.ensureDeferred
async def test_a_request_that_is_never_answered_times_out(udp, target):
    send_via_service(udp, target)
    response = await udp.next()   # Timer F: 64 * T1 = 1.28 s here
    assert response.status == 408
    assert len(target.inbox.messages) >= 3, "the request was retransmitted (Timer E)"


@pytest_twisted.ensureDeferred
async def test_garbage_does_not_stop_the_server(udp):
    for junk in (b"\x00" * 100, b"hello", b"OPTIONS sip:x SIP/2.0\r\n\r\n", b"\r\n\r\n"):
        udp.send(junk)
    response = await ask(udp)
    assert response.status == 200


@pytest_twisted.ensureDeferred
async def test_management_shows_where_sip_listens(slee):
    [entity] = [e for e in slee.container.ra_entities() if e["name"] == "sip"]
    listening = entity["status"]["listening"]
    assert f"udp:127.0.0.1:{slee.ports['udp']}" in listening
    assert f"tcp:127.0.0.1:{slee.ports['tcp']}" in listening


def test_bad_endpoint_property_is_refused_naming_it(tmp_path):
    from slee.errors import DeploymentError
    from units import ContainerHarness, started
    harness = ContainerHarness(tmp_path)
    harness.container.ra_properties = {"sip": {"endpoints": ["carrier-pigeon:1"]}}
    with pytest.raises(DeploymentError, match=r"ra-entities\[0\]\.properties: property "
                                              r"'endpoints'"):
        started(harness.container.deploy(str(shipped_units() / "sip")))
    harness.stop()



@pytest_twisted.ensureDeferred
async def test_a_malformed_header_is_answered_400_naming_it(udp, slee):
    response = await ask(udp, method="MESSAGE", body="ok",
                         headers="Content-Type: text/plain\r\nExpires: soon\r\n")
    assert response.status == 400
    assert "Expires" in response.reason
    assert slee.journal == [], "no service saw it"


class Endpoint:
    """What capability_headers asks of the SLEE: the initial event types."""

    def __init__(self, *methods):
        self.serve(*methods)

    def serve(self, *methods):
        """Services change: a new set, as the SLEE makes one then."""
        self.initial = frozenset(REQUEST[method].id for method in methods)

    def initial_event_types(self):
        return self.initial


def test_capability_headers_are_made_again_only_when_capabilities_change():
    sip = SipResourceAdaptor()
    sip.configure({"supported": ["timer"]})
    sip.endpoint = Endpoint("OPTIONS")
    first = sip.capability_headers()
    assert tuple(first) == (("Allow", "OPTIONS"), ("Accept", ""), ("Supported", "timer"))
    assert sip.capability_headers() is first

    sip.register_capabilities(event_packages=["presence"], accept=["application/pidf+xml"])
    assert dict(sip.capability_headers()) == {
        "Allow": "OPTIONS", "Accept": "application/pidf+xml", "Supported": "timer",
        "Allow-Events": "presence"}
    sip.endpoint.serve("OPTIONS", "INVITE")
    assert dict(sip.capability_headers())["Allow"] == "ACK, BYE, CANCEL, INVITE, OPTIONS"
    sip.configure({})
    assert dict(sip.capability_headers())["Supported"] == ""


@pytest_twisted.ensureDeferred
async def test_beyond_max_transactions_new_requests_get_503(tmp_path):
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"], "max-transactions": 1}})
    await container.start()
    for unit in (shipped_units() / "sip", shipped_units() / "options"):
        described = await container.deploy(str(unit))
        for service in described["services"]:
            container.activate(service)
    sip = container.registry.ra_entities["sip"].adaptor
    peer = UdpPeer(reactor, sip.transports.listening[0].port)
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    try:
        answered = await ask(peer)          # its transaction lingers 32 s
        refused = await ask(peer)
        assert (answered.status, refused.status) == (200, 503)
        assert refused.headers.get("Retry-After") == "5"
    finally:
        await port.stopListening()
        await container.stop()


@pytest_twisted.ensureDeferred
async def test_answering_options_writes_nothing_to_the_database(udp, slee):
    assert (await ask(udp)).status == 200      # the first may make the service's root index
    db = slee.container.db
    before = db.lastTransaction()
    for _ in range(3):
        assert (await ask(udp)).status == 200
    assert db.lastTransaction() == before, "a stateless request reached the storage"


# -- requests too large for UDP (RFC 3261 §18.1.1) ------------------------------

#: A URI parameter that makes a request naming the URI too large for UDP.
PADDING = ";pad=" + "x" * MAX_UDP_REQUEST


class TwoTransportPeer(Factory):
    """
    A SIP peer on 127.0.0.1 listening on UDP and TCP at the same port number,
    as a host whose SIP URI names no transport does: C{udp} is its UDP side,
    and the TCP connections the stack opens to it are queued (C{accepted}).
    """

    def __init__(self, reactor, server_port):
        self.reactor = reactor
        self.server_port = server_port
        self.accepted = defer.DeferredQueue()
        self.streams = []
        self.udp = self.udp_port = self.tcp_port = None

    def buildProtocol(self, address):
        stream = StreamPeer(self.reactor)
        self.streams.append(stream)
        self.accepted.put(stream)
        return stream

    async def listen(self, attempts=10):
        """Bind UDP port 0, then TCP at that number: again if it is taken."""
        from twisted.internet.error import CannotListenError
        for _ in range(attempts):
            self.udp = UdpPeer(self.reactor, self.server_port)
            self.udp_port = self.reactor.listenUDP(0, self.udp, interface="127.0.0.1")
            try:
                self.tcp_port = self.reactor.listenTCP(self.udp.port, self, interface="127.0.0.1")
                return
            except CannotListenError:
                await self.udp_port.stopListening()
        pytest.fail(f"no port number free for both UDP and TCP in {attempts} attempts")

    def next_connection(self):
        """A Deferred firing with the next connection the stack opened."""
        return self.accepted.get().addTimeout(TIMEOUT, self.reactor)

    async def refuse_tcp(self):
        """Stop listening on TCP: connections to the port are refused."""
        await self.tcp_port.stopListening()
        self.tcp_port = None

    async def close(self):
        for stream in self.streams:
            stream.transport.loseConnection()
            await stream.closed
        if self.tcp_port is not None:
            await self.tcp_port.stopListening()
        await self.udp_port.stopListening()


@pytest_twisted.async_yield_fixture
async def both(slee):
    from twisted.internet import reactor
    peer = TwoTransportPeer(reactor, slee.ports["udp"])
    await peer.listen()
    yield peer
    await peer.close()


@pytest_twisted.ensureDeferred
async def test_a_request_too_large_for_udp_goes_over_tcp_and_a_small_one_over_udp(
        udp, both, slee):
    send_via_service(udp, both.udp, PADDING)
    stream = await both.next_connection()
    large = await stream.next()
    assert large.method == "MESSAGE" and len(bytes(large)) > MAX_UDP_REQUEST
    assert large.via[0].transport == "TCP"
    assert large.via[0].sent_by == ("127.0.0.1", slee.ports["tcp"])
    stream.send(reply(large, 202, "Accepted"))
    assert (await udp.next()).status == 202

    send_via_service(udp, both.udp)
    small = await both.udp.next()
    assert small.method == "MESSAGE" and small.via[0].transport == "UDP"
    assert small.via[0].sent_by == ("127.0.0.1", slee.ports["udp"])
    both.udp.send(reply(small, 202, "Accepted"))
    assert (await udp.next()).status == 202
    assert stream.inbox.messages == [], "nothing more on TCP: no retransmission, no small one"
    assert both.accepted.pending == [], "one connection"


@pytest_twisted.ensureDeferred
async def test_a_large_request_goes_over_udp_when_tcp_is_refused(udp, both):
    await both.refuse_tcp()
    send_via_service(udp, both.udp, PADDING)
    large = await both.udp.next()
    assert large.method == "MESSAGE" and len(bytes(large)) > MAX_UDP_REQUEST
    assert large.via[0].transport == "UDP"
    both.udp.send(reply(large, 202, "Accepted"))
    assert (await udp.next()).status == 202


@pytest_twisted.ensureDeferred
async def test_a_large_notify_goes_over_tcp_and_leaves_its_dialog_as_it_was(both, slee):
    from twisted.internet import reactor
    call_id, subscriber = "large-notify", both.udp
    target = f"sip:tester@127.0.0.1:{subscriber.port}{PADDING}"
    subscriber.send(options(subscriber.server[1], local_port=subscriber.port,
                            method="SUBSCRIBE", call_id=call_id, from_tag="subscriber",
                            contact=target, headers="Event: test\r\nExpires: 60\r\n"))
    ok = await subscriber.next()
    assert ok.status == 200
    stream = await both.next_connection()
    notify = await stream.next()
    assert notify.method == "NOTIFY" and len(bytes(notify)) > MAX_UDP_REQUEST
    assert notify.via[0].transport == "TCP"
    stream.send(reply(notify))
    await slee.journal.wait_for(("notify answered", 200)).addTimeout(TIMEOUT, reactor)
    dialog = slee.sip.dialogs.get(dialog_id(call_id, ok.to.tag, "subscriber"))
    assert str(dialog.remote_target) == target
    assert slee.sip.dialog_peers[dialog.id].transport == "udp"

    # The refresh that ends it names a short remote target: its NOTIFY goes over UDP.
    short = f"sip:tester@127.0.0.1:{subscriber.port}"
    subscriber.send(_in_dialog(subscriber, call_id, notify, contact=short))
    assert (await subscriber.next()).status == 200
    last = await subscriber.next()
    assert last.method == "NOTIFY" and str(last.uri) == short
    assert last.via[0].transport == "UDP"
    subscriber.send(reply(last))
    await slee.journal.wait_for(("notify answered", 200), count=2).addTimeout(TIMEOUT, reactor)
    assert stream.inbox.messages == []
