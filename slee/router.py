"""
The event router's queue and its transactions.

Everything that changes SBB state is an I{operation} on one FIFO queue:
an event fired on an activity, the end of an activity, a timer expiry.
One queue keeps the events of each activity in firing order.

Operations run in group commits.  The router takes up to C{batch_max}
queued operations and runs them all in one transaction, committed once:
one fsync for the whole batch instead of one per event.  If any of them
fails, the batch is aborted and run again one operation per transaction
(the I{isolated} mode), so the failing operation alone is rolled back and
the others commit as they would have.  Re-running is safe for the same
reason a ZODB conflict retry is: nothing an operation does is visible
outside the database until its transaction commits (see L{Work}).

How long new work would wait (L{EventRouter.queue_delay}) is the queue's
length times what an operation has cost lately, measured over the batches
run: resource adaptors shed new work at their door by that delay, not by
the queue's length alone, since an operation costs anything from a
microsecond (an activity end) to a millisecond (a PUBLISH that notifies).

This replaces a savepoint per delivery.  ZODB savepoints copy the
connection's temporary index each time, which makes a batch quadratic; the
happy path here costs nothing beyond the work itself.

While a batch runs, the garbage collector waits.  A batch keeps what its
operations hold (each event, what each SBB handed to an RA) until it
commits, and a collection of the youngest generation in its middle would
walk all of it, only for reference counting to free it at the end.  A
batch is bounded, so is what waits for the collector.
"""

import gc
import time
from collections import deque

from twisted.logger import Logger
from ZODB.POSException import ConflictError

from slee.trace import log_observer


class Work:
    """
    What one operation did that must wait for its commit.

    @ivar effects: callables run in order after the commit (events fired,
        messages an RA was asked to send, timers to arm); dropped on
        roll-back.
    @ivar isolated: whether the operation runs in a transaction of its own;
        only then are handler failures reported to the SBB.
    @ivar garbage: ids of root entities that may have lost their last
        attachment.
    @ivar idle_activities: keys of null activities that may have nothing
        left holding them open.
    @ivar rollback_only: an SBB asked for the roll-back without raising.
    @ivar started: activity key to L{slee.activities.ActivityInfo} for the
        activities started by this operation: usable (attachable) at once,
        live for everyone else only after the commit.
    @ivar handled: how many SBB entity handlers the event was delivered to.
    @ivar undo: callables run in order if the transaction aborts: what an
        RA set up in memory for the operation (a dialog, say) is dropped.
    @ivar sbbs: SBB entity id to the SBB object assigned to it for the
        operation (see L{slee.entity_tree.EntityTree._sbb}).
    @ivar finishing: None, or a callable C{finishing(work)} run once the
        operation's own work is done, before the next operation of its
        batch runs or the commit.
    @ivar new_entities: records the operation made, not stored yet (see
        L{slee.engine}), or None; C{new_activities} and C{new_roots} too.
    """

    __slots__ = ("effects", "isolated", "garbage", "idle_activities", "rollback_only",
                 "started", "handled", "undo", "sbbs", "finishing", "new_entities",
                 "new_activities", "new_roots")

    def __init__(self, isolated):
        self.effects = []
        self.isolated = isolated
        self.garbage = set()
        self.idle_activities = set()
        self.rollback_only = False
        self.started = None
        self.handled = 0
        self.undo = []
        self.sbbs = {}
        self.finishing = self.new_entities = self.new_activities = self.new_roots = None

    def evict(self, *records):
        """
        Records the operation deleted from the database leave the process's
        object cache once the deletion commits.  ZODB's cache keeps every
        object it holds until its least-recently-used end reaches it: a
        record created and deleted per call (a publication's entity,
        activity and timer) would otherwise sit there dead, some 700 bytes a
        record, until the cache's size in objects (C{--cache-size}) is
        reached, and crowd live objects out of it.  Turned back into a ghost
        after the commit, a record nothing else refers to is freed at once;
        one still referred to reads its stored state again if used.  On
        roll-back nothing happens: the records are still in the database.
        """
        for record in records:
            if record is not None and record._p_oid is not None:
                self.effects.append(record._p_deactivate)

    def finish(self):
        """The operation's own work is done: run what waits for that."""
        if self.finishing is not None:
            self.finishing(self)


class HandlerFailed(Exception):
    """
    An SBB handler (or life-cycle method) raised, or asked for roll-back.

    @ivar entity_id: the entity that failed.
    @ivar event_type: the event being delivered.
    @ivar event: the event object.
    @ivar activity_key: the activity it was delivered on.
    """

    def __init__(self, entity_id, event_type, event, activity_key, cause):
        super().__init__(f"{cause!r}")
        self.entity_id = entity_id
        self.event_type = event_type
        self.event = event
        self.activity_key = activity_key
        self.cause = cause


class EventRouter:
    """
    The queue of operations and the loop that runs them in transactions.

    @ivar current: the L{Work} of the operation running now, or C{None}
        outside a delivery.  Transactional facilities look here.
    @ivar delivered: operations committed so far.
    @ivar rolled_back: operations rolled back so far.
    @ivar collector: called at the end of each turn, when the turn's
        operations are done, or C{None} (see L{slee.collector}).
    @ivar operation_cost: seconds an operation has taken lately, a moving
        average over the batches run (commits included).
    """

    #: The weight of the last batch in L{operation_cost}: about the last
    #: ten batches count.
    COST_WEIGHT = 0.1

    log = Logger(namespace="slee.router", observer=log_observer)

    def __init__(self, transaction_manager, clock, batch_max=256, conflict_retries=5,
                 queue_max=100000, timer=time.perf_counter):
        self._tm = transaction_manager
        self._clock = clock
        self._timer = timer
        self.batch_max = batch_max
        self.queue_max = queue_max
        self.conflict_retries = conflict_retries
        self._queue = deque()
        self._scheduled = None
        self._paused = True
        self.current = None
        self.delivered = 0
        self.rolled_back = 0
        self.collector = None
        self.operation_cost = 0.0

    def __len__(self):
        return len(self._queue)

    @property
    def full(self):
        """
        Whether new work from outside should be refused.  Only resource
        adaptors are held to it: events fired by committed deliveries,
        activity ends and timers are work already accepted, and are queued
        whatever the length.
        """
        return len(self._queue) >= self.queue_max

    def queue_delay(self):
        """
        @return: an estimate of the seconds an operation queued now would
            wait before it runs: what is queued ahead of it, at what
            operations have cost lately.
        """
        return len(self._queue) * self.operation_cost

    def enqueue(self, operation):
        """
        Queue an operation: an object with C{run(work)} and
        C{rolled_back(failure)}.
        """
        self._queue.append(operation)
        if self._scheduled is None and not self._paused:
            self._scheduled = self._clock.callLater(0, self._drain)

    def resume(self):
        """Start (or restart) running queued operations."""
        self._paused = False
        if self._queue and self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._drain)

    def pause(self):
        """Stop taking operations from the queue; the queue is kept."""
        self._paused = True
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None

    def drain(self):
        """Run every queued operation now (used at shutdown and by tests)."""
        while self._queue:
            self._run_batch()

    def run_in_transaction(self, function, *args):
        """
        Run C{function(*args)} in a transaction of its own, outside the
        queue, with its effects released after the commit.  Management uses
        this; it must not be called from a delivery.

        @return: what C{function} returned.
        """
        if self.current is not None:
            raise RuntimeError("run_in_transaction() called inside a delivery")
        work = self.current = Work(isolated=True)
        try:
            self._tm.begin()
            result = function(*args)
            work.finish()
            self._tm.commit()
        except BaseException:
            self._abort([work])
            raise
        finally:
            self.current = None
        self._release(work)
        return result

    def _drain(self):
        """
        Run what was queued when the reactor called, in batches, then let
        the reactor go round again.  The queue is emptied at the pace it is
        filled: an RA that reads a socket reads it once per round, so the
        queue holds at most what one round brought, and a server that
        cannot keep up leaves the excess in the kernel (which drops it, and
        UDP peers retransmit) instead of in a queue that makes every answer
        late.  What the batches fire waits for the next round, so that a
        service firing events on every event cannot hold the reactor.
        """
        self._scheduled = None
        batches = -(-len(self._queue) // self.batch_max)
        while batches and not self._paused:
            self._run_batch()
            batches -= 1
        if self.collector is not None:
            self.collector()
        if self._queue and self._scheduled is None and not self._paused:
            self._scheduled = self._clock.callLater(0, self._drain)

    def _take_batch(self):
        queue = self._queue
        count = min(len(queue), self.batch_max)
        return [queue.popleft() for _ in range(count)]

    def _run_batch(self):
        """Run the next batch, with the garbage collector held off (see the module
        docstring), and count what it cost into L{operation_cost}."""
        batch = self._take_batch()
        if not batch:
            return
        collecting = gc.isenabled()
        gc.disable()
        started = self._timer()
        try:
            self._run_operations(batch)
        finally:
            if collecting:
                gc.enable()
            cost = (self._timer() - started) / len(batch)
            weight = self.COST_WEIGHT if self.operation_cost else 1.0
            self.operation_cost += (cost - self.operation_cost) * weight

    def _run_operations(self, batch):
        if len(batch) == 1:
            self._run_isolated(batch)
            return
        for _ in range(self.conflict_retries + 1):
            works = []
            try:
                self._tm.begin()
                for operation in batch:
                    work = self.current = Work(isolated=False)
                    works.append(work)
                    operation.run(work)
                    work.finish()
                self.current = None
                self._tm.commit()
            except ConflictError:
                self._abort(works)
                continue
            except Exception:
                # Some operation failed: run them one by one, so that it
                # alone rolls back and reports its failure.
                self._abort(works)
                break
            self.delivered += len(batch)
            self._release_batch(batch, works)
            return
        self._run_isolated(batch)

    def _release_batch(self, batch, works):
        """
        Release the effects of a committed batch, dropping each operation
        as soon as its effects ran: what it alone holds (an RA's request,
        say) is freed while its effects left it in the processor's caches,
        not with the whole batch, long after.
        """
        for index, work in enumerate(works):
            self._release(work)
            batch[index] = works[index] = None

    def _run_isolated(self, batch):
        for operation in batch:
            for _ in range(self.conflict_retries + 1):
                work = self.current = Work(isolated=True)
                try:
                    self._tm.begin()
                    operation.run(work)
                    work.finish()
                    self._tm.commit()
                except ConflictError:
                    self._abort([work])
                    continue
                except Exception as failure:
                    self._abort([work])
                    self._rolled_back(operation, failure)
                    break
                self.current = None
                self._release(work)
                self.delivered += 1
                break
            else:
                self.log.error("{operation} rolled back: still conflicting after {retries} retries",
                               operation=operation, retries=self.conflict_retries)
                self._rolled_back(operation, None)

    def _abort(self, works):
        """Abort the transaction, then undo what its operations set up."""
        self.current = None
        self._tm.abort()
        for work in works:
            for action in reversed(work.undo):
                try:
                    action()
                except Exception:
                    self.log.failure("an undo action failed: {action!r}", action=action)

    def _rolled_back(self, operation, failure):
        self.rolled_back += 1
        if failure is not None and not isinstance(failure, HandlerFailed):
            self.log.failure("{operation} failed in the container; rolled back",
                             operation=operation)
        try:
            operation.rolled_back(failure)
        except Exception:
            self.log.failure("cleaning up after the roll-back of {operation} failed",
                             operation=operation)

    def _release(self, work):
        for effect in work.effects:
            try:
                effect()
            except Exception:
                self.log.failure("an after-commit action failed: {effect!r}", effect=effect)
