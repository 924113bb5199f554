"""
Emptied BTree buckets out of ZODB's object cache.

The container keeps its records in BTrees whose keys mostly grow (entity
and timer ids, activity keys and names drawn from counters): new keys go in
at one end, and those of calls that ended leave from the other.  A bucket
emptied that way is unlinked from its tree and is garbage in the database,
which the next pack drops.  ZODB's cache, though, keeps it as it keeps every
object, until its least-recently-used end reaches it.  Under a load of a
thousand short calls a second that is some 350 dead buckets a second: they
fill the cache up to its size in objects (C{--cache-size}) with what nobody
will read again, and crowd the live objects out of it.

L{sweep_empty_buckets} turns every empty bucket the cache holds, with no
unsaved change, back into a ghost, and a ghost nothing refers to is freed
at once.  It must not touch a bucket to learn whether it is empty: a
bucket's length, as any use of its state, marks it used, and a sweep that
did so would keep every bucket at the cache's fresh end, and the objects
the buckets hold with them (a sweep written that way kept some 12,500
buckets and 49,000 records in memory where 7,700 and 23,000 were before).
So it reads the size ZODB noted of the bucket's stored state: an empty
bucket stores in at most L{EMPTY_STATE_SIZE} bytes, as does a bucket of one
small item now and then.  Doing so to a bucket still in use is harmless
(its next reader loads it again), so the sweep needs to know nothing of
the trees.  The
container sweeps every L{SWEEP_INTERVAL} seconds, between transactions.
The records themselves leave the cache exactly, when their deletion
commits (L{slee.router.Work.evict}).
"""

from types import ModuleType

import BTrees

#: Seconds between two sweeps of the container's object cache.  A sweep
#: walks the whole cache: some 70 ms for 100,000 objects, the default
#: size, a pause the door notices when it comes every few seconds (at every
#: 5 s, a sweep that took 225 ms cost a quarter of the SUBSCRIBE rate in
#: bench/presence.sh).  In 30 s of 2,000 short calls a second some 10,000
#: empty buckets gather, a few MB.
SWEEP_INTERVAL = 30.0

#: The size ZODB estimates (C{_p_estimated_size}, in steps of 64 bytes) of
#: an empty bucket's stored state.
EMPTY_STATE_SIZE = 64


def _bucket_classes():
    """The bucket and set classes of every BTree module of both families:
    a set, since a look-up in it costs a tenth of C{isinstance} against
    forty classes, once for every object in the cache."""
    modules = (getattr(family, name)
               for family in (BTrees.family32, BTrees.family64) for name in dir(family))
    return frozenset(cls for module in modules if isinstance(module, ModuleType)
                     and hasattr(module, "Bucket") for cls in (module.Bucket, module.Set))


BUCKETS = _bucket_classes()


def sweep_empty_buckets(cache):
    """
    Ghost the empty, unchanged buckets of a connection's object cache
    (C{connection._cache}, a C{persistent.PickleCache}), without using any
    bucket's state.

    @return: how many were swept.
    """
    swept = 0
    for _, obj in cache.lru_items():
        if type(obj) in BUCKETS and obj._p_estimated_size <= EMPTY_STATE_SIZE \
                and not obj._p_changed:
            obj._p_deactivate()
            swept += 1
    return swept
