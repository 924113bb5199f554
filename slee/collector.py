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
C{oldest} of the middle, but only once the heap has grown by
L{FULL_GROWTH} since the last full collection.  CPython has the same rule
(its oldest generation waits until what was promoted into it since is a
quarter of what it held): a full collection walks every object of the
process, hundreds of megabytes of it under load, and at a fixed pace it
would cost as much as the work itself, in pauses that make every answer
late.  The heap is counted in the interpreter's allocated blocks, which
cost nothing to read.
"""

import gc
import sys

#: Net allocations of tracked objects (allocations less deallocations)
#: before a turn's end collects the youngest generation.
YOUNGEST_THRESHOLD = 10000

#: The automatic collector's threshold while turns collect.
SAFETY_NET_THRESHOLD = 200000

#: How much the heap grows, as a share of its size after the last full
#: collection, before the oldest generation is collected again.
FULL_GROWTH = 0.25


class TurnCollector:
    """Collects the generations that are due; called at the end of each turn."""

    def __init__(self, youngest=YOUNGEST_THRESHOLD, safety_net=SAFETY_NET_THRESHOLD,
                 heap=sys.getallocatedblocks):
        self.youngest = youngest
        self.safety_net = safety_net
        _, self.middle, self.oldest = gc.get_threshold()
        self._heap = heap
        self._heap_after_full = heap()

    def install(self):
        """
        Freeze what start-up made (modules, the container, deployed
        components): it lives as long as the process, so no collection
        walks it again; then leave the youngest generation to the turns.
        """
        gc.collect()
        gc.freeze()
        self._heap_after_full = self._heap()
        gc.set_threshold(self.safety_net, self.middle, self.oldest)

    def __call__(self):
        youngest, middle, oldest = gc.get_count()
        if youngest < self.youngest:
            return
        if oldest >= self.oldest and self._heap() > self._heap_after_full * (1 + FULL_GROWTH):
            gc.collect(2)
            self._heap_after_full = self._heap()
        elif middle >= self.middle or oldest >= self.oldest:
            gc.collect(1)
        else:
            gc.collect(0)
