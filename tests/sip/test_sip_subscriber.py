"""
The subscriber child of the SIP event engine (sbbs/sipevent/subscriber.py)
against a bare SIP peer playing the notifier, over UDP on 127.0.0.1; the
container's timers run on a clock the tests advance.
"""

import uuid

import pytest_twisted

from sipclient import UdpPeer, options
from slee.settings import shipped_units
from units import UNITS, SteppedClock, sip_port_of, started_container


def answer(request, status, to_tag, contact, **headers):
    """@return: the bytes of the notifier's answer to a SUBSCRIBE, in its dialog."""
    lines = [f"SIP/2.0 {status} Whatever"]
    lines += [f"Via: {value}" for value in request.headers.get_all("Via")]
    lines += [f"From: {request.headers.get('From')}",
              f"To: {request.headers.get('To')}" + ("" if request.to.tag else f";tag={to_tag}"),
              f"Call-ID: {request.call_id}", f"CSeq: {request.headers.get('CSeq')}",
              f"Contact: <{contact}>"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


class Notifier:
    """The peer's side of one subscription: its tag, and the NOTIFYs it numbers."""

    def __init__(self, peer):
        self.peer = peer
        self.tag = "n" + uuid.uuid4().hex[:8]
        self.cseq = 0

    def notify(self, subscribe, state, body=""):
        self.cseq += 1
        contact = subscribe.contact[0].uri
        text = (f"NOTIFY {contact} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.peer.port};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <{subscribe.to.uri}>;tag={self.tag}\r\n"
                f"To: {subscribe.headers.get('From')}\r\n"
                f"Call-ID: {subscribe.call_id}\r\n"
                f"CSeq: {self.cseq} NOTIFY\r\n"
                f"Contact: <sip:notifier@127.0.0.1:{self.peer.port}>\r\n"
                f"Event: test\r\n"
                f"Subscription-State: {state}\r\n"
                + ("Content-Type: text/plain\r\n" if body else "")
                + f"Content-Length: {len(body)}\r\n\r\n{body}")
        self.peer.send(text.encode())

    def answer(self, subscribe, status=200, **headers):
        self.peer.send(answer(subscribe, status, self.tag,
                              f"sip:notifier@127.0.0.1:{self.peer.port}", **headers))

    async def accept(self, subscribe, state):
        """Answer 200, then NOTIFY C{state}; return once the NOTIFY is answered 200."""
        self.answer(subscribe, 200, Expires=600)
        self.notify(subscribe, state)
        assert (await self.peer.next()).status == 200


@pytest_twisted.async_yield_fixture
async def watching(tmp_path):
    """A container with the SIP RA and the parent service, a peer, and the clock."""
    from twisted.internet import reactor
    clock = SteppedClock()
    container = await started_container(
        tmp_path, [UNITS / "probe", shipped_units() / "sip", UNITS / "subscriberparent"],
        ra_properties={"sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}}, clock=clock)
    from probe_unit.ra import ProbeAdaptor
    from subscriberparent_unit import JOURNAL
    JOURNAL.clear()
    sip_port = sip_port_of(container)
    peer = UdpPeer(reactor, sip_port)
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    probe = ProbeAdaptor.instance
    probe.start("a")

    def start(**options):
        probe.fire("a", {"op": "start", "notifier": f"sip:notifier@127.0.0.1:{peer.port}",
                         **options})

    yield peer, start, lambda: probe.fire("a", {"op": "stop"}), JOURNAL, clock
    await port.stopListening()
    await container.stop()


async def subscribed(peer, start):
    """@return: the SUBSCRIBE the child sends when started, and a notifier for it."""
    start()
    subscribe = await peer.next()
    assert subscribe.method == "SUBSCRIBE" and subscribe.to.tag is None
    assert subscribe.headers.get("Event") == "test" and subscribe.expires == 600
    assert subscribe.contact                   # our Contact, added by the SIP RA
    return subscribe, Notifier(peer)


@pytest_twisted.ensureDeferred
async def test_a_notify_before_the_2xx_is_heard_and_the_subscription_refreshed(watching):
    peer, start, _, journal, clock = watching
    subscribe, notifier = await subscribed(peer, start)
    notifier.notify(subscribe, "active;expires=600")       # before the 200 (RFC 6665 §4.1.2.4)
    assert (await peer.next()).status == 200
    await journal.wait_for(("notified", "active", None, b""))
    notifier.answer(subscribe, 200, Expires=600)
    notifier.notify(subscribe, "active;expires=600", "changed")
    assert (await peer.next()).status == 200
    await journal.wait_for(("notified", "active", "text/plain", b"changed"))

    clock.advance(540)                                     # a minute before it expires
    refresh = await peer.next()
    assert (refresh.method, refresh.to.tag, refresh.expires) == ("SUBSCRIBE", notifier.tag, 600)
    assert refresh.cseq.number == subscribe.cseq.number + 1
    notifier.answer(refresh, 481)                          # the notifier forgot it
    again = await peer.next()
    assert again.method == "SUBSCRIBE" and again.to.tag is None     # a new subscription
    assert again.call_id != subscribe.call_id


@pytest_twisted.ensureDeferred
async def test_a_rejection_ends_it_and_a_deactivation_brings_it_back(watching):
    peer, start, _, journal, _ = watching
    subscribe, notifier = await subscribed(peer, start)
    await notifier.accept(subscribe, "terminated;reason=deactivated")
    again = await peer.next()                              # back at once
    assert again.method == "SUBSCRIBE" and again.to.tag is None
    await Notifier(peer).accept(again, "terminated;reason=rejected")
    await journal.wait_for(("ended", "rejected"))


@pytest_twisted.ensureDeferred
async def test_a_refused_subscribe_is_the_parents_to_hear_of(watching):
    peer, start, _, journal, _ = watching
    subscribe, notifier = await subscribed(peer, start)
    notifier.answer(subscribe, 403)
    await journal.wait_for(("ended", "403"))


@pytest_twisted.ensureDeferred
async def test_stopping_unsubscribes(watching):
    peer, start, stop, journal, _ = watching
    subscribe, notifier = await subscribed(peer, start)
    await notifier.accept(subscribe, "active;expires=600")
    await journal.wait_for(("notified", "active", None, b""))
    stop()
    unsubscribe = await peer.next()
    assert (unsubscribe.method, unsubscribe.to.tag, unsubscribe.expires) == \
        ("SUBSCRIBE", notifier.tag, 0)
    notifier.answer(unsubscribe, 200, Expires=0)
    notifier.notify(subscribe, "terminated;reason=timeout")
    assert (await peer.next()).status == 200
    await journal.wait_for(("notified", "terminated", None, b""))
    notifier.notify(subscribe, "active;expires=600")       # the dialog is gone
    assert (await peer.next()).status == 481


@pytest_twisted.ensureDeferred
async def test_a_notifier_that_keeps_ending_it_meets_a_back_off(watching):
    peer, start, _, journal, clock = watching
    subscribe, notifier = await subscribed(peer, start)
    await notifier.accept(subscribe, "terminated;reason=deactivated")
    again = await peer.next()                              # the first time, at once
    assert again.method == "SUBSCRIBE" and again.to.tag is None
    for wait in (1, 2, 4):                                 # then twice as long each time
        await Notifier(peer).accept(again, "terminated;reason=deactivated")
        clock.advance(wait - 0.01)
        # Not yet: an OPTIONS sent now is answered first (the container
        # runs its events in order, and would have sent the SUBSCRIBE first).
        peer.send(options(peer.server[1], local_port=peer.port))
        assert (await peer.next()).cseq.method == "OPTIONS"
        clock.advance(0.01)
        again = await peer.next()
        assert again.method == "SUBSCRIBE" and again.to.tag is None
    # A subscription that lives to be refreshed is forgiven.
    notifier = Notifier(peer)
    await notifier.accept(again, "active;expires=600")
    clock.advance(540)
    refresh = await peer.next()
    notifier.answer(refresh, 200, Expires=600)
    notifier.notify(again, "terminated;reason=deactivated")
    assert (await peer.next()).status == 200
    back = await peer.next()                               # at once again
    assert back.method == "SUBSCRIBE" and back.to.tag is None
