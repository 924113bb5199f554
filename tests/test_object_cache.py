"""Emptied BTree buckets leave ZODB's object cache (slee.object_cache)."""

import transaction
from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree

from slee.object_cache import BUCKETS, SWEEP_INTERVAL, sweep_empty_buckets
from units import ContainerHarness, memory_db


def empty_buckets(cache):
    return [obj for _, obj in cache.lru_items() if type(obj) in BUCKETS and not len(obj)]


def drain_left(tree, keys):
    """Keys go in at the right end and leave from the left, as ids drawn from counters do."""
    for key in keys:
        tree[key] = f"record {key}"
        transaction.commit()
    for key in keys[:-10]:
        del tree[key]
        transaction.commit()


def test_the_sweep_ghosts_emptied_buckets_and_keeps_the_trees_whole():
    db = memory_db()
    connection = db.open()
    root = connection.root()
    root["by_number"], root["by_name"] = LOBTree(), OOBTree()
    transaction.commit()
    drain_left(root["by_number"], list(range(600)))
    drain_left(root["by_name"], [f"k{n:04d}" for n in range(600)])
    cache = connection._cache
    assert len(empty_buckets(cache)) > 10       # dead buckets the LRU cache still holds
    swept = sweep_empty_buckets(cache)
    assert swept > 10
    assert empty_buckets(cache) == []
    assert list(root["by_number"].items()) == [(n, f"record {n}") for n in range(590, 600)]
    assert list(root["by_name"]) == [f"k{n:04d}" for n in range(590, 600)]
    root["by_number"][600] = "record 600"       # the trees go on working
    transaction.commit()
    assert len(root["by_number"]) == 11
    connection.close()
    db.close()


def test_a_bucket_with_unsaved_changes_is_left_alone():
    db = memory_db()
    connection = db.open()
    root = connection.root()
    root["tree"] = tree = OOBTree()
    transaction.commit()
    drain_left(tree, [f"k{n:04d}" for n in range(200)])
    tree["k9999"] = "unsaved"
    changed = [obj for _, obj in connection._cache.lru_items() if obj._p_changed]
    sweep_empty_buckets(connection._cache)
    assert all(obj._p_changed for obj in changed)
    transaction.commit()
    assert tree["k9999"] == "unsaved"
    connection.close()
    db.close()


def test_the_container_sweeps_its_cache_on_its_clock(tmp_path):
    harness = ContainerHarness(tmp_path)
    try:
        def fill_and_drain(state):
            tree = state.shared_data_of("test")
            for n in range(200):
                tree[f"k{n:04d}"] = n
        harness.read(fill_and_drain)

        def drain(state):
            tree = state.shared_data_of("test")
            for n in range(190):
                del tree[f"k{n:04d}"]
        harness.read(drain)
        cache = harness.container.connection._cache
        # One transaction filled the tree and one drained it: the buckets
        # it split into are in the cache, all but the last emptied.
        assert empty_buckets(cache)
        harness.run(SWEEP_INTERVAL)
        assert empty_buckets(cache) == []
        assert harness.read(lambda state: list(state.shared_data_of("test").values())) == \
            list(range(190, 200))
    finally:
        harness.stop()


def test_the_sweep_does_not_mark_the_buckets_it_keeps_used():
    """
    A sweep that used each bucket's state to learn its length would move
    every bucket to the fresh end of the LRU cache, and the cache would
    evict everything else first.
    """
    db = memory_db()
    connection = db.open()
    root = connection.root()
    root["tree"] = tree = OOBTree()
    root["other"] = other = OOBTree()
    transaction.commit()
    drain_left(tree, [f"k{n:04d}" for n in range(300)])
    other.get("anything")                       # the most recently used object
    cache = connection._cache
    assert [obj for _, obj in cache.lru_items()][-1] is other
    assert sweep_empty_buckets(cache) > 0
    assert [obj for _, obj in cache.lru_items()][-1] is other
    connection.close()
    db.close()
