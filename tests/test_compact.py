"""Frozen values stored as one string of bytes (slee.compact)."""

import enum
import pickle
from dataclasses import dataclass, field, fields

import transaction
import ZODB
from persistent.mapping import PersistentMapping

from slee.compact import Compact


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Inner(Compact):
    names: frozenset = frozenset()


@dataclass(frozen=True)
class Value(Compact):
    colour: Colour
    inner: Inner = Inner()
    options: dict = field(default_factory=dict)


class CountingPickler(pickle.Pickler):
    """Counts the objects a pickler hands its persistent_id hook, as ZODB's does."""

    def __init__(self, file):
        super().__init__(file, protocol=3)
        self.seen = 0

    def persistent_id(self, obj):
        self.seen += 1
        return None


def hook_calls(value):
    import io
    pickler = CountingPickler(io.BytesIO())
    pickler.dump(value)
    return pickler.seen


def test_a_value_comes_back_equal_and_of_its_class():
    value = Value(Colour.RED, Inner(frozenset({"a", "b"})), {"x": "1"})
    again = pickle.loads(pickle.dumps(value, protocol=3))
    assert again == value and type(again) is Value and type(again.inner) is Inner


def test_the_hook_sees_a_handful_of_objects_whatever_the_value_holds():
    small = Value(Colour.RED)
    large = Value(Colour.RED, Inner(frozenset(f"name{i}" for i in range(100))),
                  {f"k{i}": f"v{i}" for i in range(50)})
    assert hook_calls(large) == hook_calls(small) <= 4


def test_hashable_values_are_encoded_once():
    from slee.compact import _encoded
    value = Inner(frozenset({"shared"}))
    first = value.__reduce__()[1][0]
    assert Inner(frozenset({"shared"})).__reduce__()[1][0] is first
    assert _encoded.cache_info().hits >= 1


def test_values_are_stored_in_zodb():
    db = ZODB.DB(None)
    connection = db.open()
    connection.root()["data"] = PersistentMapping(value=Value(Colour.RED, options={"a": "b"}))
    transaction.commit()
    other = db.open(transaction_manager=transaction.TransactionManager())
    assert other.root()["data"]["value"] == Value(Colour.RED, options={"a": "b"})
    db.close()


def test_packed_plain_data_is_one_object_to_the_hook():
    from slee.compact import Packed
    snapshot = {"call_id": "x", "route_set": ["<sip:a>", "<sip:b>"], "local_seq": 7}
    assert hook_calls(Packed(snapshot)) <= 4
    assert pickle.loads(pickle.dumps(Packed(snapshot), protocol=3)).value == snapshot


@dataclass(frozen=True)
class Flag(Compact):
    on: object


def test_equal_values_of_other_field_types_keep_their_types():
    for value in (True, 1, 1.0):
        again = pickle.loads(pickle.dumps(Flag(value), protocol=3))
        assert type(again.on) is type(value)


@dataclass(frozen=True)
class Once(Compact):
    name: str

    recurring = False


def test_values_made_once_are_not_kept_in_the_encoding_cache():
    from slee.compact import _encoded
    before = _encoded.cache_info()
    value = Once("made once")
    assert pickle.loads(pickle.dumps(value, protocol=3)) == value
    after = _encoded.cache_info()
    assert (after.hits, after.misses) == (before.hits, before.misses)
    assert [f.name for f in fields(Once)] == ["name"]      # a class attribute, not a field
