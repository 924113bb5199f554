"""
The garbage collector runs at the end of the router's turns (slee.collector).
"""

import gc

import pytest

from slee.collector import TurnCollector
from units import ContainerHarness


@pytest.fixture
def collector_state():
    """Put the collector back as the test found it."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()


def test_install_freezes_start_up_and_leaves_a_safety_net(collector_state):
    collector = TurnCollector(youngest=1000, safety_net=50000)
    collector.install()
    assert gc.get_threshold()[0] == 50000
    assert gc.get_freeze_count() > 0


@pytest.mark.parametrize("counts, heap, collected", [
    ((999, 10, 10), 200, None),     # not due: too few net allocations
    ((1000, 0, 0), 100, 0),
    ((1000, 9, 9), 200, 0),
    ((1000, 10, 0), 100, 1),        # the middle generation's turn
    ((1000, 10, 9), 200, 1),
    ((1000, 3, 10), 126, 2),        # the oldest's, the heap a quarter larger
    ((1000, 3, 10), 125, 1),        # not grown enough: the middle's instead
])
def test_the_generations_that_are_due_are_collected(monkeypatch, counts, heap, collected):
    collections = []
    monkeypatch.setattr(gc, "get_count", lambda: counts)
    monkeypatch.setattr(gc, "collect", lambda generation=2: collections.append(generation))
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    sizes = iter([100, heap, heap])         # at the start, now, after a full collection
    collector = TurnCollector(youngest=1000, heap=lambda: next(sizes))
    collector()
    assert collections == ([] if collected is None else [collected])


def test_the_router_calls_it_once_a_turn_is_done(tmp_path):
    harness = ContainerHarness(tmp_path, batch_max=2)
    harness.deploy("probe")
    from probe_unit.ra import ProbeAdaptor
    router = harness.container.router
    turns = []
    router.collector = lambda: turns.append(len(router))
    ra = ProbeAdaptor.instance
    ra.start("a")
    for number in range(5):
        ra.fire("a", {"op": f"queued {number}"})
    harness.run()
    assert turns == [0]     # one turn, three batches, then the collector
    harness.stop()
