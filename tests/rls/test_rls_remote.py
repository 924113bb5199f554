"""
A list whose members live on two servers: the integrated container (in
this process) serves bob, and a second C{twistd -n slee} in the profile
presence-server (reading the first one's XDMS) serves dave.  The list
server subscribes to bob through the subscription client and to dave over
SIP, through its outbound proxy; the watcher sees both in its NOTIFYs.
"""

import shutil

import pytest_twisted

from rlsharness import RLS_TYPE, RlsServer, entries, rls_unit, services_document, states
from slee.settings import shipped_profiles, shipped_units
from test_restart import SleeProcess, ra_status
from units import xcap_port_of

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
DAVE = "sip:dave@remote.test"
BUDDIES = "sip:alice@example.com;pres-list=buddies"


class RemotePresenceServer(SleeProcess):
    """The profile presence-server: no XCAP server of its own."""

    XCAP = None


def presence_server_units(base):
    """The presence-server profile's units, its presence server allowing every watcher."""
    target = base / "deploy"
    for name in shipped_profiles()["presence-server"]:
        shutil.copytree(shipped_units() / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    descriptor = target / "presence-server" / "deployable.toml"
    descriptor.write_text(descriptor.read_text().replace(
        'default-policy = "confirm"', 'default-policy = "allow"'))
    return target


def free_udp_port():
    """@return: a UDP port free on 127.0.0.1 now, for the remote server to take."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def notified_until(peer, seen, done):
    """The watcher's NOTIFYs, their states and bodies merged into C{seen}, until C{done(seen)}."""
    while True:
        _, rlmi, parts = await peer.notified()
        for uri, (_, state, _, cid) in states(rlmi).items():
            seen[uri] = (state, parts[cid].body if cid else b"")
        if done(seen):
            return


@pytest_twisted.ensureDeferred
async def test_a_list_with_a_local_and_a_remote_member(tmp_path):
    from twisted.internet import reactor
    (tmp_path / "rls").mkdir()
    (tmp_path / "ps").mkdir()
    remote = RemotePresenceServer(tmp_path / "ps", tmp_path / "ps" / "var",
                                  deploy_dir=presence_server_units(tmp_path / "ps"))
    rls = None
    try:
        remote_port = free_udp_port()
        rls = await RlsServer().start(
            tmp_path / "rls", reactor, rls=rls_unit(
                tmp_path, notify_interval="0.05", local_domains='["example.com"]',
                outbound_proxy=f'"sip:127.0.0.1:{remote_port}"'))
        remote.sip = (f"udp:{remote_port}:interface=127.0.0.1",)
        remote.extra = ["--xdms-url",
                        f"http://127.0.0.1:{xcap_port_of(rls.container)}/xcap-root"]
        await remote.start().ready()

        await rls.put(f"rls-services/users/{ALICE}/index",
                      services_document((BUDDIES, entries(BOB, DAVE), ("presence",))), RLS_TYPE)
        bob, alice = rls.peer(BOB), rls.peer(ALICE)
        dave = rls.peer(DAVE)
        dave.sip_port, dave.udp.server = remote_port, ("127.0.0.1", remote_port)
        bob.publish(note="bob here")
        assert (await bob.answer()).status == 200
        dave.publish(note="dave far away")
        assert (await dave.answer()).status == 200

        alice.subscribe(BUDDIES)
        assert (await alice.answer()).status == 200
        seen = {}
        await notified_until(alice, seen, lambda seen: all(
            seen.get(uri, ("",))[0] == "active" and seen[uri][1] for uri in (BOB, DAVE)))
        assert b"bob here" in seen[BOB][1] and b"dave far away" in seen[DAVE][1]

        dave.publish(note="dave back")                # over SIP, NOTIFYed over SIP
        assert (await dave.answer()).status == 200
        await notified_until(alice, seen, lambda seen: b"dave back" in seen[DAVE][1])
    finally:
        if rls is not None:
            await rls.stop()
        remote.cleanup()


@pytest_twisted.ensureDeferred
async def test_the_profile_rls_alone_with_a_remote_xdms_and_presence_server(tmp_path):
    """
    C{twistd slee --profile rls}: its lists from the XDMS of another
    container, kept current over xcap-diff; every member subscribed to over
    SIP through the outbound proxy, that container's presence server.
    """
    from twisted.internet import reactor
    from rlsharness import Peer
    (tmp_path / "home").mkdir()
    (tmp_path / "rls").mkdir()
    home = await RlsServer().start(tmp_path / "home", reactor, units=(
        shipped_units() / "xdms-xcap-diff",), rls=False)
    rls = RemotePresenceServer(tmp_path / "rls", tmp_path / "rls" / "var")
    alice = None
    try:
        await home.put(f"rls-services/users/{ALICE}/index",
                       services_document((BUDDIES, entries(BOB), ("presence",))), RLS_TYPE)
        bob = home.peer(BOB)
        bob.publish(note="bob at home")
        assert (await bob.answer()).status == 200
        rls.extra = ["--profile", "rls",
                     "--xdms-url", f"http://127.0.0.1:{xcap_port_of(home.container)}/xcap-root",
                     "--xdms-sip-uri", f"sip:xcap-diff@127.0.0.1:{home.sip_port}",
                     "--sip-identity", "sip:rls@example.com",
                     "--rls-outbound-proxy", f"sip:127.0.0.1:{home.sip_port}",
                     "--rls-notify-interval", "0.05"]
        await rls.start().ready()
        [sip] = (await ra_status(rls, "sip"))["listening"]
        alice = Peer(reactor, int(sip.rsplit(":", 1)[1]), ALICE)
        alice.subscribe(BUDDIES)
        answer = await alice.answer()
        assert answer.status == 200, f"{answer}\n{rls.output()}"
        seen = {}
        await notified_until(alice, seen, lambda seen: b"bob at home" in
                             seen.get(BOB, ("", b""))[1])

        # A change of the list, heard over xcap-diff: the next NOTIFY has the full state.
        await home.put(f"rls-services/users/{ALICE}/index", services_document(
            (BUDDIES, entries(BOB, "sip:carol@example.com"), ("presence",))), RLS_TYPE)
        while True:
            _, rlmi, _ = await alice.notified()
            if rlmi.full_state:
                break
        assert set(states(rlmi)) == {BOB, "sip:carol@example.com"}
    finally:
        if alice is not None:
            await alice.stop()
        await home.stop()
        rls.cleanup()
