"""
The location client: how a service finds where a user is registered, and
hears when that changes (an internal client interface, as the publication
and subscription clients of L{sbbs.sipevent} are).

A service makes L{LocationClientSbb} a child (its unit declares it and
needs the unit C{registrar}, which defines the event the child hears; its
SBB has a C{ChildRelation} to it and L{ILocationClientParent} in its local
interface)::

    class Caller(Sbb):
        local_interface = ILocationClientParent
        location = ChildRelation(LocationClientSbb)

        def call(self, aor):
            client = self.location.get_or_create()
            for binding in client.lookup(aor):         # best first
                ...binding.uri, binding.q, binding.path...
            client.watch(aor)

        def bindings_changed(self, aor, bindings):
            ...                                        # () when none is left

L{ILocationClient.lookup} is done at once, in the caller's transaction;
a change comes later, in a transaction of its own, for every address the
child watches.
"""

from zope.interface import Interface, implementer

from sbbs.registrar.location import BINDINGS_CHANGED, current_bindings, normalized, watch_name
from slee.sbb import Sbb, handler


class ILocationClient(Interface):
    """What a service asks of its location client child."""

    def lookup(aor):
        """
        @param aor: an address of record (any SIP URI of it: port and
            parameters do not count).
        @return: its current bindings (L{sbbs.registrar.bindings.Binding}:
            C{uri}, C{q}, C{expires_at}, C{path}...), best first (by q,
            then the latest to expire); empty when it has none.
        """

    def watch(aor):
        """Be told of every change of the bindings of C{aor}, until L{unwatch}."""

    def unwatch(aor):
        """Stop being told of the changes of C{aor}."""


class ILocationClientParent(Interface):
    """What the parent of a location client is told (in its own local interface)."""

    def bindings_changed(aor, bindings):
        """The bindings of C{aor} (normalized) are now C{bindings}, best first (may be empty)."""


@implementer(ILocationClient)
class LocationClientSbb(Sbb):
    """The child that looks up and watches bindings for a service; see the module docstring."""

    local_interface = ILocationClient

    def lookup(self, aor):
        aor = normalized(aor)
        return () if aor is None else current_bindings(self.context, aor)

    def watch(self, aor):
        aor = normalized(aor)
        if aor is not None:
            self.context.naming.join(watch_name(aor), self.context.sbb_local_object)

    def unwatch(self, aor):
        aor = normalized(aor)
        if aor is not None:
            self.context.naming.leave(watch_name(aor), self.context.sbb_local_object)

    @handler(BINDINGS_CHANGED)
    def on_bindings_changed(self, event, aci):
        self.context.parent.bindings_changed(event.aor, event.bindings)
