"""
The presence server's memo of derived values (sbbs/presence/memo.py).
"""

import pytest

from sbbs.presence.memo import Memo


def test_a_value_is_derived_once_while_it_is_among_the_last_asked():
    derived = []

    def square(number):
        derived.append(number)
        return number * number

    memo = Memo(size=2)
    assert [memo.get(square, 3), memo.get(square, 3)] == [9, 9]
    memo.get(square, 4)
    memo.get(square, 3)          # 3 is the last asked now: 4 goes first
    memo.get(square, 5)
    assert len(memo) == 2
    memo.get(square, 3)
    memo.get(square, 4)
    assert derived == [3, 4, 5, 4]


def test_what_raises_is_not_remembered():
    calls = []

    def refuse(body):
        calls.append(body)
        raise ValueError(body)

    memo = Memo()
    for _ in range(2):
        with pytest.raises(ValueError):
            memo.get(refuse, b"bad")
    assert calls == [b"bad", b"bad"] and len(memo) == 0


def test_values_of_different_derivations_do_not_mix():
    memo = Memo()
    assert (memo.get(str.upper, "a"), memo.get(str.lower, "a")) == ("A", "a")
