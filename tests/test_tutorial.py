"""
docs/writing-services.md, followed as written, over real processes.

Every C{sh} block of the tutorial runs in order, through bash, in a
directory that looks like the checkout (C{.venv/bin} and C{deployables}
linked into it) beside the container's C{./var}: the first block is the
container's start command, run by L{SleeProcess} with its own arguments
added (free ports, its log file); the others run as they are, but for the
ports (5060, 8080 and SIPp's own 5070 become free ones).  So the curl
commands store alice's list and the rules, C{slee deploy} and C{slee
activate} install the example into the running container, SIPp publishes
bob's presence and then watches the team until the service's derived
publication says "1 of 2 available".  The usage counters the tutorial
shows are then checked, and so is that every code excerpt of the
tutorial is the example's code.
"""

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted

from test_restart import REPO, child_env, processes, ra_status, venv_script  # noqa: F401

TUTORIAL = REPO / "docs" / "writing-services.md"
EXAMPLE = REPO / "deployables" / "examples" / "team-presence"
#: What the tutorial's commands are written for: its start command's.
START = [".venv/bin/twistd", "-n", "slee"]
SIP, XCAP, SIPP = "127.0.0.1:5060", "127.0.0.1:8080", "-p 5070"
COMMAND_TIMEOUT = 60.0


def blocks(language):
    """@return: the tutorial's fenced blocks of C{language}, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", TUTORIAL.read_text(), re.S | re.M)


def free_udp_port():
    """@return: a UDP port free on 127.0.0.1 now, for SIPp's own socket."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def checkout_like(base):
    """Make C{base} look like the checkout to the commands: C{.venv/bin}, C{deployables}."""
    (base / ".venv").mkdir()
    (base / ".venv" / "bin").symlink_to(venv_script("slee").parent, target_is_directory=True)
    (base / "deployables").symlink_to(REPO / "deployables", target_is_directory=True)


async def run_block(block, base, ports):
    """Run one C{sh} block in C{base} with the ports replaced; fail unless it exits 0."""
    from twisted.internet.threads import deferToThread
    for written, actual in ports.items():
        block = block.replace(written, actual)
    result = await deferToThread(subprocess.run, ["bash", "-e", "-o", "pipefail", "-c", block],
                                 capture_output=True, text=True, cwd=base, env=child_env(),
                                 timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, (f"{block}\nexit {result.returncode}\n"
                                    f"stdout: {result.stdout[-3000:]}\n"
                                    f"stderr: {result.stderr[-3000:]}")
    return result.stdout


def test_the_tutorial_shows_the_example_code():
    sources = "".join(path.read_text() for path in sorted(EXAMPLE.rglob("*.py")))
    descriptor = (EXAMPLE / "deployable.toml").read_text()
    for block in blocks("python"):
        assert block in sources, f"not in {EXAMPLE}'s code:\n{block}"
    for block in blocks("toml"):
        assert block in descriptor, f"not in {EXAMPLE / 'deployable.toml'}:\n{block}"


@pytest_twisted.ensureDeferred
async def test_the_tutorial_works_as_written(tmp_path, processes):  # noqa: F811
    for tool in ("sipp", "curl"):
        assert shutil.which(tool), f"{tool} is missing (.ci/run installs it)"
    start, *commands = blocks("sh")
    argv = shlex.split(start)
    assert argv[:len(START)] == START, start
    checkout_like(tmp_path)
    container = processes(tmp_path, tmp_path / "var", sip=("udp:0:interface=127.0.0.1",),
                          extra=argv[len(START):])
    await container.start().ready()
    [sip] = (await ra_status(container, "sip"))["listening"]
    xcap = (await ra_status(container, "xcap"))["listening"]
    ports = {SIP: f"127.0.0.1:{sip.rsplit(':', 1)[1]}",
             XCAP: f"127.0.0.1:{xcap.rsplit(':', 1)[1]}",
             SIPP: f"-p {free_udp_port()}"}
    assert all(written in "".join(commands) for written in ports), ports

    outputs = []
    for block in commands:
        try:
            outputs.append(await run_block(block, tmp_path, ports))
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n{container.output()}") from None

    assert "deployed unit team-presence" in "".join(outputs)
    assert "1 of 2 available" in container.log()
    from twisted.internet.threads import deferToThread
    usage = await deferToThread(subprocess.run, [sys.executable, str(venv_script("slee")),
                                                 "--json", "usage"],
                                capture_output=True, text=True, cwd=tmp_path, env=child_env(),
                                timeout=COMMAND_TIMEOUT)
    [team] = [row for row in json.loads(usage.stdout)
              if row["service"].startswith("team-presence") and "TeamPresenceSbb" in row["sbb"]]
    assert team["counters"]["lists-read"] == 1, team
    assert team["counters"]["notifications"] >= 1, team
    assert team["counters"]["publications"] >= 2, team      # 0 of 2, then 1 of 2
    assert Path(tmp_path / "var" / "units").is_dir()
