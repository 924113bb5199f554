"""
slee behind Kamailio, the proxy in front that authenticates users itself.

A real C{twistd -n slee} (shipped units, FileStorage in a temporary var
directory) runs with a user store (C{--users}: XCAP asks for Digest, and so
would SIP from anyone else) and C{--sip-trusted-peer 127.0.0.1}: Kamailio's
P-Asserted-Identity says who its requests come from, and slee challenges
none of them.  Kamailio 5.6 (the Debian package C{kamailio}) runs the
sample configuration C{deployables/examples/kamailio-front/kamailio.cfg.in}, its
placeholders filled in, with a db_text subscriber table of alice and bob.
alice's pres-rules, PUT with C{curl --digest}, allow sip:bob@example.com.

Two bare SIP user agents of the test, on their own UDP ports, talk to
Kamailio only, answering its 407s with their passwords
(L{resource_adaptors.auth.digest.DigestClient}): alice publishes; bob
subscribes to her, and the 2xx carries Kamailio's Record-Route (RFC 3261
§12.1.1), so that slee's NOTIFYs come through Kamailio and bob's refresh and
unsubscribe, sent to the first Route of the dialog's route set, go through it
too.  That alice's PUBLISH gets slee's 200 and bob's subscription is let in
at once by alice's rule (200, not 202) shows slee took the asserted
identity, unchallenged (it would have answered Kamailio's relayed request
with its own 401 else);
a From forged by alice (bob's, with her own password) gets Kamailio's 403,
and so does bob publishing alice's presence (Kamailio checks a PUBLISH's To):
neither reaches slee.

Kamailio must be installed (.ci/run installs it); the test is not skipped
without it.  Every wait has a deadline; nothing sleeps.
"""

import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest_twisted
from twisted.internet import defer, protocol

from resource_adaptors.auth.digest import DigestClient
from resource_adaptors.sip.core.parser import parse_message
from sipclient import reply
from documents import pres_rules
from test_restart import REPO, processes, ra_status  # noqa: F401

CONFIG = REPO / "deployables" / "examples" / "kamailio-front" / "kamailio.cfg.in"
MODULES = Path("/usr/lib/x86_64-linux-gnu/kamailio/modules")
ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
REALM = "example.com"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
#: slee's user store: alice's account writes her pres-rules over XCAP.
USERS_TOML = "".join([f'realm = "{REALM}"\n'] + [
    f'\n[users."{user}@{REALM}"]\npassword = "{password}"\n' for user, password in USERS.items()])
PIDF_TYPE = "application/pidf+xml"
#: Seconds for one answer, or one NOTIFY, through Kamailio; and for Kamailio to start.
ANSWER_TIMEOUT = 10.0
START_TIMEOUT = 20.0


def pidf(basic):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}">'
            f'<tuple id="t1"><status><basic>{basic}</basic></status></tuple></presence>')


def run(argv, cwd, timeout=60):
    """Run C{argv} in a thread; @return: a Deferred of its CompletedProcess."""
    from twisted.internet.threads import deferToThread
    return deferToThread(subprocess.run, argv, capture_output=True, text=True, cwd=cwd,
                         timeout=timeout)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def subscriber_table(directory):
    """Write the db_text tables Kamailio's auth_db reads: alice and bob, plain-text passwords."""
    directory.mkdir()
    (directory / "version").write_text("id(int,auto) table_name(string) table_version(int) \n"
                                       "0:subscriber:7\n")
    rows = "".join(f"{number}:{user}:{REALM}:{password}:::\n"
                   for number, (user, password) in enumerate(sorted(USERS.items()), 1))
    (directory / "subscriber").write_text(
        "id(int,auto) username(string) domain(string) password(string) ha1(string,null) "
        "ha1b(string,null) \n" + rows)


class Kamailio:
    """Kamailio running the sample configuration, in the foreground (C{-DD -E})."""

    def __init__(self, base, slee_port):
        self.base = base
        self.port = free_udp_port()
        subscriber_table(base / "kamailio-db")
        config = CONFIG.read_text()
        for name, value in (("@ADDRESS@", "127.0.0.1"), ("@PORT@", str(self.port)),
                            ("@SLEE_ADDRESS@", "127.0.0.1"), ("@SLEE_PORT@", str(slee_port)),
                            ("@DBDIR@", str(base / "kamailio-db"))):
            config = config.replace(name, value)
        left = re.findall(r"@[A-Z_]+@", re.sub(r"(?m)^#.*$", "", config))
        assert not left, f"placeholders of the sample configuration left unfilled: {left}"
        self.config = base / "kamailio.cfg"
        self.config.write_text(config)
        self.log_path = base / "kamailio.log"
        self.process = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(["kamailio", "-f", str(self.config), "-DD", "-E"],
                                            cwd=self.base, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        return self

    def output(self):
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- kamailio.log ---\n{text[-6000:]}"

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


class Agent(protocol.DatagramProtocol):
    """
    A SIP user agent on its own UDP port of 127.0.0.1, with Kamailio as its
    outbound proxy: it answers NOTIFYs with 200 (kept in L{notifies}) and
    Digest challenges with its password, and keeps the one dialog of its
    SUBSCRIBE (its route set from the 2xx's Record-Route).
    """

    def __init__(self, reactor, user, proxy_port):
        self.reactor = reactor
        self.user = user
        self.proxy = ("127.0.0.1", proxy_port)
        name = user[4:].split("@")[0]
        self.digest = DigestClient(name, USERS[name])
        self.tag = "a" + uuid.uuid4().hex[:8]
        self.call_id = uuid.uuid4().hex
        self.cseq = 0
        self.to_tag = None
        self.remote_target = None
        self.route_set = []
        self.responses, self.notifies, self.waiters = [], [], []
        self.sent_to = []

    @property
    def port(self):
        return self.transport.getHost().port

    def datagramReceived(self, data, address):
        message = parse_message(data)
        if getattr(message, "method", None) == "NOTIFY":
            self.transport.write(reply(message), address)
            self.notifies.append((message, address))
        elif getattr(message, "method", None) is None:
            self.responses.append(message)
        for waiter in self.waiters[:]:
            waiter()

    async def _wait(self, found, what, timeout=ANSWER_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not (result := found()):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{self.user}: no {what} within {timeout:g} s"
            waited = defer.Deferred()
            self.waiters.append(lambda: waited.called or waited.callback(None))
            try:
                await waited.addTimeout(remaining, self.reactor)
            except defer.TimeoutError:
                pass
            finally:
                self.waiters.pop(0)
        return result

    async def final_response(self, cseq, timeout=ANSWER_TIMEOUT):
        """@return: the final response to the request with CSeq number C{cseq}."""
        def found():
            for response in self.responses:
                if response.cseq.number == cseq and response.status >= 200:
                    self.responses.remove(response)
                    return response
            return None
        return await self._wait(found, f"final response to CSeq {cseq}", timeout)

    async def notify(self):
        """@return: the next NOTIFY (answered already) and the address it came from."""
        return await self._wait(lambda: self.notifies and self.notifies.pop(0), "NOTIFY")

    def send(self, method, target, headers="", body="", credentials=None, in_dialog=False):
        """Send a request; @return: its CSeq number."""
        self.cseq += 1
        uri = self.remote_target if in_dialog else target
        routes = "".join(f"Route: {route}\r\n" for route in self.route_set) if in_dialog else ""
        to = f"<{target}>" + (f";tag={self.to_tag}" if in_dialog else "")
        if credentials:
            headers += f"{credentials[0]}: {self.digest.authorization(method, uri)}\r\n"
        if body:
            headers += f"Content-Type: {PIDF_TYPE}\r\n"
        text = (f"{method} {uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <{self.user}>;tag={self.tag}\r\n"
                f"To: {to}\r\n"
                f"Call-ID: {self.call_id}\r\n"
                f"CSeq: {self.cseq} {method}\r\n"
                f"Contact: <sip:{self.user[4:].split('@')[0]}@127.0.0.1:{self.port}>\r\n"
                f"{routes}{headers}"
                f"Content-Length: {len(body.encode())}\r\n\r\n{body}")
        # Out of a dialog: to the outbound proxy; in one: to the first Route
        # (a loose router), the dialog's route set saying where.
        destination = self.proxy
        if in_dialog and self.route_set:
            first = re.match(r"<sip:([^:;>]+):(\d+)", self.route_set[0])
            destination = (first.group(1), int(first.group(2)))
        self.sent_to.append(destination)
        self.transport.write(text.encode(), destination)
        return self.cseq

    async def request(self, method, target, headers="", body="", in_dialog=False):
        """
        Send a request, and again with credentials if Kamailio challenges it.

        @return: the final response, and the challenge status met (or None).
        """
        response = await self.final_response(
            self.send(method, target, headers, body, in_dialog=in_dialog))
        if response.status not in (401, 407):
            return response, None
        challenge, answer = {401: ("WWW-Authenticate", "Authorization"),
                             407: ("Proxy-Authenticate", "Proxy-Authorization")}[response.status]
        assert self.digest.challenged(response.headers.get_all(challenge)), \
            f"{self.user}: no usable challenge in {response.headers.get_all(challenge)}"
        signed = await self.final_response(
            self.send(method, target, headers, body, credentials=(answer,), in_dialog=in_dialog))
        return signed, response.status

    def entered_dialog(self, response):
        """Take the dialog a SUBSCRIBE's 2xx makes: its tag, Contact, route set."""
        self.to_tag = response.to.tag
        self.remote_target = re.search(r"<([^>]+)>", response.headers.get("Contact")).group(1)
        self.route_set = list(reversed(response.headers.get_all("Record-Route")))


async def _kamailio_relays(agent, kamailio):
    """Wait until Kamailio runs and relays: an OPTIONS through it gets slee's 200."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        assert kamailio.process.poll() is None, \
            f"kamailio exited with {kamailio.process.returncode}\n{kamailio.output()}"
        cseq = agent.send("OPTIONS", ALICE)
        try:
            response = await agent.final_response(cseq, timeout=0.5)
        except AssertionError:
            assert time.monotonic() < deadline, \
                f"kamailio did not relay an OPTIONS within {START_TIMEOUT:g} s\n" \
                f"{kamailio.output()}"
            continue
        assert response.status == 200, (response.status, kamailio.output())
        return


@pytest_twisted.ensureDeferred
async def test_presence_through_kamailio(tmp_path, processes):  # noqa: F811
    from twisted.internet import reactor
    assert shutil.which("kamailio") and MODULES.joinpath("auth_db.so").exists() \
        and MODULES.joinpath("db_text.so").exists(), \
        "kamailio is missing: apt-get install kamailio (.ci/run does)"
    assert shutil.which("curl"), "curl is missing: apt-get install curl (.ci/run does)"

    users = tmp_path / "users.toml"
    users.write_text(USERS_TOML)
    server = processes(tmp_path, tmp_path / "var", sip=("udp:0:interface=127.0.0.1",),
                       extra=["--users", str(users), "--sip-trusted-peer", "127.0.0.1",
                              "--log-level", "resource_adaptors.sip.messages=debug"])
    await server.start().ready()
    [sip] = (await ra_status(server, "sip"))["listening"]
    xcap = (await ra_status(server, "xcap"))["listening"]
    sip_port, xcap_port = int(sip.rsplit(":", 1)[1]), int(xcap.rsplit(":", 1)[1])

    rules = tmp_path / "pres-rules.xml"
    rules.write_bytes(pres_rules("allow", BOB))
    put = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                     "--digest", "-u", f"alice@{REALM}:{USERS['alice']}", "-X", "PUT",
                     "-H", "Content-Type: application/auth-policy+xml",
                     "--data-binary", f"@{rules}",
                     f"http://127.0.0.1:{xcap_port}/xcap-root/pres-rules/users/{ALICE}/index"],
                    tmp_path)
    assert put.returncode == 0 and put.stdout in ("200", "201"), (put.stdout, put.stderr)

    kamailio = Kamailio(tmp_path, sip_port)
    sockets = []
    try:
        kamailio.start()
        alice, bob = (Agent(reactor, user, kamailio.port) for user in (ALICE, BOB))
        for agent in (alice, bob):
            sockets.append(reactor.listenUDP(0, agent, interface="127.0.0.1"))

        def failure(what):
            return f"{what}\n{kamailio.output()}\n{server.output()}"

        await _kamailio_relays(alice, kamailio)

        # alice publishes through Kamailio, which challenges her (407) and
        # asserts her identity to slee: her own presence, so 200.
        published, challenged = await alice.request(
            "PUBLISH", ALICE, headers="Event: presence\r\nExpires: 600\r\n", body=pidf("open"))
        assert (challenged, published.status) == (407, 200), failure(published.status)
        assert published.headers.get("SIP-ETag")

        # bob, with his own password, publishing alice's presence: Kamailio
        # checks a PUBLISH's To (a REGISTER's too) against the user it
        # authenticated, and refuses.
        bob.call_id = uuid.uuid4().hex
        refused, challenged = await bob.request("PUBLISH", ALICE, headers="Event: presence\r\n",
                                                body=pidf("closed"))
        assert (challenged, refused.status) == (407, 403), failure(refused.status)

        # A From forged through Kamailio: alice's password, bob's From.
        forger = Agent(reactor, ALICE, kamailio.port)
        sockets.append(reactor.listenUDP(0, forger, interface="127.0.0.1"))
        forger.user = BOB
        forged, challenged = await forger.request(
            "SUBSCRIBE", ALICE, headers="Event: presence\r\nExpires: 600\r\n")
        assert (challenged, forged.status) == (407, 403), failure(forged.status)
        assert "not your identity" in forged.reason, failure(forged.reason)
        assert not forger.notifies

        # bob subscribes to alice through Kamailio: let in at once by her
        # rule for sip:bob@example.com (200, not 202: the asserted identity);
        # the 2xx carries Kamailio's Record-Route.
        bob.call_id = uuid.uuid4().hex
        subscribed, challenged = await bob.request(
            "SUBSCRIBE", ALICE, headers="Event: presence\r\nExpires: 600\r\n"
                                        "Accept: application/pidf+xml\r\n")
        assert (challenged, subscribed.status) == (407, 200), failure(subscribed.status)
        record_route = subscribed.headers.get_all("Record-Route")
        assert len(record_route) == 1 and f"127.0.0.1:{kamailio.port}" in record_route[0], \
            failure(record_route)
        bob.entered_dialog(subscribed)
        assert f":{sip_port}" in bob.remote_target, bob.remote_target

        # Its NOTIFY comes through Kamailio (its Record-Route is the route set
        # slee sends along), with alice's state.
        notify, source = await bob.notify()
        assert source == ("127.0.0.1", kamailio.port), failure(source)
        assert notify.headers.get("Subscription-State").startswith("active"), \
            failure(notify.headers.get("Subscription-State"))
        assert b"<basic>open</basic>" in notify.body, failure(notify.body)

        # The refresh, in the dialog: to the first Route (Kamailio), not
        # challenged again, and slee's NOTIFY follows it.
        refreshed, challenged = await bob.request(
            "SUBSCRIBE", ALICE, headers="Event: presence\r\nExpires: 600\r\n", in_dialog=True)
        assert bob.sent_to[-1] == ("127.0.0.1", kamailio.port), bob.sent_to
        assert (challenged, refreshed.status) == (None, 200), failure(refreshed.status)
        notify, source = await bob.notify()
        assert source == ("127.0.0.1", kamailio.port), failure(source)
        assert notify.headers.get("Subscription-State").startswith("active")

        # alice's change reaches bob through Kamailio.
        changed, challenged = await alice.request(
            "PUBLISH", ALICE, headers=f"Event: presence\r\nSIP-If-Match: "
                                      f"{published.headers.get('SIP-ETag')}\r\n",
            body=pidf("closed"))
        assert changed.status == 200, failure(changed.status)
        notify, source = await bob.notify()
        assert source == ("127.0.0.1", kamailio.port), failure(source)
        assert b"<basic>closed</basic>" in notify.body, failure(notify.body)

        # Unsubscribing: 200, and a last NOTIFY, terminated, both through Kamailio.
        ended, challenged = await bob.request(
            "SUBSCRIBE", ALICE, headers="Event: presence\r\nExpires: 0\r\n", in_dialog=True)
        assert bob.sent_to[-1] == ("127.0.0.1", kamailio.port), bob.sent_to
        assert (challenged, ended.status) == (None, 200), failure(ended.status)
        notify, source = await bob.notify()
        assert source == ("127.0.0.1", kamailio.port), failure(source)
        assert notify.headers.get("Subscription-State").startswith("terminated"), \
            failure(notify.headers.get("Subscription-State"))
    finally:
        for listening in sockets:
            await listening.stopListening()
        kamailio.stop()
