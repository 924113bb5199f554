"""
The presence server alone (the profile presence-server), with the XDMS in
another container: it reads the rules over XCAP and hears of their changes
over SIP xcap-diff, and its watchers see no difference.
"""

import pytest_twisted

from sipclient import UdpPeer
from slee.container import Container
from slee.runtime import units_in
from slee.settings import shipped_units
from test_presence_live import ALICE, BOB, RULES_TYPE, RULES_URI, Peer, pidf, rules
from units import memory_db
from xcapclient import Xdms


async def started(directory, ra_properties, units):
    from twisted.internet import reactor
    container = Container(memory_db(), directory, clock=reactor, ra_properties=ra_properties)
    await container.start()
    first = ["sip", "sipevent", "xcap", "xcap-remote", "xdms"]
    for unit in sorted(units, key=lambda path: first.index(path.name)
                       if path.name in first else len(first)):
        described = await container.deploy(str(unit))
        for service in described["services"]:
            container.activate(service)
    return container


def sip_port_of(container):
    return container.registry.ra_entities["sip"].adaptor.transports.listening[0].port


@pytest_twisted.ensureDeferred
async def test_a_presence_server_with_a_remote_xdms(tmp_path):
    from twisted.internet import reactor
    (tmp_path / "xdms").mkdir()
    (tmp_path / "ps").mkdir()
    sip = {"endpoints": ["udp:0:interface=127.0.0.1"]}
    xdms = await started(tmp_path / "xdms", {
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "auth": "trust-localhost"},
        "sip": sip}, units_in(shipped_units(), "xdms"))
    http_port = xdms.registry.ra_entities["xcap"].adaptor.port.getHost().port
    ps = await started(tmp_path / "ps", {
        "xcap": {"xcap-root-url": f"http://127.0.0.1:{http_port}/xcap-root",
                 "xcap-diff-uri": f"sip:xcap-diff@127.0.0.1:{sip_port_of(xdms)}",
                 "sip-identity": "sip:presence@example.com"},
        "sip": sip}, units_in(shipped_units(), "presence-server"))
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
