"""The pool that tags and branches draw their random bytes from."""

import os

from resource_adaptors.sip.core import randomness
from resource_adaptors.sip.core.randomness import POOL_SIZE, random_hex


def test_hex_of_the_asked_length_and_never_repeated_across_pools():
    drawn = [random_hex(8) for _ in range(3 * POOL_SIZE // 8)]
    assert all(len(tag) == 16 and int(tag, 16) >= 0 for tag in drawn)
    assert len(set(drawn)) == len(drawn)


def test_a_draw_that_does_not_fit_takes_a_new_pool():
    random_hex(POOL_SIZE - 3)
    assert len(random_hex(8)) == 16
    assert randomness._offset == 8


def test_a_forked_child_does_not_reuse_the_parents_pool():
    random_hex(8)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, random_hex(8).encode())
        os._exit(0)
    os.close(write)
    in_child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(child, 0)
    assert in_child != random_hex(8)
