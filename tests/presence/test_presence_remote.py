"""
The presence server alone (the profile presence-server), with the XDMS in
another container: it reads the rules over XCAP and hears of their changes
over SIP xcap-diff, and its watchers see no difference.
"""

import pytest_twisted

from sipclient import UdpPeer
from slee.settings import shipped_profiles, shipped_units
from test_presence_live import ALICE, BOB, RULES_TYPE, RULES_URI, Peer, pidf, rules
from test_sip_authentication import ADMIN, PASSWORDS, USERS
from units import LOCAL_RAS, sip_port_of, started_container, xcap_port_of
from xcapclient import Xdms


def profile(name):
    """The shipped units of a profile, in the order its list gives (what they need first)."""
    return [shipped_units() / unit for unit in shipped_profiles()[name]]


@pytest_twisted.ensureDeferred
async def test_a_presence_server_with_a_remote_xdms(tmp_path):
    await watched_over_a_remote_xdms(tmp_path, LOCAL_RAS, {}, "sip:presence@example.com")


@pytest_twisted.ensureDeferred
async def test_a_remote_xdms_that_authenticates_sip(tmp_path):
    """Its xcap-diff notifier challenges: the presence server answers with its account."""
    users = tmp_path / "users.toml"
    users.write_text(USERS)
    await watched_over_a_remote_xdms(
        tmp_path, {**LOCAL_RAS, "sip": {**LOCAL_RAS["sip"], "users": str(users)}},
        {"client-username": "admin@example.com", "client-password": PASSWORDS[ADMIN]}, ADMIN)


async def watched_over_a_remote_xdms(tmp_path, xdms_properties, sip_properties, identity):
    """
    bob's subscription to alice waits for her rules, which the presence
    server hears of over xcap-diff from the XDMS (its RA properties
    C{xdms_properties}), subscribing as C{identity} with C{sip_properties}.
    """
    from twisted.internet import reactor
    (tmp_path / "xdms").mkdir()
    (tmp_path / "ps").mkdir()
    xdms = await started_container(tmp_path / "xdms", profile("xdms"), xdms_properties)
    http_port = xcap_port_of(xdms)
    ps = await started_container(tmp_path / "ps", profile("presence-server"), ra_properties={
        "xcap": {"xcap-root-url": f"http://127.0.0.1:{http_port}/xcap-root",
                 "xcap-diff-uri": f"sip:xcap-diff@127.0.0.1:{sip_port_of(xdms)}",
                 "sip-identity": identity},
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"], **sip_properties}})
    client = Xdms(xdms, http_port)
    sockets, peers = [], []
    for user in (ALICE, BOB):
        udp = UdpPeer(reactor, sip_port_of(ps))
        sockets.append(reactor.listenUDP(0, udp, interface="127.0.0.1"))
        peers.append(Peer(udp, sip_port_of(ps), user))
    alice, bob = peers
    try:
        bob.send("SUBSCRIBE", headers="Event: presence\r\n")
        assert (await bob.answer()).status == 202           # no rules: confirm
        await bob.notified()
        response, _ = await client.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)
        assert response.code == 201
        approved = await bob.notified()                      # heard over xcap-diff
        while not approved.headers.get("Subscription-State").startswith("active"):
            approved = await bob.notified()
        alice.send("PUBLISH", headers="Event: presence\r\n", body=pidf("open", "remote"))
        assert (await alice.answer()).status == 200
        notify = await bob.notified()
        assert b"remote" in notify.body
    finally:
        for socket in sockets:
            await socket.stopListening()
        await client.pool.closeCachedConnections()
        await ps.stop()
        await xdms.stop()
