"""
The random parts of SIP identifiers: tags and branches.

RFC 3261 wants them globally unique and hard to guess (§19.3: at least 32
random bits for a tag; §8.1.1.7: a branch unique in space and time), so
they come from the operating system's generator.  One C{os.urandom} per
tag would be a system call per request answered, which shows at tens of
thousands of requests a second: the bytes are read a pool at a time
instead, and a forked child starts with a pool of its own so that parent
and child never hand out the same bytes.
"""

import os

POOL_SIZE = 4096

_pool = b""
_offset = 0


def random_hex(count):
    """@return: C{count} random bytes (at most L{POOL_SIZE}), in hex."""
    global _pool, _offset
    end = _offset + count
    if end > len(_pool):
        _pool, _offset, end = os.urandom(POOL_SIZE), 0, count
    chunk = _pool[_offset:end]
    _offset = end
    return chunk.hex()


def _forget_pool():
    global _pool, _offset
    _pool, _offset = b"", 0


os.register_at_fork(after_in_child=_forget_pool)
