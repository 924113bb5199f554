"""
Members whose servers misbehave: one that floods NOTIFYs, one that never
answers, one that answers garbage.  Each is a bare UDP socket on
127.0.0.1 playing the member's notifier; the list server subscribes to it
over SIP (its domain is not served here).  Nothing of it reaches the
watcher but the member's state, throttled, and the list goes on.
"""

import uuid

import pytest_twisted

from rlsharness import RLS_TYPE, RlsServer, entries, pidf, rls_unit, services_document, states
from sipclient import UdpPeer, options

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
BUDDIES = "sip:alice@example.com;pres-list=buddies"
INTERVAL = 0.2
#: Fast SIP timers: a transaction nobody answers fails in 64 * T1 = 0.64 s.
FAST_SIP = {"t1": 0.01, "t2": 0.04, "t4": 0.05}


class FakeNotifier:
    """A member's server: it sees the list server's SUBSCRIBE and does what a test says."""

    def __init__(self, reactor):
        self.udp = UdpPeer(reactor, 0)
        self.socket = reactor.listenUDP(0, self.udp, interface="127.0.0.1")
        self.uri = f"sip:member@127.0.0.1:{self.udp.port}"
        self.tag = "f" + uuid.uuid4().hex[:8]
        self.cseq = 0

    async def subscribed(self):
        """@return: the list server's SUBSCRIBE (retransmissions skipped)."""
        while True:
            message = await self.udp.next()
            if getattr(message, "method", None) == "SUBSCRIBE":
                return message

    def accept(self, subscribe):
        """Answer 200, making the dialog, and aim at the subscriber's Contact."""
        self.subscribe = subscribe
        self.udp.server = (subscribe.contact[0].uri.host, subscribe.contact[0].uri.port)
        lines = ["SIP/2.0 200 OK", *[f"Via: {via}" for via in subscribe.headers.get_all("Via")],
                 f"From: {subscribe.headers.get('From')}",
                 f"To: {subscribe.headers.get('To')};tag={self.tag}",
                 f"Call-ID: {subscribe.call_id}", f"CSeq: {subscribe.headers.get('CSeq')}",
                 f"Contact: <{self.uri}>", "Expires: 600", "Content-Length: 0"]
        self.udp.send(("\r\n".join(lines) + "\r\n\r\n").encode())

    def notify(self, note, state="active;expires=600"):
        self.cseq += 1
        subscribe = self.subscribe
        self.udp.send(options(
            self.udp.server[1], method="NOTIFY", uri=str(subscribe.contact[0].uri),
            call_id=subscribe.call_id, cseq=self.cseq, local_port=self.udp.port,
            from_uri=self.uri, from_tag=self.tag, to_tag=subscribe.from_.tag,
            headers=f"Event: presence\r\nSubscription-State: {state}\r\n"
                    "Content-Type: application/pidf+xml\r\n",
            body=pidf(self.uri, note=note)))

    async def stop(self):
        await self.socket.stopListening()


async def started(tmp_path, **sip):
    from twisted.internet import reactor
    return await RlsServer().start(tmp_path, reactor, sip=sip, rls=rls_unit(
        tmp_path, notify_interval=str(INTERVAL), local_domains='["example.com"]'))


async def watch_list(server, member):
    await server.put(f"rls-services/users/{ALICE}/index",
                     services_document((BUDDIES, entries(BOB, member.uri), ("presence",))),
                     RLS_TYPE)
    alice = server.peer(ALICE)
    alice.subscribe(BUDDIES)
    assert (await alice.answer()).status == 200
    _, rlmi, _ = await alice.notified()
    assert rlmi.full_state and set(states(rlmi)) == {BOB, member.uri}
    return alice


@pytest_twisted.ensureDeferred
async def test_a_member_flooding_notifies_reaches_the_watcher_throttled(tmp_path):
    from twisted.internet import reactor
    server = await started(tmp_path)
    member = FakeNotifier(reactor)
    try:
        alice = await watch_list(server, member)
        subscribe = await member.subscribed()
        # A back-end SUBSCRIBE offers what a member that is a list would send.
        assert "eventlist" in subscribe.supported
        assert {str(accepted) for accepted in subscribe.accept} == {
            "application/pidf+xml", "application/rlmi+xml", "multipart/related"}
        assert subscribe.event.package == "presence"
        assert str(subscribe.from_.uri) == ALICE           # the watcher subscribes
        member.accept(subscribe)
        flood = 300
        started_at = reactor.seconds()
        for number in range(flood):
            member.notify(f"note {number}")
        notes, times = [], []
        while f"note {flood - 1}" not in notes:
            _, rlmi, parts = await alice.notified()
            times.append(reactor.seconds())
            [cid] = [state[3] for uri, state in states(rlmi).items() if uri == member.uri] or \
                [None]
            if cid is not None:
                notes.append(parts[cid].body.decode().split("<note>")[1].split("<")[0])
        # The watcher got a few NOTIFYs, one per interval at most (as they
        # arrive: a loaded machine delays some), each with a newer note than
        # the last: nothing sent twice, the last state kept.
        elapsed = times[-1] - started_at
        assert len(times) <= elapsed / INTERVAL + 2, (len(times), elapsed)
        assert all(b - a >= INTERVAL / 2 for a, b in zip(times, times[1:])), times
        numbers = [int(note.split()[1]) for note in notes]
        assert numbers == sorted(set(numbers))
    finally:
        await member.stop()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_member_whose_server_never_answers_ends_terminated(tmp_path):
    from twisted.internet import reactor
    server = await started(tmp_path, **FAST_SIP)
    member = FakeNotifier(reactor)                     # it hears, and says nothing
    try:
        alice = await watch_list(server, member)
        first = await member.subscribed()
        while True:
            _, rlmi, _ = await alice.notified()
            state = states(rlmi).get(member.uri)
            if state is not None and state[1] == "terminated":
                break
        assert state[2] == "probation"                      # tried again later:
        again = await member.subscribed()
        while again.call_id == first.call_id:               # (retransmissions of the first)
            again = await member.subscribed()
        bob = server.peer(BOB)                             # the list goes on
        bob.publish(note="bob still here")
        assert (await bob.answer()).status == 200
        while True:
            _, rlmi, parts = await alice.notified()
            cid = states(rlmi).get(BOB, (None,) * 4)[3]
            if cid is not None and b"bob still here" in parts[cid].body:
                break
    finally:
        await member.stop()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_member_whose_server_answers_garbage_ends_terminated(tmp_path):
    from twisted.internet import reactor
    server = await started(tmp_path, **FAST_SIP)
    member = FakeNotifier(reactor)
    try:
        alice = await watch_list(server, member)
        subscribe = await member.subscribed()
        member.udp.server = (subscribe.contact[0].uri.host, subscribe.contact[0].uri.port)
        for garbage in (b"\x00\xff" * 100, b"SIP/2.0 200\r\n\r\n", b"NOTIFY nonsense\r\n\r\n"):
            member.udp.send(garbage)
        while True:
            _, rlmi, _ = await alice.notified()
            state = states(rlmi).get(member.uri)
            if state is not None and state[1] == "terminated":
                break
    finally:
        await member.stop()
        await server.stop()
