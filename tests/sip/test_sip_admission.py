"""
Admission at the door (L{resource_adaptors.sip.admission}): the door's
policy on its own, then the SIP RA in a real container over real UDP, with
the wait a datagram had in the socket's buffer made long by the port's
wall clock and the container's queue made slow by its measured cost.
"""

import time

import pytest
import pytest_twisted
from twisted.internet import task
from twisted.logger import LogLevel, globalLogPublisher

from resource_adaptors.sip.admission import GOING_ON_FACTOR, MAX_RETRY_AFTER, Door, retry_after
from resource_adaptors.sip.core.message import Headers, Request
from slee.settings import shipped_units

from sipclient import UdpPeer, options
from units import sip_port_of, started_container


def request(to_tag=None, method="SUBSCRIBE", headers=()):
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    return Request(method, "sip:bob@example.com", Headers([("To", to), *headers]))


class Queue:
    """A container queue whose delay the test sets."""

    delay = 0.0

    def __call__(self):
        return self.delay


@pytest.mark.parametrize("delay, share, expected", [
    (0.3, 0.0, 1), (0.3, 0.99, 2), (2.5, 0.0, 3), (2.5, 0.5, 5), (500, 0.0, MAX_RETRY_AFTER)])
def test_retry_after_is_the_delay_rounded_up_and_a_random_share_more(delay, share, expected):
    assert retry_after(delay, share) == expected


def test_new_requests_are_shed_past_the_delay_those_going_on_with_work_later():
    queue = Queue()
    door = Door(queue, 0.25, task.Clock(), share=lambda: 0.0)
    assert door.refusal(request(), waited=0.2) is None
    queue.delay = 0.1
    assert door.refusal(request(), waited=0.2) == (
        503, "Service Unavailable (overloaded)", [("Retry-After", "1")])
    assert door.refusal(request(to_tag="x"), waited=0.2) is None
    assert door.refusal(request(to_tag="x"), waited=0.25 * GOING_ON_FACTOR) is not None
    assert door.refusal(request(method="PUBLISH"), waited=0.2) is not None
    refresh = request(method="PUBLISH", headers=[("SIP-If-Match", "e1")])
    assert door.refusal(refresh, waited=0.2) is None
    # Work going on is answered within SIP's T1 (0.5 s) or refused: later,
    # its client would have sent it again.
    assert door.refusal(refresh, waited=0.35) is None
    assert door.refusal(refresh, waited=0.45) is not None
    assert door.shed == 4


def test_shedding_is_logged_once_a_minute_with_the_count():
    clock = task.Clock()
    queue = Queue()
    queue.delay = 1.0
    door = Door(queue, 0.25, clock)
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        for _ in range(100):
            door.refusal(request(), 0.0)
            door.drop(1.0)
        clock.advance(61)
        door.refusal(request(), 0.0)
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [event for event in events
             if event.get("log_namespace") == "resource_adaptors.sip.admission"]
    assert [(event["log_level"], event["count"], event["dropped"]) for event in lines] == [
        (LogLevel.warn, 1, 0), (LogLevel.warn, 100, 100)]


@pytest_twisted.async_yield_fixture
async def slee(tmp_path):
    from twisted.internet import reactor
    container = await started_container(
        tmp_path, [shipped_units() / "sip", shipped_units() / "options"],
        {"sip": {"endpoints": ["udp:0:interface=127.0.0.1"], "max-queue-delay": 0.25}})
    sip = container.registry.ra_entities["sip"].adaptor
    peer = UdpPeer(reactor, sip_port_of(container))
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    yield container, sip, peer
    await port.stopListening()
    await container.stop()


def udp_port(sip):
    """The RA's UDP port (a L{resource_adaptors.sip.datagram.DatagramPort})."""
    (server,) = sip.transports._datagram_sockets.values()
    return server.socket_port


async def final(peer):
    while True:
        response = await peer.next()
        if response.status >= 200:
            return response


def send(peer, **kwargs):
    data = options(peer.server[1], local_port=peer.port, **kwargs)
    peer.send(data)
    return data


@pytest_twisted.ensureDeferred
async def test_a_request_that_waited_too_long_in_the_socket_is_shed_statelessly(slee):
    container, sip, peer = slee
    send(peer)
    assert (await final(peer)).status == 200
    held = len(sip.layer)
    udp_port(sip).wall_clock = lambda: time.time() + 1.0     # every datagram waited 1 s
    send(peer)
    refused = await final(peer)
    assert refused.status == 503
    assert 2 <= int(refused.headers.get("Retry-After")) <= MAX_RETRY_AFTER   # over a second late
    assert len(sip.layer) == held, "no transaction was made for it"
    assert sip.status()["shed"] == 1


@pytest_twisted.ensureDeferred
async def test_a_request_in_a_dialog_passes_the_door_a_new_one_does_not(slee):
    container, sip, peer = slee
    udp_port(sip).wall_clock = lambda: time.time() + 0.4     # past 0.25 s, within twice it
    send(peer, to_tag="gone")       # taken in: the RA answers that there is no such dialog
    assert (await final(peer)).status == 481
    send(peer)
    assert (await final(peer)).status == 503


@pytest_twisted.ensureDeferred
async def test_the_retransmission_of_a_request_taken_in_is_absorbed_not_shed(slee):
    container, sip, peer = slee
    first = send(peer)
    assert (await final(peer)).status == 200
    udp_port(sip).wall_clock = lambda: time.time() + 1.0
    peer.send(first)
    again = await final(peer)
    assert again.status == 200, "the answer it had, sent again by its transaction"
    assert sip.status()["shed"] == 0


@pytest_twisted.ensureDeferred
async def test_new_requests_are_shed_while_the_queue_ahead_is_too_slow(slee):
    container, sip, peer = slee
    container.router.operation_cost = 1.0     # as if each event took a second
    for _ in range(3):                       # read in one go: the first is queued,
        send(peer)                           # the others would wait behind it
    statuses = sorted([(await final(peer)).status for _ in range(3)])
    assert statuses == [200, 503, 503]
