"""The keys the container gives its records (slee.records)."""

from BTrees.LOBTree import LOBTree

from slee.records import KeySequence, new_handle, new_id


def test_keys_increase_within_a_run_and_are_positive_62_bit():
    keys = KeySequence()
    drawn = [next(keys) for _ in range(1000)]
    assert drawn == sorted(drawn) and len(set(drawn)) == 1000
    assert all(0 < key < 2 ** 62 for key in drawn)


def test_two_runs_draw_apart():
    first, second = KeySequence(), KeySequence()
    assert next(first) >> KeySequence.COUNT_BITS != next(second) >> KeySequence.COUNT_BITS


def test_a_spent_count_starts_a_new_prefix():
    keys = KeySequence()
    mask = 2 ** KeySequence.COUNT_BITS - 1
    keys._count = mask - 1
    last = next(keys)
    after = next(keys)
    assert last & mask == mask
    assert after & mask == 1


def test_new_records_fill_one_bucket_of_a_tree_at_a_time():
    """Increasing keys: a batch of new records changes the last bucket, not many."""
    tree = LOBTree()
    for _ in range(10_000):
        tree[new_id(tree)] = None
    batch = [new_id(tree) for _ in range(20)]
    assert min(batch) > tree.maxKey()


def test_new_id_skips_a_key_taken():
    tree = LOBTree()
    taken = new_id(tree)
    tree[taken + 1] = None
    assert new_id(tree) == taken + 2


def test_handles_sort_as_they_were_drawn():
    handles = [new_handle() for _ in range(100)]
    assert handles == sorted(handles) and all(len(h) == 16 for h in handles)


def test_a_record_stored_as_a_tuple_reads_back():
    from slee.records import ActivityContextRecord, SbbEntityRecord
    record = SbbEntityRecord(7, "service", "sbb", None, 7, None, "name", 0)
    record.attach_to("sip/x")
    state = record.__getstate__()
    assert isinstance(state, tuple)
    again = SbbEntityRecord.__new__(SbbEntityRecord)
    again.__setstate__(state)
    assert again.__dict__ == record.__dict__
    activity = ActivityContextRecord("k", "r", "h", True)
    again = ActivityContextRecord.__new__(ActivityContextRecord)
    again.__setstate__(activity.__getstate__())
    assert again.__dict__ == activity.__dict__


def test_names_and_timers_are_tuples():
    import sys
    from slee.records import ActivityContextRecord
    record = ActivityContextRecord("k", "r", "h", True)
    assert (record.names, record.timers) == ((), ())
    assert sys.getsizeof(record.names) < sys.getsizeof(set())     # what it is for
    record.add_name("a")
    record.add_name("a")
    record.add_timer(5)
    assert (record.names, record.timers) == (("a",), (5,))
    record.discard_name("a")
    record.discard_timer(6)                 # not there: nothing happens
    assert (record.names, record.timers) == ((), (5,))


def test_an_entity_s_activities_are_a_tuple():
    from slee.records import SbbEntityRecord
    record = SbbEntityRecord(7, "service", "sbb", None, 7, None, "name", 0)
    record.attach_to("a")
    record.attach_to("b")
    record.attach_to("a")
    record.detach_from("a")
    assert record.attached == ("b",)
