"""
List subscriptions outlive a SIGKILL: a real C{twistd -n slee} on its
defaults (the integrated profile, FileStorage) is killed right after a
NOTIFY, started again on the same var directory, and the watcher's next
NOTIFY comes in the same dialog with the next RLMI version and the same
instance ids; the watcher can refresh its subscription.
"""

import shutil

import pytest_twisted

from rlsharness import Peer, RLS_TYPE, entries, services_document, states
from slee.settings import DEFAULT_PROFILE, shipped_profiles, shipped_units
from test_restart import processes, ra_status  # noqa: F401 (a fixture)
from xcapclient import Xdms

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
BUDDIES = "sip:alice@example.com;pres-list=buddies"


def deploy_dir(base):
    """
    The units a default start deploys, the presence server allowing every
    watcher and the list server notifying at most every 50 ms (the
    container runs on the real clock).
    """
    target = base / "deploy"
    for name in shipped_profiles()[DEFAULT_PROFILE]:
        shutil.copytree(shipped_units() / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for unit, old, new in (("presence-server", 'default-policy = "confirm"',
                            'default-policy = "allow"'),
                           ("rls", "notify-interval = 1.0", "notify-interval = 0.05")):
        descriptor = target / unit / "deployable.toml"
        text = descriptor.read_text()
        assert old in text, f"{descriptor} no longer has {old!r}"
        descriptor.write_text(text.replace(old, new))
    return target


async def ports(process):
    [sip] = (await ra_status(process, "sip"))["listening"]
    xcap = (await ra_status(process, "xcap"))["listening"]
    return int(sip.rsplit(":", 1)[1]), int(xcap.rsplit(":", 1)[1])


async def notified_until(peer, seen, done):
    """
    The watcher's NOTIFYs, their states merged into C{seen} (uri -> state
    tuple), until C{done(seen, parts)}; @return: the last (notify, rlmi).
    """
    while True:
        notify, rlmi, parts = await peer.notified()
        if rlmi is None:
            continue
        seen.update(states(rlmi))
        if done(seen, parts):
            return notify, rlmi


@pytest_twisted.ensureDeferred
async def test_a_list_subscription_goes_on_after_a_sigkill(tmp_path, processes):  # noqa: F811
    from twisted.internet import reactor
    process = processes(tmp_path, tmp_path / "var", deploy_dir=deploy_dir(tmp_path),
                        extra=["--xcap-auth", "trust-localhost"])
    await process.start().ready()
    sip_port, xcap_port = await ports(process)
    xdms = Xdms(None, xcap_port)
    alice, bob = Peer(reactor, sip_port, ALICE), Peer(reactor, sip_port, BOB)
    try:
        response, _ = await xdms.request(
            "PUT", f"/xcap-root/rls-services/users/{ALICE}/index",
            services_document((BUDDIES, entries(BOB, CAROL), ("presence",))), RLS_TYPE)
        assert response.code == 201
        bob.publish(note="before")
        assert (await bob.answer()).status == 200
        alice.subscribe(BUDDIES, expires=3600)
        assert (await alice.answer()).status == 200
        seen = {}
        notify, rlmi = await notified_until(
            alice, seen, lambda seen, parts: seen.get(BOB, (0, ""))[1] == "active"
            and seen.get(CAROL, (0, ""))[1] != "pending")
        before, instance = rlmi.version, seen[BOB][0]

        assert await process.kill() != 0
        await process.start().ready()
        sip_port, _ = await ports(process)
        for peer in (alice, bob):
            peer.sip_port, peer.udp.server = sip_port, ("127.0.0.1", sip_port)

        bob.publish(note="after")
        assert (await bob.answer()).status == 200
        after, rlmi, parts = await alice.notified()        # the next NOTIFY of the dialog
        assert rlmi.version == before + 1
        if not any(b"after" in part.body for part in parts.values()):
            after, rlmi = await notified_until(
                alice, seen, lambda seen, parts: any(b"after" in part.body
                                                      for part in parts.values()))
        assert after.call_id == notify.call_id
        assert states(rlmi)[BOB][0] == instance
        alice.subscribe(BUDDIES, expires=3600, new_dialog=False)
        assert (await alice.answer()).status == 200         # the dialog is known
        _, rlmi, _ = await alice.notified()
        assert rlmi.full_state and rlmi.version > before + 1
    finally:
        for peer in (alice, bob):
            await peer.stop()
        await xdms.pool.closeCachedConnections()
        await process.terminate()
