"""
The timer facility: single and periodic timers on activities.

A timer is a L{slee.records.TimerRecord} in the database, written in the
transaction that sets it, so a rolled-back handler leaves no timer behind
and a committed one survives a restart.  It is armed (in a
L{slee.schedule.Schedule}: one reactor call for all timers) only after the
commit, and armed again for every stored timer when the container starts;
a timer that fell due while the container was down fires at once.

When a timer falls due the router runs a L{FireTimer} operation: the
L{slee.events.TimerEvent} is delivered on the timer's activity to the
entities attached to it, and the timer is moved to its next due time or
deleted, in the same transaction.
"""

import math

from twisted.logger import Logger
from zope.interface import implementer

from slee.events import TIMER, TimerEvent
from slee.interfaces import ITimerFacility
from slee.records import TimerRecord, new_id
from slee.schedule import Schedule
from slee.trace import log_observer


class FireTimer:
    """The operation: a timer fell due."""

    __slots__ = ("facility", "timer_id")

    def __init__(self, facility, timer_id):
        self.facility = facility
        self.timer_id = timer_id

    def run(self, work):
        self.facility.expire(self.timer_id, work, deliver=True)

    def rolled_back(self, failure):
        engine = self.facility.engine
        engine.after_rollback(failure)
        # The timer fired even though its handler failed: move it on.
        engine.router.run_in_transaction(
            lambda: self.facility.expire(self.timer_id, engine.work(), deliver=False))

    def __repr__(self):
        return f"<timer {self.timer_id}>"


@implementer(ITimerFacility)
class TimerFacility:
    """
    Set and cancel timers; see the module docstring and L{ITimerFacility}.
    """

    log = Logger(namespace="slee.timers", observer=log_observer)

    def __init__(self, clock):
        self.clock = clock
        self.engine = None
        self._armed = Schedule(clock, self._fall_due)

    def set_timer(self, aci, delay, period=None, repetitions=None):
        """
        Set a timer on an activity.

        @param delay: seconds until the first expiry (>= 0).
        @param period: seconds between expiries of a periodic timer, or
            C{None} for a single one.
        @param repetitions: how many times a periodic timer fires in all
            (C{None}: until cancelled).
        @return: the timer id.
        """
        engine = self.engine
        work = engine.work()
        if not delay >= 0:
            raise ValueError(f"timer delay must be >= 0, not {delay!r}")
        if period is None:
            remaining = 0
        else:
            if not period > 0:
                raise ValueError(f"timer period must be > 0, not {period!r}")
            if repetitions is not None and repetitions < 1:
                raise ValueError(f"timer repetitions must be >= 1, not {repetitions!r}")
            remaining = None if repetitions is None else repetitions - 1
        record = engine._record(aci.key)
        timers = engine.state.timers
        timer_id = new_id(timers)
        due = self.clock.seconds() + delay
        timers[timer_id] = TimerRecord(timer_id, aci.key, due, period, remaining)
        record.add_timer(timer_id)
        work.effects.append(lambda: self._arm(timer_id, due))
        return timer_id

    def cancel_timer(self, timer_id):
        """Cancel a timer; cancelling an unknown or expired one does nothing."""
        engine = self.engine
        work = engine.work()
        timer = engine.state.timers.pop(timer_id, None)
        if timer is None:
            return
        work.evict(timer)
        record = engine.find_activity(timer.activity)
        if record is not None:
            record.discard_timer(timer_id)
            work.idle_activities.add(timer.activity)
        work.effects.append(lambda: self._disarm(timer_id))

    def rearm_all(self):
        """Arm every stored timer (at start-up); late ones fire at once."""
        for timer in self.engine.state.timers.values():
            self._arm(timer.id, timer.due)

    def disarm_all(self):
        self._armed.clear()

    def armed_count(self):
        return len(self._armed)

    def _arm(self, timer_id, due):
        self._armed.add(timer_id, due)

    def _disarm(self, timer_id):
        self._armed.remove(timer_id)

    def _fall_due(self, timer_id):
        self.engine.router.enqueue(FireTimer(self, timer_id))

    def expire(self, timer_id, work, deliver):
        """
        A timer fell due: deliver its event (if C{deliver}), then move it
        to its next due time or delete it.
        """
        engine = self.engine
        timer = engine.state.timers.get(timer_id)
        if timer is None:
            return
        now = self.clock.seconds()
        if deliver:
            event = TimerEvent(timer_id, timer.due, now, timer.remaining)
            engine.process_event(timer.activity, TIMER, event, None, work)
            if engine.state.timers.get(timer_id) is None:
                return
        if timer.period is not None and (timer.remaining is None or timer.remaining > 0):
            # Skip the expiries missed while the container was down.
            missed = max(0, math.floor((now - timer.due) / timer.period))
            timer.due += (missed + 1) * timer.period
            if timer.remaining is not None:
                timer.remaining = max(0, timer.remaining - 1 - missed)
            due = timer.due
            work.effects.append(lambda: self._arm(timer_id, due))
        else:
            self.cancel_timer(timer_id)
        engine._finish(work)
