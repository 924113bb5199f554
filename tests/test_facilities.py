"""Usage parameters, alarms and trace levels, as SBBs use them and management reads them."""

import pytest
from twisted.logger import globalLogPublisher

from units import ContainerHarness


@pytest.fixture
def slee(tmp_path):
    harness = ContainerHarness(tmp_path)
    harness.deploy("probe")
    from probe_unit.ra import ProbeAdaptor
    harness.ra = ProbeAdaptor.instance
    harness.ra.start("a")
    yield harness
    harness.stop()


def test_usage_parameters(slee):
    for size in (3, 5, 10):
        slee.ra.fire("a", {"op": "usage", "size": size})
    slee.run()
    [usage] = [u for u in slee.container.usage() if u["sbb"].startswith("Root:")]
    assert usage["service"] == "probe:slee.tests:1.0"
    assert usage["counters"] == {"pings": 3}
    assert usage["samples"]["size"] == {"count": 3, "min": 3, "max": 10, "mean": 6.0}
    slee.container.reset_usage()
    assert slee.container.usage() == []


def test_alarms_raise_list_clear(slee):
    slee.ra.fire("a", {"op": "alarm"})
    slee.ra.fire("a", {"op": "alarm"})      # the same alarm again: updated, not added
    slee.run()
    [alarm] = slee.container.alarms()
    assert (alarm["type"], alarm["instance"], alarm["level"], alarm["message"]) == (
        "overload", "queue", "major", "too much")
    assert alarm["source"] == "probe:slee.tests:1.0/Root:slee.tests:1.0"
    slee.ra.fire("a", {"op": "clear-alarm"})
    slee.run()
    assert slee.container.alarms() == []
    slee.ra.fire("a", {"op": "alarm"})
    slee.run()
    [alarm] = slee.container.alarms()
    slee.container.clear_alarm(str(alarm["id"]))
    assert slee.container.alarms() == []


def test_trace_levels_per_component(slee):
    seen = []

    def observer(event):
        if event.get("log_namespace", "").startswith("slee.sbb.probe."):
            seen.append(event["log_format"])

    globalLogPublisher.addObserver(observer)
    try:
        slee.ra.fire("a", {"op": "trace", "n": 1})
        slee.run()
        assert seen == ["info line {n}"]
        slee.container.set_trace_level("slee.sbb.probe", "debug")
        slee.ra.fire("a", {"op": "trace", "n": 2})
        slee.run()
        assert seen[1:] == ["debug line {n}", "info line {n}"]
        slee.container.set_trace_level("slee.sbb.probe.Root", "error")
        slee.ra.fire("a", {"op": "trace", "n": 3})
        slee.run()
        assert len(seen) == 3
        assert slee.container.trace_levels() == {"slee.sbb.probe": "debug",
                                                 "slee.sbb.probe.Root": "error"}
    finally:
        globalLogPublisher.removeObserver(observer)


def test_the_container_and_ra_loggers_obey_the_process_levels():
    from twisted.logger import Logger

    from slee.trace import LOG_LEVELS, log_observer
    seen = []

    def observer(event):
        if event.get("log_namespace", "").startswith("resource_adaptors.example"):
            seen.append(event["log_format"])

    log = Logger(namespace="resource_adaptors.example", observer=log_observer)
    globalLogPublisher.addObserver(observer)
    try:
        LOG_LEVELS.replace({})
        log.debug("a datagram dropped")         # quiet by default
        log.info("listening")
        LOG_LEVELS.replace({"resource_adaptors": "debug"})
        log.debug("another datagram dropped")
        LOG_LEVELS.replace({"resource_adaptors.example": "error"})
        log.warn("refused")
    finally:
        LOG_LEVELS.replace({})
        globalLogPublisher.removeObserver(observer)
    assert seen == ["listening", "another datagram dropped"]


def test_raising_an_alarm_logs_it():
    """The alarm's level must not collide with the logger's own argument."""
    from twisted.internet import task
    from twisted.logger import LogLevel
    from twisted.logger import globalLogPublisher
    from slee.alarms import AlarmFacility
    seen = []
    globalLogPublisher.addObserver(seen.append)
    try:
        AlarmFacility(task.Clock()).raise_alarm("src", "disk", "var", "major", "full")
    finally:
        globalLogPublisher.removeObserver(seen.append)
    [event] = [e for e in seen if e.get("alarm_level") == "major"]
    assert event["log_level"] is LogLevel.warn and event["type"] == "disk"
