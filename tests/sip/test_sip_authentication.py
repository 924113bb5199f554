"""
SIP Digest authentication and asserted identity at the SIP RA's door
(resource_adaptors/sip/authentication.py), live: bare SIP peers on 127.0.0.1
talk to a container with the presence server and the XDMS whose SIP RA
authenticates against a user store; and the gate alone, on a clock.
"""

import uuid

import pytest
import pytest_twisted
from twisted.internet import task

from resource_adaptors.auth.digest import DigestClient
from resource_adaptors.auth.users import UserStore
from resource_adaptors.sip.authentication import Gate, Refused, trusted_network
from resource_adaptors.sip.core.message import Request
from resource_adaptors.sip.core.routing import Peer
from sipclient import UdpPeer, options
from slee.settings import shipped_units
from units import sip_port_of, started_container

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
ADMIN = "sip:admin@example.com"
USERS = ('realm = "example.com"\n'
         '[users."alice@example.com"]\npassword = "a"\n'
         '[users."bob@example.com"]\npassword = "b"\n'
         '[users."admin@example.com"]\npassword = "p"\nadmin = true\n')
PASSWORDS = {ALICE: "a", BOB: "b", ADMIN: "p"}
UNITS = [shipped_units() / unit for unit in
         ("sip", "options", "sipevent", "xcap", "xdms", "xdms-xcap-diff", "presence-server")]
PIDF = (f'<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        f'entity="{ALICE}"><tuple id="t"><status><basic>open</basic></status></tuple></presence>')
RL = "urn:ietf:params:xml:ns:resource-lists"


class Client:
    """A SIP peer on its own UDP port, signing as C{account} (or nobody) and sending From C{sender}."""

    def __init__(self, udp, sip_port, account=None, sender=None):
        self.udp = udp
        self.sip_port = sip_port
        self.sender = sender or account or ALICE
        self.digest = None if account is None else \
            DigestClient(account.split(":", 1)[1], PASSWORDS[account])
        self.call_id, self.tag, self.to_tag, self.cseq = uuid.uuid4().hex, "c1", None, 0

    def send(self, method, target, headers="", body="", authorization=None):
        """Send a request; @return: the Authorization it carried."""
        self.cseq += 1
        if authorization is None and self.digest is not None:
            authorization = self.digest.authorization(method, target)
        if authorization:
            headers += f"Authorization: {authorization}\r\n"
        self.udp.send(options(self.sip_port, method=method, headers=headers, body=body,
                              call_id=self.call_id, cseq=self.cseq, local_port=self.udp.port,
                              from_uri=self.sender, from_tag=self.tag, to_tag=self.to_tag,
                              uri=target))
        return authorization

    async def answer(self):
        while True:
            message = await self.udp.next()
            if getattr(message, "method", None) == "NOTIFY":
                continue                        # not what these tests look at
            if message.status >= 200:
                if message.status < 300 and message.cseq.method == "SUBSCRIBE":
                    self.to_tag = self.to_tag or message.to.tag
                return message

    async def request(self, method, target, headers="", body="", refused=()):
        """Send, answer a 401 with the account's credentials once; @return: the final answer."""
        self.send(method, target, headers, body)
        answer = await self.answer()
        if answer.status == 401 and self.digest is not None:
            self.digest.challenged(answer.headers.get_all("WWW-Authenticate"), refused)
            self.send(method, target, headers, body)
            answer = await self.answer()
        return answer


@pytest_twisted.async_yield_fixture
async def server(tmp_path):
    """(a function making clients, the container) with Digest against the store."""
    async for running in _server(tmp_path, {}):
        yield running


@pytest_twisted.async_yield_fixture
async def behind_proxy(tmp_path):
    """The same, trusting 127.0.0.1 to assert identities and challenging with 407."""
    async for running in _server(tmp_path, {"trusted-peers": ["127.0.0.1"], "proxy-auth": True}):
        yield running


async def _server(tmp_path, sip_properties):
    from twisted.internet import reactor
    users = tmp_path / "users.toml"
    users.write_text(USERS)
    container = await started_container(tmp_path, UNITS, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "users": str(users)},
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"], "users": str(users),
                **sip_properties}})
    sip_port = sip_port_of(container)
    sockets = []

    def client(account=None, sender=None):
        udp = UdpPeer(reactor, sip_port)
        sockets.append(reactor.listenUDP(0, udp, interface="127.0.0.1"))
        return Client(udp, sip_port, account, sender)

    yield client, container
    for socket in sockets:
        await socket.stopListening()
    await container.stop()


def publish_headers():
    return "Event: presence\r\nContent-Type: application/pidf+xml\r\n"


def winfo_headers(extra=""):
    return "Event: presence.winfo\r\nAccept: application/watcherinfo+xml\r\n" + extra


# -- challenges -----------------------------------------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_publish_is_challenged_and_answered_with_sha256_then_md5(server):
    client, _ = server
    alice = client(ALICE)
    alice.send("PUBLISH", ALICE, publish_headers(), PIDF)
    challenge = await alice.answer()
    assert challenge.status == 401
    offered = challenge.headers.get_all("WWW-Authenticate")
    assert ["algorithm=SHA-256" in offered[0], "algorithm=MD5" in offered[1]] == [True, True]
    assert alice.digest.challenged(offered) == "SHA-256"
    alice.send("PUBLISH", ALICE, publish_headers(), PIDF)
    assert (await alice.answer()).status == 200
    md5 = client(ALICE)
    md5.send("PUBLISH", ALICE, publish_headers(), PIDF)
    offered = (await md5.answer()).headers.get_all("WWW-Authenticate")
    assert md5.digest.challenged(offered, refused=("SHA-256",)) == "MD5"
    md5.send("PUBLISH", ALICE, publish_headers(), PIDF)
    assert (await md5.answer()).status == 200


@pytest_twisted.ensureDeferred
async def test_wrong_credentials_and_a_replayed_count_are_challenged_again(server):
    client, _ = server
    alice = client(ALICE)
    assert (await alice.request("PUBLISH", ALICE, publish_headers(), PIDF)).status == 200
    signed = alice.send("PUBLISH", ALICE, publish_headers(), PIDF)
    assert (await alice.answer()).status == 200
    alice.send("PUBLISH", ALICE, publish_headers(), PIDF, authorization=signed)   # nc again
    assert (await alice.answer()).status == 401
    liar = client(ALICE)
    liar.digest = DigestClient("alice@example.com", "not her password")
    assert (await liar.request("PUBLISH", ALICE, publish_headers(), PIDF)).status == 401


@pytest_twisted.ensureDeferred
async def test_options_is_answered_without_a_challenge(server):
    client, _ = server
    assert (await client().request("OPTIONS", "sip:127.0.0.1")).status == 200


@pytest_twisted.ensureDeferred
async def test_behind_a_proxy_the_challenge_is_407(behind_proxy):
    client, _ = behind_proxy
    alice = client(ALICE)
    alice.send("PUBLISH", ALICE, publish_headers(), PIDF)
    challenge = await alice.answer()
    assert challenge.status == 407 and len(challenge.headers.get_all("Proxy-Authenticate")) == 2
    alice.digest.challenged(challenge.headers.get_all("Proxy-Authenticate"))
    authorization = alice.digest.authorization("PUBLISH", ALICE)
    alice.send("PUBLISH", ALICE, publish_headers() + f"Proxy-Authorization: {authorization}\r\n",
               PIDF, authorization="")
    assert (await alice.answer()).status == 200


# -- identity: the authenticated user, never From -------------------------------------

@pytest_twisted.ensureDeferred
async def test_a_forged_from_may_not_publish_for_another(server):
    client, _ = server
    bob_as_alice = client(BOB, sender=ALICE)
    answer = await bob_as_alice.request("PUBLISH", ALICE, publish_headers(), PIDF)
    assert (answer.status, answer.reason) == (403, "Only the resource itself publishes its state")
    admin = client(ADMIN, sender=ADMIN)
    assert (await admin.request("PUBLISH", ALICE, publish_headers(), PIDF)).status == 200


@pytest_twisted.ensureDeferred
async def test_a_forged_from_does_not_read_a_watcher_list(server):
    client, _ = server
    bob_as_alice = client(BOB, sender=ALICE)
    answer = await bob_as_alice.request("SUBSCRIBE", ALICE, winfo_headers())
    assert (answer.status, answer.reason) == (403, "Only the presentity may watch its watchers")
    alice = client(ALICE)
    assert (await alice.request("SUBSCRIBE", ALICE, winfo_headers())).status == 200


@pytest_twisted.ensureDeferred
async def test_a_refresh_in_an_authenticated_dialog_is_not_challenged(server):
    client, _ = server
    alice = client(ALICE)
    assert (await alice.request("SUBSCRIBE", ALICE, winfo_headers())).status == 200
    alice.digest = None                     # no credentials from now on
    alice.send("SUBSCRIBE", ALICE, winfo_headers("Expires: 600\r\n"))
    assert (await alice.answer()).status == 200
    alice.send("SUBSCRIBE", ALICE, winfo_headers("Expires: 0\r\n"))
    assert (await alice.answer()).status == 200


@pytest_twisted.ensureDeferred
async def test_a_forged_asserted_identity_from_an_untrusted_peer_gains_nothing(server):
    client, _ = server
    asserted = f"P-Asserted-Identity: <{ALICE}>\r\n"
    nobody = client(sender=ALICE)
    assert (await nobody.request("SUBSCRIBE", ALICE, winfo_headers(asserted))).status == 401
    bob = client(BOB)
    answer = await bob.request("SUBSCRIBE", ALICE, winfo_headers(asserted))
    assert answer.status == 403
    bob = client(BOB)
    answer = await bob.request("PUBLISH", ALICE, publish_headers() + asserted, PIDF)
    assert answer.status == 403


@pytest_twisted.ensureDeferred
async def test_an_asserted_identity_from_a_trusted_peer_is_honoured(behind_proxy):
    client, _ = behind_proxy
    proxied = client(sender=BOB)            # the proxy authenticated alice; From says bob
    asserted = f'P-Asserted-Identity: "Alice" <{ALICE}>\r\n'
    assert (await proxied.request("SUBSCRIBE", ALICE, winfo_headers(asserted))).status == 200
    proxied = client(sender=ALICE)
    answer = await proxied.request("SUBSCRIBE", ALICE,
                                   winfo_headers(f"P-Asserted-Identity: <{BOB}>\r\n"))
    assert answer.status == 403


# -- xcap-diff --------------------------------------------------------------------------

def watch(*uris):
    entries = "".join(f'<entry uri="{uri}"/>' for uri in uris)
    return f'<resource-lists xmlns="{RL}"><list>{entries}</list></resource-lists>'


def xcap_diff_headers(extra=""):
    return ("Event: xcap-diff\r\nAccept: application/xcap-diff+xml\r\n"
            "Content-Type: application/resource-lists+xml\r\n" + extra)


@pytest_twisted.ensureDeferred
async def test_an_xcap_diff_subscribe_with_an_administrators_asserted_identity_gains_nothing(
        server):
    client, _ = server
    forged = xcap_diff_headers(f"P-Asserted-Identity: <{ADMIN}>\r\n")
    everything = watch("resource-lists/")
    target = "sip:xcap-diff@127.0.0.1"
    assert (await client(sender=ADMIN).request("SUBSCRIBE", target, forged,
                                               everything)).status == 401
    answer = await client(ALICE, sender=ADMIN).request("SUBSCRIBE", target, forged, everything)
    assert answer.status == 403
    own = watch(f"resource-lists/users/{ALICE}/")
    assert (await client(ALICE).request("SUBSCRIBE", target, xcap_diff_headers(),
                                         own)).status == 200
    assert (await client(ADMIN).request("SUBSCRIBE", target, xcap_diff_headers(),
                                        everything)).status == 200


# -- the gate alone ---------------------------------------------------------------------

def _request(method="PUBLISH", headers=()):
    request = Request(method, ALICE)
    request.headers.add("From", f"<{BOB}>;tag=x")
    for name, value in headers:
        request.headers.add(name, value)
    return request


def _gate(tmp_path, mode, trusted=(), clock=None):
    users = tmp_path / "users.toml"
    users.write_text(USERS)
    return Gate(mode, UserStore.load(users), [trusted_network(peer) for peer in trusted],
                False, clock or task.Clock())


def _outcome(deferred):
    """What a fired Deferred of the gate holds: a User, or the answer of a Refused."""
    results = []
    deferred.addCallbacks(results.append, lambda failure: results.append(
        failure.trap(Refused) and failure.value.answer))
    return results[0]


def test_trust_localhost_takes_from_from_loopback_and_refuses_others(tmp_path):
    door = _gate(tmp_path, "trust-localhost")
    user = _outcome(door.identify(_request(), Peer("udp", "127.0.0.1", 5060)))
    assert (user.xui, user.admin) == (BOB, False)
    assert _outcome(door.identify(_request(), Peer("udp", "192.0.2.7", 5060)))[:2] == \
        (403, "Only local clients are trusted")
    assert _outcome(door.identify(_request("OPTIONS"), Peer("udp", "192.0.2.7", 5060))) is None


def test_an_old_nonce_is_answered_stale(tmp_path):
    clock = task.Clock()
    clock.advance(1000)
    door = _gate(tmp_path, "digest", clock=clock)
    status, _, headers = _outcome(door.identify(_request(), Peer("udp", "192.0.2.7", 5060)))
    assert status == 401 and "stale" not in headers[0][1]
    client = DigestClient("bob@example.com", "b")
    client.challenged([value for _, value in headers])
    signed = _request(headers=[("Authorization", client.authorization("PUBLISH", ALICE))])
    assert _outcome(door.identify(signed, Peer("udp", "192.0.2.7", 5060))).xui == BOB
    clock.advance(301)
    signed = _request(headers=[("Authorization", client.authorization("PUBLISH", ALICE))])
    status, _, headers = _outcome(door.identify(signed, Peer("udp", "192.0.2.7", 5060)))
    assert status == 401 and all("stale=true" in value for _, value in headers)


@pytest.mark.parametrize("host, kept", [("10.1.2.3", True), ("192.0.2.7", False)])
def test_an_asserted_identity_counts_from_trusted_peers_only(tmp_path, host, kept):
    door = _gate(tmp_path, "none", trusted=["10.0.0.0/8"])
    request = _request(headers=[("P-Asserted-Identity", f"<{ADMIN}>")])
    user = _outcome(door.identify(request, Peer("udp", host, 5060)))
    assert (user.xui, user.admin) == ((ADMIN, True) if kept else (BOB, False))
    assert ("P-Asserted-Identity" in request.headers) == kept


def test_challenges_offer_the_algorithms_configured_in_their_order():
    from resource_adaptors.auth.digest import DigestAuthority
    both = DigestAuthority("example.com").challenges(0)
    assert ["SHA-256" in both[0], "MD5" in both[1]] == [True, True]
    [only] = DigestAuthority("example.com", algorithms=("MD5",)).challenges(0)
    assert "algorithm=MD5" in only
