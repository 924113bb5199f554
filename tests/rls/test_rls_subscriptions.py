"""
List subscriptions to the resource list server, live (RFC 4662, RFC 4826,
RFC 5367): what a SUBSCRIBE to a list is answered, who may make one, how
a service's list is flattened and when it is refused, how changes of the
service reach the watcher, and the subscription's life (refresh,
unsubscribe, fetch, expiry, versions, throttling).

SIP peers on 127.0.0.1 subscribe and publish; the XDMS is written over
HTTP; the container's timers run on a clock the tests advance.  Before a
test says that no NOTIFY came, it lets the container settle
(L{RlsServer.settle}), so that one that would come has had its chance.
"""

import zlib
from contextlib import asynccontextmanager

import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from documents import pres_rules
from rlsharness import (
    LIST_HEADERS, PIDF_TYPE, RL, RL_TYPE, RLS_TYPE, RlsServer, entries, rls_unit,
    services_document, states)
from units import SteppedClock

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
DAVE = "sip:dave@example.com"
ERIN = "sip:erin@example.com"
BUDDIES = "sip:alice@example.com;pres-list=buddies"
OTHERS = "sip:alice@example.com;pres-list=others"

ALICE_SERVICES = f"rls-services/users/{ALICE}/index"
ALICE_LISTS = f"resource-lists/users/{ALICE}/index"
ALICE_RULES = f"pres-rules/users/{ALICE}/index"
#: The RLS's default C{xcap-root-url}, and one set in a test's unit.
DEFAULT_ROOT = "http://127.0.0.1:8080/xcap-root"
OTHER_ROOT = "http://xdms.example.com/xcap"
#: The notify-interval of the shipped unit.
INTERVAL = 1.0
#: An Accept with the list types, without Supported: eventlist.
ACCEPT_LISTS = "Accept: application/rlmi+xml, multipart/related\r\n"
ADHOC_HEADERS = (LIST_HEADERS + "Require: recipient-list-subscribe\r\n"
                 f"Content-Type: {RL_TYPE}\r\nContent-Disposition: recipient-list\r\n")


@pytest_twisted.async_yield_fixture
async def rls(tmp_path):
    server = await RlsServer().start(tmp_path, SteppedClock())
    yield server
    await server.stop()


@asynccontextmanager
async def rls_with(tmp_path, **env):
    """A server whose RLS unit has the environment entries C{env} (TOML values)."""
    server = await RlsServer().start(tmp_path, SteppedClock(), rls=rls_unit(tmp_path, **env))
    try:
        yield server
    finally:
        await server.stop()


# -- documents -------------------------------------------------------------------------


async def alice_services(rls, *services):
    """Make C{services} ((uri, inner XML of its list, packages)) alice's services."""
    await rls.put(ALICE_SERVICES, services_document(*services), RLS_TYPE)


async def buddies(rls, *members):
    await alice_services(rls, (BUDDIES, entries(*members), ("presence",)))


async def alice_lists(rls, **lists):
    """Make alice's resource-lists document hold C{lists} (name -> inner XML of the list)."""
    body = "".join(f'<list name="{name}">{inner}</list>' for name, inner in lists.items())
    document = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<resource-lists xmlns="{RL}" xmlns:rl="{RL}">{body}</resource-lists>')
    await rls.put(ALICE_LISTS, document.encode(), RL_TYPE)


def list_path(name, owner=ALICE):
    """The path below the XCAP root of the list C{name} of C{owner}'s resource-lists."""
    return f"resource-lists/users/{owner}/index/~~/resource-lists/list%5b@name=%22{name}%22%5d"


def entry_path(name, uri):
    return f"{list_path(name)}/entry%5b@uri=%22{uri}%22%5d"


def external(reference):
    return f'<rl:external anchor="{reference}"/>'


def rules(sub_handling, watcher):
    """A pres-rules document giving C{watcher} C{sub_handling}."""
    return pres_rules(sub_handling, watcher)


def request_list(*uris):
    """An RFC 5367 body: C{uris} in a resource-lists document."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<resource-lists xmlns="{RL}" xmlns:rl="{RL}"><list>{entries(*uris)}</list>'
            f'</resource-lists>')


# -- subscribing -----------------------------------------------------------------------


async def answered(peer, target, headers=LIST_HEADERS, expires=600, body=""):
    """SUBSCRIBE C{target} on a new dialog: @return: the final answer."""
    peer.subscribe(target, headers=headers, expires=expires, body=body)
    return await peer.answer()


async def subscribed(rls, watcher, target=BUDDIES, **kwargs):
    """
    Subscribe, and read the first NOTIFY: the full state, with the
    members' first states (the SUBSCRIBE is answered once they came).

    @return: its RLMI list.
    """
    answer = await answered(watcher, target, **kwargs)
    assert answer.status == 200, bytes(answer).decode()
    notify, rlmi, _ = await watcher.notified()
    assert notify.headers.get("Subscription-State").startswith("active"), notify
    assert (rlmi.version, rlmi.full_state) == (0, True)
    assert all(resource.instances[0].state != "pending" for resource in rlmi.resources)
    return rlmi


async def first_members(watcher, target=BUDDIES):
    """
    Subscribe: @return: the URIs of the first NOTIFY's list, sorted (the
    RLMI's order says nothing), each as often as the list has it.
    """
    answer = await answered(watcher, target)
    assert answer.status == 200, bytes(answer).decode()
    _, rlmi, _ = await watcher.notified()
    assert rlmi.full_state
    return sorted(resource.uri for resource in rlmi.resources)


async def nothing_more(rls, peer):
    """Let the container settle: @return: what came to C{peer} meanwhile (nothing, we hope)."""
    await rls.settle()
    return list(peer.udp.inbox.messages)


def backend_subscriptions(rls):
    """How many subscriptions the presence server holds (the list server's back-end ones)."""
    return sum(entity["sbb"].startswith("PresenceNotifierSbb:")
               for entity in rls.container.sbb_entities())


async def published(peer, note):
    peer.publish(note=note)
    assert (await peer.answer()).status == 200


@asynccontextmanager
async def logged():
    """@return: (as the context) the log lines written meanwhile, as text."""
    lines = []

    def observe(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        yield lines
    finally:
        globalLogPublisher.removeObserver(observe)


def note_of(parts, state):
    """The PIDF of a member's L{states} entry, from the NOTIFY's C{parts}."""
    part = parts[state[3]]
    assert part.content_type == PIDF_TYPE
    return part.body


# -- what a SUBSCRIBE to a list is answered ----------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_list_subscribe_without_eventlist_support_is_refused_421(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    answer = await answered(alice, BUDDIES, headers="Event: presence\r\n" + ACCEPT_LISTS)
    assert answer.status == 421
    assert answer.headers.get("Require") == "eventlist"


@pytest_twisted.ensureDeferred
async def test_a_list_subscribe_accepting_only_pidf_is_refused_406(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    answer = await answered(alice, BUDDIES, headers="Event: presence\r\nSupported: eventlist\r\n"
                            f"Accept: {PIDF_TYPE}\r\n")
    assert answer.status == 406


@pytest_twisted.ensureDeferred
async def test_a_list_subscribe_without_accept_is_accepted(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    answer = await answered(alice, BUDDIES, headers="Event: presence\r\nSupported: eventlist\r\n")
    assert answer.status == 200
    notify, rlmi, _ = await alice.notified()
    assert notify.headers.get("Content-Type").startswith("multipart/related")
    assert set(states(rlmi)) == {BOB}


@pytest_twisted.ensureDeferred
async def test_a_service_of_another_package_is_refused_489(rls):
    alice = rls.peer(ALICE)
    await alice_services(rls, (BUDDIES, entries(BOB), ("dialog",)))
    answer = await answered(alice, BUDDIES)
    assert answer.status == 489
    assert answer.headers.get("Allow-Events") == "dialog"


@pytest_twisted.ensureDeferred
async def test_a_uri_that_is_not_a_list_goes_to_the_presence_server(rls):
    alice, bob = rls.peer(ALICE), rls.peer(BOB)
    await buddies(rls, BOB)
    await published(bob, "bob here")
    answer = await answered(alice, BOB)
    assert answer.status == 200
    notify = await alice.notify()
    assert notify.headers.get("Content-Type") == PIDF_TYPE
    assert notify.headers.get("Require") is None
    assert b"bob here" in notify.body


# -- who may subscribe -------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_the_owner_may_subscribe_to_their_list(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB, CAROL)
    assert await first_members(alice) == [BOB, CAROL]


@pytest_twisted.ensureDeferred
async def test_another_watcher_is_refused_403(rls):
    bob = rls.peer(BOB)
    await buddies(rls, CAROL)
    assert (await answered(bob, BUDDIES)).status == 403


@pytest_twisted.ensureDeferred
async def test_another_watcher_is_let_in_once_the_owners_rules_allow_them(rls):
    bob = rls.peer(BOB)
    await buddies(rls, CAROL)
    assert (await answered(bob, BUDDIES)).status == 403
    await rls.put(ALICE_RULES, rules("allow", BOB), "application/auth-policy+xml")
    await rls.settle()
    assert await first_members(bob) == [CAROL]


@pytest_twisted.ensureDeferred
async def test_a_watcher_the_owners_rules_no_longer_allow_is_let_go_rejected(rls):
    bob = rls.peer(BOB)
    await buddies(rls, CAROL)
    await rls.put(ALICE_RULES, rules("allow", BOB), "application/auth-policy+xml")
    await subscribed(rls, bob)
    await rls.put(ALICE_RULES, rules("block", BOB), "application/auth-policy+xml")
    notify = await bob.notify()
    assert notify.headers.get("Subscription-State") == "terminated;reason=rejected"
    assert not notify.body
    await rls.settle()
    assert backend_subscriptions(rls) == 0


# -- flattening ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_entry_ref_is_flattened_into_the_entry_it_names(rls):
    alice = rls.peer(ALICE)
    await alice_lists(rls, friends=entries(BOB, CAROL))
    await alice_services(rls, (BUDDIES, f'<rl:entry-ref ref="{entry_path("friends", CAROL)}"/>'
                               + entries(DAVE), ()))
    assert await first_members(alice) == [CAROL, DAVE]


@pytest_twisted.ensureDeferred
async def test_an_external_anchor_is_flattened_into_the_list_it_names(rls):
    alice = rls.peer(ALICE)
    await alice_lists(rls, friends=entries(BOB, CAROL))
    await alice_services(rls, (BUDDIES, external(f"{DEFAULT_ROOT}/{list_path('friends')}"), ()))
    assert await first_members(alice) == [BOB, CAROL]


@pytest_twisted.ensureDeferred
async def test_external_anchors_are_read_under_the_configured_xcap_root(tmp_path):
    async with rls_with(tmp_path, xcap_root_url=f'"{OTHER_ROOT}"') as rls:
        alice = rls.peer(ALICE)
        await alice_lists(rls, friends=entries(BOB, CAROL))
        await alice_services(rls, (BUDDIES, external(f"{OTHER_ROOT}/{list_path('friends')}"),
                                   ()))
        assert await first_members(alice) == [BOB, CAROL]


@pytest_twisted.ensureDeferred
async def test_a_uri_listed_twice_is_one_member(rls):
    alice = rls.peer(ALICE)
    await alice_lists(rls, friends=entries(BOB, CAROL))
    await alice_services(rls, (BUDDIES, entries(CAROL, BOB) + external(list_path("friends"))
                               + entries(CAROL), ()))
    assert await first_members(alice) == [BOB, CAROL]


@pytest_twisted.ensureDeferred
async def test_nested_lists_are_flattened(rls):
    alice = rls.peer(ALICE)
    await alice_services(rls, (BUDDIES, entries(BOB) + f"<rl:list>{entries(CAROL)}"
                               f"<rl:list>{entries(DAVE)}</rl:list></rl:list>", ()))
    assert await first_members(alice) == [BOB, CAROL, DAVE]


# -- lists that cannot be served ------------------------------------------------------


async def refused_and_logged(rls, target, reference, why):
    """
    SUBSCRIBE C{target}: it is refused 502, and a log line names it,
    C{reference} and says C{why}.
    """
    alice = rls.peer(ALICE)
    async with logged() as lines:
        answer = await answered(alice, target)
    assert answer.status == 502, bytes(answer).decode()
    assert reference in answer.headers.get("Warning"), bytes(answer).decode()
    assert any(target in line and reference in line and why in line for line in lines), lines


@pytest_twisted.ensureDeferred
async def test_a_list_that_contains_itself_is_refused_502(rls):
    anchor = f"{DEFAULT_ROOT}/{list_path('loop')}"
    await alice_lists(rls, loop=entries(BOB) + external(anchor))
    await alice_services(rls, (BUDDIES, external(anchor), ()))
    await refused_and_logged(rls, BUDDIES, anchor, "loop")


@pytest_twisted.ensureDeferred
async def test_services_that_contain_each_other_are_refused_502(rls):
    await alice_services(rls, (BUDDIES, entries(BOB, OTHERS), ()),
                         (OTHERS, entries(CAROL, BUDDIES), ()))
    await refused_and_logged(rls, BUDDIES, BUDDIES, "loop")


@pytest_twisted.ensureDeferred
async def test_a_reference_to_a_missing_document_is_refused_502(rls):
    anchor = f"{DEFAULT_ROOT}/{list_path('friends', owner=BOB)}"
    await alice_services(rls, (BUDDIES, entries(CAROL) + external(anchor), ()))
    await refused_and_logged(rls, BUDDIES, anchor, "no such document")


@pytest_twisted.ensureDeferred
async def test_a_list_over_max_list_size_is_refused_403(tmp_path):
    async with rls_with(tmp_path, max_list_size=3) as rls:
        alice = rls.peer(ALICE)
        await buddies(rls, BOB, CAROL, DAVE, ERIN)
        answer = await answered(alice, BUDDIES)
        assert answer.status == 403
        assert "more than 3 members" in answer.headers.get("Warning")


@pytest_twisted.ensureDeferred
async def test_subscriptions_to_a_list_past_max_list_watchers_are_refused_403(tmp_path):
    async with rls_with(tmp_path, max_list_watchers=2) as rls:
        alice = rls.peer(ALICE)
        await buddies(rls, BOB)
        for _ in range(2):
            assert (await answered(alice, BUDDIES)).status == 200
        answer = await answered(alice, BUDDIES)
        assert (answer.status, answer.reason) == (403, "Too many watchers of this list")


# -- the service changes -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_member_added_to_the_service_comes_in_full_state(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    await subscribed(rls, alice)
    await buddies(rls, BOB, CAROL)
    assert await nothing_more(rls, alice) == []
    rls.clock.advance(INTERVAL)
    notify, rlmi, _ = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, True)
    assert set(states(rlmi)) == {BOB, CAROL}


@pytest_twisted.ensureDeferred
async def test_a_member_removed_from_a_referenced_list_comes_in_full_state(rls):
    alice = rls.peer(ALICE)
    await alice_lists(rls, friends=entries(BOB, CAROL))
    await alice_services(rls, (BUDDIES, external(list_path("friends")), ()))
    assert set(states(await subscribed(rls, alice))) == {BOB, CAROL}
    await alice_lists(rls, friends=entries(CAROL))
    await rls.settle()
    rls.clock.advance(INTERVAL)
    notify, rlmi, _ = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, True)
    assert set(states(rlmi)) == {CAROL}
    # Bob is no member any more: his back-end subscription is gone, and
    # what he publishes is no news to alice.
    assert backend_subscriptions(rls) == 1
    await published(rls.peer(BOB), "not a buddy")
    rls.clock.advance(INTERVAL)
    assert await nothing_more(rls, alice) == []


@pytest_twisted.ensureDeferred
async def test_a_change_that_leaves_the_list_as_it_was_sends_nothing(rls):
    alice = rls.peer(ALICE)
    await alice_lists(rls, friends=entries(BOB), family=entries(CAROL))
    await alice_services(rls, (BUDDIES, external(list_path("friends")), ()))
    await subscribed(rls, alice)
    await alice_lists(rls, friends=entries(BOB), family=entries(CAROL, DAVE))
    await rls.settle()
    rls.clock.advance(INTERVAL)
    assert await nothing_more(rls, alice) == []


@pytest_twisted.ensureDeferred
async def test_a_deleted_service_ends_the_subscription_noresource(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    await subscribed(rls, alice)
    await rls.delete(ALICE_SERVICES)
    notify = await alice.notify()
    assert notify.headers.get("Subscription-State") == "terminated;reason=noresource"


# -- the subscription's life ------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_refresh_gets_full_state_and_the_next_version(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB, CAROL)
    await subscribed(rls, alice)
    alice.subscribe(BUDDIES, new_dialog=False)
    assert (await alice.answer()).status == 200
    notify, rlmi, _ = await alice.notified()
    assert notify.headers.get("Subscription-State").startswith("active")
    assert (rlmi.version, rlmi.full_state) == (1, True)
    assert {uri: state[1] for uri, state in states(rlmi).items()} == {
        BOB: "active", CAROL: "active"}


@pytest_twisted.ensureDeferred
async def test_an_unsubscribe_gets_a_final_full_state_notify(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB, CAROL)
    await subscribed(rls, alice)
    alice.subscribe(BUDDIES, expires=0, new_dialog=False)
    assert (await alice.answer()).status == 200
    notify, rlmi, _ = await alice.notified()
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert (rlmi.version, rlmi.full_state) == (1, True)
    assert set(states(rlmi)) == {BOB, CAROL}


@pytest_twisted.ensureDeferred
async def test_a_fetch_gets_one_notify_terminated_timeout(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB, CAROL)
    assert (await answered(alice, BUDDIES, expires=0)).status == 200
    notify, rlmi, _ = await alice.notified()
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert (rlmi.version, rlmi.full_state) == (0, True)
    assert set(states(rlmi)) == {BOB, CAROL}
    rls.clock.advance(INTERVAL)
    assert await nothing_more(rls, alice) == []


@pytest_twisted.ensureDeferred
async def test_an_expired_subscription_ends_timeout(rls):
    alice = rls.peer(ALICE)
    await buddies(rls, BOB)
    await subscribed(rls, alice, expires=600)
    rls.clock.advance(600 - INTERVAL + 1)
    notify = await alice.notify()
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"


@pytest_twisted.ensureDeferred
async def test_versions_count_up_by_one_across_a_refresh(rls):
    alice, bob = rls.peer(ALICE), rls.peer(BOB)
    await buddies(rls, BOB, CAROL)
    await subscribed(rls, alice)                            # version 0
    alice.subscribe(BUDDIES, new_dialog=False)
    assert (await alice.answer()).status == 200
    _, rlmi, _ = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, True)
    await published(bob, "after the refresh")
    await rls.settle()
    rls.clock.advance(INTERVAL)
    _, rlmi, _ = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (2, False)
    alice.subscribe(BUDDIES, expires=0, new_dialog=False)
    assert (await alice.answer()).status == 200
    _, rlmi, _ = await alice.notified()
    assert rlmi.version == 3


@pytest_twisted.ensureDeferred
async def test_a_partial_notify_carries_only_the_members_that_changed(rls):
    alice, bob = rls.peer(ALICE), rls.peer(BOB)
    await buddies(rls, BOB, CAROL, DAVE)
    first = states(await subscribed(rls, alice))
    await published(bob, "bob again")
    await rls.settle()
    rls.clock.advance(INTERVAL)
    _, rlmi, parts = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, False)
    now = states(rlmi)
    assert set(now) == {BOB}
    assert now[BOB][0] == first[BOB][0]
    assert b"bob again" in note_of(parts, now[BOB])


@pytest_twisted.ensureDeferred
async def test_publishes_within_one_interval_make_one_notify_after_it(rls):
    alice, bob, carol = rls.peer(ALICE), rls.peer(BOB), rls.peer(CAROL)
    await buddies(rls, BOB, CAROL)
    await subscribed(rls, alice)
    await published(bob, "bob one")
    await published(carol, "carol one")
    await published(bob, "bob two")
    assert await nothing_more(rls, alice) == []
    rls.clock.advance(INTERVAL / 2)
    assert await nothing_more(rls, alice) == []
    rls.clock.advance(INTERVAL / 2)
    _, rlmi, parts = await alice.notified()
    assert (rlmi.version, rlmi.full_state) == (1, False)
    now = states(rlmi)
    assert set(now) == {BOB, CAROL}
    assert b"bob two" in note_of(parts, now[BOB])
    assert b"carol one" in note_of(parts, now[CAROL])
    assert await nothing_more(rls, alice) == []


# -- lists in the SUBSCRIBE (RFC 5367) ---------------------------------------------------

#: The Request-URI of the SUBSCRIBEs with a list: the RLMI's uri, parameters and all.
ADHOC_URI = "sip:alice-contacts@example.com;list=linphone"


async def adhoc_members(peer, body, headers=ADHOC_HEADERS):
    """
    SUBSCRIBE with the list C{body}: @return: the URI and the members
    (sorted) of the first NOTIFY's list.
    """
    answer = await answered(peer, ADHOC_URI, headers=headers, body=body)
    assert answer.status == 200, bytes(answer).decode()
    _, rlmi, _ = await peer.notified()
    return rlmi.uri, sorted(resource.uri for resource in rlmi.resources)


@pytest_twisted.ensureDeferred
async def test_a_list_in_the_subscribe_is_subscribed_to(rls):
    alice = rls.peer(ALICE)
    assert await adhoc_members(alice, request_list(BOB, CAROL)) == (ADHOC_URI, [BOB, CAROL])


@pytest_twisted.ensureDeferred
async def test_a_deflated_list_in_the_subscribe_is_subscribed_to(rls):
    alice = rls.peer(ALICE)
    body = zlib.compress(request_list(BOB, CAROL).encode())
    assert await adhoc_members(alice, body, ADHOC_HEADERS + "Content-Encoding: deflate\r\n") \
        == (ADHOC_URI, [BOB, CAROL])


@pytest_twisted.ensureDeferred
async def test_lists_in_the_subscribe_may_be_turned_off_420(tmp_path):
    async with rls_with(tmp_path, request_contained_lists="false") as rls:
        alice = rls.peer(ALICE)
        # With the option tag required, and without (a client that forgot it).
        for headers in (ADHOC_HEADERS,
                        ADHOC_HEADERS.replace("Require: recipient-list-subscribe\r\n", "")):
            answer = await answered(alice, ADHOC_URI, headers=headers, body=request_list(BOB))
            assert answer.status == 420, headers
            assert answer.headers.get("Unsupported") == "recipient-list-subscribe"


@pytest_twisted.ensureDeferred
async def test_a_deflate_bomb_in_the_subscribe_is_refused_413(rls):
    alice = rls.peer(ALICE)
    bomb = request_list(BOB).replace("<list>", "<list>" + " " * (4 << 20)).encode()
    body = zlib.compress(bomb, 9)
    assert len(body) < 8000
    answer = await answered(alice, ADHOC_URI, body=body,
                            headers=ADHOC_HEADERS + "Content-Encoding: deflate\r\n")
    assert answer.status == 413
