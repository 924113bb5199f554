"""
Persistence across a crash, over a real process and real sockets.

A real C{twistd -n slee} runs as a subprocess on a FileStorage in a
temporary var directory, with the C{counter} test unit (tests/units/counter)
in its deploy directory: a line resource adaptor on a free port and one
global counter SBB entity.  The tests talk to it over TCP, kill it with
SIGKILL right after acknowledged work, start it again on the same var
directory and check that nothing acknowledged was lost, that a timer that
fell due while it was down fires at once, and that SIGTERM stops it
cleanly.

Nothing here sleeps: every wait is a reactor-driven poll with an overall
timeout.  L{SleeProcess} and L{LineClient} are also used by
tests/test_cli_live.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import deque
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.protocols.basic import LineReceiver

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
UNITS = TESTS / "units"

#: What SleeService logs once everything is up (slee/runtime.py).
READY = re.compile(r"slee running: .* management on (?P<host>\S+):(?P<port>\d+)\s*$", re.M)

START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
ANSWER_TIMEOUT = 10.0

LINE_ENDPOINT = "tcp:0:interface=127.0.0.1"
ADMIN_ENDPOINT = "tcp:0:interface=127.0.0.1"


def _reactor():
    from twisted.internet import reactor

    return reactor


def pause(seconds):
    """@return: a Deferred firing after C{seconds}, on the reactor."""
    from twisted.internet.task import deferLater

    return deferLater(_reactor(), seconds, lambda: None)


async def wait_for(predicate, timeout, what, interval=0.05):
    """
    Call C{predicate} every C{interval} seconds (letting the reactor run in
    between) until it returns something true, and return that.

    @raise AssertionError: after C{timeout} seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pause(interval)


def child_env():
    """
    The environment of the subprocesses: this checkout's packages first, so
    that the code under test is the one in the working tree (the twistd
    drop-in itself is the installed one; it only names slee.tap).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def venv_script(name):
    """@return: the path of console script C{name} of this interpreter's environment."""
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        pytest.fail(f"{script} not found: install slee into this environment "
                    f"(pip install .) to get the {name} script")
    return script


class SleeProcess:
    """
    C{twistd -n slee} as a subprocess.  Each L{start} writes its own log
    file (C{twistd-N.log}) so that what a run logged is easy to find.

    @ivar admin_port: the management port of the running process, read from
        its log once it is L{ready}.
    """

    #: Where the shipped SIP and XCAP RAs listen unless told: never a fixed port.
    SIP = ("udp:0:interface=127.0.0.1",)
    XCAP = "tcp:0:interface=127.0.0.1"

    def __init__(self, base, var, deploy_dir=None, admin=ADMIN_ENDPOINT, sip=SIP, extra=()):
        self.base = Path(base)
        self.var = Path(var)
        self.deploy_dir = deploy_dir
        self.admin = admin
        self.sip = sip
        self.extra = list(extra)
        self.runs = 0
        self.process = None
        self.log_path = None
        self.out_path = None
        self.admin_port = None

    def start(self):
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        self.admin_port = None
        self.log_path = self.base / f"twistd-{self.runs}.log"
        self.out_path = self.base / f"twistd-{self.runs}.out"
        argv = [sys.executable, str(venv_script("twistd")), "-n",
                "--pidfile", str(self.base / "twistd.pid"),
                "--logfile", str(self.log_path),
                "slee", "--var", str(self.var), "--admin", self.admin]
        if self.deploy_dir is not None:
            argv += ["--deploy-dir", str(self.deploy_dir)]
        for endpoint in self.sip:
            argv += ["--sip", endpoint]
        if self.XCAP is not None:           # None: no XCAP server (a remote XDMS)
            argv += ["--xcap", self.XCAP]
        argv += self.extra
        with open(self.out_path, "wb") as out:
            self.process = subprocess.Popen(argv, cwd=self.base, env=child_env(),
                                            stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT)
        return self

    def log(self):
        """@return: what the current run logged so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output(self):
        """The end of the run's log and console output, for failure messages."""
        try:
            out = self.out_path.read_text(errors="replace")
        except FileNotFoundError:
            out = ""
        return f"--- {self.log_path.name} ---\n{self.log()[-4000:]}\n" \
               f"--- {self.out_path.name} ---\n{out[-2000:]}"

    async def ready(self, timeout=START_TIMEOUT):
        """Wait until the container logs that it runs; learn its admin port."""
        def running():
            if self.process.poll() is not None:
                raise AssertionError(f"twistd exited with {self.process.returncode} "
                                     f"before it was ready\n{self.output()}")
            return READY.search(self.log())

        try:
            match = await wait_for(running, timeout, "the container to start")
        except AssertionError as e:
            if "timed out" in str(e):
                raise AssertionError(f"{e}\n{self.output()}") from None
            raise
        self.admin_port = int(match["port"])
        return self

    async def exited(self, timeout=STOP_TIMEOUT):
        """Wait for the process to exit; @return: its exit code."""
        await wait_for(lambda: self.process.poll() is not None, timeout, "twistd to exit")
        return self.process.returncode

    async def kill(self):
        """SIGKILL it, and wait until it is gone."""
        self.process.kill()
        return await self.exited()

    async def terminate(self):
        """SIGTERM it (a clean stop); @return: the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return await self.exited()

    def cleanup(self):
        """Kill the process if it still runs (in a finally / fixture teardown)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


async def ra_status(process, name):
    """@return: the status of the running container's RA entity C{name}, asked with the CLI."""
    from twisted.internet.threads import deferToThread
    argv = [sys.executable, str(venv_script("slee")), "--var", str(process.var), "--json",
            "--admin", f"http://127.0.0.1:{process.admin_port}", "ra-entities"]
    result = await deferToThread(subprocess.run, argv, capture_output=True, text=True,
                                 env=child_env(), timeout=30)
    assert result.returncode == 0, result.stderr
    [entity] = [entity for entity in json.loads(result.stdout) if entity["name"] == name]
    return entity["status"]


@pytest.fixture
def processes():
    """Make L{SleeProcess}es; every one still running at the end is killed."""
    made = []

    def make(*args, **kwargs):
        process = SleeProcess(*args, **kwargs)
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.cleanup()


class LineClient(LineReceiver):
    """
    A client of the line resource adaptor.  L{ask} sends a command and
    returns a Deferred of its answer (answers come back in order); lines
    nobody waits for go to C{unasked}.
    """

    delimiter = b"\n"

    def __init__(self):
        self.waiting = deque()
        self.unasked = []
        self.unasked_waiters = []
        self.lost = defer.Deferred()

    def lineReceived(self, line):
        text = line.rstrip(b"\r").decode("utf-8", "replace")
        while self.waiting:
            d = self.waiting.popleft()
            if not d.called:
                d.callback(text)
                return
        self.unasked.append(text)
        waiters, self.unasked_waiters = self.unasked_waiters, []
        for d in waiters:
            d.callback(text)

    def next_unasked(self, timeout=ANSWER_TIMEOUT):
        """@return: a Deferred firing (at once) with the next unasked line."""
        d = defer.Deferred()
        self.unasked_waiters.append(d)
        return d.addTimeout(timeout, _reactor())

    def connectionLost(self, reason):
        waiting, self.waiting = self.waiting, deque()
        for d in waiting:
            if not d.called:
                d.errback(reason)
        self.lost.callback(None)

    def send(self, command):
        """Send a command whose answer nobody waits for."""
        self.sendLine(command.encode("utf-8"))

    def ask(self, command, timeout=ANSWER_TIMEOUT):
        """@return: a Deferred of the answer to C{command}."""
        d = defer.Deferred()
        self.waiting.append(d)
        self.sendLine(command.encode("utf-8"))
        return d.addTimeout(timeout, _reactor())

    async def close(self, timeout=STOP_TIMEOUT):
        """Close the connection (if still open) and wait until it is gone."""
        if self.transport is not None and self.transport.connected:
            self.transport.loseConnection()
        await self.lost_within(timeout)

    async def lost_within(self, timeout=STOP_TIMEOUT):
        """Wait until the other side closed the connection."""
        lost = defer.Deferred()
        self.lost.addBoth(lambda result: (lost.callback(None), result)[1])
        await lost.addTimeout(timeout, _reactor())


async def connect(port, timeout=ANSWER_TIMEOUT):
    """@return: a L{LineClient} connected to 127.0.0.1:C{port}."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    client = LineClient()
    endpoint = TCP4ClientEndpoint(_reactor(), "127.0.0.1", port, timeout=timeout)
    await connectProtocol(endpoint, client).addTimeout(timeout, _reactor())
    return client


def counter_deploy_dir(base, port_file):
    """
    Copy the counter unit into C{base}/deploy/counter, its line RA entity
    writing its port to C{port_file} (the properties are static TOML, so
    the copy's descriptor gets the path written in).

    @return: the deploy directory.
    """
    deploy = Path(base) / "deploy"
    target = deploy / "counter"
    shutil.copytree(UNITS / "counter", target, ignore=shutil.ignore_patterns("__pycache__"))
    descriptor = target / "deployable.toml"
    text = descriptor.read_text()
    static = f'properties = {{ endpoint = "{LINE_ENDPOINT}" }}'
    assert static in text, f"{descriptor}: the line RA properties changed"
    # A JSON string is a valid TOML basic string.
    filled = f'properties = {{ endpoint = "{LINE_ENDPOINT}", port-file = {json.dumps(str(port_file))} }}'
    descriptor.write_text(text.replace(static, filled))
    parsed = tomllib.loads(descriptor.read_text())
    assert parsed["ra-entities"][0]["properties"]["port-file"] == str(port_file)
    return deploy


class Counter:
    """The counter test setup: a twistd process and where its line port is."""

    def __init__(self, tmp_path, processes):
        self.var = tmp_path / "var"
        self.port_file = self.var / "line.port"
        self.process = processes(tmp_path, self.var, counter_deploy_dir(tmp_path, self.port_file))

    async def start(self):
        """Start (or restart) the container; @return: the line RA's port."""
        self.port_file.unlink(missing_ok=True)
        await self.process.start().ready()
        # The RA entity writes the file when it is activated, before the
        # container reports that it runs.
        text = self.port_file.read_text() if self.port_file.exists() else ""
        assert text.strip().isdigit(), \
            f"no line port in {self.port_file}: {text!r}\n{self.process.output()}"
        return int(text)


@pytest.fixture
def counter(tmp_path, processes):
    return Counter(tmp_path, processes)


# -- the tests ------------------------------------------------------------------

INCREMENTS = 100


@pytest_twisted.ensureDeferred
async def test_acknowledged_increments_survive_sigkill(counter):
    """
    Every C{incr} the container acknowledged is still counted after a
    SIGKILL sent right after the last acknowledgement; a rolled-back
    command (C{fail}) is not.
    """
    port = await counter.start()
    client = await connect(port)
    try:
        answers = [client.ask("incr") for _ in range(INCREMENTS // 2)]
        client.send("fail")  # count += 1, then raises: rolled back, no answer
        answers += [client.ask("incr") for _ in range(INCREMENTS - INCREMENTS // 2)]
        received = await defer.gatherResults(answers, consumeErrors=True)
        # Nothing between the last acknowledgement and the kill.
        await counter.process.kill()
        assert received == [f"ok {n}" for n in range(1, INCREMENTS + 1)]
        assert client.unasked == []
        await client.lost_within()
    finally:
        await client.close()
    assert counter.process.process.returncode == -signal.SIGKILL
    log = counter.process.log()
    assert "rolled back: service counter" in log, counter.process.output()
    assert "slee stopped" not in log

    port = await counter.start()
    client = await connect(port)
    try:
        assert await client.ask("get") == f"count {INCREMENTS}"
        assert await client.ask("incr") == f"ok {INCREMENTS + 1}"
        assert await client.ask("bogus") == "error unknown command"
    finally:
        await client.close()
    assert "Traceback" not in counter.process.log(), counter.process.output()


TIMER_DELAY = 1.0


@pytest_twisted.ensureDeferred
async def test_timer_due_while_down_fires_at_once_after_restart(counter):
    """
    A timer set before a SIGKILL and due while the container was down
    fires as soon as the container is back.
    """
    port = await counter.start()
    client = await connect(port)
    try:
        assert await client.ask("incr") == "ok 1"
        assert await client.ask(f"timer {TIMER_DELAY}") == "timer set"
        set_at = time.monotonic()
        await counter.process.kill()
        # It must not have fired yet: the kill came right after the answer.
        assert time.monotonic() - set_at < TIMER_DELAY, "too slow to kill before the timer"
        await client.lost_within()
    finally:
        await client.close()

    # Restart only once the timer is overdue.
    await pause(max(0.0, set_at + TIMER_DELAY + 0.2 - time.monotonic()))
    port = await counter.start()
    started_at = time.monotonic()
    client = await connect(port)
    try:
        answer = None
        for _ in range(100):  # at most ~5 s
            answer = await client.ask("fired")
            if answer != "fired 0":
                break
            await pause(0.05)
        assert answer == "fired 1", counter.process.output()
        # "At once": well before another TIMER_DELAY went by.
        assert time.monotonic() - started_at < TIMER_DELAY + 2.0
        assert await client.ask("get") == "count 1"
        # A single timer fires once.
        await pause(0.2)
        assert await client.ask("fired") == "fired 1"
    finally:
        await client.close()


BURST = 3000


@pytest_twisted.ensureDeferred
async def test_sigterm_stops_cleanly(counter):
    """
    SIGTERM: in-flight deliveries finish, connections are closed, the
    database is closed and the log says so; nothing acknowledged before is
    lost.
    """
    port = await counter.start()
    client = await connect(port)
    try:
        assert await client.ask("incr") == "ok 1"
        # A burst that may still be in flight when SIGTERM comes.
        first = client.next_unasked()
        for _ in range(BURST):
            client.send("incr")
        await first
        code = await counter.process.terminate()
        await client.lost_within()
    finally:
        await client.close()
    log = counter.process.log()
    # After a clean shutdown on a signal, twistd kills itself with that
    # signal again (twisted.scripts.twistd.run, app._exitWithSignal) so
    # that its parent sees how it ended: a clean stop shows in the log.
    assert code in (0, -signal.SIGTERM), counter.process.output()
    assert "slee stopped" in log, counter.process.output()
    assert "Server Shut Down." in log, counter.process.output()
    assert "Traceback" not in log and "Unhandled" not in log, counter.process.output()
    assert not (counter.process.base / "twistd.pid").exists()
    acknowledged = len(client.unasked)
    assert client.unasked == [f"ok {n}" for n in range(2, 2 + acknowledged)]

    # The database was closed properly: it opens again with everything
    # acknowledged in it (and perhaps more: answers lost with the
    # connection), and FileStorage finds the index it saved on close
    # (after a SIGKILL it says "Ignoring index" and rebuilds it).
    port = await counter.start()
    client = await connect(port)
    try:
        answer = await client.ask("get")
    finally:
        await client.close()
    assert "Ignoring index" not in counter.process.log(), counter.process.output()
    count = int(answer.split()[1])
    assert 1 + acknowledged <= count <= 1 + BURST, answer
