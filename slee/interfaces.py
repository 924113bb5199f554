"""
The seams of the container, as zope.interface interfaces.

Three kinds of code meet the container and each sees only its own side:

- resource adaptors (RAs) implement `IResourceAdaptor` and talk to the
  container through the `ISleeEndpoint` they are given;
- SBBs reach the container through their `ISbbContext`;
- management (the HTTP API, the CLI) goes through `IContainerManagement`.

Nothing here knows of SIP or XCAP.
"""

from zope.interface import Attribute, Interface


class IResourceAdaptor(Interface):
    """
    A resource adaptor entity: the bridge between a protocol or resource
    and the container.

    The container drives its life cycle: ``configure`` (once, before
    anything else), ``activate``, then ``stop`` when the entity is
    deactivated or the container shuts down.
    """

    def configure(properties):
        """
        Check and take the entity's configuration.

        @param properties: a L{dict} of property name to value, from the
            deployment descriptor.
        @raise slee.errors.ConfigurationError: naming the bad property;
            the entity is then not created.
        """

    def activate(endpoint):
        """
        Start: open sockets, start activities, fire events.

        @param endpoint: the L{ISleeEndpoint} for this entity.
        @return: L{None} or a L{Deferred} that fires when ready.
        """

    def stop():
        """
        Stop gracefully: stop accepting new work and end the entity's
        activities (through the endpoint).  The container ends any
        activity still open when the returned Deferred fires.

        @return: L{None} or a L{Deferred}.
        """

    def sbb_interface():
        """
        @return: the object SBBs use to act on this resource (send a
            message, close a connection...).  Its actions must be released
            only when the SBB's transaction commits: see
            L{ISleeEndpoint.after_commit}.
        """

    def get_activity(handle):
        """
        @return: the live activity object for C{handle}, or L{None} if the
            RA no longer has it (after a restart, say).
        """

    def status():
        """
        @return: a dict of plain data management shows for the entity
            (listening addresses, open connections, ...); may be empty.
        """


class ISleeEndpoint(Interface):
    """
    What the container offers a resource adaptor entity.

    An RA takes its reactor and clock from here, never from
    C{twisted.internet}: the container decides what the RA runs on (the
    process's reactor; a C{task.Clock} a test drives), as Twisted's own
    protocols take a C{reactor=} argument.
    """

    reactor = Attribute(
        "The reactor the RA opens its sockets on and resolves names with (IReactorTCP, "
        "IReactorUDP, IReactorSSL, IReactorPluggableNameResolver...).")
    clock = Attribute(
        "The container's clock (an IReactorTime), the one its timers use: for what an RA "
        "stamps or schedules in the services' time.  A protocol's own timeouts and "
        "retransmissions run on the reactor, the network's time.")

    def start_activity(handle, durable=False):
        """
        Start an activity.

        @param handle: a L{str}, unique within the RA entity, naming the
            activity.
        @param durable: C{True} if the activity outlives a container
            restart; non-durable activities still open at start-up are
            ended (their SBB entities get the activity end event).
        """

    def end_activity(handle):
        """
        End an activity: an activity end event is queued behind the events
        already fired on it; then every SBB entity is detached.
        """

    def fire_event(handle, event_type, event, address=None, on_processed=None):
        """
        Fire an event on a started activity.  Events on one activity are
        delivered in the order they were fired.

        Called inside an SBB's transaction (from the RA's SBB interface),
        the event is queued only when that transaction commits.

        @param on_processed: called as C{on_processed(committed, handlers)}
            when the event's transaction has committed (C{committed} true;
            C{handlers} is how many SBB handlers got the event, 0 when no
            service took it) or rolled back (C{committed} false).  An RA
            answers on its protocol what no service took or what failed.

        @raise slee.errors.OverloadError: the container's event queue is
            full (C{--queue-max}); the RA refuses the work in its protocol's
            way (a 503, closing a connection, ...).
        """

    def queue_delay():
        """
        @return: an estimate of the seconds an event fired now would wait
            in the container's queue before its delivery.  An RA sheds new
            work at its door when this says answers would come too late
            (a 503 with Retry-After, say), before C{fire_event} refuses it
            for the queue's length alone.
        """

    def after_commit(action):
        """
        Run C{action()} when the current delivery commits; drop it if the
        delivery rolls back.  Outside a delivery, run it at once.

        RAs use this for every effect an SBB asks for (sending a message),
        so that nothing a rolled-back handler did leaves the process.
        """

    def on_abort(action):
        """
        Run C{action()} if the current delivery's transaction aborts (it may
        run again, from the start): an RA drops what it set up in memory for
        an SBB's request, such as a new dialog.  Outside a delivery, nothing.
        """

    def activity_context(handle):
        """
        @return: the activity context interface of this RA's activity
            C{handle}, for an SBB to attach to.  An activity started in the
            running delivery may be attached to at once.
        """

    def initial_event_types():
        """
        @return: the ids of the event types some active service takes as
            initial, e.g. for a SIP 405's Allow header: a frozenset, the
            same object until a service is activated or deactivated, so
            that what an RA derives from it can be cached by its identity.
        """


class ISbbContext(Interface):
    """
    What an SBB object sees of the container: facilities, its place in the
    entity tree, and the activities it is attached to.
    """

    service = Attribute("The ServiceID of the entity's service.")
    sbb_local_object = Attribute("This entity's own L{ISbbLocalObject}.")
    parent = Attribute("The parent entity's local object, or None for a root.")
    timers = Attribute("The L{ITimerFacility}.")
    naming = Attribute("The activity context naming facility (L{INamingFacility}).")
    usage = Attribute("The usage parameters of this service and SBB.")
    alarms = Attribute("The alarm facility.")
    tracer = Attribute("A twisted.logger Logger named for this component.")
    service_data = Attribute(
        "A persistent mapping (an OOBTree) that every entity of this service shares, changed "
        "in the delivering transaction like CMP fields: for what a whole service keeps (the "
        "XDMS's documents, say). It belongs to the service's name and vendor: a new version "
        "of the service finds it.")

    env = Attribute(
        "The SBB's environment entries (name -> value, read only): what its class declares "
        "in C{environment}, set in the unit's descriptor (C{env = {...}} of the SBB).")

    def shared_data(name):
        """
        @return: a persistent mapping (an OOBTree) that every entity of
            every service asking for C{name} shares, changed in the
            delivering transaction like CMP fields: for what services
            write and read together (the XDMS's documents, which the XCAP
            service writes and the xcap-diff notifier reads).
        """

    def activities():
        """
        @return: the activity context interfaces this entity is attached to.
        """

    def fire_event(aci, event_type, event, address=None):
        """
        Fire an event on an activity, released when this delivery commits.
        """

    def create_null_activity():
        """
        @return: the interface of a new null activity, which ends when
            nothing is attached to it, no name is bound to it and no timer
            is set on it, or when it is ended explicitly.
        """

    def resource_adaptor(entity_name):
        """
        @return: the SBB interface of the named RA entity.
        """

    def mask_event(aci, event_names):
        """
        Stop delivering the named events on C{aci} to this entity.
        """

    def set_rollback_only():
        """
        Mark the current delivery for roll-back, without raising.
        """

    def after_commit(action):
        """
        Call C{action()} once this delivery's transaction commits (never
        if it rolls back): for what a service keeps in the process beside
        what it stores, so that the two never disagree.
        """

    def active_sbb_classes(base):
        """
        @return: the SBB classes, subclasses of C{base}, of the services
            active now (their root SBBs and the children those may
            create): what a service offers others (an event package's
            publisher or notifier, say) is there while it is active, and
            gone once it is deactivated.
        """

    def resolve(reference):
        """
        @return: the L{ISbbLocalObject} or L{IActivityContextInterface} a
            L{slee.sbb.Reference} names (one a service kept inside a CMP
            value), valid in this transaction.
        """


class ITimerFacility(Interface):
    """
    Timers on activities, stored with the transaction that sets them: a
    L{slee.events.TimerEvent} is delivered on the activity when one falls
    due, after a restart too.
    """

    clock = Attribute(
        "The container's clock (an IReactorTime): C{clock.seconds()} is the time timers are "
        "measured on, the one a service reads to stamp or expire what it stores, so that a "
        "test driving the container with a task.Clock drives the service too.")

    def set_timer(aci, delay, period=None, repetitions=None):
        """
        Set a timer on the activity C{aci}, due in C{delay} seconds, then
        every C{period} seconds (if given) C{repetitions} times in all
        (C{None}: until cancelled).

        @return: the timer id.
        """

    def cancel_timer(timer_id):
        """Cancel a timer (one that already fired for good: nothing)."""


class INamingFacility(Interface):
    """
    Names bound to activity contexts, in the caller's transaction: how
    entities that never met find one another (JAIN SLEE 1.1 §13.5).  A
    bound name holds its activity open; ending the activity unbinds it.
    """

    def bind(aci, name):
        """Bind C{name} (at most 1,024 characters) to the activity context C{aci}."""

    def unbind(name):
        """Unbind C{name}; its null activity ends once nothing holds it."""

    def lookup(name):
        """@return: the activity context interface bound to C{name}, or None."""

    def lookup_or_create(name):
        """@return: the activity context bound to C{name}, a new null activity
        bound to it when there was none."""

    def join(name, sbb):
        """Attach C{sbb} (an SBB local object) to the activity bound to C{name},
        made if need be: the entities that watch one thing meet there."""

    def leave(name, sbb):
        """Detach C{sbb} from the activity bound to C{name}; the last to leave
        unbinds the name."""


class ISbbLocalObject(Interface):
    """
    A handle on an SBB entity: the methods of its SBB's local interface,
    called synchronously in the caller's transaction, and these.  Two are
    equal when they name the same entity.
    """

    entity_id = Attribute("The entity's id (an int), unique in the container.")
    reference = Attribute("The L{slee.sbb.Reference} naming the entity, to store.")
    priority = Attribute("The entity's event delivery priority.")

    def set_priority(priority):
        """Change the entity's event delivery priority."""

    def remove():
        """Remove the entity and its descendants, in this transaction."""

    def exists():
        """@return: whether the entity still exists."""


class IActivityContextInterface(Interface):
    """
    An SBB's handle on an activity context.  Two are equal when they name
    the same activity context.
    """

    activity = Attribute("The RA's activity object (or the container's, for a null one).")
    is_ending = Attribute("Whether the activity is ending.")
    reference = Attribute("The L{slee.sbb.Reference} naming the activity context, to store.")

    def attach(sbb_local_object):
        """Attach an entity: it gets the events fired on the activity."""

    def detach(sbb_local_object):
        """Detach an entity; a root entity attached to nothing is removed."""

    def is_attached(sbb_local_object):
        """@return: whether the entity is attached."""

    def attached_count():
        """@return: how many entities are attached."""


class IChildRelation(Interface):
    """
    One entity's children in one of its SBB's child relations: iterating
    gives their L{ISbbLocalObject}s, C{len()} their number, C{in} tells
    whether a local object is one.
    """

    def create():
        """
        Create a child entity (its C{sbb_create} and C{sbb_post_create}
        run now).

        @return: its local object.
        """

    def get_or_create():
        """
        @return: the local object of the first child, created if there is
            none: for a relation holding one child, such as a client SBB.
        """

    def remove(local_object):
        """Remove a child and its descendants."""

    def clear():
        """Remove every child of the relation."""


class IContainerManagement(Interface):
    """
    The operations management offers; every answer is plain data (dicts,
    lists, strings, numbers) that serializes to JSON as it is.

    Every method raises L{slee.errors.ManagementError} with a one-line
    message for a bad argument, and then changes nothing.
    """

    def status():
        """
        @return: a dict: C{state}, C{uptime} (seconds), C{database},
            C{counts} (services, units, ra_entities, activities,
            sbb_entities), C{events} (delivered, rolled_back, queued).
        """

    def deploy(path):
        """
        Validate and install the deployable unit at C{path} (directory, zip
        or wheel).  Services start inactive.

        @return: a dict describing the unit: C{name}, C{services},
            C{sbbs}, C{event_types}, C{ra_entities}.
        """

    def undeploy(name):
        """
        Remove a deployed unit whose services are all inactive.
        """

    def activate(service):
        """
        Activate a service, named as C{name} or C{name:vendor:version}.

        @return: a dict: C{service} (its full id), C{state}.
        """

    def deactivate(service):
        """
        Deactivate a service: it goes to C{stopping} until its SBB entities
        are gone, then C{inactive}.

        @return: a dict: C{service} (its full id), C{state} (C{stopping} or
            C{inactive}).
        """

    def units():
        """
        @return: a list of dicts, one per deployed unit.
        """

    def services():
        """
        @return: a list of dicts: C{id}, C{name}, C{unit}, C{state},
            C{root_sbb}, C{priority}, C{root_entities}.
        """

    def ra_entities():
        """
        @return: a list of dicts: C{name}, C{type}, C{unit}, C{state},
            C{properties}, C{activities}.
        """

    def activities():
        """
        @return: a list of dicts: C{key}, C{ra}, C{handle}, C{durable},
            C{attached} (number of SBB entities), C{names}, C{ending}.
        """

    def sbb_entities():
        """
        @return: a list of dicts: C{id}, C{service}, C{sbb}, C{parent},
            C{priority}, C{attached}, C{children}, C{cmp} (the CMP fields,
            as their repr).
        """

    def usage():
        """
        @return: a list of dicts: C{service}, C{sbb}, C{counters}
            (name to int), C{samples} (name to dict of count, min, max,
            mean).
        """

    def reset_usage():
        """
        Reset every usage parameter to zero.
        """

    def alarms():
        """
        @return: a list of active alarms: C{id}, C{source}, C{type},
            C{instance}, C{level}, C{message}, C{raised} (UNIX time).
        """

    def clear_alarm(alarm_id):
        """
        Clear an alarm by the id L{alarms} gave.
        """

    def trace_levels():
        """
        @return: a dict of component namespace to log level name.
        """

    def set_trace_level(component, level):
        """
        Set the log level of a component namespace (such as
        C{slee.sbb.counter}); C{level} is a twisted.logger level name.
        """
