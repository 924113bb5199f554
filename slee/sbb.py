"""
The SBB component model: how an SBB class declares what it does.

An SBB is a Python class deriving from L{Sbb}.  On the class it declares:

- event handlers, with L{handler}: the event type, whether the event is
  initial, and how the convergence name is selected;
- CMP fields, with L{CmpField}: the entity's persistent state;
- child relations, with L{ChildRelation}: the SBBs it creates as children;
- its local interface, as the class attribute C{local_interface}: the
  zope.interface other SBB entities may call synchronously;
- for a root SBB of which a service has one entity, C{singleton = True}.

An SBB object is a short-lived view of one SBB entity: the container makes
one when an operation (an event delivery, in its transaction) first calls
into the entity, uses it for every call of that operation, and drops it
afterwards, so an SBB keeps all its state in CMP fields, never in plain
attributes.

    class Counter(Sbb):
        count = CmpField(default=0)

        @handler(PING, initial=True, select=(Select.ACTIVITY_CONTEXT,))
        def on_ping(self, event, aci):
            self.count += 1
"""

import enum

from persistent import Persistent
from zope.interface import Interface

from slee.events import EventType
from slee.frozen import freeze
from slee.records import CmpState


class Select(enum.Enum):
    """
    The variables an initial event's convergence name is made of
    (JAIN SLEE 1.1 section 8.5.2).
    """

    ACTIVITY_CONTEXT = "ac"
    ADDRESS = "address"
    EVENT_TYPE = "event-type"
    EVENT = "event"


class HandlerSpec:
    """
    What a L{handler} decorator declared for one event type.

    @ivar event_type: the L{EventType}.
    @ivar method: the name of the handler method.
    @ivar initial: whether the event may create a root SBB entity.
    @ivar select: the L{Select} variables of the convergence name.
    @ivar selector: the name of a method computing a custom convergence
        name part, or C{None}.
    @ivar mask_on_attach: whether the event is masked when an entity is
        attached to an activity (it then needs an explicit unmask).
    """

    __slots__ = ("event_type", "method", "initial", "select", "selector", "mask_on_attach")

    def __init__(self, event_type, method, initial, select, selector, mask_on_attach):
        self.event_type = event_type
        self.method = method
        self.initial = initial
        self.select = select
        self.selector = selector
        self.mask_on_attach = mask_on_attach


def handler(event_type, initial=False, select=(Select.ACTIVITY_CONTEXT,), selector=None,
            mask_on_attach=False):
    """
    Declare the decorated method the handler of C{event_type}.

    The method is called as C{method(event, aci)}.

    @param event_type: an L{EventType}.
    @param initial: C{True} if the event may create a root entity of a
        service whose root SBB this class is.
    @param select: the L{Select} variables making the convergence name.
    @param selector: the name of a method of this class, called as
        C{method(event_type, event, aci, address)}; it returns a string
        added to the convergence name, or C{None} when the event must not
        be initial this time.
    @param mask_on_attach: mask this event on every activity the entity is
        attached to, until unmasked.
    """
    if not isinstance(event_type, EventType):
        raise TypeError(f"handler() takes an EventType, not {event_type!r}")
    select = tuple(select)
    for variable in select:
        if not isinstance(variable, Select):
            raise TypeError(f"handler(select=...) takes Select members, not {variable!r}")

    def declare(method):
        method.__slee_handler__ = HandlerSpec(
            event_type, method.__name__, initial, select, selector, mask_on_attach)
        return method

    return declare


class CmpField:
    """
    A container-managed persistent field of an SBB entity.

    Values are stored with the entity in the database, and are values:
    a plain container a field is set to is frozen (L{slee.frozen}: a list
    is stored as a tuple, a dict as a read-only dict, recursively), so that
    a change made in place, which the database would never see, raises a
    L{TypeError} naming the field instead of being lost at the next
    restart.  A handler changes a field by assigning it
    (C{self.history += (item,)}).  Persistent objects (a BTree) are stored
    as they are and track their own changes.  An SBB local object or an
    activity context interface is stored as its L{Reference} and read back
    as the object.

    C{default} (frozen) is what the field reads while it was never set;
    C{default_factory} makes it on each such read instead, and a persistent
    object it makes is stored at once, so that changes to it are kept.
    """

    def __init__(self, default=None, default_factory=None):
        self.default = default
        self.default_factory = default_factory
        self.name = None

    def __set_name__(self, owner, name):
        if name.startswith(("_p_", "_v_")):
            raise TypeError(f"a CMP field may not be named {name!r} (reserved by ZODB)")
        self.name = name
        self.default = freeze(self.default, name)

    def __get__(self, sbb, owner=None):
        if sbb is None:
            return self
        fields = sbb._entity.cmp
        value = _UNSET if fields is None else getattr(fields, self.name, _UNSET)
        if value is _UNSET:
            if self.default_factory is None:
                return self.default
            value = self.default_factory()
            if isinstance(value, Persistent):
                setattr(_cmp_state(sbb._entity), self.name, value)
                return value
            return freeze(value, self.name)
        if type(value) is Reference:
            return sbb.context.resolve(value)
        return value

    def __set__(self, sbb, value):
        kind = type(value)
        if kind in _SCALARS:
            fields = sbb._entity.cmp
            if fields is not None:
                stored = fields.__dict__.get(self.name, _UNSET)
                if type(stored) is kind and stored == value:
                    return      # unchanged: nothing to write
        elif isinstance(value, Referable):
            value = value.reference
        else:
            value = freeze(value, self.name)
        setattr(_cmp_state(sbb._entity), self.name, value)


_UNSET = object()

#: Immutable values a field may be set to again with no write.
_SCALARS = frozenset((type(None), bool, int, float, str, bytes))


def _cmp_state(entity):
    """@return: the L{CmpState} of C{entity}'s record, made on first use."""
    fields = entity.cmp
    if fields is None:
        fields = entity.cmp = CmpState()
    return fields


class Reference(tuple):
    """
    A reference to an SBB entity or an activity context, storable in CMP
    fields (anywhere in their values: in a tuple, a dict, a frozen
    dataclass) and usable as a dict key.

    An SBB local object's or an activity context interface's C{reference}
    gives it; C{self.context.resolve(reference)} gives the object back, in
    the transaction at hand.  A CMP field set to the object itself stores
    its reference and resolves it when read.

    @ivar kind: C{"sbb"} (an SBB entity) or C{"ac"} (an activity context).
    @ivar key: the entity id or the activity context key.
    """

    __slots__ = ()

    def __new__(cls, kind, key):
        return tuple.__new__(cls, (kind, key))

    def __getnewargs__(self):  # unpickling calls __new__(cls, kind, key)
        return tuple(self)

    @property
    def kind(self):
        return self[0]

    @property
    def key(self):
        return self[1]


class Referable:
    """
    The base of what a CMP field stores by L{Reference}: SBB local objects
    and activity context interfaces (L{slee.context}).
    """

    __slots__ = ()

    @property
    def reference(self):
        """The L{Reference} naming this object."""
        raise NotImplementedError


class ChildRelation:
    """
    A child relation: the entities of C{sbb} created by this entity.

    Reading the attribute gives a L{slee.context.ChildRelationView}:
    C{create()}, iteration over the children's local objects, C{len()},
    C{remove(child)}.

    @param sbb: the child SBB class, or the name of a class in the same
        deployable unit when the class is defined later.
    @param priority: the event delivery priority of the children.
    """

    def __init__(self, sbb, priority=0):
        self.sbb = sbb
        self.priority = priority
        self.name = None

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, sbb, owner=None):
        if sbb is None:
            return self
        return sbb.context.child_relation(self)


class Sbb:
    """
    The base class of every SBB.

    Subclasses override the life-cycle callbacks they need; all run inside
    the current transaction, except L{sbb_rolled_back}, which runs in a new
    one after a roll-back.

    @cvar local_interface: the zope.interface other entities may call on
        this one's local object; the class must implement all of it.
    @cvar singleton: C{True} for a root SBB of which a service has one
        entity at most: every initial event goes to it, created the first
        time (a service's reader, directory or bot).  Its initial handlers
        then declare no C{select} or C{selector}.
    @cvar environment: its environment entries (JAIN SLEE's env-entries):
        name -> L{slee.resources.Property}; a unit sets them in the SBB's
        C{env} table, checked when it is deployed, and the SBB reads them
        in C{self.context.env}.
    @ivar context: the L{slee.interfaces.ISbbContext} of this entity.
    """

    local_interface = Interface
    environment = {}
    singleton = False

    # The container sets them all when it makes the object: the entity's
    # record and SBB component (its own business), and the context.
    __slots__ = ("_entity", "_component", "context")

    def sbb_create(self):
        """The entity was just created: give CMP fields their first values."""

    def sbb_post_create(self):
        """The entity exists, with its CMP fields: create children here."""

    def sbb_remove(self):
        """The entity is about to be removed (its children already are)."""

    def sbb_exception_thrown(self, exception, event, aci):
        """
        A handler of this entity raised C{exception} while handling
        C{event}; the delivery is rolled back after this returns.
        """

    def sbb_rolled_back(self, event, aci):
        """
        A delivery to this entity was rolled back.  Runs in a transaction
        of its own, after the roll-back.
        """


def handlers_of(cls):
    """
    @return: a dict of event type id to L{HandlerSpec}, for C{cls} and its
        bases (a subclass's declaration wins).
    """
    specs = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            spec = getattr(value, "__slee_handler__", None)
            if spec is not None:
                specs[spec.event_type.id] = spec
    return specs


def child_relations_of(cls):
    """
    @return: a dict of relation name to L{ChildRelation}, for C{cls} and its
        bases.
    """
    relations = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, ChildRelation):
                relations[name] = value
    return relations

