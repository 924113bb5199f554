"""The benchmark's unit: an RA that fires ticks, an SBB that counts them in a CMP field."""

from slee.events import EventType
from slee.resources import ResourceAdaptor
from slee.sbb import CmpField, Sbb, Select, handler

TICK = EventType("Tick", "slee.bench", "1.0")


class BenchAdaptor(ResourceAdaptor):
    event_types = (TICK,)
    instance = None

    def activate(self, endpoint):
        super().activate(endpoint)
        BenchAdaptor.instance = self


class Counter(Sbb):
    ticks = CmpField(default=0)

    @handler(TICK, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_tick(self, event, aci):
        self.ticks += 1
