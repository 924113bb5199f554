"""Many due times on one reactor call (slee.schedule), on a fake clock."""

from twisted.internet.task import Clock

from slee import schedule
from slee.schedule import Schedule


def make():
    clock = Clock()
    fallen = []
    return clock, Schedule(clock, fallen.append), fallen


def test_keys_fall_due_at_their_times_on_one_reactor_call():
    clock, due, fallen = make()
    for key, time in [(3, 30.0), (1, 10.0), (2, 20.0), (4, 10.0)]:
        due.add(key, time)
    assert len(clock.getDelayedCalls()) == 1 and len(due) == 4
    clock.advance(9.5)
    assert fallen == []
    clock.advance(0.5)
    assert fallen == [1, 4]                         # due together: in key order
    clock.advance(20)
    assert fallen == [1, 4, 2, 3] and len(due) == 0
    assert clock.getDelayedCalls() == []


def test_a_removed_key_never_falls_due_and_a_moved_one_falls_once_at_its_new_time():
    clock, due, fallen = make()
    due.add("gone", 5.0)
    due.add("moved", 5.0)
    due.remove("gone")
    due.add("moved", 8.0)
    due.remove("never added")
    clock.advance(5)
    assert fallen == []
    clock.advance(3)
    assert fallen == ["moved"]
    clock.advance(100)
    assert fallen == ["moved"] and clock.getDelayedCalls() == []


def test_an_earlier_key_brings_the_call_forward():
    clock, due, fallen = make()
    due.add("late", 100.0)
    due.add("early", 1.0)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [1.0]
    clock.advance(1)
    assert fallen == ["early"]
    assert [call.getTime() for call in clock.getDelayedCalls()] == [100.0]


def test_a_time_already_past_falls_due_at_once():
    clock, due, fallen = make()
    clock.advance(50)
    due.add("late", 10.0)
    clock.advance(0)
    assert fallen == ["late"]


def test_a_key_added_while_others_fall_due_is_kept():
    clock = Clock()
    fallen = []

    def fall_due(key):
        fallen.append(key)
        if key == "first":
            due.add("next", clock.seconds() + 5)    # what a periodic timer does

    due = Schedule(clock, fall_due)
    due.add("first", 1.0)
    clock.advance(1)
    clock.advance(5)
    assert fallen == ["first", "next"]


def test_clear_leaves_nothing_armed():
    clock, due, fallen = make()
    due.add(1, 1.0)
    due.add(2, 2.0)
    due.clear()
    assert len(due) == 0 and clock.getDelayedCalls() == []
    clock.advance(10)
    assert fallen == []


def test_churn_does_not_grow_the_heap(monkeypatch):
    # Every refresh moves a key: the stale entries are dropped once they
    # outnumber the live ones.
    monkeypatch.setattr(schedule, "STALE_SLACK", 10)
    clock, due, fallen = make()
    for refresh in range(1000):
        for key in range(5):
            due.add(key, 1000.0 + refresh)
    assert len(due) == 5 and len(due._heap) <= 2 * 5 + 10 + 1
    clock.advance(2000)
    assert sorted(fallen) == [0, 1, 2, 3, 4]
