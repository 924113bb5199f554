"""
Activities, as the engine (L{slee.engine.Engine}) keeps them: their live
state in memory (L{ActivityInfo}), the operations the router runs on them
(L{FireEvent}, L{EndActivity}), and their activity context records, made
only when something holds them (an attached entity, a bound name, a timer),
with the entities attached to each.
"""

from functools import partial

from BTrees.LLBTree import LLBTree

from slee.context import ActivityContextInterface, NullActivity, ServiceActivity
from slee.errors import OverloadError, UnknownActivityError
from slee.events import (
    ACTIVITY_END, SERVICE_STARTED, ActivityEndEvent, EventType, ServiceStartedEvent)
from slee.records import ActivityContextRecord, new_handle

NULL_RA = "slee.null"
SERVICE_RA = "slee.service"


def activity_key(ra, handle):
    """@return: the key of RA entity C{ra}'s activity C{handle}."""
    return f"{ra}/{handle}"


#: Attached entities an activity context record keeps in itself; beyond,
#: they move to a BTree of their own, so that attaching the 10,000th watcher
#: of a presentity writes one bucket, not the 10,000 before it.
ATTACHED_IN_RECORD = 64


def attached_changed(record):
    """Note that C{record.attached} changed: its record is written again, unless it is a BTree."""
    if type(record.attached) is dict:
        record._p_changed = True


class ActivityInfo:
    """
    What the container knows of a live activity without the database.

    Most activities (a SIP transaction answered at once, say) end with no
    record: no entity stayed attached, no name was bound, no timer set.
    Their end event has nobody to go to, so L{Engine.request_end} forgets
    them at once, without an operation, when C{queued} and C{recorded} say
    that nothing can change that any more.

    @ivar ending: an activity end event is queued; no event may be fired.
    @ivar queued: how many events fired on it wait in the queue.  An event
        leaves the count when it runs, and comes back to it should its
        transaction abort.
    @ivar recorded: whether it may have an activity context record.  Set
        when one is made; cleared only when the running transaction deletes
        it, and set again should that transaction abort.
    """

    __slots__ = ("ra", "handle", "durable", "ending", "queued", "recorded")

    def __init__(self, ra, handle, durable, recorded=True):
        self.ra = ra
        self.handle = handle
        self.durable = durable
        self.ending = False
        self.queued = 0
        self.recorded = recorded

    def event_requeued(self):
        """The transaction that ran one of its events aborted: it waits again."""
        self.queued += 1

    def record_deleted(self, work):
        """The operation running C{work} deleted the activity's record."""
        self.recorded = False
        work.undo.append(self._record_restored)

    def _record_restored(self):
        self.recorded = True


class FireEvent:
    """
    The operation: deliver an event fired on an activity.

    @ivar info: the L{ActivityInfo} of the activity when the event was
        fired (C{None} if it was not live), which counts it as queued.
    @ivar on_processed: called as C{on_processed(committed, handlers)} once
        the event's transaction committed (C{committed} true, C{handlers} the
        number of SBB handlers it was delivered to) or rolled back
        (C{committed} false); or C{None}.  An RA uses it to answer work no
        service took, or whose service failed.
    """

    __slots__ = ("engine", "key", "info", "event_type", "event", "address", "on_processed")

    def __init__(self, engine, key, info, event_type, event, address, on_processed=None):
        self.engine = engine
        self.key = key
        self.info = info
        self.event_type = event_type
        self.event = event
        self.address = address
        self.on_processed = on_processed

    def enqueue(self):
        """Queue it; its activity counts it until it is processed."""
        if self.info is not None:
            self.info.queued += 1
        self.engine.router.enqueue(self)

    def run(self, work):
        if self.info is not None:
            self.info.queued -= 1
            work.undo.append(self.info.event_requeued)
        self.engine.process_event(self.key, self.event_type, self.event, self.address, work)
        if self.on_processed is not None:
            work.effects.append(partial(self.on_processed, True, work.handled))

    def rolled_back(self, failure):
        if self.info is not None:
            self.info.queued -= 1       # for good
        self.engine.after_rollback(failure)
        if self.on_processed is not None:
            self.on_processed(False, 0)

    def __repr__(self):
        return f"<event {self.event_type.id} on {self.key}>"


class EndActivity:
    """The operation: deliver the activity end event, then forget it."""

    __slots__ = ("engine", "key")

    def __init__(self, engine, key):
        self.engine = engine
        self.key = key

    def run(self, work):
        self.engine.process_end(self.key, work)

    def rolled_back(self, failure):
        self.engine.after_rollback(failure)
        # The activity is gone whatever its SBBs did: clean up without them.
        self.engine.router.run_in_transaction(self.engine.forget_activity, self.key)

    def __repr__(self):
        return f"<end of {self.key}>"


class ActivityContexts:
    """
    The engine's activities: started, ended, fired on, attached to (a part
    of L{slee.engine.Engine}).
    """

    def start_activity(self, ra, handle, durable):
        """
        Start an RA's activity; inside a delivery, only once it commits.

        @return: the activity key.
        """
        key = activity_key(ra, handle)
        info = self.live.get(key)
        if info is not None and not info.ending:
            if info.durable and durable:
                return key
            raise ValueError(f"activity {key} is started already")
        # Started again while its end is queued: the old record may be there.
        info = ActivityInfo(ra, handle, durable, info is not None)
        work = self.router.current
        if work is None:
            self.live[key] = info
        else:
            # SBBs may attach to it in this transaction already.
            if work.started is None:
                work.started = {}
            work.started[key] = info
            work.effects.append(lambda: self.live.__setitem__(key, info))
        return key

    def _live_info(self, key):
        """
        @return: the L{ActivityInfo} of a live activity, or of one the
            running operation started; C{None} for any other.
        """
        info = self.live.get(key)
        if info is None:
            work = self.router.current
            if work is not None and work.started:
                info = work.started.get(key)
        return info

    def request_end(self, key):
        """
        End an activity: its end event is queued behind the events already
        fired on it; or, if it has no record and no event waits, it is
        forgotten at once (see L{ActivityInfo}).  Inside a delivery, only
        once it commits.
        """
        self.after_commit(self._end, key)

    def _end(self, key):
        info = self.live.get(key)
        if info is None or info.ending:
            return
        if info.queued or info.recorded:
            info.ending = True
            self.router.enqueue(EndActivity(self, key))
        else:
            # Nothing is attached, named or timed, and no event is coming
            # that could change that: nobody to deliver the end event to.
            del self.live[key]

    def fire_event(self, key, event_type, event, address=None, on_processed=None):
        """
        Fire an event on a live activity; inside a delivery, only once it
        commits.  See L{FireEvent} for C{on_processed}.

        @raise UnknownActivityError: if the activity is not live or ending.
        @raise ValueError: if the event type is not installed.
        @raise OverloadError: outside a delivery, if the queue is full.
        """
        if not isinstance(event_type, EventType) or event_type.id not in self.registry.event_types:
            raise ValueError(f"event type {event_type} is not installed")
        info = self._live_info(key)
        work = self.router.current
        if info is None or info.ending:
            if work is None or self.find_activity(key) is None:
                raise UnknownActivityError(f"activity {key} is not live")
        operation = FireEvent(self, key, info, event_type, event, address, on_processed)
        if work is None:
            if self.router.full:
                raise OverloadError(f"event queue full ({len(self.router)} events waiting)")
            operation.enqueue()
        else:
            work.effects.append(operation.enqueue)

    def create_null_activity(self):
        """
        @return: the interface of a new null activity (see
            L{slee.interfaces.ISbbContext.create_null_activity}).
        """
        work = self.work()
        handle = new_handle()
        key = activity_key(NULL_RA, handle)
        self._staged(work).new_activities[key] = ActivityContextRecord(key, NULL_RA, handle, True)
        work.effects.append(lambda: self.live.__setitem__(key, ActivityInfo(NULL_RA, handle, True)))
        work.idle_activities.add(key)
        return ActivityContextInterface(self, key)

    def end_null_activity(self, key):
        self.work()
        self.request_end(key)

    def start_service_activity(self, service_id):
        """Start a service's activity and fire the service-started event."""
        key = self.start_activity(SERVICE_RA, service_id, durable=False)
        self.after_commit(FireEvent(self, key, self._live_info(key), SERVICE_STARTED,
                                    ServiceStartedEvent(service_id), None).enqueue)

    def aci(self, key):
        return ActivityContextInterface(self, key)

    def activity(self, key):
        """@return: the activity object behind C{key}."""
        ra, handle = key.split("/", 1)
        if ra == NULL_RA:
            return NullActivity(self, key)
        if ra == SERVICE_RA:
            return ServiceActivity(handle)
        entity = self.registry.ra_entities.get(ra)
        return None if entity is None else entity.adaptor.get_activity(handle)

    def is_ending(self, key):
        info = self._live_info(key)
        return info is None or info.ending

    def _record(self, key):
        """
        @return: the activity's record, made now if it has none yet.
        """
        record = self.find_activity(key)
        if record is None:
            info = self._live_info(key)
            if info is None or info.ending:
                raise UnknownActivityError(f"activity {key} is not live")
            record = ActivityContextRecord(key, info.ra, info.handle, info.durable)
            self._staged(self.work()).new_activities[key] = record
            info.recorded = True
        return record

    def attach(self, key, entity_id):
        record = self._record(key)
        if entity_id not in record.attached:
            entity = self.entity(entity_id)
            self._attach(key, record, entity_id, entity, self.registry.sbbs[entity.sbb])

    def _attach(self, key, record, entity_id, entity, component):
        """Attach C{entity}, an entity of C{component}, to activity C{key}."""
        attached = record.attached
        attached[entity_id] = entity.priority
        if type(attached) is dict and len(attached) > ATTACHED_IN_RECORD:
            record.attached = LLBTree(attached)     # its own buckets from now on
        else:
            attached_changed(record)
        entity.attach_to(key)
        masked = component.masked_on_attach
        if masked:
            entity.masks[key] = set(masked)
        entity._p_changed = True

    def detach(self, key, entity_id):
        record = self.find_activity(key)
        if record is None:
            return
        attached = record.attached
        if entity_id not in attached:
            return
        work = self.work()
        del attached[entity_id]
        attached_changed(record)
        entity = self._entity(entity_id, work)
        if entity is not None:
            entity.detach_from(key)
            masks = entity.masks
            if masks:
                masks.pop(key, None)
            entity._p_changed = True
            work.garbage.add(entity.root)
        work.idle_activities.add(key)

    def is_attached(self, key, entity_id):
        record = self.find_activity(key)
        return record is not None and entity_id in record.attached

    def attached_count(self, key):
        record = self.find_activity(key)
        return 0 if record is None else len(record.attached)

    def mask_events(self, entity, key, event_types):
        """Mask C{event_types} (L{EventType}s or ids) on C{key} for C{entity}."""
        if key not in entity.attached:
            raise ValueError(f"SBB entity {entity.id} is not attached to {key}")
        entity.masks[key] = {getattr(t, "id", t) for t in event_types}
        entity._p_changed = True

    def process_end(self, key, work):
        """Deliver the activity end event, then forget the activity."""
        record = self.find_activity(key)
        if record is not None and record.attached:
            record.ending = True
            self._deliver(key, record.attached, ACTIVITY_END, ActivityEndEvent(key), work)
        self.forget_activity(key)
        self._finish(work)

    def forget_activity(self, key):
        """Detach everything from an ended activity and drop its record."""
        record = self.find_activity(key)
        if record is not None:
            for entity_id in list(record.attached):
                self.detach(key, entity_id)
            for name in list(record.names):
                self.naming.forget(name)
            for timer_id in list(record.timers):
                self.timers.cancel_timer(timer_id)
            self._delete_activity(key, self.work())
        self.after_commit(lambda: self.live.pop(key, None))

    def _retire_if_idle(self, key, work):
        record = self.find_activity(key)
        if record is None or record.attached or record.names or record.timers:
            return
        if not record.durable:
            self._delete_activity(key, work)
            info = self._live_info(key)
            if info is not None:
                info.record_deleted(work)
        elif record.ra == NULL_RA:     # durable, as every null activity
            # Nothing holds it open any more: it ends (JAIN SLEE 7.10).
            self._delete_activity(key, work)
            work.effects.append(lambda: self.live.pop(key, None))
