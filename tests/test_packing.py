"""
The database is packed now and then (slee.packing): on the clock and on
growth, on a fake clock with a fake thread, then for real on a FileStorage.
"""

import pytest
import pytest_twisted
import transaction
from twisted.internet import defer, threads
from twisted.internet.task import Clock

from slee import pack_process
from slee.packing import Packer
from slee.runtime import open_database


class RecordingDb:
    """A database that counts its packs; a pack leaves it C{live} bytes."""

    def __init__(self, failures=0, size=1000, live=100):
        self.packs = 0
        self.failures = failures
        self.size = size
        self.live = live

    def pack(self):
        self.packs += 1
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")
        self.size = self.live

    def getSize(self):
        return self.size


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


def packs_after_growing_to(db, clock, size, seconds=5):
    """Grow C{db} to C{size} bytes, let C{seconds} pass: its packs then."""
    db.size = size
    clock.advance(seconds)
    return db.packs


def growth_packer(db, clock):
    packer = Packer(db, 0, clock, growth=500, check=5, run_in_thread=at_once)
    packer.start()
    return packer


def test_packs_on_growth_by_the_growth_and_at_least_the_size_left():
    clock, db = Clock(), RecordingDb(size=100, live=100)
    packer = growth_packer(db, clock)
    assert packs_after_growing_to(db, clock, 599) == 0      # grown by 499 of 500
    assert packs_after_growing_to(db, clock, 600) == 1 and db.size == 100
    assert packs_after_growing_to(db, clock, 599, 3600) == 1  # no interval: growth only
    assert packs_after_growing_to(db, clock, 600) == 2
    # A database whose live part is larger than the growth is packed once
    # it grew by that part again: a pack copies no more than was written.
    db.live = 2000
    assert packs_after_growing_to(db, clock, 2600) == 3 and db.size == 2000
    assert packs_after_growing_to(db, clock, 3999) == 3
    assert packs_after_growing_to(db, clock, 4000) == 4
    packer.stop()


def test_a_failed_pack_is_tried_again_when_the_next_is_due_not_at_every_look():
    clock, db = Clock(), RecordingDb(failures=1, size=0)
    packer = growth_packer(db, clock)
    assert packs_after_growing_to(db, clock, 500) == 1      # failed: "disk full", logged
    assert packs_after_growing_to(db, clock, 500, 60) == 1
    assert packs_after_growing_to(db, clock, 1000) == 2 and db.size == 100
    packer.stop()


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


@pytest.mark.parametrize("interval, growth, wait", [(60, 0, 60), (0, 4096, 5)],
                         ids=["on the clock", "on growth"])
@pytest_twisted.ensureDeferred
async def test_a_real_pack_drops_the_history_of_a_file_storage(tmp_path, interval, growth, wait):
    db = open_database(f"file://{tmp_path}/slee.fs", cache_size=1000)
    assert db.storage.packer is pack_process.packer     # its first phase in a child process
    try:
        clock, packs = Clock(), []

        def in_a_thread(function):
            packs.append(threads.deferToThread(function))
            return packs[-1]
        packer = Packer(db, interval, clock, growth=growth, run_in_thread=in_a_thread)
        packer.start()
        manager = transaction.TransactionManager()
        connection = db.open(manager)
        for number in range(200):
            connection.root()["counter"] = number
            manager.commit()
        oid = connection.root()._p_oid
        assert len(db.history(oid, size=1000)) > 100
        clock.advance(wait - 1)
        assert not packs
        clock.advance(1)
        await packs[0]
        assert len(db.history(oid, size=1000)) == 1
        assert connection.root()["counter"] == 199
        await packer.stop()
        connection.close()
    finally:
        db.close()
