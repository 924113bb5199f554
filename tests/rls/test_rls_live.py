"""
The resource list server live: SIP peers on 127.0.0.1 publish, and
subscribe to lists of the XDMS, written over HTTP; the NOTIFYs' multipart
bodies and RLMI documents are parsed and checked.  The container's timers
run on a clock the tests advance.
"""

import pytest_twisted

from rlsharness import (
    PIDF_TYPE, RLS_TYPE, RlsServer, entries, services_document, states)
from units import SteppedClock

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
BUDDIES = "sip:alice@example.com;pres-list=buddies"


@pytest_twisted.async_yield_fixture
async def rls(tmp_path):
    server = await RlsServer().start(tmp_path, SteppedClock())
    yield server
    await server.stop()


async def buddies(rls, *members):
    await rls.put(f"rls-services/users/{ALICE}/index",
                  services_document((BUDDIES, entries(*members), ("presence",))), RLS_TYPE)


@pytest_twisted.ensureDeferred
async def test_a_list_subscription_gets_full_then_partial_rlmi_state(rls):
    bob, alice = rls.peer(BOB), rls.peer(ALICE)
    bob.publish(note="bob here")
    assert (await bob.answer()).status == 200
    await rls.put(f"rls-services/users/{ALICE}/index", services_document(
        (BUDDIES, "<rl:display-name>Buddies</rl:display-name>" + entries(BOB, CAROL),
         ("presence",))), RLS_TYPE)
    alice.subscribe(BUDDIES)
    answer = await alice.answer()
    assert answer.status == 200, bytes(answer).decode()
    # The SUBSCRIBE is answered once the members said their first states:
    # the first NOTIFY has them all.
    notify, rlmi, parts = await alice.notified()
    assert notify.headers.get("Require") == "eventlist"
    assert notify.headers.get("Subscription-State").startswith("active")
    assert (rlmi.uri, rlmi.version, rlmi.full_state) == (BUDDIES, 0, True)
    first = states(rlmi)
    assert set(first) == {BOB, CAROL}
    assert first[BOB][1] == first[CAROL][1] == "active"
    assert rlmi.name == "Buddies"                   # the list's display name
    assert {resource.uri: resource.name for resource in rlmi.resources} == {
        BOB: "bob", CAROL: "carol"}                 # the entries' display names
    part = parts[first[BOB][3]]
    assert part.content_type == PIDF_TYPE and b"bob here" in part.body
    # A change: one NOTIFY, once the interval is over, with bob alone.
    bob.publish(note="bob away")
    assert (await bob.answer()).status == 200
    rls.clock.advance(1.0)
    notify, rlmi, parts = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, False)
    now = states(rlmi)
    assert set(now) == {BOB} and now[BOB][0] == first[BOB][0]     # a stable instance id
    assert b"bob away" in parts[now[BOB][3]].body


@pytest_twisted.ensureDeferred
async def test_local_back_end_subscriptions_are_refreshed_before_they_expire(rls):
    bob, alice = rls.peer(BOB), rls.peer(ALICE)
    bob.publish(note="bob here")
    assert (await bob.answer()).status == 200
    await buddies(rls, BOB)
    alice.subscribe(BUDDIES, expires=7200)
    assert (await alice.answer()).status == 200
    _, rlmi, _ = await alice.notified()
    assert states(rlmi)[BOB][1] == "active"
    # Past the back-end subscription's hour: refreshed at 3,300 s, it never ended.
    rls.clock.advance(3300)
    await rls.settle()                              # the refreshes go out
    rls.clock.advance(400)
    bob.publish(note="bob an hour later")           # (his first publication expired)
    assert (await bob.answer()).status == 200
    while True:
        rls.clock.advance(1.0)
        _, rlmi, parts = await alice.notified()
        [(_, state, _, cid)] = states(rlmi).values()
        assert state == "active" and not rlmi.full_state, states(rlmi)
        if b"bob an hour later" in parts[cid].body:
            break


@pytest_twisted.ensureDeferred
async def test_a_member_that_is_a_list_is_a_nested_rlmi_part(rls):
    from sbbs.rls.rlmi import parse_multipart, parse_rlmi
    colleagues = "sip:alice@example.com;pres-list=colleagues"
    carol, alice = rls.peer(CAROL), rls.peer(ALICE)
    carol.publish(note="carol at work")
    assert (await carol.answer()).status == 200
    await rls.put(f"rls-services/users/{ALICE}/index", services_document(
        (BUDDIES, entries(BOB, colleagues), ("presence",)),
        (colleagues, entries(CAROL), ("presence",))), RLS_TYPE)

    def nested(rlmi, parts):
        """The colleagues' list, as the part of this NOTIFY says it, or None."""
        cid = states(rlmi).get(colleagues, (None,) * 4)[3]
        if cid is None:
            return None
        part = parts[cid]
        root, inner = parse_multipart(part.content_type, part.body)
        return parse_rlmi(root.body), {p.content_id: p for p in inner}

    alice.subscribe(BUDDIES, expires=3600)
    assert (await alice.answer()).status == 200
    found = None
    while found is None or states(found[0]).get(CAROL, (None,) * 4)[3] is None:
        rls.clock.advance(1.0)
        _, rlmi, parts = await alice.notified()
        found = nested(rlmi, parts) or found
    inner, inner_parts = found
    assert inner.uri == colleagues and inner.full_state
    assert b"carol at work" in inner_parts[states(inner)[CAROL][3]].body

    # carol changes: the nested list says only that; alice's refresh still
    # gets the colleagues' whole state.
    carol.publish(note="carol in a meeting")
    assert (await carol.answer()).status == 200
    while True:
        rls.clock.advance(1.0)
        _, rlmi, parts = await alice.notified()
        found = nested(rlmi, parts)
        if found and b"meeting" in b"".join(p.body for p in found[1].values()):
            break
    alice.subscribe(BUDDIES, expires=3600, new_dialog=False)
    assert (await alice.answer()).status == 200
    _, rlmi, parts = await alice.notified()
    inner, inner_parts = nested(rlmi, parts)
    assert rlmi.full_state and inner.full_state and set(states(inner)) == {CAROL}
    assert b"carol in a meeting" in inner_parts[states(inner)[CAROL][3]].body
