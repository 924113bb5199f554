"""The parent of a location client: does what a probe Ping says, journals what it hears."""

from zope.interface import implementer

from locationwatcher_unit import JOURNAL
from probe_unit import PING
from sbbs.registrar.location_client import ILocationClientParent, LocationClientSbb
from slee.sbb import ChildRelation, Sbb, handler


@implementer(ILocationClientParent)
class Watcher(Sbb):
    local_interface = ILocationClientParent
    location = ChildRelation(LocationClientSbb)

    def _one(self, event_type, event, aci, address):
        return "watcher"

    @handler(PING, initial=True, select=(), selector="_one")
    def on_ping(self, event, aci):
        children = list(self.location)
        client = children[0] if children else self.location.create()
        found = getattr(client, event["location"])(event["aor"])
        JOURNAL.append((event["location"], tuple(binding.uri for binding in found or ())))

    def bindings_changed(self, aor, bindings):
        JOURNAL.append(("bindings_changed", aor, tuple(binding.uri for binding in bindings)))
