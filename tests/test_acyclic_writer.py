"""Commits leave no cyclic garbage behind (slee.acyclic_writer)."""

import collections
import gc
import threading

import pytest
import transaction
import ZODB.Connection
from persistent.mapping import PersistentMapping
from ZODB.serialize import ObjectWriter

from slee import acyclic_writer
from units import ContainerHarness, memory_db


@pytest.fixture
def collector_off():
    """The collector off, and what was garbage before the test collected."""
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def cyclic_garbage():
    """@return: how many objects of each type the collector finds to free."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return collections.Counter(type(obj).__name__ for obj in gc.garbage)
    finally:
        gc.set_debug(0)
        del gc.garbage[:]


def commit_changes(root, count):
    for n in range(count):
        root["map"][n % 5] = n                  # a changed object
        root["map"]["new"] = PersistentMapping(n=n)     # and a new one it reaches
        transaction.commit()


@pytest.fixture
def database():
    db = memory_db()
    connection = db.open()
    root = connection.root()
    root["map"] = PersistentMapping()
    transaction.commit()
    yield root
    transaction.abort()
    connection.close()
    db.close()


def test_zodbs_own_writer_leaves_cycles(database, monkeypatch, collector_off):
    """
    What the module is for: without it, every writer (one a commit here:
    the new object is stored through the changed object's) is seven
    objects of garbage for the collector (the writer, its pickler and
    buffer among them).
    """
    monkeypatch.setattr(ZODB.Connection, "ObjectWriter", ObjectWriter)
    commit_changes(database, 20)
    garbage = cyclic_garbage()
    assert garbage["ObjectWriter"] == garbage["Pickler"] == garbage["BytesIO"] == 20


def test_commits_leave_no_cyclic_garbage(database, monkeypatch, collector_off):
    monkeypatch.setattr(ZODB.Connection, "ObjectWriter", ObjectWriter)
    acyclic_writer.install()
    commit_changes(database, 20)
    garbage = cyclic_garbage()
    assert garbage["ObjectWriter"] == garbage["Pickler"] == garbage["BytesIO"] == 0
    assert database["map"]["new"]["n"] == 19
    assert [database["map"][n] for n in range(5)] == [15, 16, 17, 18, 19]


def test_a_commit_that_fails_while_pickling_leaves_none_either(database, monkeypatch,
                                                               collector_off):
    monkeypatch.setattr(ZODB.Connection, "ObjectWriter", ObjectWriter)
    acyclic_writer.install()
    database["map"]["bad"] = threading.Lock()   # cannot be pickled
    with pytest.raises(TypeError):
        transaction.commit()
    transaction.abort()
    garbage = cyclic_garbage()
    assert garbage["ObjectWriter"] == garbage["Pickler"] == garbage["BytesIO"] == 0
    assert "bad" not in database["map"]


def test_a_container_installs_it(tmp_path, monkeypatch):
    monkeypatch.setattr(ZODB.Connection, "ObjectWriter", ObjectWriter)
    harness = ContainerHarness(tmp_path)
    assert ZODB.Connection.ObjectWriter is acyclic_writer.AcyclicObjectWriter
    harness.stop()
