"""
ZODB's object writer, without its reference cycle.

At each commit, a ZODB connection makes an C{ObjectWriter} for every
changed object, which pickles it and the new objects it reaches.  The
writer holds its pickler, and the pickler holds the writer's bound
C{persistent_id} method: a reference cycle, so that reference counting
never frees a writer, its pickler, the pickler's memo and the buffer of
pickled bytes.  Only the garbage collector does, some turns later.

Under load that was all the cyclic garbage the server made: seven objects
for every object stored, some 35 per PUBLISH, 20,000 a second at 2,400
PUBLISH calls a second offered.  They set the pace of the collections
(L{slee.collector} counts net allocations), each walked the backlog of
the turn, and what survived a collection went on to an older generation,
to be freed much later and leave the heap fragmented.

L{install} has connections use L{AcyclicObjectWriter}, which drops its
pickler once the connection has stored the last object through it, so
that reference counting frees the whole writer at once.
"""

import ZODB.Connection
from ZODB.serialize import ObjectWriter


class AcyclicObjectWriter(ObjectWriter):
    """An C{ObjectWriter} that breaks its cycle once iterated over."""

    def __iter__(self):
        # The connection iterates over a writer (the changed object, then
        # each new object found while pickling) and pickles each object in
        # the loop's body; after the loop, or a failure in it, the writer
        # is not used again.
        try:
            yield from super().__iter__()
        finally:
            del self._p


def install():
    """Have every ZODB connection write objects with L{AcyclicObjectWriter}."""
    ZODB.Connection.ObjectWriter = AcyclicObjectWriter
