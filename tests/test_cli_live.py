"""
The C{slee} CLI against a real running container.

A real C{twistd -n slee} runs as a subprocess on a fresh var directory,
its management API on a free port (learnt from its log); the tests run the
installed C{slee} console script as a subprocess, in a thread, so that the
reactor keeps running meanwhile.  tests/test_cli.py covers the CLI's
parsing and formatting without a server.
"""

import json
import shutil
import stat
import subprocess
import sys

import pytest
import pytest_twisted

# The subprocess helpers, and the fixture that kills what is left running.
from test_restart import UNITS, child_env, processes, venv_script  # noqa: F401

CLI_TIMEOUT = 30.0


class Cli:
    """Runs C{slee --admin URL --var DIR ...} against one running container."""

    def __init__(self, process):
        self.process = process
        self.script = venv_script("slee")

    async def __call__(self, *args, expect=0, token=None, admin=True):
        """
        Run C{slee ARGS}; check its exit code is C{expect}.

        @param admin: give C{--admin}; without it the CLI finds the URL in
            the var directory.
        @return: the L{subprocess.CompletedProcess}.
        """
        from twisted.internet.threads import deferToThread

        argv = [sys.executable, str(self.script), "--var", str(self.process.var),
                "--timeout", "20"]
        if admin:
            argv += ["--admin", f"http://127.0.0.1:{self.process.admin_port}"]
        if token is not None:
            argv += ["--token", token]
        argv += list(args)
        result = await deferToThread(subprocess.run, argv, capture_output=True, text=True,
                                     env=child_env(), cwd=self.process.base,
                                     timeout=CLI_TIMEOUT)
        assert result.returncode == expect, (
            f"slee {' '.join(args)}: exit code {result.returncode}, expected {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    async def json(self, *args):
        """@return: the decoded C{--json} answer of C{slee ARGS}."""
        result = await self("--json", *args)
        return json.loads(result.stdout)

    async def fails(self, *args, expect=1, token=None):
        """
        Run a command that must fail: one line on stderr, nothing on stdout.

        @return: that line.
        """
        result = await self(*args, expect=expect, token=token)
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("slee: "), result.stderr
        return lines[0]


@pytest.fixture
def container(tmp_path, processes):
    """
    A container on a fresh var directory, not yet started, with an empty
    deploy directory (so none of the shipped units): the test deploys its own.
    """
    empty = tmp_path / "deploy"
    empty.mkdir()
    return processes(tmp_path, tmp_path / "var", deploy_dir=empty)


def copy_unit(name, tmp_path):
    """@return: the absolute path of a fresh copy of test unit C{name}."""
    target = tmp_path / "units" / name
    shutil.copytree(UNITS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target.resolve()


def write_unit(directory, descriptor, modules=None):
    """Write a unit: its descriptor text and C{{relative path: source}}."""
    directory.mkdir(parents=True)
    (directory / "deployable.toml").write_text(descriptor)
    for relative, source in (modules or {}).items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return directory.resolve()


def by_name(rows, key="name"):
    return {row[key]: row for row in rows}


PROBE = "probe:slee.tests:1.0"
PROBE_HIGH = "probe-high:slee.tests:1.0"


@pytest_twisted.ensureDeferred
async def test_cli_manages_a_running_container(container, tmp_path):
    await container.start().ready()
    token = container.var / "admin.token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    slee = Cli(container)

    status = await slee.json("status")
    assert status["state"] == "running"
    assert status["counts"]["units"] == 0
    text = (await slee("status")).stdout
    assert "running" in text and "units:" in text
    # Without --admin, the CLI reads the URL the container wrote to var/admin.url.
    assert "running" in (await slee("status", admin=False)).stdout

    # deploy: the services come in inactive, the RA entity active
    probe = copy_unit("probe", tmp_path)
    deployed = (await slee("deploy", str(probe))).stdout
    assert deployed.startswith("deployed unit probe"), deployed
    units = await slee.json("units")
    assert [u["name"] for u in units] == ["probe"]
    assert set(units[0]["services"]) == {PROBE, PROBE_HIGH}
    assert "probe" in (await slee("units")).stdout

    services = by_name(await slee.json("services"), "id")
    assert {s: services[s]["state"] for s in services} == {
        PROBE: "inactive", PROBE_HIGH: "inactive"}

    # activate / deactivate, by short name
    assert (await slee("activate", "probe")).stdout.strip() == "activated service probe"
    services = by_name(await slee.json("services"), "id")
    assert services[PROBE]["state"] == "active"
    assert services[PROBE_HIGH]["state"] == "inactive"
    listing = (await slee("services")).stdout
    row = next(line for line in listing.splitlines() if line.startswith(PROBE + " "))
    assert "active" in row.split()

    entities = by_name(await slee.json("ra-entities"))
    assert entities["probe"]["state"] == "active"
    assert entities["probe"]["unit"] == "probe"
    assert "probe" in (await slee("ra-entities")).stdout

    activities = await slee.json("activities")
    assert isinstance(activities, list)
    assert all({"key", "ra", "durable"} <= set(a) for a in activities)
    await slee("activities")
    sbb_entities = await slee.json("sbb-entities")
    assert isinstance(sbb_entities, list)
    await slee("sbb-entities")

    deactivated = (await slee("deactivate", "probe")).stdout
    assert deactivated.strip() == "deactivated service probe", deactivated   # no entities: inactive at once
    services = by_name(await slee.json("services"), "id")
    assert services[PROBE]["state"] in ("inactive", "stopping")

    usage = await slee.json("usage")
    assert isinstance(usage, list)
    await slee("usage")
    alarms = await slee.json("alarms")
    assert alarms == []
    assert "no active alarms" in (await slee("alarms")).stdout

    # trace levels
    assert (await slee("trace", "slee.router", "debug")).stdout.strip() == \
        "trace level of slee.router set to debug"
    assert (await slee.json("trace")).get("slee.router") == "debug"
    trace = (await slee("trace")).stdout
    assert any(line.split() == ["slee.router", "debug"] for line in trace.splitlines()), trace

    # undeploy (a stopping service would refuse it: wait until it stopped)
    for _ in range(50):
        services = by_name(await slee.json("services"), "id")
        if services[PROBE]["state"] == "inactive":
            break
    assert services[PROBE]["state"] == "inactive"
    assert (await slee("undeploy", "probe")).stdout.strip() == "undeployed unit probe"
    assert await slee.json("units") == []
    assert await slee.json("services") == []
    assert (await slee.json("status"))["counts"]["units"] == 0


UNKNOWN_EVENT_SBB = '''\
from slee.events import EventType
from slee.sbb import Sbb, Select, handler

NOPE = EventType("Nope", "org.example", "1.0")


class Bad(Sbb):
    @handler(NOPE, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_nope(self, event, aci):
        pass
'''

UNKNOWN_EVENT_DESCRIPTOR = '''\
[unit]
name = "broken-event"
vendor = "slee.tests"
version = "1.0"

[[sbbs]]
name = "Bad"
class = "broken_event_unit.sbbs:Bad"

[[services]]
name = "broken"
root-sbb = "Bad"
'''

BAD_TOML_DESCRIPTOR = '''\
[unit]
name = "broken-toml"
vendor = "slee.tests"
version = = "1.0"
'''


@pytest_twisted.ensureDeferred
async def test_cli_errors_are_one_line_and_change_nothing(container, tmp_path):
    await container.start().ready()
    slee = Cli(container)
    await slee("deploy", str(copy_unit("probe", tmp_path)))
    before = {command: await slee.json(command)
              for command in ("units", "services", "ra-entities", "sbb-entities")}

    missing = tmp_path / "nonexistent"
    message = await slee.fails("deploy", str(missing))
    assert str(missing) in message

    message = await slee.fails("activate", "nosuch")
    assert "nosuch" in message

    message = await slee.fails("status", token="not-the-token")
    assert "401" in message

    # An SBB handling an event type nobody defines.
    broken = write_unit(tmp_path / "broken-event", UNKNOWN_EVENT_DESCRIPTOR, {
        "broken_event_unit/__init__.py": "",
        "broken_event_unit/sbbs.py": UNKNOWN_EVENT_SBB,
    })
    message = await slee.fails("deploy", str(broken))
    assert f"{broken}/deployable.toml" in message, message
    assert "sbbs[0].class" in message, message
    assert "Nope:org.example:1.0" in message, message

    # A descriptor that is not TOML.
    broken = write_unit(tmp_path / "broken-toml", BAD_TOML_DESCRIPTOR)
    message = await slee.fails("deploy", str(broken))
    assert f"{broken}/deployable.toml" in message, message
    assert "not valid TOML" in message and "line 4" in message, message

    # Deploying the same unit twice.
    message = await slee.fails("deploy", str(copy_unit("probe", tmp_path / "again")))
    assert "probe" in message and "deployed already" in message, message

    # A usage error is exit code 2.
    message = await slee.fails("frobnicate", expect=2)
    assert "frobnicate" in message

    after = {command: await slee.json(command) for command in before}
    assert after == before
    assert (await slee.json("alarms")) == []
