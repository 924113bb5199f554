"""
The registrar live: a bare SIP peer registers over UDP on 127.0.0.1, a test
service watches through the location client (tests/units/locationwatcher);
the container's timers run on a clock the tests advance.
"""

import uuid

import pytest_twisted
from ZODB import DB
from ZODB.FileStorage import FileStorage

from sipclient import TIMEOUT, UdpPeer
from slee.settings import shipped_units
from units import LOCAL_RAS, UNITS, SteppedClock, sip_port_of, started_container

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"


class Registrant:
    """A SIP user agent on its own UDP port that registers, one Call-ID, CSeq counting up."""

    def __init__(self, udp, user):
        self.udp = udp
        self.user = user
        self.call_id = uuid.uuid4().hex
        self.cseq = 0

    async def register(self, *contacts, aor=None, headers=""):
        """@return: the final answer to a REGISTER of C{contacts} for C{aor} (the user's)."""
        self.cseq += 1
        lines = ["REGISTER sip:example.com SIP/2.0",
                 f"Via: SIP/2.0/UDP 127.0.0.1:{self.udp.port};branch=z9hG4bK{uuid.uuid4().hex}"
                 ";rport",
                 "Max-Forwards: 70", f"From: <{self.user}>;tag={uuid.uuid4().hex[:8]}",
                 f"To: <{aor or self.user}>", f"Call-ID: {self.call_id}",
                 f"CSeq: {self.cseq} REGISTER"]
        lines += [f"Contact: {contact}" for contact in contacts]
        self.udp.send(("\r\n".join(lines) + f"\r\n{headers}Content-Length: 0\r\n\r\n").encode())
        answer = await self.udp.next()
        while answer.status < 200:
            answer = await self.udp.next()
        return answer


def bound(answer):
    """The Contact fields of a 200, as written."""
    return answer.headers.get_all("Contact")


class Registrar:
    """A started container with the registrar and the location watcher, and alice's phone."""

    async def start(self, directory, clock, db=None, sip_auth=None):
        from twisted.internet import reactor
        self.directory, self.clock = directory, clock
        properties = dict(LOCAL_RAS)
        if sip_auth is not None:
            properties["sip"] = {**properties["sip"], "auth": sip_auth}
        units = [UNITS / "probe", shipped_units() / "sip", shipped_units() / "registrar",
                 UNITS / "locationwatcher"]
        self.container = await started_container(directory, units, properties, clock, db)
        self.udp = UdpPeer(reactor, sip_port_of(self.container))
        self.socket = reactor.listenUDP(0, self.udp, interface="127.0.0.1")
        self.alice = Registrant(self.udp, ALICE)
        self._watcher()
        return self

    def _watcher(self):
        from locationwatcher_unit import JOURNAL
        from probe_unit.ra import ProbeAdaptor
        self.journal, self.read = JOURNAL, 0
        JOURNAL.clear()
        ProbeAdaptor.instance.start("w")

    async def ask(self, operation, aor=ALICE):
        """Have the watcher service call its location client: what it journals."""
        from probe_unit.ra import ProbeAdaptor
        ProbeAdaptor.instance.fire("w", {"location": operation, "aor": aor})
        return await self.heard()

    async def heard(self):
        """The next entry of the watcher's journal (a change it heard, or an answer)."""
        from twisted.internet import reactor
        await self.journal.wait_length(self.read + 1).addTimeout(TIMEOUT, reactor)
        self.read += 1
        return self.journal[self.read - 1]

    async def restart(self, open_db):
        await self.container.stop()
        self.container.db.close()
        self.container = await started_container(self.directory, [], clock=self.clock,
                                                 db=open_db())
        self.udp.server = ("127.0.0.1", sip_port_of(self.container))
        self._watcher()

    async def stop(self):
        self.socket.stopListening()
        await self.container.stop()


@pytest_twisted.async_yield_fixture
async def registrar(tmp_path):
    running = await Registrar().start(tmp_path, SteppedClock())
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_every_current_binding_is_answered_with_its_expires(registrar):
    alice = registrar.alice
    made = await alice.register("<sip:alice@10.0.0.1:5060>;q=0.5",
                                "<sip:alice@10.0.0.2:5060>;expires=600")
    assert made.status == 200
    assert bound(made) == ["<sip:alice@10.0.0.2:5060>;expires=600",
                           "<sip:alice@10.0.0.1:5060>;q=0.5;expires=3600"]
    registrar.clock.advance(100)
    queried = await alice.register()
    assert bound(queried) == ["<sip:alice@10.0.0.2:5060>;expires=500",
                              "<sip:alice@10.0.0.1:5060>;q=0.5;expires=3500"]
    removed = await alice.register("<sip:alice@10.0.0.2:5060>;expires=0")
    assert bound(removed) == ["<sip:alice@10.0.0.1:5060>;q=0.5;expires=3500"]
    cleared = await alice.register("*", headers="Expires: 0\r\n")
    assert cleared.status == 200 and bound(cleared) == []


@pytest_twisted.ensureDeferred
async def test_refusals_say_why(registrar):
    alice = registrar.alice
    brief = await alice.register("<sip:alice@10.0.0.1>", headers="Expires: 10\r\n")
    assert (brief.status, brief.headers.get("Min-Expires")) == (423, "60")
    star = await alice.register("*")
    assert (star.status, star.reason) == (400, "Contact * needs Expires: 0 and no other contact")
    assert (await alice.register("<sip:alice@10.0.0.1>")).status == 200
    alice.cseq -= 1                                     # the same CSeq again, in the Call-ID
    stale = await alice.register("<sip:alice@10.0.0.1>;expires=0")
    assert stale.status == 500 and "CSeq" in stale.reason
    too_many = await alice.register(*(f"<sip:alice@10.0.1.{n}>" for n in range(21)))
    assert too_many.status == 403


@pytest_twisted.ensureDeferred
async def test_path_is_stored_and_echoed_to_a_ua_that_supports_it(registrar):
    path = "Path: <sip:edge.example.com;lr>\r\nSupported: path\r\n"
    answer = await registrar.alice.register("<sip:alice@10.0.0.1>", headers=path)
    assert answer.headers.get_all("Path") == ["<sip:edge.example.com;lr>"]
    assert await registrar.ask("lookup") == ("lookup", ("sip:alice@10.0.0.1",))


@pytest_twisted.ensureDeferred
async def test_bindings_expire_by_timer_and_a_watcher_hears_every_change(registrar):
    alice = registrar.alice
    assert await registrar.ask("lookup") == ("lookup", ())
    await registrar.ask("watch", "sip:alice@EXAMPLE.com:5060")     # any URI of the address
    await alice.register("<sip:alice@10.0.0.1>;expires=60", "<sip:alice@10.0.0.2>;expires=120")
    assert await registrar.heard() == ("bindings_changed", ALICE,
                                       ("sip:alice@10.0.0.2", "sip:alice@10.0.0.1"))
    registrar.clock.advance(60)
    assert await registrar.heard() == ("bindings_changed", ALICE, ("sip:alice@10.0.0.2",))
    assert await registrar.ask("lookup") == ("lookup", ("sip:alice@10.0.0.2",))
    registrar.clock.advance(60)
    assert await registrar.heard() == ("bindings_changed", ALICE, ())
    await registrar.ask("unwatch")
    await alice.register("<sip:alice@10.0.0.3>")
    assert await registrar.ask("lookup") == ("lookup", ("sip:alice@10.0.0.3",))   # no change heard


@pytest_twisted.ensureDeferred
async def test_a_user_registers_only_its_own_address(tmp_path):
    running = await Registrar().start(tmp_path, SteppedClock(), sip_auth="none")
    try:
        other = await running.alice.register("<sip:alice@10.0.0.1>", aor=BOB)
        assert other.status == 403
        assert (await running.alice.register("<sip:alice@10.0.0.1>")).status == 200
        assert await running.ask("lookup", BOB) == ("lookup", ())
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_bindings_and_their_timers_outlive_a_restart(tmp_path):
    path = str(tmp_path / "slee.fs")
    running = await Registrar().start(tmp_path, SteppedClock(), db=DB(FileStorage(path)))
    try:
        await running.alice.register("<sip:alice@10.0.0.1>;expires=60", "<sip:alice@10.0.0.2>")

        await running.restart(lambda: DB(FileStorage(path)))

        queried = await running.alice.register()
        assert bound(queried) == ["<sip:alice@10.0.0.2>;expires=3600",
                                  "<sip:alice@10.0.0.1>;expires=60"]
        await running.ask("watch")
        running.clock.advance(60)                       # the timer was armed again
        assert await running.heard() == ("bindings_changed", ALICE, ("sip:alice@10.0.0.2",))
    finally:
        await running.stop()
