"""
The container's persistent state, as stored in ZODB.

Everything that must survive a restart lives under one L{ContainerState}
at the database root: SBB entities, activity contexts, the root-entity
index of every service, activity context names, timers, deployed units and
service states.  Each kind of state has its own BTree, so that unrelated
changes touch unrelated buckets (few conflicts under ZEO).

Records keep plain containers (dicts, sets) and mark themselves changed:
one record is one database object, which keeps a commit small.
"""

import random

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from slee.layouts import Layout

STATE_KEY = "slee"


class KeySequence:
    """
    Fresh positive 62-bit keys, increasing within a process.

    A key is a random 30-bit prefix, drawn at start, then a 32-bit count.
    Increasing keys land in the last bucket of a BTree, so that a batch of
    new records re-writes one bucket instead of one per record (random keys
    scatter over every bucket, each pickled whole).  The random prefix keeps
    two container processes sharing a database apart without a shared
    counter to contend on, and a restart away from the keys of earlier runs.
    """

    COUNT_BITS = 32

    def __init__(self):
        self._start()

    def _start(self):
        self._prefix = random.getrandbits(62 - self.COUNT_BITS) << self.COUNT_BITS
        self._count = 0

    def __next__(self):
        self._count += 1
        if self._count >> self.COUNT_BITS:
            self._start()
            self._count = 1
        return self._prefix | self._count


_keys = KeySequence()


def new_id(tree):
    """
    @return: a fresh key for C{tree}: the next of the process's
        L{KeySequence} not in C{tree} yet.
    """
    while True:
        key = next(_keys)
        if key not in tree:
            return key


def new_handle():
    """
    @return: a fresh handle: the next key of the process's L{KeySequence}
        in 16 hex digits, which sort as the numbers do.  Unchecked: it
        could only meet a handle of an earlier run that drew the same
        30-bit prefix.
    """
    return f"{next(_keys):016x}"


class CmpState(Persistent):
    """
    The CMP fields of one SBB entity, as attributes of their own database
    object: an event that changes a field re-writes this small object, not
    the entity's whole record.
    """

    def __getstate__(self):
        # The plain attribute dict: smaller and quicker to pickle than the
        # default state, which looks up slot names on every store.
        return self.__dict__

    def __setstate__(self, state):
        self.__dict__.update(state)

    def fields(self):
        return dict(self.__dict__)


class Record(Persistent):
    """
    A record whose state is stored as a tuple of its attributes, in the
    order of its C{LAYOUT} (L{slee.layouts}, which says how the layout may
    change): ZODB's pickler calls a Python hook for every object it writes,
    the name of each attribute included, and these records are written at
    every event.
    """

    LAYOUT = Layout()

    def __getstate__(self):
        return self.LAYOUT.dump(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(self.LAYOUT.load(state))


class SbbEntityRecord(Record):
    """
    One SBB entity.

    @ivar id: its key in L{ContainerState.entities}.
    @ivar service: the id of its service.
    @ivar sbb: the id of its SBB component.
    @ivar parent: the parent's id, or C{None} for a root entity.
    @ivar root: the id of the root of its tree.
    @ivar relation: for a child, the name of the parent's child relation.
    @ivar convergence_name: for a root, its key in the service's index.
    @ivar priority: its event delivery priority (-128 to 127).
    @ivar cmp: the L{CmpState} holding its CMP fields, made when the first
        one is set: until then C{None} (an entity made and removed for one
        event, as most are, never needs one).
    @ivar children: child relation name to a list of child ids.
    @ivar attached: the keys of the activities it is attached to, a tuple
        changed through L{attach_to} and L{detach_from} (most entities are
        attached to one or two: a set takes 216 bytes, in every record a
        live subscription keeps in memory).
    @ivar masks: activity key to the set of masked event type ids.
    """

    LAYOUT = Layout("id", "service", "sbb", "parent", "root", "relation", "convergence_name",
                    "priority", "cmp", "children", "attached", "masks")

    def __init__(self, id, service, sbb, parent, root, relation, convergence_name, priority):
        # All attributes at once, as a new dict: a new record has no changes
        # to track, and setting them one by one would take each through
        # persistent's attribute hook (a third slower in all).
        self.__dict__ = {
            "id": id, "service": service, "sbb": sbb, "parent": parent, "root": root,
            "relation": relation, "convergence_name": convergence_name, "priority": priority,
            "cmp": None, "children": {}, "attached": (), "masks": {}}

    def attach_to(self, key):
        self.attached = _with(self.attached, key)

    def detach_from(self, key):
        self.attached = _without(self.attached, key)


class ActivityContextRecord(Record):
    """
    One activity context.

    @ivar key: C{"<ra entity>/<handle>"}.
    @ivar ra: the name of the RA entity that owns the activity (or the
        container's own pseudo-entities, such as C{slee.null}).
    @ivar handle: the RA's handle.
    @ivar durable: whether it outlives a restart.
    @ivar attached: SBB entity id to its priority (a dict, or an LLBTree
        once it grows: L{slee.activities.ATTACHED_IN_RECORD}).
    @ivar names: the activity context names bound to it, a tuple.
    @ivar timers: the ids of the timers set on it, a tuple.
    @ivar ending: an activity end event has been queued.

    Names and timers are tuples, changed through the methods below: most
    activities have none or one, and an empty set takes 216 bytes in every
    record a live subscription keeps in memory.
    """

    LAYOUT = Layout("key", "ra", "handle", "durable", "attached", "names", "timers", "ending")

    def __init__(self, key, ra, handle, durable):
        # All at once, as in SbbEntityRecord.
        self.__dict__ = {"key": key, "ra": ra, "handle": handle, "durable": durable,
                         "attached": {}, "names": (), "timers": (), "ending": False}

    def add_name(self, name):
        self.names = _with(self.names, name)

    def discard_name(self, name):
        self.names = _without(self.names, name)

    def add_timer(self, timer_id):
        self.timers = _with(self.timers, timer_id)

    def discard_timer(self, timer_id):
        self.timers = _without(self.timers, timer_id)


def _with(items, item):
    return items if item in items else (*items, item)


def _without(items, item):
    return tuple([kept for kept in items if kept != item])


class TimerRecord(Record):
    """
    One timer.

    @ivar due: when it fires next, in seconds since the epoch.
    @ivar period: seconds between repetitions, or C{None}.
    @ivar remaining: repetitions still to come after this one (C{None}:
        endless; 0 for a single timer).
    """

    LAYOUT = Layout("id", "activity", "due", "period", "remaining")

    def __init__(self, id, activity, due, period, remaining):
        self.id = id
        self.activity = activity
        self.due = due
        self.period = period
        self.remaining = remaining


class UnitRecord(Persistent):
    """
    A deployed unit: where its stored copy is, and its services' states.

    @ivar name: the unit's name.
    @ivar path: the stored copy under the var directory.
    @ivar source: where it was deployed from.
    @ivar sequence: its place in deployment order (units are loaded again
        in that order at start-up).
    @ivar services: service id to C{"active"}, C{"stopping"} or
        C{"inactive"}.
    """

    def __init__(self, name, path, source, sequence):
        self.name = name
        self.path = path
        self.source = source
        self.sequence = sequence
        self.services = {}


class ContainerState(Persistent):
    """
    The root of the container's state.

    @ivar entities: entity id to L{SbbEntityRecord}.
    @ivar roots: service id to a BTree of convergence name to entity id.
    @ivar activities: activity key to L{ActivityContextRecord}.
    @ivar names: activity context name to activity key.
    @ivar timers: timer id to L{TimerRecord}.
    @ivar units: unit name to L{UnitRecord}.
    @ivar service_data: C{name:vendor} of a service to the data all its
        entities share (see L{service_data_of}).
    @ivar shared_data: a name to the data the services asking for it
        share (see L{shared_data_of}).
    """

    def __init__(self):
        self.entities = LOBTree()
        self.roots = OOBTree()
        self.activities = OOBTree()
        self.names = OOBTree()
        self.timers = LOBTree()
        self.units = OOBTree()
        self.service_data = OOBTree()
        self.shared_data = OOBTree()

    def service_data_of(self, service_id):
        """
        @return: the BTree of data the service C{service_id} keeps for all
            its entities, made on first use.  It belongs to the service's
            name and vendor, not its version: an upgrade keeps it.
        """
        return self._tree("service_data", service_id.rsplit(":", 1)[0])

    def shared_data_of(self, name):
        """@return: the BTree of data shared under C{name}, made on first use."""
        return self._tree("shared_data", name)

    def _tree(self, attribute, key):
        """The BTree under C{key} in the BTree of trees C{attribute}, both made on first use."""
        trees = getattr(self, attribute)
        tree = trees.get(key)
        if tree is None:
            tree = trees[key] = OOBTree()
        return tree

    def root_count(self, service):
        """@return: how many root entities C{service} has (reads only)."""
        index = self.roots.get(service)
        return 0 if index is None else len(index)


def container_state(root):
    """
    @return: the L{ContainerState} under the database root C{root}, made
        on first use.
    """
    state = root.get(STATE_KEY)
    if state is None:
        state = root[STATE_KEY] = ContainerState()
    return state
