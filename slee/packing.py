"""
Packing the database now and then.

ZODB storages keep every revision of every object until they are packed:
a FileStorage grows on disk, and the in-memory storage (C{memory://}) in
RAM, with each commit, however small the live state.  The container commits
on every batch of events, and a stateless request (an OPTIONS, say) makes
and removes records that still leave revisions of the index buckets behind:
a busy server would fill its disk with history nobody reads.

So the running container packs its database every C{--pack-interval}
seconds, dropping the history older than the pack and the objects nothing
reaches any more.  The pack runs in a thread (storages pack while commits go
on), one at a time; a failed pack is logged and tried again next time.
"""

from twisted.internet import task, threads
from twisted.logger import Logger

from slee.trace import log_observer


class Packer:
    """Packs C{db} every C{interval} seconds of C{clock}."""

    log = Logger(namespace="slee.packing", observer=log_observer)

    def __init__(self, db, interval, clock, run_in_thread=threads.deferToThread):
        """
        @param run_in_thread: C{run_in_thread(function)} runs C{function} in
            a thread and returns a Deferred of its result.
        """
        self._db = db
        self._interval = interval
        self._run_in_thread = run_in_thread
        self._loop = task.LoopingCall(self._pack)
        self._loop.clock = clock
        self._done = None

    def start(self):
        """Pack every interval from now on (the first one an interval away)."""
        self._done = self._loop.start(self._interval, now=False)

    def stop(self):
        """
        Stop packing.

        @return: a Deferred that fires once a pack in progress, if any, ended.
        """
        if self._loop.running:
            self._loop.stop()
        return self._done

    def _pack(self):
        d = self._run_in_thread(self._db.pack)
        d.addCallbacks(lambda _: self.log.debug("database packed"),
                       lambda failure: self.log.failure("packing the database failed", failure))
        return d
