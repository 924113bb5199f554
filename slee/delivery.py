"""
Delivering an event (JAIN SLEE 1.1 §8.5, §8.6), as the engine
(L{slee.engine.Engine}) does it: initial event processing (the convergence
name, the root entity found or made, attached), then delivery to every
attached entity, highest priority first, then the end of the event.
"""

import uuid


from slee.context import ActivityContextInterface
from slee.events import SERVICE_STARTED
from slee.router import HandlerFailed
from slee.sbb import Select

#: The usual convergence name selection: one root entity per activity.
BY_ACTIVITY = (Select.ACTIVITY_CONTEXT,)

#: The convergence name of a singleton root SBB's one entity.
SINGLETON = "singleton"


class EventDelivery:
    """The engine's delivery of events (a part of L{slee.engine.Engine})."""

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
                if service.root.cls.singleton:
                    name = SINGLETON
                else:
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
