"""The parent of a location client: does what a probe Ping says, journals what it hears."""

from zope.interface import implementer

from locationwatcher_unit import JOURNAL
from probe_unit import PING
from sbbs.registrar.location_client import ILocationClientParent, LocationClientSbb
from slee.sbb import ChildRelation, Sbb, handler


@implementer(ILocationClientParent)
class Watcher(Sbb):
    local_interface = ILocationClientParent
    singleton = True
    location = ChildRelation(LocationClientSbb)

    @handler(PING, initial=True)
    def on_ping(self, event, aci):
        client = self.location.get_or_create()
        found = getattr(client, event["location"])(event["aor"])
        JOURNAL.append((event["location"], tuple(binding.uri for binding in found or ())))

    def bindings_changed(self, aor, bindings):
        JOURNAL.append(("bindings_changed", aor, tuple(binding.uri for binding in bindings)))
