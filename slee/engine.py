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
"""

import uuid

from twisted.logger import Logger

from slee.context import (
    ActivityContextInterface, NullActivity, SbbContext, SbbLocalObject, ServiceActivity)
from slee.errors import (
    ConfigurationError, NoSuchEntityError, OverloadError, TransactionRequiredError,
    UnknownActivityError)
from slee.events import ACTIVITY_END, SERVICE_STARTED, ActivityEndEvent, EventType, ServiceStartedEvent
from slee.records import ActivityContextRecord, SbbEntityRecord, new_id
from slee.router import HandlerFailed
from slee.sbb import Select

NULL_RA = "slee.null"
SERVICE_RA = "slee.service"


def activity_key(ra, handle):
    """@return: the key of RA entity C{ra}'s activity C{handle}."""
    return f"{ra}/{handle}"


class ActivityInfo:
    """
    What the container knows of a live activity without the database.

    @ivar ending: an activity end event is queued; no event may be fired.
    """

    __slots__ = ("ra", "handle", "durable", "ending")

    def __init__(self, ra, handle, durable):
        self.ra = ra
        self.handle = handle
        self.durable = durable
        self.ending = False


class FireEvent:
    """
    The operation: deliver an event fired on an activity.

    @ivar on_processed: called as C{on_processed(committed, handlers)} once
        the event's transaction committed (C{committed} true, C{handlers} the
        number of SBB handlers it was delivered to) or rolled back
        (C{committed} false); or C{None}.  An RA uses it to answer work no
        service took, or whose service failed.
    """

    __slots__ = ("engine", "key", "event_type", "event", "address", "on_processed")

    def __init__(self, engine, key, event_type, event, address, on_processed=None):
        self.engine = engine
        self.key = key
        self.event_type = event_type
        self.event = event
        self.address = address
        self.on_processed = on_processed

    def run(self, work):
        self.engine.process_event(self.key, self.event_type, self.event, self.address, work)
        on_processed = self.on_processed
        if on_processed is not None:
            handlers = work.handled
            work.effects.append(lambda: on_processed(True, handlers))

    def rolled_back(self, failure):
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

    @ivar state: the L{slee.records.ContainerState} of the open connection.
    @ivar live: activity key to L{ActivityInfo}, for every started activity.
    """

    log = Logger(namespace="slee.engine")

    def __init__(self, registry, router, clock, timers, naming, usage, alarms, trace):
        self.registry = registry
        self.router = router
        self.clock = clock
        self.timers = timers
        self.naming = naming
        self.usage = usage
        self.alarms = alarms
        self.trace = trace
        self.state = None
        self.live = {}

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

    def after_commit(self, action):
        """Run C{action} when the current delivery commits (at once outside)."""
        work = self.router.current
        if work is None:
            action()
        else:
            work.effects.append(action)

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
        entity = self.state.entities.get(failure.entity_id)
        if entity is None:
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
        entity = self.state.entities.get(failure.entity_id)
        if entity is not None:
            sbb = self._sbb(entity)
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
        info = ActivityInfo(ra, handle, durable)
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
        fired on it.  Inside a delivery, only once it commits.
        """
        def end():
            info = self.live.get(key)
            if info is None or info.ending:
                return
            info.ending = True
            self.router.enqueue(EndActivity(self, key))
        self.after_commit(end)

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
        if info is None or info.ending:
            if self.router.current is None or key not in self.state.activities:
                raise UnknownActivityError(f"activity {key} is not live")
        operation = FireEvent(self, key, event_type, event, address, on_processed)
        if self.router.current is None:
            if self.router.full:
                raise OverloadError(f"event queue full ({len(self.router)} events waiting)")
            self.router.enqueue(operation)
        else:
            self.router.current.effects.append(lambda: self.router.enqueue(operation))

    def create_null_activity(self):
        """
        @return: the interface of a new null activity (see
            L{slee.interfaces.ISbbContext.create_null_activity}).
        """
        work = self.work()
        handle = uuid.uuid4().hex
        key = activity_key(NULL_RA, handle)
        self.state.activities[key] = ActivityContextRecord(key, NULL_RA, handle, True)
        work.effects.append(lambda: self.live.__setitem__(key, ActivityInfo(NULL_RA, handle, True)))
        work.idle_activities.add(key)
        return ActivityContextInterface(self, key)

    def end_null_activity(self, key):
        self.work()
        self.request_end(key)

    def start_service_activity(self, service_id):
        """Start a service's activity and fire the service-started event."""
        key = self.start_activity(SERVICE_RA, service_id, durable=False)
        self.after_commit(lambda: self.router.enqueue(
            FireEvent(self, key, SERVICE_STARTED, ServiceStartedEvent(service_id), None)))

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
        activities = self.state.activities
        record = activities.get(key)
        if record is None:
            info = self._live_info(key)
            if info is None or info.ending:
                raise UnknownActivityError(f"activity {key} is not live")
            record = activities[key] = ActivityContextRecord(key, info.ra, info.handle, info.durable)
        return record

    def attach(self, key, entity_id):
        record = self._record(key)
        if entity_id in record.attached:
            return
        entity = self.entity(entity_id)
        record.attached[entity_id] = entity.priority
        record._p_changed = True
        entity.attached.add(key)
        masked = self.registry.sbbs[entity.sbb].masked_on_attach
        if masked:
            entity.masks[key] = set(masked)
        entity._p_changed = True

    def detach(self, key, entity_id):
        record = self.state.activities.get(key)
        if record is None or entity_id not in record.attached:
            return
        del record.attached[entity_id]
        record._p_changed = True
        entity = self.state.entities.get(entity_id)
        if entity is not None:
            entity.attached.discard(key)
            entity.masks.pop(key, None)
            entity._p_changed = True
            self.work().garbage.add(entity.root)
        self.work().idle_activities.add(key)

    def is_attached(self, key, entity_id):
        record = self.state.activities.get(key)
        return record is not None and entity_id in record.attached

    def attached_count(self, key):
        record = self.state.activities.get(key)
        return 0 if record is None else len(record.attached)

    def mask_events(self, entity, key, event_types):
        """Mask C{event_types} (L{EventType}s or ids) on C{key} for C{entity}."""
        if key not in entity.attached:
            raise ValueError(f"SBB entity {entity.id} is not attached to {key}")
        entity.masks[key] = {getattr(t, "id", t) for t in event_types}
        entity._p_changed = True

    def process_end(self, key, work):
        """Deliver the activity end event, then forget the activity."""
        record = self.state.activities.get(key)
        if record is not None and record.attached:
            record.ending = True
            self._deliver(record, ACTIVITY_END, ActivityEndEvent(key), work)
        self.forget_activity(key)
        self._finish(work)

    def forget_activity(self, key):
        """Detach everything from an ended activity and drop its record."""
        record = self.state.activities.get(key)
        if record is not None:
            for entity_id in list(record.attached):
                self.detach(key, entity_id)
            for name in list(record.names):
                self.naming.forget(name)
            for timer_id in list(record.timers):
                self.timers.cancel_timer(timer_id)
            self.state.activities.pop(key, None)
        self.after_commit(lambda: self.live.pop(key, None))

    def _retire_if_idle(self, key, work):
        record = self.state.activities.get(key)
        if record is None or record.attached or record.names or record.timers:
            return
        if record.ra == NULL_RA:
            # Nothing holds it open any more: it ends (JAIN SLEE 7.10).
            del self.state.activities[key]
            work.effects.append(lambda: self.live.pop(key, None))
        elif not record.durable:
            del self.state.activities[key]

    # -- events ------------------------------------------------------------

    def process_event(self, key, event_type, event, address, work):
        """Initial event processing, then delivery (see the module docstring)."""
        candidates = self.registry.initial.get(event_type.id)
        if candidates:
            for service, spec in candidates:
                self._route_initial(service, spec, key, event_type, event, address)
        record = self.state.activities.get(key)
        if record is not None and record.attached:
            self._deliver(record, event_type, event, work)
        self._finish(work)

    def _route_initial(self, service, spec, key, event_type, event, address):
        name = self._convergence_name(service, spec, key, event_type, event, address)
        if name is None:
            return
        roots = self.state.roots_of(service.id)
        entity_id = roots.get(name)
        if entity_id is None:
            entity = self._create_entity(service.id, service.root, None, None, name,
                                         service.priority)
            roots[name] = entity_id = entity.id
        self.attach(key, entity_id)

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

    def _deliver(self, record, event_type, event, work):
        aci = ActivityContextInterface(self, record.key)
        attached = record.attached
        if len(attached) == 1:
            self._deliver_to(next(iter(attached)), event_type, event, aci, work)
            return
        delivered = set()
        while True:
            pending = [(-priority, entity_id) for entity_id, priority in attached.items()
                       if entity_id not in delivered]
            if not pending:
                return
            entity_id = min(pending)[1]
            delivered.add(entity_id)
            self._deliver_to(entity_id, event_type, event, aci, work)

    def _deliver_to(self, entity_id, event_type, event, aci, work):
        entity = self.state.entities.get(entity_id)
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
        sbb = component.new_object(entity, SbbContext(self, entity, component))
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
        """End-of-event clean-up: unattached trees, idle null activities."""
        while work.garbage:
            self._collect(work.garbage.pop(), work)
        while work.idle_activities:
            self._retire_if_idle(work.idle_activities.pop(), work)

    # -- SBB entities ------------------------------------------------------

    def entity(self, entity_id):
        entity = self.state.entities.get(entity_id)
        if entity is None:
            raise NoSuchEntityError(f"SBB entity {entity_id} does not exist (any more)")
        return entity

    def entity_exists(self, entity_id):
        return entity_id in self.state.entities

    def _sbb(self, entity):
        component = self.registry.sbbs[entity.sbb]
        return component.new_object(entity, SbbContext(self, entity, component))

    def local_object(self, entity_id):
        entity = self.entity(entity_id)
        return SbbLocalObject(self, entity_id, self.registry.sbbs[entity.sbb].local_names)

    def call_local(self, entity_id, name, args, kwargs):
        """Call a local interface method of an entity, in this transaction."""
        self.work()
        return getattr(self._sbb(self.entity(entity_id)), name)(*args, **kwargs)

    def resource_adaptor(self, name):
        entity = self.registry.ra_entities.get(name)
        if entity is None:
            raise ConfigurationError(f"no resource adaptor entity named {name!r}")
        return entity.sbb_interface

    def set_priority(self, entity_id, priority):
        entity = self.entity(entity_id)
        entity.priority = priority
        for key in entity.attached:
            record = self.state.activities[key]
            record.attached[entity_id] = priority
            record._p_changed = True

    def _create_entity(self, service_id, component, parent, relation, name, priority):
        entities = self.state.entities
        entity_id = new_id(entities)
        root = entity_id if parent is None else parent.root
        entity = SbbEntityRecord(entity_id, service_id, component.id,
                                 None if parent is None else parent.id,
                                 root, relation, name, priority)
        entities[entity_id] = entity
        sbb = component.new_object(entity, SbbContext(self, entity, component))
        sbb.sbb_create()
        sbb.sbb_post_create()
        return entity

    def create_child(self, parent, relation_name):
        self.work()
        relation, child = self.registry.sbbs[parent.sbb].relations[relation_name]
        entity = self._create_entity(parent.service, child, parent, relation_name, None,
                                     relation.priority)
        parent.children.setdefault(relation_name, []).append(entity.id)
        parent._p_changed = True
        return SbbLocalObject(self, entity.id, child.local_names)

    def remove_entity(self, entity_id):
        """Remove an entity and its descendants, in this transaction."""
        work = self.work()
        entity = self.entity(entity_id)
        if entity.parent is not None:
            parent = self.state.entities.get(entity.parent)
            if parent is not None:
                siblings = parent.children.get(entity.relation, [])
                if entity_id in siblings:
                    siblings.remove(entity_id)
                    parent._p_changed = True
                work.garbage.add(entity.root)
        self._remove_tree(entity, work)

    def _tree_attached(self, entity):
        if entity.attached:
            return True
        entities = self.state.entities
        for children in entity.children.values():
            for child_id in children:
                child = entities.get(child_id)
                if child is not None and self._tree_attached(child):
                    return True
        return False

    def _collect(self, root_id, work):
        root = self.state.entities.get(root_id)
        if root is not None and not self._tree_attached(root):
            self._remove_tree(root, work)

    def _remove_tree(self, entity, work):
        entities = self.state.entities
        for children in list(entity.children.values()):
            for child_id in list(children):
                child = entities.get(child_id)
                if child is not None:
                    self._remove_tree(child, work)
        self._sbb(entity).sbb_remove()
        for key in list(entity.attached):
            record = self.state.activities.get(key)
            if record is not None:
                record.attached.pop(entity.id, None)
                record._p_changed = True
                work.idle_activities.add(key)
        del entities[entity.id]
        if entity.parent is None:
            roots = self.state.roots_of(entity.service)
            roots.pop(entity.convergence_name, None)
            if not roots:
                self.service_emptied(entity.service)

    def service_emptied(self, service_id):
        """
        The last root entity of a service is gone: a stopping service
        becomes inactive.  Replaced by the container.
        """
