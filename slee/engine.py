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

The engine is one object made of three parts, each in a module of its
own: L{slee.activities.ActivityContexts}, L{slee.delivery.EventDelivery}
and L{slee.entity_tree.EntityTree}; this module keeps what they share (the
state, the lookups, the transactions' hooks).

Records an operation makes (entities, activity contexts, root index
entries) wait in its L{slee.router.Work} and reach the database's trees
only when the operation ends, if they still exist then.  Most requests make
an entity and an activity context and remove both before their event is
done (an OPTIONS, an XCAP GET): they then leave the trees untouched, and a
batch of them commits nothing to the storage.  Every lookup sees the
waiting records first (L{Engine.find_entity}, L{Engine.find_activity}).
"""

from functools import partial

from BTrees.OOBTree import OOBTree
from twisted.python.failure import Failure
from twisted.logger import Logger

from slee.activities import ActivityContexts
from slee.delivery import EventDelivery
from slee.entity_tree import EntityTree
from slee.errors import TransactionRequiredError
from slee.router import HandlerFailed
from slee.trace import log_observer


class Engine(ActivityContexts, EventDelivery, EntityTree):
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
            work.evict(self._activities.pop(key, None))

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
