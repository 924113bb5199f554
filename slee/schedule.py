"""
Many due times on one reactor call.

A presence server holds a timer per subscription and per publication: tens
of thousands armed at once, most of them moved or cancelled before they
fall due (every refresh moves one).  A reactor call each (a C{DelayedCall}
with its bound methods, argument tuple and keyword dict) cost some 900
bytes and fifteen objects for the garbage collector to walk: the largest
part of a subscription's memory.

A L{Schedule} keeps (due time, key) pairs in a heap and one reactor call,
for the earliest.  Removing a key only forgets its due time; its entry in
the heap is skipped when it comes up, and the heap is rebuilt from the live
due times once stale entries outnumber them, so that churn cannot grow it.
"""

import heapq

#: Stale heap entries tolerated beyond the live ones before a rebuild.
STALE_SLACK = 1024


class Schedule:
    """
    Keys that fall due at given times of C{clock}: C{fall_due(key)} is
    called for each, once, at its time (keys due together in key order).
    """

    def __init__(self, clock, fall_due):
        self._clock = clock
        self._fall_due = fall_due
        self._due = {}          # key -> due time, for every key still to fall due
        self._heap = []         # (due time, key), stale entries included
        self._call = None       # the reactor call for the earliest due time
        self._call_at = None    # ... and that time

    def __len__(self):
        return len(self._due)

    def add(self, key, due):
        """Make C{key} fall due at C{due} (clock seconds), instead of any time it had."""
        self._due[key] = due
        heapq.heappush(self._heap, (due, key))
        if len(self._heap) > 2 * len(self._due) + STALE_SLACK:
            self._heap = [(time, key) for key, time in self._due.items()]
            heapq.heapify(self._heap)
        if self._call_at is None or due < self._call_at:
            self._arm()

    def remove(self, key):
        """C{key} will not fall due (if it was to)."""
        self._due.pop(key, None)

    def clear(self):
        """Nothing falls due any more."""
        self._cancel()
        self._due.clear()
        self._heap.clear()

    def _cancel(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = self._call_at = None

    def _arm(self):
        """Have the reactor call back at the earliest live due time, if any."""
        self._cancel()
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)         # removed, or moved to another time
        if heap:
            self._call_at = heap[0][0]
            self._call = self._clock.callLater(
                max(0.0, self._call_at - self._clock.seconds()), self._wake)

    def _wake(self):
        # What the call was for is due, whatever the clock's rounding says.
        limit = max(self._call_at, self._clock.seconds())
        self._call = self._call_at = None
        heap, due = self._heap, self._due
        fallen = []
        while heap and heap[0][0] <= limit:
            time, key = heapq.heappop(heap)
            if due.get(key) == time:
                del due[key]
                fallen.append(key)
        self._arm()
        for key in fallen:
            self._fall_due(key)
