"""
linphone publishes through slee's registrar, with SIP Digest, and a watcher follows it.

A real C{twistd -n slee} (shipped units, FileStorage in a temporary var
directory) runs with the README's quick start user store (C{--users}, so
SIP and XCAP both ask for Digest) on free ports of 127.0.0.1, SIP over
UDP.  alice's pres-rules, PUT with C{curl --digest}, allow bob.  bob is a
bare SIP user agent of the test (L{test_quick_start.User}: it answers
slee's 401 with his password) that SUBSCRIBEs to alice.  alice is
linphone's console client, C{linphonec} 5.1 (the Debian package
C{linphone-cli}), with the C{linphonerc} the README's quick start shows:
it registers with slee's registrar, answering the 401 (it takes slee's
first challenge, SHA-256, so slee runs with its default algorithms), and
once registered PUBLISHes its presence (C{publish=1}): bob's NOTIFY must
say C{<basic>open</basic>}.  Its C{quit} withdraws the publication (a
PUBLISH with C{Expires: 0}): bob's next NOTIFY must say C{<basic>closed</basic>}.
Started again, it publishes again, and bob sees alice open again.

linphonec 5.1 has no command that sets its own presence (the C{status
online|busy|...} of older versions is gone; C{status} now only reports),
and its C{unregister} leaves the publication in place: starting and
quitting it are what change alice's presence.  It iterates its core only
while reading a terminal, so it runs on a pty (C{usePTY}); with a pipe on
its stdin it never sends anything.  It rewrites its C{linphonerc} (the
password becomes an C{ha1}), which the second start reads.

linphone must be installed (.ci/run installs it); the test is not skipped
without it.  Every wait has a deadline.
"""

import os
import re
import shutil

import pytest_twisted
from twisted.internet import defer, protocol

from documents import quick_start, quick_start_rules, quick_start_users
from test_baresip import free_ports, run
from test_quick_start import User
from test_restart import processes, ra_status, wait_for  # noqa: F401

REALM = "example.com"
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}

#: Seconds for linphonec to start, register and publish, or to quit; and for
#: a change of alice's presence to reach bob.
START_TIMEOUT = 20.0
CHANGE_TIMEOUT = 20.0

OPEN = b"<basic>open</basic>"
CLOSED = b"<basic>closed</basic>"


def linphonerc(sip_port, server_port):
    """
    @return: alice's C{linphonerc}, the README quick start's, with slee (at
        C{server_port}) as registrar and outbound proxy and linphone on C{sip_port}.
    """
    [text] = re.findall(r"```\n(\[sip\]\n.*?)```", quick_start(), re.S)
    assert "sip_port=5070\n" in text and "ADDRESS:5060" in text, text
    return (text.replace("sip_port=5070\n", f"sip_port={sip_port}\n")
            .replace("ADDRESS:5060", f"127.0.0.1:{server_port}"))


class Console(protocol.ProcessProtocol):
    """linphonec on a pty: what it wrote, and whether it ended."""

    def __init__(self):
        self.output = b""
        self.ended = defer.Deferred()

    def childDataReceived(self, fd, data):
        self.output += data

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)


class Linphonec:
    """One linphonec process with its own HOME and C{linphonerc}."""

    def __init__(self, home, sip_port, server_port):
        self.home = home
        (home / ".local/share/linphone").mkdir(parents=True)   # its database
        self.config = home / "linphonerc"
        self.config.write_text(linphonerc(sip_port, server_port))
        self.log_path = home / "linphonec.log"
        self.console = None
        self.runs = 0

    def start(self):
        from twisted.internet import reactor
        self.runs += 1
        self.console = Console()
        env = dict(os.environ, HOME=str(self.home))
        # -d 6 -l: its SIP trace in a file, for failure messages.
        reactor.spawnProcess(self.console, shutil.which("linphonec"),
                             ["linphonec", "-c", str(self.config), "-d", "6",
                              "-l", str(self.log_path)],
                             env=env, path=str(self.home), usePTY=True)
        return self

    @property
    def running(self):
        return self.console is not None and not self.console.ended.called

    async def prompt(self):
        await wait_for(lambda: b"linphonec> " in self.console.output or not self.running,
                       START_TIMEOUT, "linphonec's prompt")
        assert self.running, f"linphonec exited\n{self.output()}"

    async def quit(self):
        if self.running:
            self.console.transport.write(b"quit\n")
            try:
                await wait_for(lambda: not self.running, START_TIMEOUT, "linphonec to quit")
            except AssertionError:
                self.kill()
                raise

    def kill(self):
        if self.running:
            self.console.transport.signalProcess("KILL")

    def output(self):
        console = self.console.output.decode(errors="replace") if self.console else ""
        trace = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        sip = "\n".join(line for line in trace.splitlines()
                        if re.match(r"(REGISTER|PUBLISH|SUBSCRIBE|NOTIFY|SIP/2.0|"
                                    r"WWW-Authenticate|Authorization|Expires) ?", line))
        return (f"--- linphonec console ---\n{console[-3000:]}\n"
                f"--- linphonec SIP (first lines) ---\n{sip[-6000:]}")


@pytest_twisted.ensureDeferred
async def test_linphone_publishes_through_the_registrar(tmp_path, processes):  # noqa: F811
    from twisted.internet import reactor
    assert shutil.which("linphonec"), \
        "linphonec is missing: apt-get install linphone-cli (.ci/run does)"
    assert shutil.which("curl"), "curl is missing: apt-get install curl (.ci/run does)"

    users = tmp_path / "users.toml"
    users.write_text(quick_start_users())
    server = processes(tmp_path, tmp_path / "var", sip=("udp:0:interface=127.0.0.1",),
                       extra=["--users", str(users),
                              "--log-level", "resource_adaptors.sip.messages=debug"])
    await server.start().ready()
    [sip] = (await ra_status(server, "sip"))["listening"]
    xcap = (await ra_status(server, "xcap"))["listening"]
    sip_port, xcap_port = int(sip.rsplit(":", 1)[1]), int(xcap.rsplit(":", 1)[1])

    rules = tmp_path / "pres-rules.xml"
    rules.write_bytes(quick_start_rules())
    put = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                     "--digest", "-u", f"alice@{REALM}:{PASSWORDS['alice']}", "-X", "PUT",
                     "-H", "Content-Type: application/auth-policy+xml",
                     "--data-binary", f"@{rules}",
                     f"http://127.0.0.1:{xcap_port}/xcap-root/pres-rules/users/{ALICE}/index"],
                    tmp_path)
    assert put.returncode == 0 and put.stdout in ("200", "201"), (put.stdout, put.stderr)

    [alice_port] = free_ports(1)
    (tmp_path / "alice").mkdir()
    alice = Linphonec(tmp_path / "alice", alice_port, sip_port)
    bob = User(reactor, sip_port, BOB, f"bob@{REALM}", PASSWORDS["bob"])
    try:
        def failure(what):
            return f"{what}\n{alice.output()}\n{server.output()}"

        def answered(method, after):
            """How many 200s slee's log shows to linphone's C{method}s, past offset C{after}."""
            return len(re.findall(rf"sent SIP/2.0 200 OK to udp:127.0.0.1:{alice_port} "
                                  rf"\(Call-ID: [^,]*, CSeq: \d+ {method}\)",
                                  server.log()[after:]))

        async def slee_answered(method, after):
            try:
                await wait_for(lambda: answered(method, after), START_TIMEOUT,
                               f"slee's 200 to linphone's {method}")
            except AssertionError as error:
                raise AssertionError(failure(str(error))) from None

        async def bob_sees(is_open):
            """Take bob's NOTIFYs until one says alice is open (closed); @return: its body."""
            deadline = reactor.seconds() + CHANGE_TIMEOUT
            seen = []
            while True:
                left = deadline - reactor.seconds()
                assert left > 0, failure(f"bob never saw alice {'open' if is_open else 'closed'}"
                                         f": NOTIFY bodies {seen!r}")
                try:
                    notify = await _notified(bob, left)
                except defer.TimeoutError:
                    continue
                seen.append(notify.body)
                assert notify.headers.get("Subscription-State").startswith("active"), notify
                if (OPEN if is_open else CLOSED) in notify.body:
                    return notify.body

        # bob watches alice, let in by her rules at once (200, not 202); she
        # has published nothing yet.
        answer = await bob.request("SUBSCRIBE", ALICE, "Event: presence\r\nExpires: 600\r\n")
        assert answer.status == 200, answer
        await bob_sees(False)

        # linphonec registers through slee's registrar (Digest) and publishes.
        mark = len(server.log())
        await alice.start().prompt()
        await slee_answered("REGISTER", mark)
        await slee_answered("PUBLISH", mark)
        body = await bob_sees(True)
        assert b'entity="sip:alice@example.com"' in body, body

        # quit withdraws the publication: bob's watcher follows.
        mark = len(server.log())
        await alice.quit()
        await slee_answered("PUBLISH", mark)
        await bob_sees(False)

        # Started again (with the linphonerc it rewrote), it publishes again.
        mark = len(server.log())
        await alice.start().prompt()
        await slee_answered("REGISTER", mark)
        await slee_answered("PUBLISH", mark)
        await bob_sees(True)
        await alice.quit()
    finally:
        alice.kill()
        await bob.socket.stopListening()
        await server.terminate()


async def _notified(user, timeout):
    """@return: the next NOTIFY to C{user} (answered 200) within C{timeout} seconds."""
    from sipclient import reply
    while True:
        message = await user.udp.inbox.next(timeout)
        if getattr(message, "method", None) == "NOTIFY":
            user.udp.send(reply(message))
            return message
