"""
Python's garbage collector, run where it costs least.

CPython collects its youngest generation after a number of allocations,
wherever they happen.  A server spends its turns reading sockets, then
running the events read (L{slee.router.EventRouter}); the collections fall
mostly in the reading, when every request read and not yet run is alive.
The collector walks them all and moves them to an older generation, only
for reference counting to free them a moment later; and under overload the
backlog makes each collection longer, which makes the backlog longer.

So the running container collects at the end of each turn of the router,
when the turn's events are done and what they made is freed: a collection
then walks only what survives.  The automatic collector stays on, but with
a threshold that only a turn allocating far more than usual meets, as a
safety net.  The generations keep CPython's schedule: the middle one is
collected every C{middle} collections of the youngest, the oldest every
C{oldest} of the middle.
"""

import gc

#: Net allocations of tracked objects (allocations less deallocations)
#: before a turn's end collects the youngest generation.
YOUNGEST_THRESHOLD = 10000

#: The automatic collector's threshold while turns collect.
SAFETY_NET_THRESHOLD = 200000


class TurnCollector:
    """Collects the generations that are due; called at the end of each turn."""

    def __init__(self, youngest=YOUNGEST_THRESHOLD, safety_net=SAFETY_NET_THRESHOLD):
        self.youngest = youngest
        self.safety_net = safety_net
        _, self.middle, self.oldest = gc.get_threshold()

    def install(self):
        """
        Freeze what start-up made (modules, the container, deployed
        components): it lives as long as the process, so no collection
        walks it again; then leave the youngest generation to the turns.
        """
        gc.collect()
        gc.freeze()
        gc.set_threshold(self.safety_net, self.middle, self.oldest)

    def __call__(self):
        youngest, middle, oldest = gc.get_count()
        if youngest < self.youngest:
            return
        if oldest >= self.oldest:
            gc.collect(2)
        elif middle >= self.middle:
            gc.collect(1)
        else:
            gc.collect(0)
