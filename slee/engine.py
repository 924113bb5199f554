"""
The JAIN SLEE semantics of one operation, inside its transaction.

The L{slee.router.EventRouter} decides I{when} operations run and in which
transaction; the L{Engine} decides I{what} they do to the persistent state
(JAIN SLEE 1.1 chapter 8):

1. initial event processing: for every active service whose root SBB
   takes the event as initial, compute the convergence name, find or
   create the root SBB entity, attach it to the activity context;
2. delivery to every attached SBB entity, highest priority first, skipping
   masked events; an entity attached during delivery still gets the event;
3. at the end of the event, entity trees with no attachment left are
   removed, and null activities nothing holds open are ended.

Activity context records are made lazily: an activity that no entity is
attached to, no name is bound to and no timer is set on costs nothing in
the database.  The router only knows activities through L{Engine.live}.

Records an operation makes (entities, activity contexts, root index
entries) wait in its L{slee.router.Work} and reach the database's trees
only when the operation ends, if they still exist then.  Most requests make
an entity and an activity context and remove both before their event is
done (an OPTIONS, an XCAP GET): they then leave the trees untouched, and a
batch of them commits nothing to the storage.  Every lookup sees the
waiting records first (L{Engine.find_entity}, L{Engine.find_activity}).
"""

import uuid
from functools import partial

from BTrees.LLBTree import LLBTree
from BTrees.OOBTree import OOBTree
from twisted.python.failure import Failure
from twisted.logger import Logger

from slee.context import (
    ActivityContextInterface, NullActivity, SbbContext, SbbLocalObject, ServiceActivity)
from slee.errors import (
    ConfigurationError, NoSuchEntityError, OverloadError, TransactionRequiredError,
    UnknownActivityError)
from slee.events import ACTIVITY_END, SERVICE_STARTED, ActivityEndEvent, EventType, ServiceStartedEvent
from slee.records import ActivityContextRecord, SbbEntityRecord, new_handle, new_id
from slee.router import HandlerFailed
from slee.sbb import Select
from slee.trace import log_observer

NULL_RA = "slee.null"
SERVICE_RA = "slee.service"

#: The usual convergence name selection: one root entity per activity.
BY_ACTIVITY = (Select.ACTIVITY_CONTEXT,)


def activity_key(ra, handle):
    """@return: the key of RA entity C{ra}'s activity C{handle}."""
    return f"{ra}/{handle}"



#: Attached entities an activity context record keeps in itself; beyond,
#: they move to a BTree of their own, so that attaching the 10,000th watcher
#: of a presentity writes one bucket, not the 10,000 before it.
ATTACHED_IN_RECORD = 64


def _attached_changed(record):
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


class Engine:
    """
    The in-transaction half of the container.

    @ivar live: activity key to L{ActivityInfo}, for every started activity.
    """

    log = Logger(namespace="slee.engine", observer=log_observer)

    def __init__(self, registry, router, clock, timers, naming, usage, alarms, trace):
        self.registry = registry
        self.router = router
        self.clock = clock
        self.timers = timers
        self.naming = naming
        self.usage = usage
        self.alarms = alarms
        self.trace = trace
        self._state = self._entities = self._activities = self._roots = None
        self._stored_entity = self._stored_activity = None
        self._root_indexes = {}
        self.live = {}

    @property
    def state(self):
        """The L{slee.records.ContainerState} of the open connection."""
        return self._state

    @state.setter
    def state(self, state):
        # What every event reads, at hand.  Reading an attribute of a
        # persistent object, a BTree's methods included, costs several
        # times a plain one (its name is encoded and checked each time);
        # the hot path reads records' attributes once each where it can,
        # and tests BTree keys with "in" rather than calling get().  The
        # trees are made with the state and never replaced.
        self._state = state
        self._entities = state.entities
        self._activities = state.activities
        self._roots = state.roots
        self._stored_entity = state.entities.get
        self._stored_activity = state.activities.get

    def _roots_of(self, service_id):
        """
        @return: the root-entity index of service C{service_id}, made when
            first asked.  Once stored, an index is the same object for the
            connection's life (it is never replaced), so it is kept at hand
            too; not before, as the transaction making it may abort.
        """
        index = self._root_indexes.get(service_id)
        if index is None:
            index = self._roots.get(service_id)
            if index is None:
                index = self._roots[service_id] = OOBTree()
            elif index._p_oid is not None:
                self._root_indexes[service_id] = index
        return index

    def find_entity(self, entity_id):
        """@return: the record of entity C{entity_id}, or None."""
        work = self.router.current
        if work is not None and work.new_entities:
            entity = work.new_entities.get(entity_id)
            if entity is not None:
                return entity
        return self._stored_entity(entity_id)

    def find_activity(self, key):
        """@return: the context record of activity C{key}, or None."""
        work = self.router.current
        if work is not None and work.new_activities:
            record = work.new_activities.get(key)
            if record is not None:
                return record
        return self._stored_activity(key)

    def _staged(self, work):
        """
        @return: C{work}, with the dicts of the records it made (see the
            module docstring), made on first use.
        """
        if work.new_entities is None:
            work.new_entities, work.new_activities, work.new_roots = {}, {}, {}
            work.finishing = self._store_staged
        return work

    def _store_staged(self, work):
        """The operation ended: what it made and kept goes into the trees."""
        entities, activities = self._entities, self._activities
        for entity_id, entity in work.new_entities.items():
            entities[entity_id] = entity
        for key, record in work.new_activities.items():
            activities[key] = record
        for (service_id, name), entity_id in work.new_roots.items():
            self._roots_of(service_id)[name] = entity_id
        work.new_entities = work.new_activities = work.new_roots = work.finishing = None

    def _delete_activity(self, key, work):
        """Delete the context record of C{key}, waiting or stored."""
        staged = work.new_activities
        if staged and key in staged:
            del staged[key]
        else:
            self._activities.pop(key, None)

    # -- transactions ------------------------------------------------------

    def work(self):
        """
        @return: the L{slee.router.Work} of the running delivery.
        @raise TransactionRequiredError: outside a delivery.
        """
        work = self.router.current
        if work is None:
            raise TransactionRequiredError("this operation needs a transaction (an event delivery)")
        return work

    def after_commit(self, action, *args):
        """
        Run C{action(*args)} when the current delivery commits (at once
        outside one); passing the arguments here spares the hot path a
        closure when there is no delivery.
        """
        work = self.router.current
        if work is None:
            action(*args)
        else:
            work.effects.append(partial(action, *args) if args else action)

    def on_abort(self, action):
        """Run C{action} if the current delivery aborts (nothing outside one)."""
        work = self.router.current
        if work is not None:
            work.undo.append(action)

    def after_rollback(self, failure):
        """
        Report a rolled-back delivery: log it with its service, SBB and
        event, then call the entity's C{sbb_rolled_back} in a new
        transaction.
        """
        if not isinstance(failure, HandlerFailed) or failure.entity_id is None:
            return
        entity = self.find_entity(failure.entity_id)
        if entity is None:              # made by the delivery that rolled back
            self.log.failure(
                "rolled back: a new entity, event {event_type} on {activity}",
                Failure(failure.cause), event_type=failure.event_type.id,
                activity=failure.activity_key)
            return
        self.log.error(
            "rolled back: service {service} SBB {sbb} event {event_type} on {activity}: "
            "{cause!r}", service=entity.service, sbb=entity.sbb,
            event_type=failure.event_type.id, activity=failure.activity_key, cause=failure.cause)
        try:
            self.router.run_in_transaction(self._call_rolled_back, failure)
        except Exception:
            self.log.failure("sbb_rolled_back of entity {entity} failed", entity=failure.entity_id)

    def _call_rolled_back(self, failure):
        entity = self.find_entity(failure.entity_id)
        if entity is not None:
            sbb = self._sbb(failure.entity_id, entity, self.work())
            sbb.sbb_rolled_back(failure.event, self.aci(failure.activity_key))

    # -- activities --------------------------------------------------------

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
            _attached_changed(record)
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
        _attached_changed(record)
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

    # -- events ------------------------------------------------------------

    def process_event(self, key, event_type, event, address, work):
        """Initial event processing, then delivery (see the module docstring)."""
        record = self._route_initial(key, event_type, event, address, work)
        if record is None:
            record = self.find_activity(key)
        if record is not None:
            attached = record.attached
            if attached:
                self._deliver(key, attached, event_type, event, work)
        self._finish(work)

    def _route_initial(self, key, event_type, event, address, work):
        """
        Find or create the root entity of every active service taking the
        event as initial, and attach it to the activity.

        @return: the activity's record if an entity was routed to it,
            otherwise C{None}.
        """
        record = None
        for service, spec in self.registry.initial.get(event_type.id, ()):
            if event_type is SERVICE_STARTED and event.service != service.id:
                continue    # only the service started hears of it (JAIN SLEE 1.1 §8.7.1)
            if spec.select == BY_ACTIVITY and spec.selector is None:
                name = key      # the usual case, in short
            else:
                name = self._convergence_name(service, spec, key, event_type, event, address)
            if name is None:
                continue
            if record is None:
                record = self._record(key)
            entity_id = self._root_entity_id(service.id, name, work)
            if entity_id is not None:
                if entity_id not in record.attached:
                    self.attach(key, entity_id)
            else:
                entity_id, entity = self._create_entity(service.id, service.root, None, None,
                                                        name, service.priority, work)
                work.new_roots[service.id, name] = entity_id
                self._attach(key, record, entity_id, entity, service.root)
        return record

    def _root_entity_id(self, service_id, name, work):
        """@return: the id of service C{service_id}'s root entity named C{name}, or None."""
        staged = work.new_roots
        if staged:
            entity_id = staged.get((service_id, name))
            if entity_id is not None:
                return entity_id
        return self._roots_of(service_id).get(name)

    def _convergence_name(self, service, spec, key, event_type, event, address):
        parts = []
        for variable in spec.select:
            if variable is Select.ACTIVITY_CONTEXT:
                parts.append(key)
            elif variable is Select.ADDRESS:
                parts.append("" if address is None else str(address))
            elif variable is Select.EVENT_TYPE:
                parts.append(event_type.id)
            else:
                parts.append(uuid.uuid4().hex)
        if spec.selector is not None:
            selector = getattr(service.root.bare_object(), spec.selector)
            custom = selector(event_type, event, self.aci(key), address)
            if custom is None:
                return None
            parts.append(str(custom))
        return "\x1f".join(parts)

    def _deliver(self, key, attached, event_type, event, work):
        """Deliver to the entities C{attached} to activity C{key} (its record's dict)."""
        aci = ActivityContextInterface(self, key)
        if len(attached) == 1:
            self._deliver_to(next(iter(attached)), event_type, event, aci, work)
            return
        # Highest priority first.  An entity detached meanwhile is skipped;
        # one attached meanwhile gets the event after those attached before
        # (one pass over the sorted entities, not a search per delivery: an
        # activity may have 10,000 watchers).
        delivered = set()
        while True:
            pending = sorted((-priority, entity_id) for entity_id, priority in attached.items()
                             if entity_id not in delivered)
            if not pending:
                return
            for _, entity_id in pending:
                if entity_id in attached:
                    delivered.add(entity_id)
                    self._deliver_to(entity_id, event_type, event, aci, work)

    def _deliver_to(self, entity_id, event_type, event, aci, work):
        sbb = work.sbbs.get(entity_id)
        if sbb is not None:     # made by this operation already
            entity, component = sbb._entity, sbb._component
        else:
            entity = self.find_entity(entity_id)
            if entity is None:
                return
            component = self.registry.sbbs[entity.sbb]
        spec = component.handlers.get(event_type.id)
        if spec is None:
            return
        masks = entity.masks
        if masks:
            masked = masks.get(aci.key)
            if masked and event_type.id in masked:
                return
        if sbb is None:
            sbb = self._sbb(entity_id, entity, work, component)
        method = getattr(sbb, spec.method)
        work.handled += 1
        if work.isolated:
            try:
                method(event, aci)
            except Exception as exception:
                try:
                    sbb.sbb_exception_thrown(exception, event, aci)
                except Exception:
                    self.log.failure("sbb_exception_thrown of entity {entity} failed",
                                     entity=entity_id)
                raise HandlerFailed(entity_id, event_type, event, aci.key, exception) from exception
        else:
            method(event, aci)
        if work.rollback_only:
            raise HandlerFailed(entity_id, event_type, event, aci.key, "set_rollback_only()")

    def _finish(self, work):
        """End-of-event clean-up: unattached trees, idle activities."""
        while work.garbage:
            root_id = work.garbage.pop()
            root = self._entity(root_id, work)
            if root is not None and not self._tree_attached(root):
                self._remove_tree(root_id, root, work)
        while work.idle_activities:
            self._retire_if_idle(work.idle_activities.pop(), work)

    # -- SBB entities ------------------------------------------------------

    def entity(self, entity_id):
        entity = self.find_entity(entity_id)
        if entity is None:
            raise NoSuchEntityError(f"SBB entity {entity_id} does not exist (any more)")
        return entity

    def entity_exists(self, entity_id):
        return self.find_entity(entity_id) is not None

    def _entity(self, entity_id, work):
        """
        @return: the record of entity C{entity_id}, or C{None}: the one its
            SBB object in the operation running C{work} holds, if it has one
            (quicker than the tree).
        """
        sbb = work.sbbs.get(entity_id)
        return self.find_entity(entity_id) if sbb is None else sbb._entity

    def _sbb(self, entity_id, entity, work, component=None):
        """
        @return: the SBB object of entity C{entity_id} (its record
            C{entity}; an entity of C{component}, if given) for the
            operation running C{work}.  It is made on first use, then serves
            every call into the entity (life-cycle methods, handlers, local
            calls) until the operation ends, as a JAIN SLEE SBB object stays
            assigned to its entity for a transaction.
        """
        sbb = work.sbbs.get(entity_id)
        if sbb is None:
            if component is None:
                component = self.registry.sbbs[entity.sbb]
            sbb = work.sbbs[entity_id] = component.new_object(
                entity, SbbContext(self, entity_id, entity, component))
        return sbb

    def local_object(self, entity_id):
        entity = self.entity(entity_id)
        return SbbLocalObject(self, entity_id, self.registry.sbbs[entity.sbb].local_names)

    def call_local(self, entity_id, name, args, kwargs):
        """Call a local interface method of an entity, in this transaction."""
        work = self.work()
        entity = self._entity(entity_id, work)
        if entity is None:
            raise NoSuchEntityError(f"SBB entity {entity_id} does not exist (any more)")
        return getattr(self._sbb(entity_id, entity, work), name)(*args, **kwargs)

    def resource_adaptor(self, name):
        entity = self.registry.ra_entities.get(name)
        if entity is None:
            raise ConfigurationError(f"no resource adaptor entity named {name!r}")
        return entity.sbb_interface

    def set_priority(self, entity_id, priority):
        entity = self.entity(entity_id)
        entity.priority = priority
        for key in entity.attached:
            record = self.find_activity(key)
            record.attached[entity_id] = priority
            _attached_changed(record)

    def _create_entity(self, service_id, component, parent, relation, name, priority, work):
        """@return: the new entity's id and record, once its creation callbacks ran."""
        entity_id = new_id(self._entities)
        root = entity_id if parent is None else parent.root
        entity = SbbEntityRecord(entity_id, service_id, component.id,
                                 None if parent is None else parent.id,
                                 root, relation, name, priority)
        self._staged(work).new_entities[entity_id] = entity
        life_cycle = component.life_cycle
        if life_cycle:
            sbb = self._sbb(entity_id, entity, work, component)
            if "sbb_create" in life_cycle:
                sbb.sbb_create()
            if "sbb_post_create" in life_cycle:
                sbb.sbb_post_create()
        return entity_id, entity

    def create_child(self, parent, relation_name):
        work = self.work()
        relation, child = self.registry.sbbs[parent.sbb].relations[relation_name]
        entity_id, _ = self._create_entity(parent.service, child, parent, relation_name, None,
                                           relation.priority, work)
        parent.children.setdefault(relation_name, []).append(entity_id)
        parent._p_changed = True
        return SbbLocalObject(self, entity_id, child.local_names)

    def remove_entity(self, entity_id):
        """Remove an entity and its descendants, in this transaction."""
        work = self.work()
        entity = self.entity(entity_id)
        if entity.parent is not None:
            parent = self.find_entity(entity.parent)
            if parent is not None:
                siblings = parent.children.get(entity.relation, [])
                if entity_id in siblings:
                    siblings.remove(entity_id)
                    parent._p_changed = True
                work.garbage.add(entity.root)
        self._remove_tree(entity_id, entity, work)

    def _tree_attached(self, entity):
        if entity.attached:
            return True
        children = entity.children
        if children:
            for relation in children.values():
                for child_id in relation:
                    child = self.find_entity(child_id)
                    if child is not None and self._tree_attached(child):
                        return True
        return False

    def _remove_tree(self, entity_id, entity, work):
        children = entity.children
        if children:
            for relation in list(children.values()):
                for child_id in list(relation):
                    child = self.find_entity(child_id)
                    if child is not None:
                        self._remove_tree(child_id, child, work)
        if "sbb_remove" in self.registry.sbbs[entity.sbb].life_cycle:
            self._sbb(entity_id, entity, work).sbb_remove()
        work.sbbs.pop(entity_id, None)
        for key in entity.attached:
            record = self.find_activity(key)
            if record is not None:
                record.attached.pop(entity_id, None)
                _attached_changed(record)
                work.idle_activities.add(key)
        staged = work.new_entities
        if staged and entity_id in staged:
            del staged[entity_id]
        else:
            del self._entities[entity_id]
        if entity.parent is None:
            service_id, name = entity.service, entity.convergence_name
            roots, staged_roots = self._roots_of(service_id), work.new_roots
            if staged_roots and (service_id, name) in staged_roots:
                del staged_roots[service_id, name]
            elif name in roots:
                del roots[name]
            if not roots and not any(key[0] == service_id for key in staged_roots or ()):
                self.service_emptied(service_id)

    def service_emptied(self, service_id):
        """
        The last root entity of a service is gone: a stopping service
        becomes inactive.  Replaced by the container.
        """
