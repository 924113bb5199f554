"""
The resource list server serving a service of the container: the example
deployables/examples/team-board subscribes to alice's list through the
subscription client and logs who on it is online, while members publish
over SIP (UDP on 127.0.0.1).

The test waits on events only: the board's log lines (a log observer) and
the RLS setting its NOTIFY throttle timer on the container's clock, which
the test then advances by the notify interval.  The one exception is the
list directory, which announces nothing: the test polls it, boundedly.
"""

import shutil

import pytest_twisted
from twisted.internet import defer, task
from twisted.logger import globalLogPublisher

from rlsharness import RLS_TYPE, RlsServer, entries, services_document
from sbbs.sipevent.list_directory import is_list_resource
from sipclient import TIMEOUT
from slee.settings import shipped_units
from units import SteppedClock

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
CAROL = "sip:carol@example.com"
DAVE = "sip:dave@example.com"
BOARD = "sip:board@example.com"
TEAM = "sip:alice@example.com;pres-list=team"
RULES_TYPE = "application/auth-policy+xml"
#: The RLS's notify-interval (deployables/rls), and the board's first retry.
NOTIFY_INTERVAL = 1.0
RETRY_FIRST = 5
#: The board's line (team_board.sbb), and the namespace of its tracer.
BOARD_LINE = "team board {list}: online {online}"
BOARD_NAMESPACE = "slee.sbb.team-board.TeamBoardSbb"
REFRESHED = "team board {list}: subscription refreshed ({expires} s)"
REFUSED = "team board {list}: subscription refused ({error}), trying again in {delay} s"
NOT_A_LIST = ("team board {list}: not a resource list (a NOTIFY of {type}), "
              "trying again in {delay} s")
TERMINATED = ("team board {list}: subscription terminated ({reason}), "
              "subscribing again in {delay} s")


def rules_allowing(watcher):
    """A pres-rules document that allows C{watcher}."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<cr:ruleset xmlns="urn:ietf:params:xml:ns:pres-rules" '
            f'xmlns:cr="urn:ietf:params:xml:ns:common-policy">'
            f'<cr:rule id="board"><cr:conditions><cr:identity><cr:one id="{watcher}"/>'
            f'</cr:identity></cr:conditions>'
            f'<cr:actions><sub-handling>allow</sub-handling></cr:actions>'
            f'</cr:rule></cr:ruleset>').encode()


def board_unit(tmp_path, watcher, list_uri):
    """A copy of the team board's unit, its environment set to C{watcher} and C{list_uri}."""
    copy = tmp_path / "team-board"
    shutil.copytree(shipped_units() / "examples" / "team-board", copy)
    descriptor = copy / "deployable.toml"
    text = descriptor.read_text()
    line = next(line for line in text.splitlines() if line.startswith("env = { watcher"))
    descriptor.write_text(text.replace(
        line, f'env = {{ watcher = "{watcher}", list = "{list_uri}" }}'))
    return copy


class Watch:
    """
    What the test waits for: the board's lines (from a log observer) and a
    timer of the container due within the notify interval (from the
    clock); either wakes the test, in the reactor's next turn.
    """

    def __init__(self, reactor):
        self.reactor = reactor
        self.events = []
        self.waiter = None

    def observe(self, event):
        if event.get("log_namespace") == BOARD_NAMESPACE:
            self.events.append(event)
            self.wake()

    def said(self, log_format):
        """The board's lines of C{log_format}, in order."""
        return [event for event in self.events if event.get("log_format") == log_format]

    @property
    def lines(self):
        """What the board said of the members online, each time: (list, online)."""
        return [(event["list"], tuple(event["online"])) for event in self.said(BOARD_LINE)]

    @property
    def online(self):
        """The members online the board said last (none before it said anything)."""
        lines = self.lines
        return lines[-1][1] if lines else ()

    def wake(self):
        if self.waiter is not None:
            waiter, self.waiter = self.waiter, None
            self.reactor.callLater(0, waiter.callback, None)

    def wait(self):
        """@return: a Deferred firing at the next wake, or failing after TIMEOUT seconds."""
        self.waiter = defer.Deferred()
        return self.waiter.addTimeout(TIMEOUT, self.reactor)


class BoardClock(SteppedClock):
    """A SteppedClock that wakes C{watch} when a timer due within the notify interval is set."""

    watch = None

    def callLater(self, delay, function, *args, **kwargs):
        call = super().callLater(delay, function, *args, **kwargs)
        if 0 < delay <= NOTIFY_INTERVAL and self.watch is not None:
            self.watch.wake()
        return call

    def due_soon(self):
        now = self.seconds()
        return any(call.getTime() <= now + NOTIFY_INTERVAL
                   for call in self.later.getDelayedCalls())


async def until(server, watch, condition, what):
    """
    Wait until C{condition()} holds, checked at each wake of C{watch};
    advance the clock by the notify interval whenever the RLS waits for it
    to send a NOTIFY.
    """
    for _ in range(100):
        if condition():
            return
        woken = watch.wait()        # before advancing: what that sets going wakes it too
        if server.clock.due_soon():
            server.clock.advance(NOTIFY_INTERVAL)
        await woken
    raise AssertionError(f"never {what}: {watch.lines}")


async def board_shows(server, watch, online):
    """Wait until the board's last line says C{online}."""
    await until(server, watch, lambda: watch.online == online, f"showed {online}")


async def list_served(server, uri, served=True):
    """Wait until the RLS's list directory has (or no longer has) C{uri}: bounded polling."""
    for _ in range(int(TIMEOUT / 0.01)):
        if is_list_resource(uri) == served:
            return
        await task.deferLater(server.reactor, 0.01, lambda: None)
    raise AssertionError(f"the list directory never {'had' if served else 'lost'} {uri}")


def board_state(container):
    """The CMP fields of the board's entity."""
    def read():
        boards = [entity.cmp.fields() for entity in container.engine.state.entities.values()
                  if entity.sbb.startswith("TeamBoardSbb:")]
        assert len(boards) == 1, boards
        return boards[0]
    return container.router.run_in_transaction(read)


@pytest_twisted.async_yield_fixture
async def server(tmp_path):
    """The RLS (and the presence server, on policy allow), and a watch on the board."""
    from twisted.internet import reactor
    clock = BoardClock()
    running = await RlsServer().start(tmp_path, clock)
    watch = clock.watch = Watch(reactor)
    globalLogPublisher.addObserver(watch.observe)
    try:
        yield running, watch
    finally:
        globalLogPublisher.removeObserver(watch.observe)
        await running.stop()


@pytest_twisted.async_yield_fixture
async def board(server):
    """Alice's team list (bob, carol, dave), and her rules allowing the board."""
    running, _ = server
    await allow_board(running)
    await put_team(running)
    await list_served(running, TEAM)
    yield server


async def allow_board(server):
    await server.put(f"pres-rules/users/{ALICE}/index", rules_allowing(BOARD), RULES_TYPE)


async def put_team(server):
    await server.put(f"rls-services/users/{ALICE}/index",
                     services_document((TEAM, entries(BOB, CAROL, DAVE), ("presence",))),
                     RLS_TYPE)


async def deploy_board(server, tmp_path):
    described = await server.container.deploy(str(board_unit(tmp_path, BOARD, TEAM)))
    for service in described["services"]:
        server.container.activate(service)


@pytest_twisted.ensureDeferred
async def test_the_team_board_shows_who_on_the_list_is_online(board, tmp_path):
    server, watch = board
    bob, carol = server.peer(BOB), server.peer(CAROL)
    bob.publish(note="bob here")
    carol.publish(note="carol here")
    assert (await bob.answer()).status == 200
    assert (await carol.answer()).status == 200
    await deploy_board(server, tmp_path)
    await board_shows(server, watch, (BOB, CAROL))
    assert watch.lines[-1][0] == TEAM
    state = board_state(server.container)
    assert state["online"] == (BOB, CAROL)
    assert state["members"] == {BOB: ("bob", "active", True), CAROL: ("carol", "active", True),
                                DAVE: ("dave", "active", False)}
    assert state["refresh_timer"] is not None and state.get("failures", 0) == 0

    # carol goes offline: a partial state, merged into the board
    carol.publish(basic="closed", note="gone")
    assert (await carol.answer()).status == 200
    await board_shows(server, watch, (BOB,))
    state = board_state(server.container)
    assert state["online"] == (BOB,) and state["members"][CAROL] == ("carol", "active", False)
    assert state["members"][DAVE] == ("dave", "active", False)     # not in the partial state
    # each change of the set of members online was logged once
    said = [online for _, online in watch.lines]
    assert said[-2:] == [(BOB, CAROL), (BOB,)]
    assert all(before != after for before, after in zip(said, said[1:]))
    assert set(said[:-2]) <= {(BOB,), (CAROL,)}


@pytest_twisted.ensureDeferred
async def test_the_team_board_refreshes_and_subscribes_again_when_terminated(board, tmp_path):
    server, watch = board
    bob = server.peer(BOB)
    bob.publish()
    assert (await bob.answer()).status == 200
    await deploy_board(server, tmp_path)
    await board_shows(server, watch, (BOB,))
    first = board_state(server.container)

    # the refresh (300 s before the hour granted ends) is accepted: the same
    # subscription, and the board as it was
    server.clock.advance(3600 - 300)
    await until(server, watch, lambda: watch.said(REFRESHED), "refreshed")
    state = board_state(server.container)
    assert state["subscription_id"] == first["subscription_id"]
    assert state["refresh_timer"] not in (None, first["refresh_timer"])
    assert state["online"] == (BOB,) and watch.online == (BOB,)

    # the list is deleted: the subscription ends (noresource), the board is
    # cleared, and it subscribes again after a while, to the list put back
    await server.xdms.request("DELETE", f"/xcap-root/rls-services/users/{ALICE}/index")
    await board_shows(server, watch, ())
    [ended] = watch.said(TERMINATED)
    assert (ended["list"], ended["reason"], ended["delay"]) == (TEAM, "noresource", RETRY_FIRST)
    await list_served(server, TEAM, served=False)
    assert board_state(server.container)["subscription_id"] is None
    await put_team(server)
    await list_served(server, TEAM)
    server.clock.advance(RETRY_FIRST)
    await board_shows(server, watch, (BOB,))
    state = board_state(server.container)
    assert state["subscription_id"] != first["subscription_id"]
    assert state["members"][BOB] == ("bob", "active", True)


@pytest_twisted.ensureDeferred
async def test_the_team_board_waits_for_its_list_and_its_access(server, tmp_path):
    server, watch = server          # no list yet, no rules
    bob = server.peer(BOB)
    bob.publish()
    assert (await bob.answer()).status == 200
    # deployed before the list exists (units deployed at start, say): the
    # presence server takes the URI for alice's, and the board lets go
    await deploy_board(server, tmp_path)
    await until(server, watch, lambda: watch.said(NOT_A_LIST), "found it is no list")
    [not_yet] = watch.said(NOT_A_LIST)
    assert (not_yet["type"], not_yet["delay"]) == ("application/pidf+xml", RETRY_FIRST)
    # the list, but alice's rules do not let the board see it: 403
    await put_team(server)
    await list_served(server, TEAM)
    server.clock.advance(RETRY_FIRST)
    await until(server, watch, lambda: watch.said(REFUSED), "was refused")
    [refused] = watch.said(REFUSED)
    assert (refused["error"], refused["delay"]) == (403, 2 * RETRY_FIRST)
    # alice allows it: the next try is the good one
    await allow_board(server)
    server.clock.advance(2 * RETRY_FIRST)
    await board_shows(server, watch, (BOB,))
    state = board_state(server.container)
    assert state["failures"] == 2 and state["generation"] == 3
