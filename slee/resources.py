"""
The resource adaptor API: what an RA implements, and what the container
gives it.

An RA type is a class implementing L{IResourceAdaptor}, usually by
deriving from L{ResourceAdaptor}, which validates configuration properties
declared as L{Property} values and keeps the L{ISleeEndpoint}.  A deployable
unit names RA entities: an RA class plus its properties.  The container
wraps each in a L{ResourceAdaptorEntity}, which drives its life cycle.
"""

from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from slee.activities import activity_key
from slee.errors import ConfigurationError, UnknownActivityError
from slee.interfaces import IResourceAdaptor, ISleeEndpoint
from slee.trace import log_observer

REQUIRED = object()


def configured(specs, given):
    """
    @param specs: property name -> L{Property}.
    @param given: property name -> the value set.
    @return: every property's value: the one set, checked, or its default.
    @raise ConfigurationError: naming the property that is unknown,
        missing or bad.
    """
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise ConfigurationError(f"unknown property {unknown[0]!r} (known: "
                                 f"{', '.join(sorted(specs)) or 'none'})")
    config = {}
    for name, spec in specs.items():
        if name in given:
            config[name] = spec.validate(name, given[name])
        elif spec.default is REQUIRED:
            raise ConfigurationError(f"property {name!r} is required")
        else:
            config[name] = spec.default
    return config


class Property:
    """
    A configuration property of an RA type, or an environment entry of an
    SBB (L{slee.sbb.Sbb.environment}).

    @param kind: the Python type values must have (C{int} accepts no
        C{bool}; C{float} accepts C{int}).
    @param default: the value when none is given; L{REQUIRED} if one must be.
    @param check: a callable returning an error message for a bad value,
        or C{None} when the value is good.
    """

    def __init__(self, kind, default=REQUIRED, check=None, doc=""):
        self.kind = kind
        self.default = default
        self.check = check
        self.doc = doc

    def validate(self, name, value):
        kind = self.kind
        good = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, good = float(value), True
        if not good:
            raise ConfigurationError(f"property {name!r}: expected {kind.__name__}, "
                                     f"got {type(value).__name__} {value!r}")
        problem = self.check(value) if self.check is not None else None
        if problem:
            raise ConfigurationError(f"property {name!r}: {problem}")
        return value


def positive(value):
    """A L{Property} check: numbers above zero."""
    return None if value > 0 else f"must be > 0, not {value}"


class RaOption:
    """
    A C{twistd slee} option (and config file key) an RA package offers for
    one property of one RA entity, e.g. C{--sip ENDPOINT} for the SIP RA's
    C{endpoints}.  The package names it in its C{slee.ra_options} entry
    point group; the container sets the property on that entity whenever
    it is deployed or loaded again, over what its descriptor says.

    @param name: the option's long name and config key.
    @param entity: the RA entity name, or a tuple of the names of the
        entities that share the property (C{--users} sets the user store of
        both the XCAP and the SIP RA).
    @param property: the property the option sets.
    @param check: called with one value as a string (the command line) or
        as found in the config file; returns the value to keep or raises
        L{ValueError} with a message.
    @param repeatable: each use adds a value; the property is the list.
    @param metavar: what the help shows for a value.
    """

    def __init__(self, name, entity, property, check, repeatable=False, metavar="VALUE",
                 doc=""):
        self.name = name
        self.entities = (entity,) if isinstance(entity, str) else tuple(entity)
        self.property = property
        self.check = check
        self.repeatable = repeatable
        self.metavar = metavar
        self.doc = doc


def sbb_env_target(sbb):
    """
    The name under which options set the environment entries of the SBB
    named C{sbb} (beside the RA entities' names, which it cannot be).
    """
    return f"sbb:{sbb}"


class SbbEnvOption(RaOption):
    """
    A C{twistd slee} option (and config file key) a service package offers
    for one environment entry of one of its SBBs, in every unit that
    declares an SBB of that name, over what the unit's descriptor says
    (C{--rls-outbound-proxy} sets the resource list server's
    C{outbound-proxy}).  Named in the same C{slee.ra_options} entry point
    group as L{RaOption}s; the value is checked again, as every
    environment entry is, when the unit is deployed.

    @param sbb: the SBB's name in its unit's descriptor.
    @param entry: the environment entry.
    """

    def __init__(self, name, sbb, entry, check, repeatable=False, metavar="VALUE", doc=""):
        super().__init__(name, entity=sbb_env_target(sbb), property=entry, check=check,
                         repeatable=repeatable, metavar=metavar, doc=doc)


@implementer(IResourceAdaptor)
class ResourceAdaptor:
    """
    A convenient base for RA types.

    @cvar properties: property name to L{Property}.
    @cvar event_types: the L{slee.events.EventType}s this RA fires; they are
        installed with the first entity of the type.
    @ivar config: the validated properties, after L{configure}.
    @ivar endpoint: the L{ISleeEndpoint}, after L{activate}.
    """

    properties = {}
    event_types = ()

    def __init__(self):
        self.config = None
        self.endpoint = None

    def configure(self, properties):
        self.config = configured(self.properties, properties)

    def activate(self, endpoint):
        self.endpoint = endpoint

    def stop(self):
        pass

    def sbb_interface(self):
        return self

    def get_activity(self, handle):
        return None

    def status(self):
        return {}


@implementer(ISleeEndpoint)
class SleeEndpoint:
    """The container as one RA entity sees it."""

    def __init__(self, engine, ra_name, reactor):
        self._engine = engine
        self._ra = ra_name
        self.reactor = reactor
        self.clock = engine.clock
        # The engine's own, bound: an RA calls them for most things it does.
        self.after_commit = engine.after_commit
        self.on_abort = engine.on_abort
        self.queue_delay = engine.router.queue_delay

    def start_activity(self, handle, durable=False):
        self._engine.start_activity(self._ra, str(handle), durable)

    def end_activity(self, handle):
        key = activity_key(self._ra, handle)
        if key not in self._engine.live and self._engine.router.current is None:
            raise UnknownActivityError(f"activity {key} is not live")
        self._engine.request_end(key)

    def fire_event(self, handle, event_type, event, address=None, on_processed=None):
        self._engine.fire_event(activity_key(self._ra, handle), event_type, event, address,
                                on_processed)

    def activity_context(self, handle):
        return self._engine.aci(activity_key(self._ra, handle))

    def initial_event_types(self):
        return self._engine.registry.initial_types


class ResourceAdaptorEntity:
    """
    One configured RA: its adaptor object and its life cycle state
    (C{inactive}, C{active}, C{stopping}).
    """

    log = Logger(namespace="slee.resources", observer=log_observer)

    def __init__(self, name, type_name, unit, adaptor, properties):
        self.name = name
        self.type_name = type_name
        self.unit = unit
        self.adaptor = adaptor
        self.properties = properties
        self.state = "inactive"
        self.sbb_interface = None

    def activate(self, engine, reactor):
        """Give the adaptor its endpoint, on C{reactor}; @return: a Deferred."""
        self.sbb_interface = self.adaptor.sbb_interface()
        d = defer.maybeDeferred(self.adaptor.activate, SleeEndpoint(engine, self.name, reactor))

        def activated(result):
            self.state = "active"
            self.log.info("RA entity {name} active", name=self.name)
            return result

        return d.addCallback(activated)

    def stop(self, engine):
        """
        Stop the adaptor, then end whatever activities it left open, but
        the durable ones: they outlive a restart, which a stop may be.

        @return: a Deferred that fires when it is inactive.
        """
        self.state = "stopping"
        d = defer.maybeDeferred(self.adaptor.stop)

        def end_leftovers(_):
            prefix = f"{self.name}/"
            for key, info in list(engine.live.items()):
                if key.startswith(prefix) and not info.ending and not info.durable:
                    engine.request_end(key)
            self.state = "inactive"
            self.log.info("RA entity {name} inactive", name=self.name)

        return d.addCallback(end_leftovers)
