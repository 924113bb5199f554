"""
Deployable units: a bad unit is refused whole, with an error naming the
file and the field, and leaves the running container as it was.
"""

import shutil
import zipfile

import pytest

from slee.errors import DeploymentError, ManagementError
from units import UNITS, ContainerHarness, started


@pytest.fixture
def slee(tmp_path):
    harness = ContainerHarness(tmp_path / "var")
    yield harness
    harness.stop()


def probe_copy(tmp_path, name="probe-copy"):
    target = tmp_path / name
    shutil.copytree(UNITS / "probe", target)
    return target


def deploy(slee, path):
    return started(slee.container.deploy(str(path)))


def rewrite(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def refused(slee, path, *fragments):
    before = (slee.container.units(), slee.container.services(), sorted(slee.container.registry.event_types))
    with pytest.raises(DeploymentError) as caught:
        deploy(slee, path)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    assert (slee.container.units(), slee.container.services(),
            sorted(slee.container.registry.event_types)) == before
    units_dir = slee.var_dir / "units"
    assert not units_dir.exists() or list(units_dir.iterdir()) == []
    import sys
    assert "probe_unit" not in sys.modules
    return message


def test_deploy_and_undeploy(slee, tmp_path):
    unit = deploy(slee, probe_copy(tmp_path))
    assert unit["services"] == ["probe-high:slee.tests:1.0", "probe:slee.tests:1.0"]
    assert [e["name"] for e in slee.container.ra_entities()] == ["probe"]
    assert slee.container.ra_entities()[0]["state"] == "active"
    slee.container.activate("probe")
    with pytest.raises(ManagementError, match="active"):
        started(slee.container.undeploy("probe"))
    slee.container.deactivate("probe")
    started(slee.container.undeploy("probe"))
    assert slee.container.units() == []
    assert list((slee.var_dir / "units").iterdir()) == []


def test_deploy_zip(slee, tmp_path):
    source = probe_copy(tmp_path)
    archive = tmp_path / "probe.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in source.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                z.write(path, path.relative_to(source).as_posix())
    unit = deploy(slee, archive)
    assert unit["name"] == "probe"
    slee.container.activate("probe")
    from probe_unit.ra import ProbeAdaptor
    ProbeAdaptor.instance.start("a")
    ProbeAdaptor.instance.fire("a", {"op": "x"})
    slee.run()
    assert len(slee.container.sbb_entities()) == 1


def test_twice_is_refused(slee, tmp_path):
    deploy(slee, probe_copy(tmp_path))
    with pytest.raises(DeploymentError, match="deployed already"):
        deploy(slee, probe_copy(tmp_path, "again"))


def test_no_descriptor(slee, tmp_path):
    (tmp_path / "empty").mkdir()
    refused(slee, tmp_path / "empty", "deployable.toml", "no descriptor")


def test_bad_toml(slee, tmp_path):
    path = probe_copy(tmp_path)
    (path / "deployable.toml").write_text("[unit\nname = 1\n")
    refused(slee, path, "deployable.toml", "not valid TOML", "line 1")


def test_missing_field(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", 'vendor = "slee.tests"\n', "")
    refused(slee, path, "deployable.toml", "unit.vendor", "required")


def test_unknown_field(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", 'root-sbb = "Root"', 'root-sbb = "Root"\nrot = 1')
    refused(slee, path, "services[0].rot", "unknown field")


def test_unimportable_class(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", "probe_unit.sbbs:Child", "probe_unit.sbbs:Nobody")
    refused(slee, path, "sbbs[1].class", "no attribute 'Nobody'")


def test_sbb_handles_unknown_event(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "probe_unit" / "sbbs.py", "@handler(POKE)",
            '@handler(EventType("Nope", "elsewhere", "1.0"))')
    rewrite(path / "probe_unit" / "sbbs.py", "from slee.events import",
            "from slee.events import EventType,")
    refused(slee, path, "sbbs[0].class", "Nope:elsewhere:1.0", "neither defined")


def test_missing_selector_method(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "probe_unit" / "sbbs.py", 'selector="selector"', 'selector="nowhere"')
    refused(slee, path, "sbbs[0].class", "'nowhere' does not exist")


def test_local_interface_not_implemented(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "probe_unit" / "sbbs.py", "    def fail(self):\n        raise",
            "    def failing(self):\n        raise")
    refused(slee, path, "sbbs[1].class", "local interface", "fail")


def test_bad_priority(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", "priority = 10", "priority = 1000")
    refused(slee, path, "services[1].priority", "-128 to 127")


def test_root_sbb_unknown(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", 'root-sbb = "High"', 'root-sbb = "Low"')
    refused(slee, path, "services[1].root-sbb", "'Low'")


def test_bad_ra_property(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", 'class = "probe_unit.ra:ProbeAdaptor"',
            'class = "resource_adaptors.sip.adaptor:SipResourceAdaptor"\n'
            'properties = { "max-headers" = "long" }')
    refused(slee, path, "ra-entities[0].properties", "'max-headers'", "expected int")


def test_ra_class_not_an_adaptor(slee, tmp_path):
    path = probe_copy(tmp_path)
    rewrite(path / "deployable.toml", "probe_unit.ra:ProbeAdaptor", "probe_unit.sbbs:Root")
    refused(slee, path, "ra-entities[0].class", "IResourceAdaptor")


def test_not_a_unit_file(slee, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    refused(slee, junk, "junk.zip", "not a directory, zip file or wheel")


def test_management_errors(slee):
    with pytest.raises(ManagementError, match="absolute"):
        started(slee.container.deploy("relative/path"))
    with pytest.raises(ManagementError, match="no installed service"):
        slee.container.activate("nosuch")
    with pytest.raises(ManagementError, match="no deployed unit"):
        started(slee.container.undeploy("nosuch"))
    with pytest.raises(ManagementError, match="unknown log level"):
        slee.container.set_trace_level("slee.router", "loud")
    with pytest.raises(ManagementError, match="no active alarm"):
        slee.container.clear_alarm("12")


def test_only_the_service_started_hears_of_it(slee, tmp_path):
    """JAIN SLEE 1.1 §8.7.1: starting one service makes no entity in another."""
    deploy(slee, probe_copy(tmp_path))
    from probe_unit.sbbs import JOURNAL
    JOURNAL.clear()
    slee.container.activate("probe-high")
    slee.run()
    slee.container.activate("probe")
    slee.run()
    assert JOURNAL.count(("high", "service started")) == 1


def test_environment_entries_are_checked_when_deployed_and_read_in_the_context(slee, tmp_path):
    copy = probe_copy(tmp_path)
    descriptor = copy / "deployable.toml"
    rewrite(descriptor, 'class = "probe_unit.sbbs:Root"',
            'class = "probe_unit.sbbs:Root"\nenv = { greeting = "" }')
    refused(slee, copy, "sbbs[0].env", "property 'greeting': empty")
    rewrite(descriptor, 'env = { greeting = "" }', 'env = { greetings = "hi" }')
    refused(slee, copy, "sbbs[0].env", "unknown property 'greetings'")
    rewrite(descriptor, 'env = { greetings = "hi" }', 'env = { greeting = "hi" }')
    deploy(slee, copy)
    slee.container.activate("probe")
    from probe_unit import JOURNAL
    from probe_unit.ra import ProbeAdaptor
    ProbeAdaptor.instance.start("a")
    ProbeAdaptor.instance.fire("a", {"op": "env"})
    slee.run()
    assert ("env", {"greeting": "hi"}) in JOURNAL
