"""
Packing the database now and then.

ZODB storages keep every revision of every object until they are packed:
a FileStorage grows on disk, and the in-memory storage (C{memory://}) in
RAM, with each commit, however small the live state.  The container commits
on every batch of events, and a stateless request (an OPTIONS, say) makes
and removes records that still leave revisions of the index buckets behind:
a busy server would fill its disk with history nobody reads.  A FileStorage
also keeps, in memory, an index entry for every object id it ever stored
(a PUBLISH that comes and goes makes a few objects): until a pack, a busy
server's memory grows with the calls it serves.

So the running container packs its database when either is due:

  - C{interval} seconds (C{--pack-interval}) passed since the last pack;
  - the database grew by C{growth} bytes (C{--pack-growth}) since the last
    pack, and by at least the size the last pack left: a pack copies what
    is live, so a pack at most every doubling costs, in all, no more than
    writing the database did.  A busy server thus packs every few tens of
    seconds, each pack short, and its disk and the FileStorage's index in
    its memory stay bounded; a quiet one packs on the clock.  A
    FileStorage's pack does its heavy part in a child process
    (L{slee.pack_process}), so that the server goes on serving meanwhile.

It looks every C{check} seconds.  A pack drops the history older than the
pack and the objects nothing reaches any more.  It runs in a thread
(storages pack while commits go on), one at a time; a failed pack is logged
and tried again when the next is due.
"""

from twisted.internet import task, threads
from twisted.logger import Logger

from slee.trace import log_observer

#: Seconds between two looks at whether a pack is due.
CHECK_INTERVAL = 5


class Packer:
    """Packs C{db} when a pack is due (see the module docstring)."""

    log = Logger(namespace="slee.packing", observer=log_observer)

    def __init__(self, db, interval, clock, growth=0, check=CHECK_INTERVAL,
                 run_in_thread=threads.deferToThread):
        """
        @param interval: seconds between two packs, 0 for none on the clock.
        @param growth: bytes the database may grow by before a pack, 0 for
            none on growth.
        @param run_in_thread: C{run_in_thread(function)} runs C{function} in
            a thread and returns a Deferred of its result.
        """
        self._db = db
        self._interval = interval
        self._growth = growth
        self._clock = clock
        self._run_in_thread = run_in_thread
        self._loop = task.LoopingCall(self._pack_if_due)
        self._loop.clock = clock
        self._check = min(check, interval) if interval else check
        self._done = None
        self._packed_at = None
        self._packed_size = None

    def start(self):
        """Look every C{check} seconds from now on (the first pack on the
        clock an interval away)."""
        self._note_pack()
        self._done = self._loop.start(self._check, now=False)

    def stop(self):
        """
        Stop packing.

        @return: a Deferred that fires once a pack in progress, if any, ended.
        """
        if self._loop.running:
            self._loop.stop()
        return self._done

    def due(self):
        """@return: why a pack is due now, or None."""
        if self._interval and self._clock.seconds() - self._packed_at >= self._interval:
            return "interval"
        if self._growth and \
                self._db.getSize() - self._packed_size >= max(self._growth, self._packed_size):
            return "growth"
        return None

    def _pack_if_due(self):
        reason = self.due()
        if reason is None:
            return None
        d = self._run_in_thread(self._db.pack)
        d.addCallbacks(lambda _: self.log.debug("database packed ({reason})", reason=reason),
                       lambda failure: self.log.failure("packing the database failed", failure))
        # Failed or not, the next pack is due an interval, or a growth, from
        # now: a failing pack (a full disk) is not tried at every look.
        d.addCallback(lambda _: self._note_pack())
        return d

    def _note_pack(self):
        self._packed_at = self._clock.seconds()
        self._packed_size = self._db.getSize()
