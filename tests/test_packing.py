"""
The database is packed now and then (slee.packing): on a fake clock with a
fake thread, then for real on a FileStorage.
"""

import pytest_twisted
import transaction
import ZODB
from twisted.internet import defer, threads
from twisted.internet.task import Clock
from ZODB.FileStorage import FileStorage

from slee.packing import Packer


class RecordingDb:
    def __init__(self, failures=0):
        self.packs = 0
        self.failures = failures

    def pack(self):
        self.packs += 1
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")


def at_once(function):
    return defer.maybeDeferred(function)


def test_packs_every_interval_and_survives_a_failed_pack():
    clock, db = Clock(), RecordingDb(failures=1)
    packer = Packer(db, 60, clock, run_in_thread=at_once)
    packer.start()
    assert db.packs == 0            # not at start-up
    clock.advance(59)
    assert db.packs == 0
    clock.advance(1)
    assert db.packs == 1            # it failed; logged
    clock.advance(60)
    assert db.packs == 2
    stopped = []
    packer.stop().addCallback(stopped.append)
    assert stopped
    clock.advance(600)
    assert db.packs == 2


def test_stop_waits_for_the_pack_in_progress():
    clock, db = Clock(), RecordingDb()
    running = defer.Deferred()
    packer = Packer(db, 60, clock, run_in_thread=lambda function: running)
    packer.start()
    clock.advance(60)
    stopped = []
    packer.stop().addCallback(stopped.append)
    assert not stopped
    running.callback(None)
    assert stopped


@pytest_twisted.ensureDeferred
async def test_a_real_pack_drops_the_history_of_a_file_storage(tmp_path):
    db = ZODB.DB(FileStorage(str(tmp_path / "slee.fs")))
    try:
        manager = transaction.TransactionManager()
        connection = db.open(manager)
        for number in range(200):
            connection.root()["counter"] = number
            manager.commit()
        oid = connection.root()._p_oid
        assert len(db.history(oid, size=1000)) > 100
        clock, packs = Clock(), []

        def in_a_thread(function):
            packs.append(threads.deferToThread(function))
            return packs[-1]
        packer = Packer(db, 60, clock, run_in_thread=in_a_thread)
        packer.start()
        clock.advance(60)
        await packs[0]
        assert len(db.history(oid, size=1000)) == 1
        assert connection.root()["counter"] == 199
        await packer.stop()
        connection.close()
    finally:
        db.close()
