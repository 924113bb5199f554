"""
The positional layouts of stored states (L{slee.layouts}): how a state of
an older layout reads, and every stored layout held to the rule that it
only grows at its end, against the layout it was first released with.

When a test here fails after a change to a record's LAYOUT or a compact
value's fields: append the new field instead (with the default older states
read as: C{added=} for a record, a dataclass default for a compact value),
and leave a field no longer used in its place.
"""

import dataclasses
import importlib
import pickle
from pathlib import Path

import pytest

from slee.compact import Compact
from slee.layouts import Layout, LayoutError
from slee.records import ActivityContextRecord, Record, SbbEntityRecord, TimerRecord

ROOT = Path(__file__).parent.parent

#: Every stored layout, as first released: class -> its fields, in order.
RELEASED = {
    "slee.records.SbbEntityRecord": (
        "id", "service", "sbb", "parent", "root", "relation", "convergence_name", "priority",
        "cmp", "children", "attached", "masks"),
    "slee.records.ActivityContextRecord": (
        "key", "ra", "handle", "durable", "attached", "names", "timers", "ending"),
    "slee.records.TimerRecord": ("id", "activity", "due", "period", "remaining"),
    "slee.compact.Packed": ("value",),
    "sbbs.sipevent.subscription.Subscription": (
        "package", "event_id", "subscriber", "resource", "content_type", "state", "expires_at",
        "reason", "parameters"),
    "sbbs.registrar.bindings.Binding": (
        "uri", "key", "q", "expires_at", "call_id", "cseq", "path"),
    "sbbs.presence.winfo.Watcher": (
        "id", "uri", "status", "event", "display_name", "expiration", "duration_subscribed"),
    "sbbs.presence.rules.Decision": ("sub_handling", "transformations"),
    "sbbs.sipevent.publication.Publication": (
        "etag", "content_type", "body", "expires_at", "published_at", "timer"),
}


def _product_modules():
    for package in ("slee", "sbbs", "resource_adaptors"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts)


def _subclasses(cls):
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def _stored_classes():
    """@return: name -> class of every record and compact value class in the product."""
    for name in _product_modules():
        importlib.import_module(name)
    classes = [*_subclasses(Record), *_subclasses(Compact)]
    return {f"{cls.__module__}.{cls.__qualname__}": cls for cls in classes
            if cls.__module__.split(".")[0] in ("slee", "sbbs", "resource_adaptors")}


STORED = _stored_classes()


def _fields(cls):
    if issubclass(cls, Record):
        return cls.LAYOUT.fields
    return tuple(field.name for field in dataclasses.fields(cls))


def test_every_stored_layout_is_known():
    """A new record or compact value class is added to RELEASED as it first ships."""
    assert sorted(STORED) == sorted(RELEASED)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_a_stored_layout_only_grows_at_its_end(name):
    fields = _fields(STORED[name])
    released = RELEASED[name]
    assert fields[:len(released)] == released, \
        f"{name}: fields removed, renamed or moved since the layout {released}"


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_a_state_of_the_released_layout_still_reads(name):
    """
    A state written by the released version (its fields only) reads in
    the current one, the fields added since at their defaults.
    """
    cls = STORED[name]
    released = RELEASED[name]
    if issubclass(cls, Record):
        record = cls.__new__(cls)
        record.__setstate__(tuple(f"v{index}" for index in range(len(released))))
        assert [getattr(record, field) for field in released] == \
            [f"v{index}" for index in range(len(released))]
        assert set(record.__dict__) == set(cls.LAYOUT.fields)
    else:
        added = [field for field in dataclasses.fields(cls) if field.name not in released]
        missing = [field.name for field in added if field.default is dataclasses.MISSING
                   and field.default_factory is dataclasses.MISSING]
        assert missing == [], f"{name}: fields added without a default: {missing}"


def test_a_layout_reads_its_earlier_versions_with_the_defaults_of_what_came_after():
    layout = Layout("a", "b", "c", "d", added=(("c", 0), ("d", ())))
    assert layout.load((1, 2)) == {"a": 1, "b": 2, "c": 0, "d": ()}
    assert layout.load((1, 2, 3)) == {"a": 1, "b": 2, "c": 3, "d": ()}
    assert layout.load((1, 2, 3, 4)) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert layout.dump({"a": 1, "d": 4}) == (1, None, None, 4)


@pytest.mark.parametrize("state", [(1,), (1, 2, 3, 4, 5), ()])
def test_a_state_no_version_wrote_is_refused(state):
    with pytest.raises(LayoutError):
        Layout("a", "b", "c", "d", added=(("c", 0), ("d", ()))).load(state)


@pytest.mark.parametrize("added", [(("b", 0),), (("d", 0), ("c", 0)), (("x", 0),)])
def test_fields_are_added_at_the_end_only(added):
    with pytest.raises(ValueError):
        Layout("a", "b", "c", "d", added=added)


def test_records_round_trip_through_their_layout():
    records = [SbbEntityRecord(1, "s", "b", None, 1, None, "c", 0),
               ActivityContextRecord("ra/h", "ra", "h", True),
               TimerRecord(7, "ra/h", 12.5, None, 0)]
    for record in records:
        copy = pickle.loads(pickle.dumps(record))
        assert copy.__getstate__() == record.__getstate__()
        assert type(record.__getstate__()) is tuple
