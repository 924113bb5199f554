"""
The presence server live: bare SIP peers publish and watch over UDP, a plain
HTTP client writes the rules to the XDMS, all on 127.0.0.1; the container's
timers run on a clock the tests advance.
"""

import uuid

import pytest_twisted
from twisted.internet import defer

from documents import pres_rules
from sipclient import UdpPeer, options, reply
from slee.settings import shipped_units
from units import LOCAL_RAS, SteppedClock, sip_port_of, started_container, xcap_port_of
from xcapclient import Xdms

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
PIDF_TYPE = "application/pidf+xml"
RULES_TYPE = "application/auth-policy+xml"
RULES_URI = f"/xcap-root/pres-rules/users/{ALICE}/index"


def pidf(basic="open", note="here", tuple_id="t1"):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}">'
            f'<tuple id="{tuple_id}"><status><basic>{basic}</basic></status>'
            f'<contact>sip:alice@127.0.0.1</contact></tuple>'
            f'<note>{note}</note></presence>')


def rules(sub_handling, watcher=BOB):
    """alice's rules giving C{watcher} (bob) C{sub_handling}."""
    return pres_rules(sub_handling, watcher)


class Peer:
    """A SIP user agent on its own UDP port: it publishes, or watches."""

    def __init__(self, udp, sip_port, user):
        self.udp = udp
        self.sip_port = sip_port
        self.user = user
        self.call_id = uuid.uuid4().hex
        self.tag = "p" + uuid.uuid4().hex[:8]
        self.to_tag = None
        self.cseq = 0

    def send(self, method, target=ALICE, headers="", body="", new_dialog=False):
        if new_dialog:
            self.call_id, self.to_tag = uuid.uuid4().hex, None
        self.cseq += 1
        if body:
            headers += f"Content-Type: {PIDF_TYPE}\r\n" if "Content-Type" not in headers else ""
        self.udp.send(options(self.sip_port, method=method, headers=headers, body=body,
                              call_id=self.call_id, cseq=self.cseq, local_port=self.udp.port,
                              from_uri=self.user, from_tag=self.tag, to_tag=self.to_tag,
                              uri=target))

    async def answer(self):
        response = await self.udp.next()
        assert response.status >= 200, response.status
        if response.cseq.method == "SUBSCRIBE" and response.status < 300 and not self.to_tag:
            self.to_tag = response.to.tag
        return response

    async def notified(self):
        notify = await self.udp.next()
        assert notify.method == "NOTIFY"
        self.udp.send(reply(notify))
        return notify


class PresenceServer:
    """
    A started container with SIP, XCAP (trusting the local host), the XDMS,
    the presence server and C{units} more, on free ports; a plain HTTP
    client of its XDMS, and SIP peers for alice and bob.
    """

    async def start(self, directory, clock, units=(), db=None, presence_server=None,
                    ra_properties=LOCAL_RAS):
        from twisted.internet import reactor
        self.directory, self.clock = directory, clock
        shipped = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms")]
        shipped.append(presence_server or shipped_units() / "presence-server")
        self.container = await started_container(directory, [*shipped, *units], clock=clock,
                                                 db=db, ra_properties=ra_properties)
        self._find_ports()
        self.sockets, self.peers = [], []
        for user in (ALICE, BOB):
            udp = UdpPeer(reactor, self.sip_port)
            self.sockets.append(reactor.listenUDP(0, udp, interface="127.0.0.1"))
            self.peers.append(Peer(udp, self.sip_port, user))
        return self

    def _find_ports(self):
        self.sip_port = sip_port_of(self.container)
        self.xdms = Xdms(self.container, xcap_port_of(self.container))

    async def restart(self, open_db):
        """
        Stop the container, and start it again on the database
        C{open_db()} opens: the peers talk to its new port.
        """
        await self.xdms.pool.closeCachedConnections()
        await self.container.stop()
        self.container.db.close()
        # its units come back from the database
        self.container = await started_container(self.directory, [], clock=self.clock,
                                                 db=open_db())
        self._find_ports()
        for peer in self.peers:
            peer.sip_port = self.sip_port
            peer.udp.server = ("127.0.0.1", self.sip_port)

    async def stop(self):
        for socket in self.sockets:
            await socket.stopListening()
        await self.xdms.pool.closeCachedConnections()
        await self.container.stop()


@pytest_twisted.async_yield_fixture
async def server(tmp_path):
    running = await PresenceServer().start(tmp_path, SteppedClock())
    yield running.xdms, running.clock, *running.peers
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_publication_is_made_refreshed_modified_and_removed(server):
    _, _, alice, _ = server
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n", body=pidf())
    made = await alice.answer()
    assert (made.status, made.headers.get("Expires")) == (200, "600")
    etag = made.headers.get("SIP-ETag")
    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\n")
    refreshed = await alice.answer()
    assert refreshed.status == 200 and refreshed.headers.get("Expires") == "3600"
    assert refreshed.headers.get("SIP-ETag") not in (None, etag)
    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\n")
    assert (await alice.answer()).status == 412                     # that ETag is gone
    etag = refreshed.headers.get("SIP-ETag")
    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\n",
               body=pidf("closed"))
    modified = await alice.answer()
    assert modified.status == 200
    etag = modified.headers.get("SIP-ETag")
    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 0\r\n")
    removed = await alice.answer()
    assert (removed.status, removed.headers.get("Expires")) == (200, "0")


@pytest_twisted.ensureDeferred
async def test_bad_publications_get_the_standard_answers(server):
    _, _, alice, bob = server
    bob.send("PUBLISH", headers="Event: presence\r\n", body=pidf())      # alice's state
    assert (await bob.answer()).status == 403
    cases = [
        (dict(headers="Event: presence\r\nExpires: 5\r\n", body=pidf()), 423),
        (dict(headers="Event: dialog\r\n", body=pidf()), 489),
        (dict(headers="Event: presence\r\nContent-Type: text/plain\r\n", body="hi"), 415),
        (dict(headers="Event: presence\r\n", body="<presence"), 400),
        (dict(headers="Event: presence\r\n"), 400),                      # no body
        (dict(headers="Event: presence\r\nSIP-If-Match: nosuchtag\r\n"), 412),
        (dict(headers="Event: presence\r\nExpires: soon\r\n", body=pidf()), 400),
        (dict(headers="Event: presence\r\nExpires: 1099511627776\r\n", body=pidf()), 200),
        (dict(headers="Event: presence\r\n", body=pidf().replace("</presence>", "<tuple id='x'>"
                                                                    * 2000 + "</presence>")), 400),
    ]
    for arguments, status in cases:
        alice.send("PUBLISH", **arguments)
        answer = await alice.answer()
        assert answer.status == status, (arguments, answer.status, answer.reason)
        if status == 423:
            assert answer.headers.get("Min-Expires") == "60"
        if status == 200:
            assert answer.headers.get("Expires") == "3600"   # 2**40 s: out of range, the default
        if status == 415:
            assert answer.headers.get("Accept") == PIDF_TYPE
        if status == 489:
            assert "presence" in answer.headers.get("Allow-Events")


@pytest_twisted.ensureDeferred
async def test_a_watcher_waits_for_consent_then_sees_every_change(server):
    xdms, clock, alice, bob = server
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n", body=pidf())
    assert (await alice.answer()).status == 200

    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    accepted = await bob.answer()
    assert accepted.status == 202                          # no rules known yet: pending
    first = await bob.notified()
    assert first.headers.get("Subscription-State").startswith("pending;expires=")
    assert not first.body
    # the rules came: alice has none, and the default policy is confirm: still pending

    response, _ = await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    assert response.code == 201
    approved = await bob.notified()
    while approved.headers.get("Subscription-State").startswith("pending"):
        approved = await bob.notified()
    assert approved.headers.get("Subscription-State").startswith("active;expires=")
    assert b"<basic>open</basic>" in approved.body and b"here" in approved.body

    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n",
               body=pidf("closed", "away", tuple_id="t2"))
    assert (await alice.answer()).status == 200
    changed = await bob.notified()
    assert b"t2" in changed.body and b"away" in changed.body

    clock.advance(600)                                     # both publications expire
    gone = await bob.notified()
    if b"away" in gone.body:                               # the first expiry, told alone
        assert b"here" not in gone.body
        gone = await bob.notified()
    assert b"<basic>closed</basic>" in gone.body
    assert b"here" not in gone.body and b"away" not in gone.body

    response, _ = await xdms.request("PUT", RULES_URI, rules("block"), RULES_TYPE)
    rejected = await bob.notified()
    assert rejected.headers.get("Subscription-State") == "terminated;reason=rejected"


@pytest_twisted.ensureDeferred
async def test_blocked_and_politely_blocked_watchers(server):
    xdms, _, alice, bob = server
    alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf())
    assert (await alice.answer()).status == 200
    await xdms.request("PUT", RULES_URI, rules("polite-block"), RULES_TYPE)
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    answer = await bob.answer()
    notify = await bob.notified()
    if answer.status == 202:                               # the rules were not cached yet
        notify = await bob.notified()
    assert notify.headers.get("Subscription-State").startswith("active")
    assert b"<basic>closed</basic>" in notify.body and b"here" not in notify.body
    alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("open", "elsewhere"))
    assert (await alice.answer()).status == 200     # bob cannot see it: no NOTIFY

    await xdms.request("PUT", RULES_URI, rules("block"), RULES_TYPE)
    final = await bob.notified()
    assert final.headers.get("Subscription-State") == "terminated;reason=rejected"
    bob.send("SUBSCRIBE", headers="Event: presence\r\n", new_dialog=True)
    assert (await bob.answer()).status == 403


@pytest_twisted.ensureDeferred
async def test_the_presentity_watches_its_watchers_and_approves_them(server):
    from sbbs.presence.winfo import parse_watcherinfo
    xdms, _, alice, bob = server
    alice.send("SUBSCRIBE", headers="Event: presence.winfo\r\n", new_dialog=True)
    assert (await alice.answer()).status == 200
    first = await alice.notified()
    assert first.headers.get("Content-Type") == "application/watcherinfo+xml"
    assert parse_watcherinfo(first.body) == (0, "full", [(ALICE, "presence", [])])

    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    assert (await bob.answer()).status == 202
    await bob.notified()
    version, state, [(_, _, [waiting])] = parse_watcherinfo((await alice.notified()).body)
    assert (version, state) == (1, "partial")
    assert (waiting.uri, waiting.status, waiting.event) == (BOB, "pending", "subscribe")

    await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    version, _, [(_, _, [approved])] = parse_watcherinfo((await alice.notified()).body)
    assert (version, approved.id, approved.status, approved.event) == \
        (2, waiting.id, "active", "approved")
    assert (await bob.notified()).headers.get("Subscription-State").startswith("active")

    bob.send("SUBSCRIBE", headers="Event: presence.winfo\r\n", new_dialog=True)
    assert (await bob.answer()).status == 403           # not bob's watchers


@pytest_twisted.ensureDeferred
async def test_static_presence_from_the_xdms_joins_the_publications(server):
    xdms, _, alice, bob = server
    await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    static = pidf("closed", "on holiday", tuple_id="static").encode()
    response, _ = await xdms.request(
        "PUT", f"/xcap-root/pidf-manipulation/users/{ALICE}/index", static, PIDF_TYPE)
    assert response.code == 201
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    await bob.answer()
    notify = await bob.notified()
    while b"on holiday" not in notify.body:               # pending first, maybe
        notify = await bob.notified()
    assert notify.headers.get("Subscription-State").startswith("active")

    alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("open", "at work"))
    assert (await alice.answer()).status == 200
    both = await bob.notified()
    assert b"at work" in both.body and b"on holiday" in both.body and b'id="static"' in both.body


@pytest_twisted.ensureDeferred
async def test_a_change_nobody_watched_reaches_the_next_watcher(server):
    # An unwatched presentity is composed when a watcher comes, not at its changes.
    xdms, _, alice, bob = server
    await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("open", "at work"))
    assert (await alice.answer()).status == 200
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    await bob.answer()
    notify = await bob.notified()
    while b"at work" not in notify.body:                  # pending first, maybe
        notify = await bob.notified()
    bob.send("SUBSCRIBE", headers="Event: presence\r\nExpires: 0\r\n")
    await bob.answer()
    assert (await bob.notified()).headers.get("Subscription-State").startswith("terminated")

    alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("closed", "gone home"),
               new_dialog=True)
    answer = await alice.answer()
    assert answer.status == 200
    etag = answer.headers.get("SIP-ETag")
    bob.send("SUBSCRIBE", headers="Event: presence\r\n", new_dialog=True)
    assert (await bob.answer()).status == 200              # the rules are known by now
    notify = await bob.notified()
    assert notify.headers.get("Subscription-State").startswith("active")
    assert b"gone home" in notify.body and b"at work" in notify.body

    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\nExpires: 0\r\n")
    assert (await alice.answer()).status == 200            # watched again: told at once
    notify = await bob.notified()
    assert b"gone home" not in notify.body and b"at work" in notify.body


@pytest_twisted.ensureDeferred
async def test_bad_subscriptions_get_the_standard_answers(server):
    _, _, _, bob = server
    cases = [("Event: presence\r\nExpires: soon\r\n", 400),
             ("Event: presence\r\nAccept: nonsense\r\n", 400),
             ("Event: presence\r\nAccept: text/plain\r\n", 406),
             ("Event: presence\r\nExpires: 10\r\n", 423),
             ("Event: presence.winfo\r\n", 403),                  # alice's watchers
             ("Event: presence\r\nExpires: 1099511627776\r\n", 202)]
    for headers, status in cases:
        bob.send("SUBSCRIBE", headers=headers, new_dialog=True)
        answer = await bob.answer()
        assert answer.status == status, (headers, answer.status, answer.reason)
    assert answer.headers.get("Expires") == "3600"


@pytest_twisted.ensureDeferred
async def test_a_subscribe_waits_for_the_rules_and_the_default_policy_can_allow(tmp_path):
    import shutil
    unit = tmp_path / "presence-server"
    shutil.copytree(shipped_units() / "presence-server", unit)
    descriptor = unit / "deployable.toml"
    descriptor.write_text(descriptor.read_text().replace(
        'default-policy = "confirm"', 'default-policy = "allow"'))
    running = await PresenceServer().start(tmp_path / "var", SteppedClock(),
                                           presence_server=unit)
    alice, bob = running.peers
    try:
        alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf())
        assert (await alice.answer()).status == 200
        bob.send("SUBSCRIBE", headers="Event: presence\r\n")
        assert (await bob.answer()).status == 200      # answered once alice's rules were read
        first = await bob.notified()
        assert first.headers.get("Subscription-State").startswith("active")
        assert b"<basic>open</basic>" in first.body
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_the_answer_that_makes_a_dialog_carries_its_record_route(server):
    """RFC 3261 §12.1.1: behind a proxy, the watcher's refreshes take the proxy's way too."""
    _, _, _, bob = server
    proxy = f"<sip:127.0.0.1:{bob.udp.port};lr>"          # bob's own socket plays the proxy
    bob.send("SUBSCRIBE", headers=f"Event: presence\r\nRecord-Route: {proxy}\r\n"
                                  "Record-Route: <sip:edge.example.com;lr>\r\n")
    accepted = await bob.answer()
    assert accepted.headers.get_all("Record-Route") == [proxy, "<sip:edge.example.com;lr>"]
    notify = await bob.notified()                          # our requests take that route
    assert notify.headers.get_all("Route") == [proxy, "<sip:edge.example.com;lr>"]
    bob.send("SUBSCRIBE", headers="Event: presence\r\nExpires: 0\r\n")   # in the dialog
    assert not (await bob.answer()).headers.get_all("Record-Route")


def sphere_pidf(sphere, note):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" '
            f'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
            f'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="{ALICE}">'
            f'<tuple id="t1"><status><basic>open</basic></status></tuple>'
            f'<dm:person id="p1"><rpid:sphere>{sphere}</rpid:sphere></dm:person>'
            f'<note>{note}</note></presence>')


@pytest_twisted.ensureDeferred
async def test_a_rule_for_a_sphere_follows_the_presentity_s_sphere(server):
    xdms, _, alice, bob = server
    work_only = rules("allow").replace(
        b"</cr:identity>", b'</cr:identity><cr:sphere value="work"/>')
    await xdms.request("PUT", RULES_URI, work_only, RULES_TYPE)
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n",
               body=sphere_pidf("work", "at the office"))
    etag = (await alice.answer()).headers.get("SIP-ETag")
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    assert (await bob.answer()).status == 200             # at work: bob may see her
    assert b"at the office" in (await bob.notified()).body

    alice.send("PUBLISH", headers=f"Event: presence\r\nSIP-If-Match: {etag}\r\n",
               body=sphere_pidf("home", "at home"))
    assert (await alice.answer()).status == 200
    home = await bob.notified()                            # home: no rule for bob, confirm
    assert home.headers.get("Subscription-State").startswith("pending")
    assert b"at home" not in home.body


@pytest_twisted.ensureDeferred
async def test_a_notify_and_its_answer_store_nothing_of_the_subscription(server):
    """
    Whether a NOTIFY waits for its answer is the SIP RA's to know, and the
    CSeq stored runs ahead of the one used: a NOTIFY changes nothing stored
    of its subscription, and its 200 nothing at all.  A change made while
    one waits still goes out once it is answered.
    """
    xdms, clock, alice, bob = server
    router, db = xdms.container.router, xdms.container.db
    response, _ = await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    assert response.code == 201
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n", body=pidf())
    assert (await alice.answer()).status == 200
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    assert (await bob.answer()).status == 200
    notify = await bob.udp.next()
    # A change while the first NOTIFY waits: it is sent after the answer.
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n",
               body=pidf(note="busy"))
    assert (await alice.answer()).status == 200
    bob.udp.send(reply(notify))
    changed = await bob.udp.next()
    assert changed.method == "NOTIFY" and b"busy" in changed.body
    before = db.lastTransaction()
    answered = defer.Deferred()
    release = router._release

    def released(work):
        release(work)
        if not answered.called:
            answered.callback(None)

    router._release = released
    bob.udp.send(reply(changed))
    await answered
    assert db.lastTransaction() == before, "answering a NOTIFY reached the storage"

    subscription, = (entity.cmp for entity in xdms.container.engine.state.entities.values()
                     if entity.sbb.startswith("PresenceNotifierSbb"))
    stored = subscription._p_serial
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n",
               body=pidf(note="away"))
    assert (await alice.answer()).status == 200
    again = await bob.notified()
    assert b"away" in again.body and again.cseq.number > changed.cseq.number
    assert subscription._p_serial == stored, "a NOTIFY rewrote its subscription"


@pytest_twisted.ensureDeferred
async def test_changes_that_wait_for_a_notify_and_undo_each_other_send_nothing(server):
    xdms, clock, alice, bob = server
    response, _ = await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    assert response.code == 201

    async def publish(note, etag=None):
        match = f"SIP-If-Match: {etag}\r\n" if etag else ""
        alice.send("PUBLISH", headers=f"Event: presence\r\nExpires: 600\r\n{match}",
                   body=pidf(note=note))
        answer = await alice.answer()
        assert answer.status == 200
        return answer.headers.get("SIP-ETag")

    etag = await publish("here")
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    assert (await bob.answer()).status == 200
    first = await bob.udp.next()                 # unanswered for now
    assert b"here" in first.body
    etag = await publish("busy", etag)            # both wait for the answer...
    etag = await publish("here", etag)            # ...and come back to what it carries
    bob.udp.send(reply(first))
    await publish("away", etag)
    after = await bob.notified()
    assert b"away" in after.body, "a NOTIFY of the state the watcher had was sent"


@pytest_twisted.ensureDeferred
async def test_why_a_watcher_is_pending_or_let_in_is_logged_at_debug(server):
    from twisted.logger import formatEvent, globalLogPublisher
    xdms, _, alice, bob = server
    lines = []

    def observe(event):
        if "watcher" in event and "why" in event:
            lines.append(formatEvent(event))
    globalLogPublisher.addObserver(observe)
    levels = xdms.container.levels
    levels.replace({"slee.sbb.presence": "debug"})
    try:
        bob.send("SUBSCRIBE", headers="Event: presence\r\n")
        assert (await bob.answer()).status == 202
        await bob.notified()
        assert lines == [f"watcher {BOB} of {ALICE}: confirm, by the default policy confirm"]
        await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
        await bob.notified()
        assert lines[-1] == f"watcher {BOB} of {ALICE}: allow, by the rules r1"
    finally:
        levels.replace({})
        globalLogPublisher.removeObserver(observe)
