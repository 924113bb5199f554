"""
Malformed requests over real UDP on 127.0.0.1 (issue 16): each one whose
answer can be routed (a readable top Via) is answered with a
reason that names what is wrong, 414 for a huge Request-URI; one that
cannot be routed meets silence; none logs a traceback.  A SUBSCRIBE whose
Contact is not a SIP URI is refused before any dialog or SBB entity is made.
"""

import uuid

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.logger import LogLevel, globalLogPublisher

from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from resource_adaptors.sip.core.uri import parse_uri
from sbbs.sipevent.addresses import address_of_record
from sipclient import StreamPeer, UdpPeer, options
from slee.settings import shipped_units
from units import LOCAL_RAS, started_container, sip_port_of

#: Stands for a request without answer.
SILENT = None


@pytest.fixture
def failures():
    """The error and critical events logged, and those with a traceback."""
    events = []

    def observe(event):
        if event.get("log_failure") is not None \
                or event.get("log_level") in (LogLevel.error, LogLevel.critical):
            events.append(event)
    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


@pytest_twisted.async_yield_fixture
async def sip(tmp_path):
    """A container with the SIP RA and the options unit, and a UDP peer."""
    from twisted.internet import reactor
    container = await started_container(tmp_path, [shipped_units() / "sip",
                                                   shipped_units() / "options"])
    peer = UdpPeer(reactor, sip_port_of(container))
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    yield container, peer
    await port.stopListening()
    await container.stop()


def request(peer, replace=(), **kwargs):
    """The bytes of an OPTIONS from C{peer}, with the C{(old, new)} of C{replace}."""
    text = options(peer.server[1], local_port=peer.port, **kwargs).decode()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text.encode()


async def answer(peer, data, silence=0.3):
    """@return: the final response to C{data}, or SILENT after C{silence} seconds."""
    peer.send(data)
    while True:
        try:
            response = await peer.next(timeout=silence)
        except defer.TimeoutError:
            return SILENT
        if response.status >= 200:
            return response


TO = "To: <sip:service@127.0.0.1>"
BAD_TO = {
    "unclosed": TO[:-1],
    "two tags": "To: sip:service@127.0.0.1;tag=a;tag=b",
    "two tags, name-addr": TO + ";tag=a;TAG=b",
}


@pytest.mark.parametrize("to", sorted(BAD_TO))
@pytest_twisted.ensureDeferred
async def test_a_malformed_to_gets_400_naming_it_and_logs_nothing(sip, failures, to):
    _, peer = sip
    response = await answer(peer, request(peer, [(TO, BAD_TO[to])]))
    assert (response.status, response.reason) == (400, "Bad To header")
    assert response.headers.get("To") == BAD_TO[to][len("To: "):]   # copied as it was
    assert failures == []


CALL_ID = "Call-ID: "
#: (what to change in a good request, the status, the reason) or SILENT.
ROUTABLE = {
    "two Call-IDs": ([(CALL_ID, "Call-ID: first\r\nCall-ID: ")], 400, "Multiple Call-ID headers"),
    "two Froms": ([("From: ", "From: <sip:other@x>;tag=z\r\nFrom: ")],
                  400, "Multiple From headers"),
    "two Tos": ([("To: ", "To: <sip:other@x>\r\nTo: ")], 400, "Multiple To headers"),
    "two tags in From": ([(">;tag=", ">;tag=x;tag=")], 400, "Bad From header"),
    "two Max-Forwards": ([("Max-Forwards: 70", "Max-Forwards: 70\r\nMax-Forwards: 69")],
                         400, "Multiple Max-Forwards headers"),
    "two Expires": ([(CALL_ID, "Expires: 1\r\nExpires: 2\r\n" + CALL_ID)],
                    400, "Multiple Expires headers"),
    "a line too long": ([(CALL_ID, "Subject: " + "x" * 9000 + "\r\n" + CALL_ID)],
                        513, "Subject header line too long"),
    "a bare CR": ([(CALL_ID, "Subject: a\rb\r\n" + CALL_ID)],
                  400, "Bare CR or LF in the Subject header"),
    "a bare LF": ([(CALL_ID, "Subject: a\nb\r\n" + CALL_ID)],
                  400, "Bare CR or LF in the Subject header"),
    "a bare CR ending a line": ([("Max-Forwards: 70\r\n", "Max-Forwards: 70\rSubject: a\r\n")],
                                400, "Bare CR or LF in the Max-Forwards header"),
    # What cannot be routed, or would copy a broken header into the answer.
    "two CSeqs": ([("CSeq: 1 OPTIONS", "CSeq: 1 OPTIONS\r\nCSeq: 2 OPTIONS")],
                  400, "Multiple CSeq headers"),
    "no Via": ([("Via: ", "X-Via: ")], SILENT, None),
    "a Via line too long": ([("Via: ", "Via: SIP/2.0/UDP " + "h" * 9000 + "\r\nVia: ")],
                            SILENT, None),
    "a bare CR in the To": ([(TO, TO + "\rSubject: a")], SILENT, None),
}


@pytest.mark.parametrize("case", sorted(ROUTABLE))
@pytest_twisted.ensureDeferred
async def test_a_malformed_request_is_answered_naming_the_header_when_it_can_be(
        sip, failures, case):
    _, peer = sip
    replace, status, reason = ROUTABLE[case]
    response = await answer(peer, request(peer, replace))
    if status is SILENT:
        assert response is SILENT
    else:
        assert (response.status, response.reason) == (status, reason)
        # the first of each copied header, so that the answer is well-formed
        for name in ("From", "To", "Call-ID", "CSeq"):
            assert len(response.headers.get_all(name)) == 1, name
    assert failures == []
    assert (await answer(peer, request(peer))).status == 200     # it still serves


@pytest.mark.parametrize("length, status", [(900, 200), (961, 414), (5000, 414), (20000, 414)])
@pytest_twisted.ensureDeferred
async def test_a_request_uri_of_several_kb_gets_414(sip, failures, length, status):
    _, peer = sip
    prefix = "sip:"
    suffix = f"@127.0.0.1:{peer.server[1]}"
    uri = prefix + "a" * (length - len(prefix) - len(suffix)) + suffix
    response = await answer(peer, request(peer, uri=uri))
    assert response.status == status
    if status == 414:
        assert response.reason == "Request-URI Too Long"
    assert failures == []


@pytest_twisted.ensureDeferred
async def test_a_request_with_too_many_header_fields_gets_513(sip, failures):
    _, peer = sip
    extra = "".join(f"X-Field-{number}: y\r\n" for number in range(200))
    response = await answer(peer, request(peer, headers=extra))
    assert (response.status, response.reason) == (513, "Too many header fields")
    assert failures == []


@pytest_twisted.ensureDeferred
async def test_the_request_uri_limit_is_a_property(tmp_path):
    from twisted.internet import reactor
    container = await started_container(
        tmp_path, [shipped_units() / "sip", shipped_units() / "options"],
        {"sip": {"endpoints": ["udp:0:interface=127.0.0.1"], "max-uri-length": 100}})
    peer = UdpPeer(reactor, sip_port_of(container))
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    try:
        uri = f"sip:{'a' * 100}@127.0.0.1:{peer.server[1]}"
        assert (await answer(peer, request(peer, uri=uri))).status == 414
    finally:
        await port.stopListening()
        await container.stop()


@pytest.mark.parametrize("length", [0, 961])
def test_a_request_uri_limit_over_what_activity_names_allow_is_refused(tmp_path, length):
    from slee.errors import DeploymentError
    from units import ContainerHarness, started
    harness = ContainerHarness(tmp_path)
    harness.container.ra_properties = {"sip": {"max-uri-length": length}}
    with pytest.raises(DeploymentError, match="max-uri-length"):
        started(harness.container.deploy(str(shipped_units() / "sip")))
    harness.stop()


async def settled(container):
    """
    @return: the container's activities and SBB entities once what its
        services do when they start is done: the same twice in a row.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater
    last = None
    for _ in range(100):
        now = (container.activities(), container.sbb_entities())
        if now == last and now[1]:
            return now
        last = now
        await deferLater(reactor, 0.05, lambda: None)
    raise AssertionError("the container is still busy")


@pytest_twisted.ensureDeferred
async def test_a_subscribe_with_a_contact_not_sip_is_refused_and_leaves_nothing(tmp_path,
                                                                                failures):
    from twisted.internet import reactor
    units = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms",
                                                 "presence-server")]
    container = await started_container(tmp_path, units)
    peer = UdpPeer(reactor, sip_port_of(container))
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    try:
        before = await settled(container)
        for contact in ("mailto:bob@example.com", "tel:+15551234", "http://example.com/bob"):
            subscribe = options(peer.server[1], local_port=peer.port, method="SUBSCRIBE",
                                uri="sip:alice@example.com", from_uri="sip:bob@example.com",
                                headers="Event: presence\r\n", call_id=uuid.uuid4().hex)
            subscribe = subscribe.replace(b"Contact: <sip:tester@127.0.0.1:" + str(peer.port)
                                          .encode() + b">", f"Contact: <{contact}>".encode())
            response = await answer(peer, subscribe, silence=5)
            assert (response.status, response.reason) == (400, "Contact must be a SIP or SIPS URI")
        after = (container.activities(), container.sbb_entities())
        assert after == before
        assert failures == []
    finally:
        await port.stopListening()
        await container.stop()


def test_an_escaped_control_character_stays_escaped_in_an_address_of_record():
    # Found by the fuzz test: a SUBSCRIBE from <sip:a%00b@example.com> failed
    # (a traceback) on the watcher information document naming its watcher.
    assert address_of_record(parse_uri("sip:a%00b@Example.com")) == "sip:a%00b@example.com"
    assert address_of_record(parse_uri("sip:%61li%63e@example.com")) == "sip:alice@example.com"


@pytest_twisted.ensureDeferred
async def test_a_subscriber_gone_before_its_notify_leaves_nothing(tmp_path, failures,
                                                                  monkeypatch):
    """
    Found by the fuzz test: a SUBSCRIBE over TCP whose connection closes
    before the first NOTIFY left its subscription and dialog for good.
    """
    from twisted.internet import reactor
    from twisted.internet.task import deferLater
    units = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms",
                                                 "presence-server")]
    ras = {**LOCAL_RAS, "sip": {"endpoints": ["udp:0:interface=127.0.0.1",
                                              "tcp:0:interface=127.0.0.1"],
                                "t1": 0.02, "t2": 0.08, "t4": 0.1}}
    container = await started_container(tmp_path, units, ras)
    try:
        before = tuple(map(len, await settled(container)))
        sip = container.registry.ra_entities["sip"].adaptor
        dialog_made = defer.Deferred()

        def create_dialog(event, durable=False):
            reactor.callLater(0, dialog_made.callback, None)
            return create(event, durable)
        create = sip.create_dialog
        monkeypatch.setattr(sip, "create_dialog", create_dialog)
        tcp = sip.transports.listening[1].port
        peer = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", tcp),
                                     StreamPeer(reactor))
        peer.send(options(tcp, transport="TCP", method="SUBSCRIBE", uri="sip:alice@example.com",
                          from_uri="sip:bob@example.com",
                          headers="Event: presence\r\nExpires: 60\r\n"))
        peer.transport.loseConnection()
        await dialog_made.addTimeout(5, reactor)
        for _ in range(60):         # its NOTIFY fails, at once or by Timer F (1.28 s)
            after = (container.activities(), container.sbb_entities())
            if not len(container.router) and tuple(map(len, after)) == before:
                break
            await deferLater(reactor, 0.05, lambda: None)
        assert tuple(map(len, after)) == before, after
        assert failures == []
    finally:
        await container.stop()
