"""
The README's quick start, as a new user follows it: its users.toml, its
pres-rules stored with its curl command, then alice publishing and bob
watching her over SIP, both answering Digest challenges with the
passwords of that file.
"""

import subprocess
import tomllib
import uuid

import pytest_twisted

from documents import fenced, quick_start
from resource_adaptors.auth.digest import DigestClient
from sipclient import UdpPeer, options, reply
from slee.settings import shipped_units
from units import sip_port_of, started_container, xcap_port_of

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"


class User:
    """A SIP user agent that answers Digest challenges with its password."""

    def __init__(self, reactor, sip_port, uri, username, password):
        self.udp = UdpPeer(reactor, sip_port)
        self.socket = reactor.listenUDP(0, self.udp, interface="127.0.0.1")
        self.sip_port, self.uri = sip_port, uri
        self.digest = DigestClient(username, password)
        self.call_id, self.tag, self.to_tag, self.cseq = uuid.uuid4().hex, "u1", None, 0

    def _send(self, method, target, headers, body):
        self.cseq += 1
        authorization = self.digest.authorization(method, target)
        if authorization:
            headers += f"Authorization: {authorization}\r\n"
        self.udp.send(options(self.sip_port, method=method, headers=headers, body=body,
                              call_id=self.call_id, cseq=self.cseq, local_port=self.udp.port,
                              from_uri=self.uri, from_tag=self.tag, to_tag=self.to_tag,
                              uri=target))

    async def request(self, method, target, headers="", body=""):
        """Send; answer one 401 with the password; @return: the final answer."""
        self._send(method, target, headers, body)
        answer = await self._answer()
        if answer.status == 401:
            self.digest.challenged(answer.headers.get_all("WWW-Authenticate"))
            self._send(method, target, headers, body)
            answer = await self._answer()
        if answer.status < 300 and method == "SUBSCRIBE":
            self.to_tag = answer.to.tag
        return answer

    async def _answer(self):
        while True:
            message = await self.udp.next()
            if getattr(message, "status", 0) >= 200:
                return message

    async def notified(self):
        while True:
            message = await self.udp.next()
            if getattr(message, "method", None) == "NOTIFY":
                self.udp.send(reply(message))
                return message


@pytest_twisted.ensureDeferred
async def test_the_quick_start_works_as_written(tmp_path):
    from twisted.internet import reactor
    from twisted.internet.threads import deferToThread
    section = quick_start()
    users = tmp_path / "users.toml"
    users.write_text(fenced(section, "toml"))
    passwords = {name: user["password"]
                 for name, user in tomllib.loads(users.read_text())["users"].items()}
    container = await started_container(
        tmp_path, [shipped_units() / unit for unit in
                   ("sip", "options", "sipevent", "xcap", "xdms", "presence-server")],
        ra_properties={"xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "users": str(users)},
                       "sip": {"endpoints": ["udp:0:interface=127.0.0.1"],
                               "users": str(users)}})
    sip_port = sip_port_of(container)
    alice = User(reactor, sip_port, ALICE, "alice@example.com", passwords["alice@example.com"])
    bob = User(reactor, sip_port, BOB, "bob@example.com", passwords["bob@example.com"])
    try:
        # Step 3: the curl command, as written but for the port.
        command = fenced(section, "sh").replace("127.0.0.1:8080",
                                                 f"127.0.0.1:{xcap_port_of(container)}")
        result = await deferToThread(subprocess.run, ["bash", "-c", command + "echo"],
                                     capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        # Step 4: alice publishes, bob watches her and is let in by her rules.
        pidf = (f'<?xml version="1.0" encoding="UTF-8"?>\n<presence '
                f'xmlns="urn:ietf:params:xml:ns:pidf" entity="{ALICE}"><tuple id="t">'
                f'<status><basic>open</basic></status></tuple></presence>')
        answer = await alice.request("PUBLISH", ALICE, "Event: presence\r\n"
                                     "Content-Type: application/pidf+xml\r\n", pidf)
        assert answer.status == 200, answer
        answer = await bob.request("SUBSCRIBE", ALICE, "Event: presence\r\n")
        assert answer.status == 200, answer            # allowed by alice's rule "friends"
        notify = await bob.notified()
        assert notify.headers.get("Subscription-State").startswith("active")
        assert b"<basic>open</basic>" in notify.body
        # Someone else's password gains nothing: bob may not publish as alice.
        forger = User(reactor, sip_port, ALICE, "bob@example.com", passwords["bob@example.com"])
        try:
            assert (await forger.request("PUBLISH", ALICE, "Event: presence\r\n"
                                         "Content-Type: application/pidf+xml\r\n",
                                         pidf)).status == 403
        finally:
            await forger.socket.stopListening()
    finally:
        for user in (alice, bob):
            await user.socket.stopListening()
        await container.stop()
