"""
What an SBB object holds in its hands: its context, the local objects of
other entities, activity context interfaces and child relation views.

All of these are short-lived views over the persistent records, made for
one call and valid only inside the transaction that made them; they are
thin, and every operation goes to the L{slee.engine.Engine}.
"""

from zope.interface import implementer

from slee.interfaces import (
    IActivityContextInterface, IChildRelation, ISbbContext, ISbbLocalObject)
from slee.sbb import Referable, Reference


@implementer(ISbbContext)
class SbbContext:
    """
    The context of one SBB object: see L{ISbbContext}.
    """

    __slots__ = ("_engine", "_entity_id", "_entity", "_component")

    def __init__(self, engine, entity_id, entity, component):
        self._engine = engine
        self._entity_id = entity_id
        self._entity = entity
        self._component = component

    @property
    def service(self):
        return self._entity.service

    @property
    def sbb_local_object(self):
        return SbbLocalObject(self._engine, self._entity_id, self._component.local_names)

    @property
    def parent(self):
        parent_id = self._entity.parent
        if parent_id is None:
            return None
        return self._engine.local_object(parent_id)

    @property
    def timers(self):
        return self._engine.timers

    @property
    def service_data(self):
        return self._engine.state.service_data_of(self._entity.service)

    @property
    def env(self):
        return self._component.env

    def shared_data(self, name):
        return self._engine.state.shared_data_of(name)

    def active_sbb_classes(self, base):
        return self._engine.registry.active_sbb_classes(base)

    @property
    def naming(self):
        return self._engine.naming

    @property
    def usage(self):
        return self._engine.usage.parameters(self._entity.service, self._component.id)

    @property
    def alarms(self):
        return self._engine.alarms.source(f"{self._entity.service}/{self._component.id}")

    @property
    def tracer(self):
        return self._engine.trace.tracer(self._entity.service, self._component.id)

    def activities(self):
        return [self._engine.aci(key) for key in sorted(self._entity.attached)]

    def fire_event(self, aci, event_type, event, address=None):
        self._engine.fire_event(aci.key, event_type, event, address)

    def create_null_activity(self):
        return self._engine.create_null_activity()

    def resource_adaptor(self, entity_name):
        return self._engine.resource_adaptor(entity_name)

    def mask_event(self, aci, event_names):
        self._engine.mask_events(self._entity, aci.key, event_names)

    def after_commit(self, action):
        self._engine.after_commit(action)

    def set_rollback_only(self):
        self._engine.work().rollback_only = True

    def resolve(self, reference):
        kind, key = reference
        if kind == "sbb":
            return self._engine.local_object(key)
        return self._engine.aci(key)

    def child_relation(self, relation):
        return ChildRelationView(self._engine, self._entity, relation.name)


@implementer(ISbbLocalObject)
class SbbLocalObject(Referable):
    """
    A reference to an SBB entity through which other entities call the
    methods of its local interface, synchronously, in the caller's
    transaction.  Equal when they name the same entity.
    """

    __slots__ = ("_engine", "entity_id", "_names")

    def __init__(self, engine, entity_id, names):
        self._engine = engine
        self.entity_id = entity_id
        self._names = names

    def __getattr__(self, name):
        if name.startswith("_") or name not in self._names:
            raise AttributeError(f"{name!r} is not in the local interface of SBB entity "
                                 f"{self.entity_id}")
        engine, entity_id = self._engine, self.entity_id

        def call(*args, **kwargs):
            return engine.call_local(entity_id, name, args, kwargs)

        return call

    def __eq__(self, other):
        return isinstance(other, SbbLocalObject) and other.entity_id == self.entity_id

    def __hash__(self):
        return hash(self.entity_id)

    def __repr__(self):
        return f"<SbbLocalObject {self.entity_id}>"

    @property
    def reference(self):
        return Reference("sbb", self.entity_id)

    @property
    def priority(self):
        return self._engine.entity(self.entity_id).priority

    def set_priority(self, priority):
        self._engine.set_priority(self.entity_id, priority)

    def remove(self):
        """Remove the entity and its descendants, in this transaction."""
        self._engine.remove_entity(self.entity_id)

    def exists(self):
        return self._engine.entity_exists(self.entity_id)


@implementer(IActivityContextInterface)
class ActivityContextInterface(Referable):
    """
    An SBB's handle on an activity context: attach and detach entities,
    read the activity, end a null activity.
    """

    __slots__ = ("_engine", "key")

    def __init__(self, engine, key):
        self._engine = engine
        self.key = key

    def __eq__(self, other):
        return isinstance(other, ActivityContextInterface) and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return f"<ActivityContextInterface {self.key}>"

    @property
    def reference(self):
        return Reference("ac", self.key)

    @property
    def activity(self):
        """The RA's activity object (or the container's, for a null one)."""
        return self._engine.activity(self.key)

    @property
    def is_ending(self):
        return self._engine.is_ending(self.key)

    def attach(self, sbb_local_object):
        self._engine.attach(self.key, sbb_local_object.entity_id)

    def detach(self, sbb_local_object):
        self._engine.detach(self.key, sbb_local_object.entity_id)

    def is_attached(self, sbb_local_object):
        return self._engine.is_attached(self.key, sbb_local_object.entity_id)

    def attached_count(self):
        return self._engine.attached_count(self.key)


@implementer(IChildRelation)
class ChildRelationView:
    """
    One entity's children in one child relation: see L{IChildRelation}.
    """

    __slots__ = ("_engine", "_entity", "_name")

    def __init__(self, engine, entity, name):
        self._engine = engine
        self._entity = entity
        self._name = name

    def create(self):
        return self._engine.create_child(self._entity, self._name)

    def get_or_create(self):
        children = self._entity.children.get(self._name)
        if children:
            return self._engine.local_object(next(iter(children)))
        return self.create()

    def _ids(self):
        return list(self._entity.children.get(self._name, ()))

    def __iter__(self):
        return iter([self._engine.local_object(child) for child in self._ids()])

    def __len__(self):
        return len(self._entity.children.get(self._name, ()))

    def __contains__(self, local_object):
        return local_object.entity_id in self._entity.children.get(self._name, ())

    def remove(self, local_object):
        """Remove a child (and its descendants)."""
        if local_object not in self:
            raise ValueError(f"{local_object!r} is not in child relation {self._name!r}")
        local_object.remove()

    def clear(self):
        """Remove every child of this relation."""
        for child in self._ids():
            self._engine.remove_entity(child)


class NullActivity:
    """
    The activity object of a null activity: it has no resource behind it
    and ends when nothing holds it open, or when L{end_activity} is called.
    """

    __slots__ = ("_engine", "key")

    def __init__(self, engine, key):
        self._engine = engine
        self.key = key

    def end_activity(self):
        self._engine.end_null_activity(self.key)


class ServiceActivity:
    """
    The activity object of a service's own activity, on which the
    service-started event is fired.
    """

    __slots__ = ("service",)

    def __init__(self, service):
        self.service = service
