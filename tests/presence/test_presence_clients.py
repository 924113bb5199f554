"""
The presence server's internal client interfaces, through the example
service deployables/examples/presence-bot: it publishes with the
publication client and watches with the subscription client, and a SIP
watcher of the bot sees both, over UDP on 127.0.0.1.
"""

import pytest
import pytest_twisted

from test_presence_live import ALICE, BOB, PIDF_TYPE, RULES_TYPE, PresenceServer, pidf, rules
from slee.settings import shipped_units
from units import LOCAL_RAS, UNITS, SteppedClock, started_container

BOT = "sip:bot@example.com"


async def notified_until(peer, text):
    """@return: the first NOTIFY (each answered) whose body holds C{text}."""
    notify = await peer.notified()
    while text not in notify.body:
        notify = await peer.notified()
    return notify


@pytest_twisted.ensureDeferred
async def test_a_service_publishes_and_watches_like_any_sip_user_agent(tmp_path):
    running = await PresenceServer().start(
        tmp_path, SteppedClock(), [shipped_units() / "examples" / "presence-bot"])
    xdms, (alice, bob) = running.xdms, running.peers
    try:
        # bob watches the bot: its note says it waits for alice's consent
        await xdms.request("PUT", f"/xcap-root/pres-rules/users/{BOT}/index",
                           rules("allow", BOB), RULES_TYPE)
        bob.send("SUBSCRIBE", target=BOT, headers="Event: presence\r\n")
        await bob.answer()
        await notified_until(bob, f"{ALICE}: pending".encode())
        # alice lets the bot see her: the bot hears she is offline
        await xdms.request("PUT", f"/xcap-root/pres-rules/users/{ALICE}/index",
                           rules("allow", BOT), RULES_TYPE)
        await notified_until(bob, f"{ALICE}: closed".encode())
        # alice comes online: the bot hears it and says so
        alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("open"))
        assert (await alice.answer()).status == 200
        notify = await notified_until(bob, f"{ALICE}: open".encode())
        assert notify.headers.get("Content-Type") == PIDF_TYPE
    finally:
        await running.stop()




@pytest_twisted.async_yield_fixture
async def clients_in(tmp_path):
    container, do = await started_clients(tmp_path)
    yield container, do
    await container.stop()


@pytest.fixture
def clients(clients_in):
    """C{do} of L{started_clients}."""
    return clients_in[1]


async def started_clients(directory, ra_properties=LOCAL_RAS):
    """
    @return: a container with the presence server and a service using both
        clients, and C{do(operation, *arguments, answers=1)}: what the
        service hears when it calls C{operation}.
    """
    units = [UNITS / "probe", *(shipped_units() / name for name in
             ("sip", "sipevent", "xcap", "xdms", "presence-server")), UNITS / "presenceclients"]
    container = await started_container(directory, units, ra_properties=ra_properties)
    from presenceclients_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    JOURNAL.clear()
    ProbeAdaptor.instance.start("a")

    async def do(operation, *arguments, answers=1):
        first = len(JOURNAL)
        ProbeAdaptor.instance.fire("a", {"op": operation, "args": arguments})
        await JOURNAL.wait_length(first + answers)
        return JOURNAL[first:first + answers]

    return container, do


@pytest_twisted.ensureDeferred
async def test_the_publication_client_answers_as_publish_would(clients):
    do = clients
    [(_, made)] = await do("new_publication", ALICE, "presence", pidf().encode(), PIDF_TYPE, 600)
    assert (made.status, made.expires) == (200, 600) and made.etag
    [(_, refreshed)] = await do("refresh_publication", ALICE, "presence", made.etag, 60)
    assert refreshed.status == 200 and refreshed.etag != made.etag
    [(_, stale)] = await do("refresh_publication", ALICE, "presence", made.etag, 60)
    assert stale.status == 412
    [(_, modified)] = await do("modify_publication", ALICE, "presence", refreshed.etag,
                               pidf("closed").encode(), PIDF_TYPE, 600)
    assert modified.status == 200
    [(_, removed)] = await do("remove_publication", ALICE, "presence", modified.etag)
    assert (removed.status, removed.etag) == (200, None)
    for arguments, status in [
            ((ALICE, "dialog", b"x", "text/plain", 60), 489),
            ((ALICE, "presence", b"x", "text/plain", 60), 415),
            ((ALICE, "presence", b"<presence", PIDF_TYPE, 60), 400),
            ((ALICE, "presence", pidf().encode(), PIDF_TYPE, 5), 423)]:
        [(_, result)] = await do("new_publication", *arguments)
        assert result.status == status, arguments




@pytest_twisted.ensureDeferred
async def test_an_event_package_is_there_while_its_service_is_active(clients_in):
    container, do = clients_in

    def service(name):
        return next(s["id"] for s in container.services() if s["name"] == name)

    publish = ("new_publication", ALICE, "presence", pidf().encode(), PIDF_TYPE, 600)
    watch = ("subscribe", "sip:me@example.com", ALICE, "presence", "a", 600)
    container.deactivate(service("presence-publications"))
    container.deactivate(service("presence"))
    [(_, refused)] = await do(*publish)
    assert refused.status == 489
    assert (await do(*watch))[0][0] == "subscribe_error"
    container.activate(service("presence-publications"))
    container.activate(service("presence"))
    [(_, made)] = await do(*publish)
    assert made.status == 200
    assert (await do(*watch, answers=2))[0][0] == "subscribe_ok"


@pytest_twisted.ensureDeferred
async def test_the_subscription_client_hears_what_a_sip_watcher_would(clients):
    do = clients
    me = "sip:me@example.com"
    key = (me, ALICE, "presence", "a")
    answers = await do("subscribe", *key, 600, answers=2)
    assert answers[0] == ("subscribe_ok", *key, 600, 202)          # pending: no rules known
    assert answers[1] == ("notify_event", *key, None, "pending", b"", None)
    assert (await do("subscribe", *key, 600)) == [("subscribe_error", *key, 409)]   # same id
    assert (await do("subscribe", me, ALICE, "nosuch", "b", 600)) == \
        [("subscribe_error", me, ALICE, "nosuch", "b", 489)]
    assert (await do("resubscribe", *key, 300, answers=2))[0] == ("resubscribe_ok", *key, 300)
    answers = await do("unsubscribe", *key, answers=2)
    assert answers[0] == ("unsubscribe_ok", *key)
    assert answers[1][:7] == ("notify_event", *key, "timeout", "terminated")
    assert (await do("unsubscribe", *key)) == [("unsubscribe_error", *key, 481)]
    winfo = (ALICE, BOB, "presence.winfo", "w")                  # not bob's watchers
    assert (await do("subscribe", *winfo, 600)) == [("subscribe_error", *winfo, 403)]
