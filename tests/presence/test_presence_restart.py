"""
Publications, subscriptions and their dialogs outlive a restart of the
container (FileStorage): the watcher goes on getting NOTIFYs, numbered on,
and may refresh its subscription in its dialog.
"""

import pytest_twisted
from ZODB import DB
from ZODB.FileStorage import FileStorage

from test_presence_live import RULES_TYPE, RULES_URI, PresenceServer, pidf, rules
from units import SteppedClock


async def published(tmp_path):
    """
    A presence server on a FileStorage where alice allows every watcher
    and published: it, and what opens its database again.
    """
    path = str(tmp_path / "slee.fs")
    running = await PresenceServer().start(tmp_path, SteppedClock(), db=DB(FileStorage(path)))
    await running.xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
    alice = running.peers[0]
    alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n", body=pidf())
    assert (await alice.answer()).status == 200
    return running, lambda: DB(FileStorage(path))


@pytest_twisted.ensureDeferred
async def test_a_watcher_keeps_its_subscription_across_a_restart(tmp_path):
    running, reopen = await published(tmp_path)
    alice, bob = running.peers
    try:
        bob.send("SUBSCRIBE", headers="Event: presence\r\n")
        await bob.answer()
        before = await bob.notified()
        while b"open" not in before.body:
            before = await bob.notified()

        await running.restart(reopen)

        # another device of alice's publishes: the one from before is still there
        alice.send("PUBLISH", headers="Event: presence\r\nExpires: 3600\r\n",
                   body=pidf("open", "back later", tuple_id="t2"))
        assert (await alice.answer()).status == 200
        after = await bob.notified()                           # the dialog is known
        assert b"back later" in after.body and b"here" in after.body
        assert after.cseq.number > before.cseq.number
        assert after.call_id == before.call_id
        bob.send("SUBSCRIBE", headers="Event: presence\r\nExpires: 3600\r\n")
        refreshed = await bob.answer()
        assert refreshed.status == 200                         # not 481
        await bob.notified()

        running.clock.advance(600)       # the first publication's timer was armed again
        gone = await bob.notified()
        assert gone.headers.get("Subscription-State").startswith("active")
        assert b"here" not in gone.body and b"back later" in gone.body
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_change_that_waited_for_a_notify_lost_in_a_restart_goes_out(tmp_path):
    """The NOTIFY in flight is lost with the stack; the change that waited for it is not."""
    running, reopen = await published(tmp_path)
    alice, bob = running.peers
    try:
        bob.send("SUBSCRIBE", headers="Event: presence\r\n")
        assert (await bob.answer()).status == 200
        first = await bob.udp.next()                  # never answered
        alice.send("PUBLISH", headers="Event: presence\r\nExpires: 600\r\n",
                   body=pidf(note="busy", tuple_id="t2"))
        assert (await alice.answer()).status == 200   # waits for the first's answer

        await running.restart(reopen)

        after = await bob.notified()
        assert b"busy" in after.body
        assert after.cseq.number > first.cseq.number and after.call_id == first.call_id
    finally:
        await running.stop()
