"""
The activity context naming facility: SBBs bind names to activity
contexts so that other entities (of other services, even) find them.

Bindings are stored in the database in the binding transaction.  A bound
name holds a null activity open; ending an activity unbinds its names.
"""

from zope.interface import implementer

from slee.errors import NameAlreadyBoundError, NameNotBoundError
from slee.interfaces import INamingFacility

MAX_NAME_LENGTH = 1024


@implementer(INamingFacility)
class NamingFacility:
    """bind / unbind / lookup, in the caller's transaction."""

    def __init__(self):
        self.engine = None

    def bind(self, aci, name):
        engine = self.engine
        engine.work()
        if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
            raise ValueError(f"an activity context name is a non-empty string of at most "
                             f"{MAX_NAME_LENGTH} characters, not {name!r}")
        names = engine.state.names
        if name in names:
            raise NameAlreadyBoundError(f"name {name!r} is bound already")
        record = engine._record(aci.key)
        names[name] = aci.key
        record.add_name(name)

    def unbind(self, name):
        engine = self.engine
        work = engine.work()
        key = engine.state.names.get(name)
        if key is None:
            raise NameNotBoundError(f"name {name!r} is not bound")
        self.forget(name)
        work.idle_activities.add(key)

    def lookup(self, name):
        """@return: the activity context interface bound to C{name}, or None."""
        engine = self.engine
        engine.work()
        key = engine.state.names.get(name)
        return None if key is None else engine.aci(key)

    def lookup_or_create(self, name):
        """
        @return: the activity context interface bound to C{name}; a new
            null activity bound to it when there was none.  That is how
            entities that never met meet on a name (a resource, say).
        """
        found = self.lookup(name)
        if found is not None:
            return found
        made = self.engine.create_null_activity()
        self.bind(made, name)
        return made

    def join(self, name, sbb):
        """
        Attach C{sbb} (an SBB local object) to the activity bound to
        C{name}, a new null activity bound to it when there is none: the
        entities that watch one thing (a document, a resource) meet there,
        and an event fired on it reaches them all.
        """
        self.lookup_or_create(name).attach(sbb)

    def leave(self, name, sbb):
        """
        Detach C{sbb} from the activity bound to C{name}, if any; the last
        to leave unbinds the name, and the null activity ends.
        """
        joined = self.lookup(name)
        if joined is None:
            return
        joined.detach(sbb)
        if not joined.attached_count():
            self.unbind(name)

    def forget(self, name):
        """Drop a binding (the activity ended)."""
        engine = self.engine
        key = engine.state.names.pop(name, None)
        record = None if key is None else engine.find_activity(key)
        if record is not None:
            record.discard_name(name)
