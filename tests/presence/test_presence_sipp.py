"""
The presence server as a SIP client meets it: a real C{twistd -n slee}
(shipped units, FileStorage in a temporary var directory, XCAP with
C{--xcap-auth trust-localhost}) on free ports of 127.0.0.1, driven by
SIPp over UDP with the scenarios of tests/presence/scenarios, and by curl
for the presence rules.  Each scenario checks what the server must send
(status codes, header fields, bodies) with C{<ereg check_it="true">}: a
call that fails makes SIPp exit non-zero, and the test fails with SIPp's
error file.

SIPp and curl must be installed (.ci/run installs them); none of these
tests is skipped without them.  Every SIPp run is bounded by its
C{-timeout}, every wait by a deadline.
"""

import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from test_presence_live import rules
from test_restart import processes, ra_status, wait_for  # noqa: F401

SCENARIOS = Path(__file__).parent / "scenarios"
ALICE = "sip:alice@example.com"
RULES_URI = f"/xcap-root/pres-rules/users/{ALICE}/index"

#: Seconds a SIPp run may take in all (its -timeout), and a little more for
#: the process itself.
SIPP_TIMEOUT = 60
PROCESS_TIMEOUT = SIPP_TIMEOUT + 30

#: What subscribe_pending_then_*.xml log once the pending NOTIFY is answered.
PENDING_CUE = "pending NOTIFY answered"

#: The line of the shipped presence-server unit that sets its default policy.
POLICY_LINE = 'env = { default-policy = "confirm" }'


def deploy_dir_with_policy(base, policy):
    """
    @return: a deploy directory with a copy of the shipped units a default
        start deploys (its profile's), whose presence server has the
        default policy C{policy}.
    """
    from slee.settings import DEFAULT_PROFILE, shipped_profiles, shipped_units
    target = base / "deploy"
    for name in shipped_profiles()[DEFAULT_PROFILE]:
        shutil.copytree(shipped_units() / name, target / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    descriptor = target / "presence-server" / "deployable.toml"
    text = descriptor.read_text()
    assert POLICY_LINE in text, f"{descriptor} no longer has the line {POLICY_LINE!r}"
    descriptor.write_text(text.replace(POLICY_LINE, f'env = {{ default-policy = "{policy}" }}'))
    return target


def free_udp_port():
    """@return: a UDP port free on 127.0.0.1 now, for SIPp's own socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(argv, cwd, timeout=PROCESS_TIMEOUT):
    """Run C{argv} in a thread; @return: a Deferred of its CompletedProcess."""
    from twisted.internet.threads import deferToThread
    return deferToThread(subprocess.run, argv, capture_output=True, text=True, cwd=cwd,
                         timeout=timeout)


class PresenceServer:
    """
    A running C{twistd -n slee} and the clients that talk to it: SIPp
    scenarios on its SIP port, curl on its XCAP port.
    """

    def __init__(self, process, base, sip_port, xcap_port):
        self.process = process
        self.base = base
        self.sip_port = sip_port
        self.xcap_port = xcap_port
        self.runs = 0

    def _sipp(self, scenario):
        """
        @return: the name of a new SIPp run of C{scenario} (for its files in
            the test's directory), its argv, and a function that fails
            unless its one call succeeded.
        """
        self.runs += 1
        name = f"{self.runs}-{Path(scenario).stem}"
        errors = self.base / f"{name}.errors"
        argv = ["sipp", f"127.0.0.1:{self.sip_port}", "-sf", str(SCENARIOS / scenario),
                "-t", "u1", "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
                "-timeout", str(SIPP_TIMEOUT), "-timeout_error", "-nostdin",
                "-trace_err", "-error_file", str(errors)]

        def check(result):
            events = errors.read_text(errors="replace") if errors.exists() else ""
            assert result.returncode == 0, (
                f"sipp {name}: exit {result.returncode}\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-2000:]}\n{events[-4000:]}\n{self.process.output()}")

        return name, argv, check

    async def sipp(self, scenario):
        """Run one call of C{scenario}; fail unless it succeeded."""
        _, argv, check = self._sipp(scenario)
        check(await run(argv, self.base))

    async def sipp_past_pending(self, scenario, then):
        """
        Run one call of C{scenario} (a subscribe_pending_then_*.xml); once
        SIPp answered the pending NOTIFY, call C{then} (a coroutine
        function) while SIPp waits for the next NOTIFY; fail unless the
        call succeeded.
        """
        name, argv, check = self._sipp(scenario)
        cues = self.base / f"{name}.cues"
        finished = run([*argv, "-trace_logs", "-log_file", str(cues)], self.base)

        def cued():
            return finished.called or (cues.exists() and PENDING_CUE in cues.read_text())

        await wait_for(cued, SIPP_TIMEOUT, f"SIPp ({name}) to answer the pending NOTIFY")
        if not finished.called:
            await then()
        check(await finished)

    async def put_rules(self, sub_handling):
        """PUT alice's pres-rules giving bob C{sub_handling}, with curl; fail unless 2xx."""
        assert shutil.which("curl"), "curl is missing: apt-get install curl (.ci/run does)"
        document = self.base / f"rules-{sub_handling}.xml"
        document.write_bytes(rules(sub_handling))
        result = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "--max-time", "30", "-X", "PUT",
                            "-H", "Content-Type: application/auth-policy+xml",
                            "--data-binary", f"@{document}",
                            f"http://127.0.0.1:{self.xcap_port}{RULES_URI}"], self.base)
        assert result.returncode == 0 and result.stdout in ("200", "201"), (
            f"curl PUT {RULES_URI}: exit {result.returncode}, status {result.stdout!r}\n"
            f"{result.stderr}")


@pytest.fixture
def presence_server(tmp_path, processes):  # noqa: F811
    """
    @return: an async function starting the server, with the shipped
        default policy (C{confirm}) or the one given, and returning its
        L{PresenceServer}.
    """
    assert shutil.which("sipp"), "sipp is missing: apt-get install sip-tester (.ci/run does)"

    async def start(policy=None):
        deploy_dir = None if policy is None else deploy_dir_with_policy(tmp_path, policy)
        process = processes(tmp_path, tmp_path / "var", deploy_dir=deploy_dir,
                            sip=("udp:0:interface=127.0.0.1",),
                            extra=["--xcap-auth", "trust-localhost"])
        await process.start().ready()
        [sip] = (await ra_status(process, "sip"))["listening"]
        xcap = (await ra_status(process, "xcap"))["listening"]
        return PresenceServer(process, tmp_path, int(sip.rsplit(":", 1)[1]),
                              int(xcap.rsplit(":", 1)[1]))

    return start


@pytest_twisted.ensureDeferred
async def test_a_publication_is_made_refreshed_modified_and_removed(presence_server):
    server = await presence_server()
    await server.sipp("publish.xml")


@pytest_twisted.ensureDeferred
async def test_an_allowed_watcher_is_notified_then_unsubscribes(presence_server):
    server = await presence_server(policy="allow")
    await server.sipp("publish_open.xml")
    await server.sipp("subscribe_active.xml")


@pytest_twisted.ensureDeferred
async def test_a_politely_blocked_watcher_sees_the_presentity_offline(presence_server):
    server = await presence_server()
    await server.sipp("publish_open.xml")
    # A watcher waiting for alice's consent sees her rules applied: from
    # then on the server knows them, and the next SUBSCRIBE gets its 200.
    await server.sipp_past_pending("subscribe_pending_then_polite_blocked.xml",
                                   lambda: server.put_rules("polite-block"))
    await server.sipp("subscribe_polite_blocked.xml")


@pytest_twisted.ensureDeferred
async def test_a_pending_watcher_is_notified_once_the_rules_allow_him(presence_server):
    server = await presence_server()
    await server.sipp("publish_open.xml")
    await server.sipp_past_pending("subscribe_pending_then_allowed.xml",
                                   lambda: server.put_rules("allow"))


@pytest_twisted.ensureDeferred
async def test_the_presentity_sees_its_pending_watcher(presence_server):
    server = await presence_server()
    await server.sipp("subscribe_pending.xml")
    await server.sipp("winfo.xml")
