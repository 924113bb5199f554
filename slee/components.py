"""
The installed components: what deployed units brought into the container.

The L{Registry} is the container's transient index of event types, SBBs,
services and RA entities.  It is built from the deployed units at start-up
and changed by deploy, undeploy, activate and deactivate; the router reads
it on every event (above all L{Registry.initial}, the index of which active
service takes which initial event).
"""

from types import MappingProxyType

from slee.sbb import Sbb, child_relations_of, handlers_of


class SbbComponent:
    """
    An installed SBB.

    @ivar id: C{name:vendor:version}.
    @ivar cls: the L{slee.sbb.Sbb} subclass.
    @ivar unit: the name of the unit that installed it.
    @ivar handlers: event type id to L{slee.sbb.HandlerSpec}.
    @ivar relations: relation name to (L{slee.sbb.ChildRelation}, child
        L{SbbComponent}); filled in once every SBB of the unit is known.
    @ivar local_names: the method names of its local interface.
    @ivar env: its environment entries, name -> value (read only).
    """

    def __init__(self, id, cls, unit, env=None):
        self.id = id
        self.cls = cls
        self.unit = unit
        self.env = MappingProxyType(dict(env or {}))
        self.handlers = handlers_of(cls)
        self.relations = {}
        self.local_names = frozenset(cls.local_interface.names(all=True))
        self.masked_on_attach = frozenset(
            type_id for type_id, spec in self.handlers.items() if spec.mask_on_attach)
        # The life-cycle methods the class overrides: the container calls
        # no other (most SBBs have no use for sbb_remove, say, and an
        # entity made and removed per event would pay for the calls).
        self.life_cycle = frozenset(
            name for name in ("sbb_create", "sbb_post_create", "sbb_remove")
            if getattr(cls, name) is not getattr(Sbb, name))

    def declared_relations(self):
        return child_relations_of(self.cls)

    def new_object(self, entity, context):
        """
        @return: a fresh SBB object bound to C{entity}.
        """
        sbb = self.cls.__new__(self.cls)
        sbb._entity = entity
        sbb._component = self
        sbb.context = context
        return sbb

    def bare_object(self):
        """
        @return: an SBB object bound to no entity, for initial event
            selector methods.
        """
        sbb = self.cls.__new__(self.cls)
        sbb._entity = None
        sbb._component = self
        sbb.context = None
        return sbb


class ServiceComponent:
    """
    An installed service.

    @ivar id: C{name:vendor:version}.
    @ivar root: the root L{SbbComponent}.
    @ivar priority: the root entities' event delivery priority.
    @ivar state: C{"inactive"}, C{"active"} or C{"stopping"}.
    """

    def __init__(self, id, root, priority, unit):
        self.id = id
        self.root = root
        self.priority = priority
        self.unit = unit
        self.state = "inactive"

    @property
    def name(self):
        return self.id.split(":", 1)[0]


def _classes_under(component):
    """@return: the SBB classes of C{component} and of the children it may create."""
    classes, waiting = set(), [component]
    while waiting:
        component = waiting.pop()
        if component.cls not in classes:
            classes.add(component.cls)
            waiting.extend(child for _, child in component.relations.values())
    return classes


class Registry:
    """
    The index of installed components.

    @ivar event_types: event type id to L{slee.events.EventType}.
    @ivar sbbs: SBB id to L{SbbComponent}.
    @ivar services: service id to L{ServiceComponent}.
    @ivar ra_entities: RA entity name to L{slee.resources.ResourceAdaptorEntity}.
    @ivar initial: event type id to a list of (service, handler spec) for
        the active services whose root SBB takes that event as initial,
        highest service priority first.
    """

    def __init__(self):
        self.event_types = {}
        self.sbbs = {}
        self.services = {}
        self.ra_entities = {}
        self.initial = {}
        self.initial_types = frozenset()
        self.active_classes = frozenset()

    def find_service(self, name):
        """
        @param name: a full service id, or a bare name when only one
            installed service has it.
        @return: the L{ServiceComponent}, or C{None}.
        """
        service = self.services.get(name)
        if service is not None:
            return service
        matches = [s for s in self.services.values() if s.name == name]
        return matches[0] if len(matches) == 1 else None

    def reindex(self):
        """Rebuild L{initial} and L{active_classes} from the services' states."""
        initial = {}
        active = sorted((s for s in self.services.values() if s.state == "active"),
                        key=lambda s: (-s.priority, s.id))
        classes = set()
        for service in active:
            for type_id, spec in service.root.handlers.items():
                if spec.initial:
                    initial.setdefault(type_id, []).append((service, spec))
            classes |= _classes_under(service.root)
        self.initial = initial
        self.initial_types = frozenset(initial)
        self.active_classes = frozenset(classes)

    def active_sbb_classes(self, base):
        """
        @return: the SBB classes, subclasses of C{base}, of the active
            services: their root SBBs and the children those may create.
        """
        return [cls for cls in self.active_classes if issubclass(cls, base)]
