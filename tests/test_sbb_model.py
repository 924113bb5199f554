"""
The SBB programming model is closed and safe: CMP values are frozen (an
in-place change is refused, not lost at the next restart, over a real
process too), what services use of the container is declared in its
interfaces, and the idioms (C{get_or_create}, a singleton root SBB,
references, an RA's reactor and clock from its endpoint) work.
"""

import dataclasses
import pickle
import re
import signal
from pathlib import Path

import pytest
import pytest_twisted
from BTrees.OOBTree import OOBTree
from twisted.internet import defer
from zope.interface.verify import verifyObject

from slee.context import ActivityContextInterface, ChildRelationView, SbbContext, SbbLocalObject
from slee.errors import DeploymentError
from slee.frozen import FrozenDict, FrozenList, FrozenSet, freeze
from slee.interfaces import (
    IActivityContextInterface, IChildRelation, INamingFacility, ISbbContext, ISbbLocalObject,
    ISleeEndpoint, ITimerFacility)
from slee.naming import NamingFacility
from slee.sbb import Reference
from test_restart import Counter, connect, processes  # noqa: F401 (a fixture)
from units import UNITS, ContainerHarness, started

REPO = Path(__file__).resolve().parent.parent


# -- frozen values -----------------------------------------------------------------

def test_plain_containers_are_frozen_recursively():
    value = freeze({"a": [1, {2}], "b": (3, [4]), "c": bytearray(b"x")}, "notes")
    assert value == {"a": (1, {2}), "b": (3, (4,)), "c": b"x"}
    assert type(value) is FrozenDict and type(value["a"]) is FrozenList
    assert type(value["a"][1]) is FrozenSet and type(value["b"][1]) is FrozenList
    assert isinstance(value, dict) and dict(value) == value


def test_immutable_and_persistent_values_are_kept_as_they_are():
    plain = (1, "a", (2.0, None), frozenset({3}))
    tree = OOBTree()
    assert freeze(plain, "f") is plain
    assert freeze(tree, "f") is tree
    assert freeze(Reference("sbb", 1), "f") == Reference("sbb", 1)


@pytest.mark.parametrize("change", [
    lambda value: value["list"].append(1),
    lambda value: value["list"].sort(),
    lambda value: value["set"].add(1),
    lambda value: value.update(x=1),
    lambda value: value.__setitem__("x", 1),
    lambda value: value.pop("list"),
    lambda value: value.setdefault("x", 1),
])
def test_an_in_place_change_raises_a_type_error_naming_the_field(change):
    value = freeze({"list": [2], "set": {3}}, "history")
    with pytest.raises(TypeError, match=r"CMP field 'history' holds a frozen \w+: assign"):
        change(value)
    assert value == {"list": (2,), "set": {3}}


def test_new_values_are_made_as_from_plain_ones():
    history = freeze([1], "history")
    assert history + [2] == history + (2,) == (1, 2)
    assert type(history + [[2]]) is FrozenList and type((history + [[2]])[1]) is FrozenList
    assert [0] + history == [0, 1]
    notes = freeze({"a": 1}, "notes")
    assert {**notes, "b": 2} == notes | {"b": 2} == {"a": 1, "b": 2}
    assert type(notes.copy()) is dict


def test_frozen_values_pickle_as_themselves():
    value = freeze({"a": [1], "s": {2}}, "notes")
    loaded = pickle.loads(pickle.dumps(value, protocol=3))
    assert loaded == value and type(loaded) is FrozenDict
    assert type(loaded["a"]) is FrozenList and type(loaded["s"]) is FrozenSet
    with pytest.raises(TypeError, match="'notes'"):
        loaded["a"].append(2)


def test_a_mutable_dataclass_is_refused():
    @dataclasses.dataclass
    class Mutable:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        x: int

    with pytest.raises(TypeError, match="CMP field 'f' cannot hold a Mutable"):
        freeze([Mutable(1)], "f")
    assert freeze(Frozen(1), "f") == Frozen(1)


# -- in a container ------------------------------------------------------------------

@pytest.fixture
def model(tmp_path):
    harness = ContainerHarness(tmp_path / "var")
    harness.deploy("model")
    from model_unit import JOURNAL      # importable once deployed
    from model_unit.ra import ModelAdaptor

    JOURNAL.clear()
    adaptor = ModelAdaptor.instance
    for handle in ("a", "b"):
        adaptor.start(handle)
    yield harness, adaptor, JOURNAL
    harness.stop()


def test_fields_change_by_assignment_and_refuse_in_place_changes(model):
    harness, adaptor, journal = model
    adaptor.do("a", "append", item="x")
    adaptor.do("a", "append-in-place", item="lost")
    adaptor.do("a", "note", key="k", value=[1])
    adaptor.do("a", "note-in-place", key="k", value="lost")
    adaptor.do("a", "read")
    harness.run()
    failures = [entry for entry in journal if entry[0] == "failed"]
    assert [(kind, re.match(r"CMP field '(\w+)' holds a frozen (\w+)", text).groups())
            for _, kind, text in failures] == [("TypeError", ("history", "list")),
                                              ("TypeError", ("notes", "dict"))]
    [(_, _, history, notes, _)] = [entry for entry in journal if entry[0] == "read"]
    assert history == ("x",) and notes == {"k": (1,)}


def test_a_singleton_root_sbb_has_one_entity_for_every_activity(model):
    harness, adaptor, journal = model
    adaptor.do("a", "read")
    adaptor.do("b", "read")
    harness.run()
    [first, second] = journal
    assert first[1] == second[1]
    [service] = harness.container.services()
    assert service["root_entities"] == 1


def test_get_or_create_and_references(model):
    harness, adaptor, journal = model
    adaptor.do("a", "keep-helper")
    adaptor.do("b", "keep-helper")
    adaptor.do("a", "call-helper")
    adaptor.do("a", "read")
    harness.run()
    [(_, helper), (_, _, _, notes, children)] = journal
    assert children == 1
    assert notes["helper"] == Reference("sbb", helper)
    assert (notes["helper"].kind, notes["helper"].key) == ("sbb", helper)


def test_a_singleton_declares_no_selector(tmp_path):
    import shutil

    unit = tmp_path / "model-copy"
    shutil.copytree(UNITS / "model", unit, ignore=shutil.ignore_patterns("__pycache__"))
    sbbs = unit / "model_unit" / "sbbs.py"
    sbbs.write_text(sbbs.read_text().replace(
        "@handler(DO, initial=True)", '@handler(DO, initial=True, selector="do_read")'))
    harness = ContainerHarness(tmp_path / "var")
    try:
        with pytest.raises(DeploymentError, match="a singleton SBB's initial events"):
            started(harness.container.deploy(str(unit)))
    finally:
        harness.stop()


# -- what services and RAs use is declared ---------------------------------------------

def _public(cls):
    return {name for klass in cls.__mro__[:-1] for name in vars(klass)
            if not name.startswith("_")}


@pytest.mark.parametrize("cls, interface, internal", [
    # child_relation: how a ChildRelation attribute reaches its view.
    (SbbContext, ISbbContext, {"child_relation"}),
    (SbbLocalObject, ISbbLocalObject, set()),
    (ActivityContextInterface, IActivityContextInterface, {"key"}),
    (ChildRelationView, IChildRelation, set()),
    # engine: set by the container; forget: called when an activity ends.
    (NamingFacility, INamingFacility, {"engine", "forget"}),
])
def test_what_sbbs_hold_offers_what_its_interface_declares(cls, interface, internal):
    assert interface.implementedBy(cls)
    assert _public(cls) - internal == set(interface.names(all=True))


def test_the_context_and_the_endpoint_provide_their_interfaces(model):
    harness, adaptor, _ = model
    engine = harness.container.engine
    assert verifyObject(ITimerFacility, engine.timers)
    assert verifyObject(ISleeEndpoint, adaptor.endpoint)
    assert adaptor.endpoint.clock is harness.clock
    assert adaptor.endpoint.reactor is harness.container.reactor


def test_resource_adaptors_do_not_import_the_global_reactor():
    importers = [str(path.relative_to(REPO)) for path in (REPO / "resource_adaptors").rglob("*.py")
                 if re.search(r"from twisted\.internet import .*\breactor\b|"
                              r"twisted\.internet\.reactor", path.read_text())]
    assert importers == []


# -- across a crash, over a real process -----------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_field_changed_as_the_readme_says_survives_sigkill(tmp_path, processes):
    """
    The counter unit adds notes as the README's example adds to its
    history (C{self.notes += [note]}); one added in place is refused, with
    the field named in the log.  What was acknowledged is there after a
    SIGKILL and a restart.
    """
    counter = Counter(tmp_path, processes)
    port = await counter.start()
    client = await connect(port)
    try:
        assert await client.ask("note a") == "noted 1"
        client.send("note-in-place lost")
        answers = [client.ask("note b"), client.ask("notes")]
        assert await defer.gatherResults(answers) == ["noted 2", "notes a b"]
        await counter.process.kill()
        await client.lost_within()
    finally:
        await client.close()
    assert counter.process.process.returncode == -signal.SIGKILL
    assert "TypeError(\"CMP field 'notes' holds a frozen list" in counter.process.log(), \
        counter.process.output()

    port = await counter.start()
    client = await connect(port)
    try:
        assert await client.ask("notes") == "notes a b"
    finally:
        await client.close()
