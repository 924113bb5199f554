"""Packing a FileStorage with its first phase in a child process (slee.pack_process)."""

import shutil
import time

import pytest
import transaction
import ZODB
from persistent.mapping import PersistentMapping
from ZODB.FileStorage import FileStorage
from ZODB.Connection import TransactionMetaData
from ZODB.POSException import POSKeyError
from ZODB.utils import z64

from slee import pack_process


def fill(path):
    """
    A FileStorage with history and garbage: records made and dropped, as
    calls that end leave them, and a few kept.

    @return: the oids of the dropped records.
    """
    db = ZODB.DB(FileStorage(str(path)))
    connection = db.open()
    root = connection.root()
    dropped = []
    for n in range(200):
        record = PersistentMapping(n=n, body="x" * 200)
        root[n % 7] = record
        transaction.commit()
        if n < 190:
            dropped.append(record._p_oid)
    connection.close()
    db.close()
    return dropped


def pack_process_db(path):
    """@return: a DB on the FileStorage at C{path}, packing with L{pack_process.packer}."""
    storage = FileStorage(str(path))
    pack_process.use_child_packer(storage)
    return ZODB.DB(storage)


def pack(path, use_child, pack_time):
    db = pack_process_db(path) if use_child else ZODB.DB(FileStorage(str(path)))
    db.pack(pack_time)
    return db


@pytest.fixture
def storages(tmp_path):
    """Two copies of one filled storage, and the oids of the records it dropped."""
    dropped = fill(tmp_path / "a.fs")
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a.fs", tmp_path / "b" / "a.fs")
    return tmp_path / "a.fs", tmp_path / "b" / "a.fs", dropped


def test_the_packed_file_is_zodbs_own(storages):
    mine, zodbs, dropped = storages
    pack_time = time.time() + 1
    pack(zodbs, use_child=False, pack_time=pack_time).close()
    db = pack(mine, use_child=True, pack_time=pack_time)
    assert mine.read_bytes() == zodbs.read_bytes()
    assert mine.stat().st_size < 20000
    connection = db.open()
    root = connection.root()
    assert sorted(root[n]["n"] for n in range(7)) == list(range(193, 200))
    with pytest.raises(POSKeyError):
        db.storage.load(dropped[0])
    connection.close()
    db.close()
    assert sorted(p.name for p in mine.parent.iterdir()) == [
        "a.fs", "a.fs.index", "a.fs.lock", "a.fs.old", "a.fs.tmp", "b"]


@pytest.mark.parametrize("child_catches_up", [True, False],
                         ids=["the child copies it", "the server copies it"])
def test_commits_made_while_the_child_packs_are_kept(storages, monkeypatch, child_catches_up):
    path, _, _ = storages
    db = pack_process_db(path)
    connection = db.open()
    run = pack_process.subprocess.run

    def commit():
        connection.root()["late"] = PersistentMapping(n="committed during the pack")
        transaction.commit()

    def commit_then_run(*args, **kwargs):
        if child_catches_up:
            commit()                        # after the pack began, before the child
            return run(*args, **kwargs)
        ended = run(*args, **kwargs)
        commit()                            # after the child ended
        return ended

    monkeypatch.setattr(pack_process.subprocess, "run", commit_then_run)
    db.pack(time.time() + 1)
    connection.close()
    db.close()
    db = ZODB.DB(FileStorage(str(path)))
    connection = db.open()
    assert connection.root()["late"]["n"] == "committed during the pack"
    assert sorted(connection.root()[n]["n"] for n in range(7)) == list(range(193, 200))
    connection.close()
    db.close()


@pytest.mark.parametrize("attribute, value, error", [
    ("__name__", "slee.no_such_module", "No module named"),
    ("CHILD_DEADLINE", 0.001, "did not catch up within"),
], ids=["the child fails", "the child is past its deadline"])
def test_a_pack_given_up_leaves_the_storage_as_it_was(storages, monkeypatch, attribute, value,
                                                      error):
    path, _, _ = storages
    size = path.stat().st_size
    db = pack_process_db(path)
    monkeypatch.setattr(pack_process, attribute, value)
    with pytest.raises(pack_process.PackChildError, match=error):
        db.pack(time.time() + 1)
    assert path.stat().st_size == size
    assert not [p for p in path.parent.iterdir() if ".pack" in p.name]
    connection = db.open()
    connection.root()["after"] = PersistentMapping()
    transaction.commit()                    # the storage goes on
    connection.close()
    monkeypatch.undo()
    db.pack(time.time() + 1)                # and packs the next time
    assert path.stat().st_size < size
    db.close()


def test_the_child_runs_at_the_lowest_priority(storages, monkeypatch, capsys):
    path, _, _ = storages
    niceness = []
    monkeypatch.setattr(pack_process.os, "nice", niceness.append)
    out = str(path) + ".out"
    pack_process.main([str(path), str(path.stat().st_size), (b"\xff" * 8).hex(), "gc",
                       out, out + ".index"])
    assert niceness == [19]
    read_to, written_to = (int(word) for word in capsys.readouterr().out.split())
    assert read_to == path.stat().st_size and written_to < read_to


def test_the_child_catches_up_on_whole_transactions_only(storages, tmp_path):
    """It copies what was committed after the pack began, and stops at a
    transaction still being committed (status 'c', written at the vote)."""
    path, _, _ = storages
    db = ZODB.DB(FileStorage(str(path)))
    began = db.storage.getSize()
    connection = db.open()
    connection.root()["late"] = PersistentMapping(n="committed after the pack began")
    transaction.commit()
    committed_to = db.storage.getSize()
    voting = TransactionMetaData()
    data, serial = db.storage.load(z64)
    db.storage.tpc_begin(voting)
    db.storage.store(z64, serial, data, "", voting)
    db.storage.tpc_vote(voting)
    assert path.stat().st_size > committed_to
    out = str(tmp_path / "packed.fs")
    read_to, _ = pack_process.pack_to_packtime(str(path), began, b"\xff" * 8, True, out,
                                               out + ".index")
    assert read_to == committed_to
    db.storage.tpc_abort(voting)
    connection.close()
    db.close()

