"""
Event routing and transactions (JAIN SLEE 1.1 chapter 8), on a container
with an in-memory database and a fake clock, driven through the probe RA.
"""

import gc
import time

import pytest

from units import ContainerHarness


@pytest.fixture
def slee(tmp_path):
    harness = ContainerHarness(tmp_path)
    harness.deploy("probe")
    import probe_unit
    from probe_unit.ra import ProbeAdaptor
    probe_unit.JOURNAL.clear()
    harness.ra = ProbeAdaptor.instance
    harness.journal = probe_unit.JOURNAL
    yield harness
    harness.stop()


def roots(slee, sbb="Root"):
    return [e for e in slee.container.sbb_entities() if e["sbb"].startswith(sbb + ":")]


def root_count(slee):
    [root] = roots(slee)
    return int(root["cmp"]["count"])


def test_initial_event_creates_root_and_attaches(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "y"})
    slee.run()
    [root] = roots(slee)
    assert root["attached"] == ["probe/a"]
    assert root["cmp"]["count"] == "2"


def test_convergence_name_per_activity_and_selector(slee):
    for handle in ("a", "b"):
        slee.ra.start(handle)
        slee.ra.fire(handle, {"op": "x"})
    slee.ra.fire("a", {"op": "x", "group": "other"})
    slee.ra.fire("b", {"op": "not-initial"})
    slee.run()
    counts = sorted(int(r["cmp"]["count"]) for r in roots(slee))
    # a/"" and a/"other" are two roots, both attached to a: the first got
    # both events on a.  b's root got one initial event and one delivery as
    # an attached entity (the selector said "not initial").
    assert counts == [1, 2, 2]


def test_priority_order(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    assert slee.journal == [("high", "x"), ("root", "x")]


def test_events_on_one_activity_in_firing_order(slee):
    slee.ra.start("a")
    for i in range(600):
        slee.ra.fire("a", {"op": str(i)})
    slee.run()
    assert [op for who, op in slee.journal if who == "root"] == [str(i) for i in range(600)]


def test_failed_handler_rolls_back_alone(slee):
    slee.ra.start("a")
    slee.ra.start("b")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("b", {"op": "send-then-fail", "message": "lost"})
    slee.ra.fire("a", {"op": "send", "message": "kept"})
    slee.run()
    assert slee.ra.sent == ["kept"]
    [a] = [r for r in roots(slee) if r["attached"] == ["probe/a"]]
    assert a["cmp"]["count"] == "2"
    # b's root entity was created by the failing delivery: rolled back too.
    assert all(r["attached"] != ["probe/b"] for r in roots(slee))
    assert slee.container.status()["events"]["rolled_back"] == 1


def test_exception_callbacks(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    slee.journal.clear()
    slee.ra.fire("a", {"op": "fail"})
    slee.run()
    assert ("root", "exception told to fail") in slee.journal
    assert slee.journal[-1] == ("root", "rolled back fail")
    assert root_count(slee) == 1


def test_rolled_back_fire_and_timer_are_discarded(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "fire-then-fail"})
    slee.ra.fire("a", {"op": "timer-then-fail", "delay": 5})
    slee.run(10)
    assert ("root", "poked") not in slee.journal
    assert ("root", "timer fired") not in slee.journal
    assert slee.container.engine.timers.armed_count() == 0
    assert root_count(slee) == 1


def test_set_rollback_only(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "rollback"})
    slee.run()
    assert root_count(slee) == 1


def test_fired_event_delivered_after_commit(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "fire"})
    slee.run()
    assert [op for who, op in slee.journal if who == "root"] == ["fire", "poked"]


def test_handler_failing_forever_does_not_stop_the_container(slee):
    slee.ra.start("a")
    for _ in range(50):
        slee.ra.fire("a", {"op": "fail"})
    slee.ra.fire("a", {"op": "send", "message": "still here"})
    slee.run()
    assert slee.ra.sent == ["still here"]
    assert slee.container.status()["events"]["rolled_back"] == 50


def test_activity_end_removes_unattached_trees(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "child", "text": "hi"})
    slee.run()
    assert len(slee.container.sbb_entities()) == 3   # root, its child, high
    slee.ra.end("a")
    slee.run()
    assert ("root", "end") in slee.journal
    assert slee.journal[-2:] == [("child", "removed"), ("root", "removed")]
    assert slee.container.sbb_entities() == []
    assert slee.container.activities() == [
        a for a in slee.container.activities() if a["ra"] == "slee.service"]


def test_activity_nothing_holds_ends_without_an_operation(slee):
    from probe_unit import POKE
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"}, event_type=POKE)     # not initial: nothing attaches
    slee.run()
    slee.ra.end("a")
    assert len(slee.container.router) == 0
    assert "probe/a" not in slee.container.engine.live


def test_end_waits_for_the_events_fired_before_it(slee):
    from probe_unit import POKE
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"}, event_type=POKE)
    slee.ra.end("a")        # no record yet, but the POKE is still to come
    assert len(slee.container.router) == 2
    slee.ra.start("b")
    slee.ra.fire("b", {"op": "x"})
    slee.run()
    slee.ra.fire("b", {"op": "y"})
    slee.ra.end("b")
    slee.run()
    assert slee.journal[-4:] == [("high", "y"), ("root", "y"), ("root", "end"),
                                 ("root", "removed")]
    assert slee.container.sbb_entities() == []
    assert not [key for key in slee.container.engine.live if key.startswith("probe/")]


def test_end_after_the_record_was_made_again(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "leave"})      # every entity detaches: the record goes
    slee.ra.fire("a", {"op": "y"})          # new roots, a new record
    slee.run()
    slee.ra.end("a")
    slee.run()
    assert slee.journal[-2:] == [("root", "end"), ("root", "removed")]
    assert slee.container.sbb_entities() == []


def test_end_after_a_retired_record_came_back(slee, monkeypatch):
    """
    An event retires the activity's record, then its transaction aborts
    for good: the record is back, so is the activity's end event.
    """
    from ZODB.POSException import ConflictError
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()

    def conflict():
        raise ConflictError("always")

    monkeypatch.setattr(slee.container.transaction_manager, "commit", conflict)
    slee.ra.fire("a", {"op": "leave"})      # every entity detaches: the record goes
    slee.run()
    monkeypatch.undo()
    assert slee.container.status()["events"]["rolled_back"] == 1
    slee.ra.end("a")
    slee.run()
    assert ("root", "end") in slee.journal
    assert slee.container.sbb_entities() == []


def test_fire_on_ended_activity_is_refused(slee):
    from slee.errors import UnknownActivityError
    with pytest.raises(UnknownActivityError):
        slee.ra.fire("never-started", {"op": "x"})
    slee.ra.start("a")
    slee.ra.end("a")
    with pytest.raises(UnknownActivityError):
        slee.ra.fire("a", {"op": "x"})


def test_child_relation_and_local_calls(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "child", "text": "hi"})
    slee.run()
    assert ("root", "child said HI") in slee.journal
    [child] = roots(slee, "Child")
    assert child["cmp"]["greeting"] == "'hi'"
    assert child["priority"] == -5
    # The child is not attached: it gets no PING until attached.
    slee.ra.fire("a", {"op": "attach-child"})
    slee.ra.fire("a", {"op": "y"})
    slee.run()
    assert slee.journal[-3:] == [("high", "y"), ("root", "y"), ("child", "y")]
    slee.ra.fire("a", {"op": "remove-children"})
    slee.run()
    assert roots(slee, "Child") == []


def test_one_sbb_object_per_entity_per_operation(slee):
    from probe_unit import OBJECTS
    OBJECTS.clear()
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "child", "text": "hi"})    # creates the child, then calls it
    slee.run()
    slee.ra.fire("a", {"op": "remove-children"})
    slee.run()
    [(created, first), (called, second), (removed, third)] = OBJECTS
    assert (created, called, removed) == ("sbb_create", "hello", "sbb_remove")
    assert first is second
    assert third is not first


def test_local_call_failure_rolls_back_the_caller(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "child-fail"})
    slee.run()
    assert roots(slee, "Child") == []
    assert root_count(slee) == 1


def test_detach_removes_root_at_end_of_event(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "detach"})
    slee.run()
    assert roots(slee) == []
    assert ("root", "removed") in slee.journal


def test_event_mask(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "mask"})
    slee.ra.fire("a", {"op": "fire"})
    slee.run()
    assert ("root", "poked") not in slee.journal


def test_null_activity_naming_and_implicit_end(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "null", "name": "room"})
    slee.ra.fire("a", {"op": "lookup", "name": "room"})
    slee.ra.fire("a", {"op": "lookup", "name": "nothing"})
    slee.run()
    assert slee.ra.sent[0].startswith("slee.null/")
    assert slee.ra.sent[1] is None
    null_key = slee.ra.sent[0]
    assert null_key in [a["key"] for a in slee.container.activities()]
    # Unbound and detached, nothing holds it open: it ends.
    slee.ra.fire("a", {"op": "unbind", "name": "room"})
    slee.run()
    assert null_key not in [a["key"] for a in slee.container.activities()]


def test_null_activity_explicit_end(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "null", "name": "room"})
    slee.ra.fire("a", {"op": "end-null", "name": "room"})
    slee.run()
    assert [a for a in slee.container.activities() if a["ra"] == "slee.null"] == []
    assert slee.read(lambda state: dict(state.names)) == {}
    # the root is still attached to activity a
    assert roots(slee)[0]["attached"] == ["probe/a"]


def test_single_timer(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "timer", "delay": 30})
    slee.run(29)
    assert ("root", "timer fired") not in slee.journal
    slee.run(1)
    assert slee.journal.count(("root", "timer fired")) == 1
    slee.run(100)
    assert slee.journal.count(("root", "timer fired")) == 1
    assert slee.read(lambda state: len(state.timers)) == 0


def test_periodic_timer_with_repetitions(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "timer", "delay": 1, "period": 2, "repetitions": 3})
    slee.run()
    for _ in range(10):
        slee.run(1)
    assert slee.journal.count(("root", "timer fired")) == 3
    assert slee.container.engine.timers.armed_count() == 0


def test_timer_on_ended_activity_is_cancelled(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "timer", "delay": 5})
    slee.run()
    slee.ra.end("a")
    slee.run(10)
    assert ("root", "timer fired") not in slee.journal
    assert slee.container.engine.timers.armed_count() == 0


def test_deactivate_lets_entities_finish(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    assert slee.container.deactivate("probe")["state"] == "stopping"
    slee.ra.start("b")
    slee.ra.fire("b", {"op": "x"})        # no new root: not routed as initial
    slee.ra.fire("a", {"op": "y"})        # the existing entity still gets it
    slee.run()
    assert root_count(slee) == 2
    assert [r["attached"] for r in roots(slee)] == [["probe/a"]]
    slee.ra.end("a")
    slee.run()
    [service] = [s for s in slee.container.services() if s["name"] == "probe"]
    assert service["state"] == "inactive"


def test_conflict_is_retried(slee):
    """Another connection commits a change to the same entity while a batch runs."""
    from probe_unit import sbbs
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    [root] = roots(slee)
    attempts = []
    original = sbbs.Root.on_poke

    def interfering(self, event, aci):
        attempts.append(1)
        if len(attempts) == 1:
            import transaction
            tm = transaction.TransactionManager()
            other = slee.db.open(transaction_manager=tm)
            entity = other.root()["slee"].entities[root["id"]]
            entity.cmp.count = 100
            tm.commit()
            other.close()
        self.count += 1
        original(self, event, aci)

    sbbs.Root.on_poke = interfering
    try:
        slee.ra.fire("a", {"op": "x"}, event_type=__import__("probe_unit").POKE)
        slee.run()
    finally:
        sbbs.Root.on_poke = original
    assert len(attempts) == 2
    assert root_count(slee) == 101


def test_root_index_made_by_a_rolled_back_event(slee):
    """The service's first root is rolled back with the index made for it."""
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "fail"})
    slee.run()
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "y"})
    slee.run()
    assert root_count(slee) == 2
    [probe] = [s for s in slee.container.services() if s["name"] == "probe"]
    assert probe["root_entities"] == 1


def test_garbage_collector_waits_while_a_batch_runs(slee):
    import gc
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "collector"})
    slee.run()
    assert slee.ra.sent == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        slee.ra.fire("a", {"op": "collector"})
        slee.run()
        assert not gc.isenabled()       # left as it was
    finally:
        gc.enable()


def test_state_survives_reopening_the_database(tmp_path):
    from units import memory_db
    db = memory_db()
    first = ContainerHarness(tmp_path, db=db)
    first.deploy("probe")
    from probe_unit.ra import ProbeAdaptor
    ra = ProbeAdaptor.instance
    ra.start("a", durable=True)
    ra.fire("a", {"op": "null", "name": "room", "delay": 50})
    first.run()
    first.container.router.drain()
    # Stop without closing the storage, then start a new container on it.
    first.container.router.pause()
    first.container.engine.timers.disarm_all()
    first.container.connection.close()
    for unit in list(first.container.deployed.values()):
        from slee.deployment import unload_unit
        unload_unit(unit)
    second = ContainerHarness(tmp_path, db=db)
    assert [u["name"] for u in second.container.units()] == ["probe"]
    assert {s["state"] for s in second.container.services()} == {"active"}
    assert second.read(lambda state: list(state.names)) == ["room"]
    assert second.container.engine.timers.armed_count() == 1
    import probe_unit
    probe_unit.JOURNAL.clear()
    second.run(60)
    assert ("root", "timer fired") in probe_unit.JOURNAL
    second.stop()


def test_references_in_cmp_fields_survive_reloading(slee):
    """A CMP field holding a local object is stored as a Reference and read back."""
    import pickle

    from slee.sbb import Reference
    reference = Reference("sbb", 42)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(reference, protocol)) == reference
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "child", "text": "hi"})
    slee.run()
    slee.container.connection.cacheMinimize()      # state is loaded again from storage
    slee.ra.fire("a", {"op": "attach-child"})
    slee.ra.fire("a", {"op": "y"})
    slee.run()
    assert ("child", "y") in slee.journal


def test_full_queue_refuses_ra_events_but_keeps_accepted_work(tmp_path):
    from slee.errors import OverloadError
    harness = ContainerHarness(tmp_path, queue_max=100)
    harness.deploy("probe")
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    ra = ProbeAdaptor.instance
    ra.start("a")
    for _ in range(99):
        ra.fire("a", {"op": "x"})
    ra.fire("a", {"op": "fire"})          # its POKE is queued after commit, past the limit
    with pytest.raises(OverloadError, match="queue full"):
        ra.fire("a", {"op": "refused"})
    harness.run()
    assert ("root", "refused") not in JOURNAL
    assert ("root", "poked") in JOURNAL
    ra.fire("a", {"op": "accepted again"})
    harness.run()
    assert ("root", "accepted again") in JOURNAL
    harness.stop()


def test_one_round_runs_what_was_queued_and_no_more(tmp_path):
    """
    The reactor's call runs every operation queued when it came, batch after
    batch, so the queue drains as fast as a socket fills it; what those
    operations fire waits for the next round.
    """
    harness = ContainerHarness(tmp_path, batch_max=2)
    harness.deploy("probe")
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    JOURNAL.clear()
    ra = ProbeAdaptor.instance
    ra.start("a")
    for number in range(4):
        ra.fire("a", {"op": f"queued {number}"})
    ra.fire("a", {"op": "fire"})
    router = harness.container.router
    delivered = router.delivered

    def reactor_round():
        (call,) = [c for c in harness.clock.getDelayedCalls() if c.func == router._drain]
        harness.clock.calls.remove(call)
        call.func(*call.args, **call.kw)

    reactor_round()
    assert router.delivered - delivered == 5
    assert [("root", f"queued {number}") for number in range(4)] == \
        [entry for entry in JOURNAL if entry[0] == "root"][:4]
    assert ("root", "poked") not in JOURNAL
    reactor_round()
    assert ("root", "poked") in JOURNAL
    harness.stop()


def test_cmp_state_is_made_when_a_field_is_first_set(slee):
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    [high], [root] = roots(slee, "High"), roots(slee, "Root")
    assert high["cmp"] == {} and root["cmp"]["count"] == "1"
    made = slee.read(lambda state: {e.sbb.split(":")[0]: e.cmp is not None
                                    for e in state.entities.values()})
    assert made == {"High": False, "Root": True}     # High only reads its field


def test_service_data_is_shared_by_the_entities_of_a_service_and_survives(tmp_path):
    from units import ContainerHarness
    from ZODB import DB
    from ZODB.FileStorage import FileStorage
    path = str(tmp_path / "slee.fs")
    harness = ContainerHarness(tmp_path, db=DB(FileStorage(path)))
    harness.deploy("probe")
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    ra = ProbeAdaptor.instance
    for handle in ("a", "b"):
        ra.start(handle)
        ra.fire(handle, {"op": "count service data"})
    harness.run()
    assert [entry for entry in JOURNAL if entry[0] == "service data"] == \
        [("service data", 1), ("service data", 2)]
    harness.stop()
    harness = ContainerHarness(tmp_path, db=DB(FileStorage(path)))
    assert harness.read(lambda state: dict(state.service_data_of("probe:slee.tests:2.0"))) == \
        {"count": 2}      # another version of the service finds it
    harness.stop()


def test_shared_data_is_shared_by_the_services_naming_it(tmp_path):
    from units import ContainerHarness
    harness = ContainerHarness(tmp_path)
    harness.deploy("probe")     # two services: probe and probe-high
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    ProbeAdaptor.instance.start("a")
    ProbeAdaptor.instance.fire("a", {"op": "count shared data"})
    harness.run()
    assert [entry for entry in JOURNAL if entry[0] == "shared data"] == \
        [("shared data", 1), ("shared data", 2)]
    assert harness.read(lambda state: dict(state.shared_data_of("probe.shared"))) == \
        {"count": 2}
    harness.stop()


def test_many_entities_on_one_activity_live_in_a_btree_of_their_own(tmp_path):
    from BTrees.LLBTree import LLBTree
    from slee.activities import ATTACHED_IN_RECORD
    from units import ContainerHarness
    harness = ContainerHarness(tmp_path)
    harness.deploy("probe")
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    ra = ProbeAdaptor.instance
    ra.start("a")
    count = ATTACHED_IN_RECORD + 36
    for group in range(count):
        ra.fire("a", {"op": "join", "group": str(group)})    # a new root entity each
    harness.run()
    attached = harness.read(lambda state: state.activities["probe/a"].attached)
    # and probe-high's one entity of the activity
    assert type(attached) is LLBTree and len(attached) == count + 1
    JOURNAL.clear()
    ra.fire("a", {"op": "not-initial"})
    harness.run()
    assert JOURNAL.count(("root", "not-initial")) == count    # each got it once
    ra.fire("a", {"op": "leave"})
    harness.run()
    assert harness.read(lambda state: len(state.entities)) == 0
    harness.stop()


def test_queue_delay_is_the_queue_at_what_operations_cost_lately(slee):
    router = slee.container.router
    readings = iter([10.0, 12.0, 20.0, 20.5])       # a batch of 2 takes 2 s, then one 0.5 s
    router._timer = lambda: next(readings)
    router.operation_cost = 0.0                      # what deploying measured
    slee.ra.start("a")
    slee.ra.fire("a", {"op": "x"})
    slee.ra.fire("a", {"op": "x"})
    slee.run()
    assert router.operation_cost == 1.0              # the first measure is taken whole
    for _ in range(3):
        slee.ra.fire("a", {"op": "x"})
    assert router.queue_delay() == 3.0
    router.batch_max = 3
    slee.run()
    # Then each batch weighs in by COST_WEIGHT: 1.0 + (0.5 / 3 - 1.0) * 0.1.
    assert router.operation_cost == pytest.approx(1.0 + (0.5 / 3 - 1.0) * router.COST_WEIGHT)
    assert router.queue_delay() == 0.0
    router._timer = time.perf_counter


def test_deleted_records_leave_the_object_cache(slee):
    """
    Records deleted by a committed event do not stay in ZODB's object cache
    until its size evicts them: a server creating and deleting records per
    call would otherwise fill its memory with dead ones.
    """
    def stored_oids(state):
        records = [*state.entities.values(), *state.timers.values(),
                   *state.activities.values()]
        records += [entity.cmp for entity in state.entities.values() if entity.cmp is not None]
        return [record._p_oid for record in records]

    cache = slee.container.connection._cache
    deleted = set()
    for n in range(20):
        slee.ra.start(f"a{n}", durable=True)
        slee.ra.fire(f"a{n}", {"op": "timer", "delay": 60})
        slee.run()
        oids = slee.read(stored_oids)
        assert len(oids) >= 4       # root entities, a CMP state, the timer, the activity
        assert all(cache.get(oid) is not None for oid in oids)
        deleted.update(oids)
        slee.ra.end(f"a{n}")
        slee.run()
        assert slee.read(lambda state: (len(state.entities), len(state.timers))) == (0, 0)
    # ZODB's object writers are garbage in reference cycles, each holding
    # the last state it wrote until the collector frees it: collect them.
    gc.collect()
    assert [oid for oid in deleted if cache.get(oid) is not None] == []
