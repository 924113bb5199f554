"""
A list whose member, alice, is served by another container that
authenticates SIP (C{auth = digest} against a user store): the list
server's back-end SUBSCRIBE gets through either with an account of that
store (the SIP RA answers the challenge), or as a trusted peer asserting
the list's watcher, whose identity alice's pres-rules then judge.
"""

import pytest_twisted

from documents import pres_rules
from rlsharness import RLS_TYPE, RlsServer, entries, pidf, rls_unit, services_document
from test_rls_remote import notified_until
from test_sip_authentication import ALICE, BOB, USERS, Client, publish_headers

CAROL = "sip:carol@example.com"
RULES_TYPE = "application/auth-policy+xml"
#: The list server's account in the member's server's store.
ACCOUNT = ("rls@example.com", "r")


def friends_of(watcher):
    return f"{watcher};pres-list=friends"


async def servers(tmp_path, member_sip, policy, rls_sip=None):
    """
    @return: (the member's server, with the user store and C{member_sip}
        over its SIP properties; the list server, sending to it as its
        outbound proxy, with C{rls_sip} over its SIP properties).
    """
    from twisted.internet import reactor
    for name in ("member", "rls"):
        (tmp_path / name).mkdir()
    users = tmp_path / "users.toml"
    users.write_text(USERS + f'[users."{ACCOUNT[0]}"]\npassword = "{ACCOUNT[1]}"\n')
    member = await RlsServer().start(tmp_path / "member", reactor, policy=policy, rls=False,
                                     sip={"users": str(users), **member_sip})
    rls = await RlsServer().start(tmp_path / "rls", reactor, sip=rls_sip, rls=rls_unit(
        tmp_path, notify_interval="0.05", local_domains='["local.test"]',
        outbound_proxy=f'"sip:127.0.0.1:{member.sip_port}"'))
    return member, rls


async def publish_alice(member, note):
    """alice publishes at her server, answering its challenge."""
    udp = member.peer(ALICE).udp
    alice = Client(udp, member.sip_port, ALICE)
    answer = await alice.request("PUBLISH", ALICE, publish_headers() + "Expires: 3600\r\n",
                                 pidf(ALICE, note=note))
    assert answer.status == 200, answer


async def watch_list(rls, watcher, done):
    """C{watcher} subscribes to its list of alice: @return: what it sees once C{done(seen)}."""
    await rls.put(f"rls-services/users/{watcher}/index",
                  services_document((friends_of(watcher), entries(ALICE), ("presence",))),
                  RLS_TYPE)
    peer = rls.peer(watcher)
    peer.subscribe(friends_of(watcher))
    assert (await peer.answer()).status == 200
    seen = {}
    await notified_until(peer, seen, done)
    return seen[ALICE]


def active_with(note):
    return lambda seen: seen.get(ALICE, ("",))[0] == "active" and note in seen[ALICE][1]


@pytest_twisted.ensureDeferred
async def test_the_list_server_answers_the_members_challenge_with_its_account(tmp_path):
    member, rls = await servers(tmp_path, {}, "allow", rls_sip={
        "client-username": ACCOUNT[0], "client-password": ACCOUNT[1]})
    try:
        await publish_alice(member, "alice far away")
        await watch_list(rls, BOB, active_with(b"alice far away"))
        await publish_alice(member, "alice back")   # heard over the signed subscription
        peer = rls.peers[-1]
        await notified_until(peer, {}, active_with(b"alice back"))
    finally:
        await rls.stop()
        await member.stop()


@pytest_twisted.ensureDeferred
async def test_a_trusted_list_server_asserts_the_watcher_whom_the_rules_judge(tmp_path):
    member, rls = await servers(tmp_path, {"trusted-peers": ["127.0.0.1"]}, "confirm")
    try:
        await member.put(f"pres-rules/users/{ALICE}/index", pres_rules("allow", BOB),
                         RULES_TYPE)
        await publish_alice(member, "for bob only")
        await watch_list(rls, BOB, active_with(b"for bob only"))
        _, body = await watch_list(rls, CAROL,
                                       lambda seen: seen.get(ALICE, ("",))[0] == "pending")
        assert b"for bob only" not in body
    finally:
        await rls.stop()
        await member.stop()

