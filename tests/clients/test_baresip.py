"""
Presence between two real baresip user agents, through slee with SIP Digest.

A real C{twistd -n slee} (shipped units, FileStorage in a temporary var
directory) runs with a user store holding alice and bob (C{--users}, so
SIP and XCAP both ask for Digest) on free ports of 127.0.0.1, SIP over
UDP.  alice's pres-rules, PUT with C{curl --digest}, allow bob.  Two
baresip processes (the Debian package C{baresip-core}), each in its own
config directory (C{config}, C{accounts}, C{contacts}: the very lines the
README's quick start shows), register with slee's registrar, publish and
subscribe, answering the 401s with their passwords; bob has alice in his
contacts with C{;presence=p2p}, so that he subscribes to her.  alice is
switched offline then online over her ctrl_tcp control port, and bob's
C{contacts} listing, asked over his, must follow.

baresip 1.0 (with libre 1.1) answers a 401 only when the first
C{WWW-Authenticate} offers MD5: on slee's first one by default, SHA-256
(RFC 8760 order, MD5 second), it gives up with ENOSYS ("Register:
Function not implemented").  So slee runs with C{--sip-digest-algorithm
MD5}, as the README's quick start says for baresip.

baresip must be installed (.ci/run installs it); the test is not skipped
without it.  Every wait has a deadline.
"""

import json
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.protocols.basic import NetstringReceiver

from documents import quick_start_rules, quick_start_users
from test_restart import pause, processes, ra_status, wait_for  # noqa: F401

BARESIP_MODULES = Path("/usr/lib/baresip/modules")
REALM = "example.com"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
ALICE = "sip:alice@example.com"

#: Seconds for a presence change to reach the other baresip, and for one
#: ctrl_tcp answer.
CHANGE_TIMEOUT = 20.0
ANSWER_TIMEOUT = 10.0
#: baresip tells nothing about its contacts' presence over ctrl_tcp by itself
#: (no event for it), so the test asks for the listing every POLL seconds.
POLL = 0.1


def baresip_config(sip_port, ctrl_port):
    """@return: the C{config} of a baresip that does presence and nothing else."""
    return (f"sip_listen\t\t127.0.0.1:{sip_port}\n"
            f"module_path\t\t{BARESIP_MODULES}\n"
            "module\t\t\taccount.so\n"
            "module\t\t\tcontact.so\n"
            "module\t\t\tpresence.so\n"
            "module\t\t\tctrl_tcp.so\n"
            f"ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}\n")


def baresip_account(user, server_port):
    """@return: the C{accounts} line of C{user}, with slee (at C{server_port}) as outbound proxy."""
    return (f"<sip:{user}@{REALM}>;auth_user={user}@{REALM};auth_pass={USERS[user]};"
            f'outbound="sip:127.0.0.1:{server_port}";regint=3600;pubint=3600\n')


def free_ports(count, step=1):
    """
    @return: C{count} ports of 127.0.0.1, C{step} apart, free for TCP and
        UDP now (baresip also listens for TLS on its SIP port + 1).
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        ports = [first + step * i for i in range(count)]
        if ports[-1] + 1 < 65536 and all(_free(port) for p in ports for port in (p, p + 1)):
            return ports


def _free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def run(argv, cwd, timeout=60):
    """Run C{argv} in a thread; @return: a Deferred of its CompletedProcess."""
    from twisted.internet.threads import deferToThread
    return deferToThread(subprocess.run, argv, capture_output=True, text=True, cwd=cwd,
                         timeout=timeout)


class Control(NetstringReceiver):
    """A client of baresip's ctrl_tcp: JSON commands and answers in netstrings."""

    def __init__(self):
        self.waiting = {}
        self.tokens = 0
        self.closed = defer.Deferred()

    def stringReceived(self, string):
        message = json.loads(string)
        waiting = self.waiting.pop(message.get("token"), None) if message.get("response") else None
        if waiting is not None:
            waiting.callback(message)

    def connectionLost(self, reason):
        for waiting in self.waiting.values():
            waiting.errback(reason)
        self.waiting.clear()
        self.closed.callback(None)

    def ask(self, command, params=""):
        """@return: a Deferred of baresip's answer (a dict: ok, data) to C{command}."""
        from twisted.internet import reactor
        self.tokens += 1
        token = str(self.tokens)
        self.waiting[token] = answer = defer.Deferred()
        self.sendString(json.dumps({"command": command, "params": params,
                                    "token": token}).encode())
        return answer.addTimeout(ANSWER_TIMEOUT, reactor)


class Baresip:
    """One baresip process in its own config directory, and its ctrl_tcp connection."""

    def __init__(self, base, user, server_port, sip_port, ctrl_port, contacts=""):
        self.user = user
        self.home = base / user
        self.home.mkdir()
        (self.home / "config").write_text(baresip_config(sip_port, ctrl_port))
        (self.home / "accounts").write_text(baresip_account(user, server_port))
        (self.home / "contacts").write_text(contacts)
        self.ctrl_port = ctrl_port
        self.out_path = base / f"baresip-{user}.out"
        self.process = None
        self.control = None

    async def start(self):
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
        with open(self.out_path, "wb") as out:
            # -s: its SIP trace in its output, for failure messages.
            self.process = subprocess.Popen(["baresip", "-s", "-f", str(self.home)],
                                            cwd=self.home, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.ctrl_port, timeout=5)

        async def connected():
            try:
                return await connectProtocol(endpoint, Control())
            except Exception:
                if self.process.poll() is not None:
                    raise AssertionError(f"baresip {self.user} exited with "
                                         f"{self.process.returncode}\n{self.output()}")
                return None

        deadline = time.monotonic() + ANSWER_TIMEOUT
        while self.control is None:
            self.control = await connected()
            if self.control is None:
                assert time.monotonic() < deadline, \
                    f"baresip {self.user}'s ctrl_tcp never answered\n{self.output()}"
                await pause(POLL)
        return self

    async def command(self, command, params=""):
        """@return: the text baresip answers C{command} with; fail unless it was ok."""
        answer = await self.control.ask(command, params)
        assert answer.get("ok"), f"baresip {self.user}: {command}: {answer}\n{self.output()}"
        return answer.get("data", "")

    def output(self):
        text = self.out_path.read_text(errors="replace") if self.out_path.exists() else ""
        return f"--- {self.out_path.name} ---\n{text[-6000:]}"

    async def stop(self):
        if self.control is not None:
            self.control.transport.loseConnection()
            await self.control.closed
            self.control = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await wait_for(lambda: self.process.poll() is not None, 5, "baresip to exit")
            except AssertionError:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def baresips():
    """Make L{Baresip}s; every one is stopped at the end."""
    made = []

    def make(*args, **kwargs):
        made.append(Baresip(*args, **kwargs))
        return made[-1]

    yield made, make
    for one in made:     # in case the test did not get to stop them (see the test's finally)
        if one.process is not None and one.process.poll() is None:
            one.process.kill()
            one.process.wait(timeout=5)


#: The colours of baresip's listings.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def contact_presence(listing, uri):
    """@return: the presence baresip's C{contacts} listing shows for C{uri}, or None."""
    for line in ANSI.sub("", listing).splitlines():
        if f"<{uri}>" in line:
            found = re.search(r"\b(unknown|online|offline|busy|away|open|closed)\b",
                              line.replace(f"<{uri}>", ""), re.I)
            return found.group(1).lower() if found else line.strip()
    return None


@pytest_twisted.ensureDeferred
async def test_bob_sees_alice_change_through_slee(tmp_path, processes, baresips):  # noqa: F811
    assert shutil.which("baresip") and BARESIP_MODULES.joinpath("presence.so").exists(), \
        "baresip is missing: apt-get install baresip-core (.ci/run does)"
    assert shutil.which("curl"), "curl is missing: apt-get install curl (.ci/run does)"
    made, make = baresips

    users = tmp_path / "users.toml"
    users.write_text(quick_start_users())
    server = processes(tmp_path, tmp_path / "var", sip=("udp:0:interface=127.0.0.1",),
                       extra=["--users", str(users), "--sip-digest-algorithm", "MD5",
                              "--log-level", "resource_adaptors.sip.messages=debug"])
    await server.start().ready()
    [sip] = (await ra_status(server, "sip"))["listening"]
    xcap = (await ra_status(server, "xcap"))["listening"]
    sip_port, xcap_port = int(sip.rsplit(":", 1)[1]), int(xcap.rsplit(":", 1)[1])

    rules = tmp_path / "pres-rules.xml"
    rules.write_bytes(quick_start_rules())
    put = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                     "--digest", "-u", f"alice@{REALM}:{USERS['alice']}", "-X", "PUT",
                     "-H", "Content-Type: application/auth-policy+xml",
                     "--data-binary", f"@{rules}",
                     f"http://127.0.0.1:{xcap_port}/xcap-root/pres-rules/users/{ALICE}/index"],
                    tmp_path)
    assert put.returncode == 0 and put.stdout in ("200", "201"), (put.stdout, put.stderr)

    try:
        alice_sip, bob_sip = free_ports(2, step=2)
        [alice_ctrl], [bob_ctrl] = free_ports(1), free_ports(1)
        alice = make(tmp_path, "alice", sip_port, alice_sip, alice_ctrl,
                     contacts='"Bob" <sip:bob@example.com>;presence=p2p\n')
        bob = make(tmp_path, "bob", sip_port, bob_sip, bob_ctrl,
                   contacts='"Alice" <sip:alice@example.com>;presence=p2p\n')
        await alice.start()
        await bob.start()

        def failure(what):
            return f"{what}\n{alice.output()}\n{bob.output()}\n{server.output()}"

        def answered(port, method):
            """Whether slee's log shows a 200 to a C{method} that came from C{port}."""
            return re.search(rf"sent SIP/2.0 200 OK to udp:127.0.0.1:{port} "
                             rf"\(Call-ID: [^,]*, CSeq: \d+ {method}\)", server.log())

        async def slee_answered(who, port, method):
            try:
                await wait_for(lambda: answered(port, method), CHANGE_TIMEOUT,
                               f"slee's 200 to {who}'s {method}")
            except AssertionError as error:
                raise AssertionError(failure(str(error))) from None

        async def bob_sees(state):
            # baresip pushes nothing about its contacts' presence over ctrl_tcp,
            # so bob's listing is asked for every POLL seconds, up to CHANGE_TIMEOUT.
            deadline = time.monotonic() + CHANGE_TIMEOUT
            while (seen := contact_presence(await bob.command("contacts"), ALICE)) != state:
                assert time.monotonic() < deadline, failure(
                    f"bob never saw alice {state} in {CHANGE_TIMEOUT:g} s: last {seen!r}")
                await pause(POLL)

        # Both registered with slee's registrar, answering its challenge, and
        # bob's subscription to alice was let in by her rules at once (200, not 202).
        await slee_answered("alice", alice_sip, "REGISTER")
        await slee_answered("bob", bob_sip, "REGISTER")
        await slee_answered("bob", bob_sip, "SUBSCRIBE")
        await alice.command("presence_online")
        await bob_sees("online")
        await alice.command("presence_offline")
        await bob_sees("offline")
        await alice.command("presence_online")
        await bob_sees("online")
    finally:
        for one in made:
            await one.stop()
        await server.terminate()
