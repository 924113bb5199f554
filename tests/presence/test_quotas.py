"""
The quotas on publications and subscriptions (sbbs/sipevent/quotas.py),
live: bare SIP peers publish and subscribe over UDP on 127.0.0.1, a
service uses the publication and subscription clients, with limits set as
the `twistd slee` options set them; the container's timers run on a clock
the tests advance.
"""

import pytest_twisted
from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher
from ZODB import DB
from ZODB.FileStorage import FileStorage

from sbbs.sipevent.publication import STORE
from sbbs.sipevent.quotas import PUBLICATIONS, SUBSCRIPTIONS, TOTALS, WATCHERS
from slee.settings import load_settings
from test_presence_clients import started_clients
from test_presence_live import ALICE, BOB, Peer, PresenceServer, pidf
from units import LOCAL_RAS, SteppedClock

#: How long a test waits for the container to reach a count, at most.
TIMEOUT = 5.0


def limited(**limits):
    """The RA properties of a container with C{limits} set as the options set them."""
    cli = {name.replace("_", "-"): str(value) for name, value in limits.items()}
    return {**LOCAL_RAS, **load_settings(cli).ra_properties}


async def quota_server(tmp_path, db=None, **limits):
    return await PresenceServer().start(tmp_path, SteppedClock(), db=db,
                                        ra_properties=limited(**limits))


def counts(container):
    """What the quotas count now: (publications, subscriptions, subscriptions by watcher)."""
    def read(state):
        totals = state.shared_data_of(TOTALS)
        return tuple(totals[name]() if name in totals else 0
                     for name in (PUBLICATIONS, SUBSCRIPTIONS)) + \
            (dict(state.shared_data_of(WATCHERS)),)
    return container.router.run_in_transaction(read, container.engine.state)


def stored_publications(container):
    """(resources with publications stored, publisher entities)."""
    def read(state):
        entities = [e for e in state.entities.values() if e.sbb.startswith("CompositorSbb:")]
        return len(state.shared_data_of(STORE)), len(entities)
    return container.router.run_in_transaction(read, container.engine.state)


async def counted(container, wanted):
    """Wait until L{counts} is C{wanted} (the container answers NOTIFYs' answers meanwhile)."""
    for _ in range(int(TIMEOUT / 0.01)):
        if counts(container) == wanted:
            return
        await task.deferLater(reactor, 0.01, lambda: None)
    assert counts(container) == wanted


def user(running, number):
    """A peer publishing as sip:userN@example.com, on alice's socket."""
    alice = running.peers[0]
    return Peer(alice.udp, alice.sip_port, f"sip:user{number}@example.com")


async def publish(peer, headers="", body=None):
    peer.send("PUBLISH", target=peer.user, headers=f"Event: presence\r\n{headers}",
              body=pidf() if body is None else body)
    return await peer.answer()


# -- publications -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_past_its_quota_a_resource_gets_403_yet_refreshes_and_modifies(tmp_path):
    running = await quota_server(tmp_path, max_publications_per_resource=2)
    alice = running.peers[0]
    try:
        first, second = [await publish(alice, body=pidf(tuple_id=f"t{n}")) for n in (1, 2)]
        assert first.status == second.status == 200
        refused = await publish(alice, body=pidf(tuple_id="t3"))
        assert (refused.status, refused.reason) == \
            (403, "Quota exceeded: publications per resource")
        assert refused.headers.get("Retry-After") is None
        refreshed = await publish(alice, f"SIP-If-Match: {first.headers.get('SIP-ETag')}\r\n",
                                  body="")
        assert refreshed.status == 200
        modified = await publish(alice, f"SIP-If-Match: {second.headers.get('SIP-ETag')}\r\n",
                                 body=pidf("closed", tuple_id="t2"))
        assert modified.status == 200
        assert counts(running.container)[0] == 2
        removed = await publish(alice, f"SIP-If-Match: {modified.headers.get('SIP-ETag')}"
                                       "\r\nExpires: 0\r\n", body="")
        assert removed.status == 200
        assert (await publish(alice, body=pidf(tuple_id="t3"))).status == 200    # room again
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_past_the_total_a_new_publication_gets_503_until_one_expires(tmp_path):
    running = await quota_server(tmp_path, max_publications=3)
    users = [user(running, n) for n in range(4)]
    try:
        made = [await publish(peer, "Expires: 600\r\n") for peer in users[:3]]
        assert [answer.status for answer in made] == [200, 200, 200]
        refused = await publish(users[3])
        assert (refused.status, refused.reason) == (503, "Quota exceeded: publications in total")
        assert refused.headers.get("Retry-After") == "300"
        refreshed = await publish(users[0], f"SIP-If-Match: {made[0].headers.get('SIP-ETag')}"
                                            "\r\nExpires: 600\r\n", body="")
        assert refreshed.status == 200                         # a refresh passes, at the limit
        assert counts(running.container) == (3, 0, {})

        running.clock.advance(601)                             # all three expire
        running.container.router.drain()
        assert counts(running.container) == (0, 0, {})
        assert stored_publications(running.container) == (0, 0)
        made = await publish(users[3])
        assert made.status == 200
        assert counts(running.container)[0] == 1
        removed = await publish(users[3], f"SIP-If-Match: {made.headers.get('SIP-ETag')}\r\n"
                                          "Expires: 0\r\n", body="")
        assert removed.status == 200
        assert counts(running.container)[0] == 0
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_flood_of_publications_for_new_presentities_stores_no_more_than_the_total(
        tmp_path):
    running = await quota_server(tmp_path, max_publications=5)
    users = [user(running, n) for n in range(40)]
    logged = []
    globalLogPublisher.addObserver(logged.append)
    try:
        statuses = [(await publish(peer)).status for peer in users]
        assert statuses == [200] * 5 + [503] * 35
        assert stored_publications(running.container) == (5, 5)   # refused ones left nothing
        assert counts(running.container)[0] == 5
        warnings = [formatEvent(event) for event in logged if "quota" in formatEvent(event)]
        assert warnings == ["quota max-publications = 5 reached: new ones get 503"]  # not 35
    finally:
        globalLogPublisher.removeObserver(logged.append)
        await running.stop()


# -- subscriptions ---------------------------------------------------------------


async def subscribe(peer, headers=""):
    """A new subscription of C{peer} to alice's presence: the answer (and its NOTIFY, answered)."""
    peer.send("SUBSCRIBE", headers=f"Event: presence\r\n{headers}", new_dialog=True)
    answer = await peer.answer()
    if answer.status < 300:
        await peer.notified()
    return answer


@pytest_twisted.ensureDeferred
async def test_past_its_quota_a_watcher_gets_403_yet_refreshes(tmp_path):
    running = await quota_server(tmp_path, max_subscriptions_per_watcher=2)
    _, bob = running.peers
    try:
        assert (await subscribe(bob)).status == 202
        first_dialog = (bob.call_id, bob.to_tag, bob.cseq)
        assert (await subscribe(bob)).status == 202
        bob.send("SUBSCRIBE", headers="Event: presence\r\n", new_dialog=True)
        refused = await bob.answer()
        assert (refused.status, refused.reason) == \
            (403, "Quota exceeded: subscriptions per watcher")
        bob.call_id, bob.to_tag, bob.cseq = first_dialog
        bob.send("SUBSCRIBE", headers="Event: presence\r\nExpires: 600\r\n")
        assert (await bob.answer()).status == 200               # a refresh passes
        await bob.notified()
        assert counts(running.container) == (0, 2, {BOB: 2})
        bob.send("SUBSCRIBE", headers="Event: presence\r\nExpires: 0\r\n")
        assert (await bob.answer()).status == 200               # the first one ends
        assert (await bob.notified()).headers.get("Subscription-State").startswith("terminated")
        await counted(running.container, (0, 1, {BOB: 1}))
        assert (await subscribe(bob)).status == 202              # room again
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_past_the_total_a_new_subscription_gets_503_until_one_expires(tmp_path):
    running = await quota_server(tmp_path, max_subscriptions=2)
    alice, bob = running.peers
    try:
        for _ in range(2):
            assert (await subscribe(bob, "Expires: 600\r\n")).status == 202
        alice.send("SUBSCRIBE", target=BOB, headers="Event: presence\r\n", new_dialog=True)
        refused = await alice.answer()
        assert (refused.status, refused.reason) == (503, "Quota exceeded: subscriptions in total")
        assert refused.headers.get("Retry-After") == "300"

        running.clock.advance(601)                             # both expire: a last NOTIFY each
        for _ in range(2):
            assert (await bob.notified()).headers.get("Subscription-State") == \
                "terminated;reason=timeout"
        await counted(running.container, (0, 0, {}))
        alice.send("SUBSCRIBE", target=BOB, headers="Event: presence\r\n", new_dialog=True)
        assert (await alice.answer()).status == 202
        await alice.notified()
        assert counts(running.container) == (0, 1, {ALICE: 1})
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_the_counts_outlive_a_restart_and_still_come_back_to_zero(tmp_path):
    path = str(tmp_path / "slee.fs")
    running = await quota_server(tmp_path, db=DB(FileStorage(path)))
    alice, bob = running.peers
    try:
        assert (await publish(alice, "Expires: 600\r\n")).status == 200
        assert (await subscribe(bob, "Expires: 600\r\n")).status == 202
        assert counts(running.container) == (1, 1, {BOB: 1})

        await running.restart(lambda: DB(FileStorage(path)))
        assert counts(running.container) == (1, 1, {BOB: 1})
        running.clock.advance(601)                             # both expire
        assert (await bob.notified()).headers.get("Subscription-State") == \
            "terminated;reason=timeout"
        await counted(running.container, (0, 0, {}))
    finally:
        await running.stop()


# -- the internal clients ---------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_clients_hear_the_quotas_refusals(tmp_path):
    container, do = await started_clients(tmp_path, limited(
        max_subscriptions=2, max_subscriptions_per_watcher=1,
        max_publications=2, max_publications_per_resource=1))
    me, you, him = (f"sip:{name}@example.com" for name in ("me", "you", "him"))
    try:
        assert (await do("subscribe", me, ALICE, "presence", "a", 600, answers=2))[0][0] == \
            "subscribe_ok"
        assert await do("subscribe", me, BOB, "presence", "b", 600) == \
            [("subscribe_error", me, BOB, "presence", "b", 403)]         # per watcher
        assert (await do("subscribe", you, ALICE, "presence", "c", 600, answers=2))[0][0] == \
            "subscribe_ok"
        assert await do("subscribe", him, ALICE, "presence", "d", 600) == \
            [("subscribe_error", him, ALICE, "presence", "d", 503)]      # in total
        assert counts(container) == (0, 2, {me: 1, you: 1})
        await do("unsubscribe", me, ALICE, "presence", "a", answers=2)
        await do("unsubscribe", you, ALICE, "presence", "c", answers=2)
        assert counts(container) == (0, 0, {})

        pidf_type, body = "application/pidf+xml", pidf().encode()
        [(_, made)] = await do("new_publication", ALICE, "presence", body, pidf_type, 600)
        assert made.status == 200
        [(_, refused)] = await do("new_publication", ALICE, "presence", body, pidf_type, 600)
        assert refused.status == 403                                   # per resource
        [(_, other)] = await do("new_publication", BOB, "presence", body, pidf_type, 600)
        assert other.status == 200
        [(_, refused)] = await do("new_publication", "sip:carol@example.com", "presence",
                                  body, pidf_type, 600)
        assert refused.status == 503                                   # in total
        [(_, refreshed)] = await do("refresh_publication", ALICE, "presence", made.etag, 600)
        assert refreshed.status == 200
        await do("remove_publication", ALICE, "presence", refreshed.etag)
        await do("remove_publication", BOB, "presence", other.etag)
        assert counts(container) == (0, 0, {})
    finally:
        await container.stop()
