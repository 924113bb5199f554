"""
The XCAP client RA (resource_adaptors/xcap/remote.py): the XDM client of one
container reads and writes the documents of the XDMS of another over HTTP,
with the code it uses in-process.

Container A runs the XCAP server (Digest against a user store) and the
XDMS; container B runs the XCAP client RA as the entity C{xcap}, the probe
and the XDM client's test parent, which journals every answer.  Failures
(no server, a server that never answers, a body too large) come to the
parent as answers too.
"""

import pytest
import pytest_twisted
from twisted.internet import defer, protocol

from resource_adaptors.auth.users import User, ha1
from resource_adaptors.xcap.identity import IdentityError, asserted_user, asserting
from resource_adaptors.xcap.remote import RemoteXcapAdaptor
from slee.errors import ConfigurationError
from slee.runtime import units_in
from slee.settings import shipped_units
from units import UNITS, started_container

RL = "urn:ietf:params:xml:ns:resource-lists"
JOE = "sip:joe@example.com"
DOC = f"resource-lists/users/{JOE}/index"
BOBS = "resource-lists/users/sip:bob@example.com/index"
LIST = f'<resource-lists xmlns="{RL}"><list name="f"/></resource-lists>'.encode()
RL_TYPE = "application/resource-lists+xml"
TEXT = "text/plain; charset=utf-8"

USERS = """realm = "example.com"

[users.proxy]                       # the aggregation proxy's account
password = "proxypw"
admin = true

[users.md5]
ha1-md5 = "{md5}"
admin = true

[users.sha]
ha1-sha256 = "{sha}"
admin = true

[users."joe@example.com"]
password = "secret"
"""


def within(d, seconds=10):
    """C{d}, failing with a TimeoutError if it has not fired in C{seconds}: no test hangs."""
    from twisted.internet import reactor
    return d.addTimeout(seconds, reactor)


async def start_xdms(directory, **xcap):
    """@return: container A: the XCAP server (on a free port) and the XDMS."""
    directory.mkdir()
    users = directory / "users.toml"
    users.write_text(USERS.format(md5=ha1("MD5", "md5", "example.com", "md5pw"),
                                  sha=ha1("SHA-256", "sha", "example.com", "shapw")))
    units = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms", "xdms-xcap-diff")]
    return await started_container(directory, units, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "users": str(users), **xcap},
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}})


def server_of(container):
    """The XCAP server RA of container A."""
    return container.registry.ra_entities["xcap"].adaptor


def challenges_of(server, monkeypatch):
    """@return: a list that gets, for each 401 the server answers, whether it says stale."""
    challenged = []
    challenge = server._challenge

    def counted(request, reason, stale=False):
        challenged.append(stale)
        return challenge(request, reason, stale)

    monkeypatch.setattr(server, "_challenge", counted)
    return challenged


@pytest_twisted.async_yield_fixture
async def xdms(tmp_path):
    """Container A, and the URL of its XCAP root."""
    container = await start_xdms(tmp_path / "a")
    port = server_of(container).port.getHost().port
    yield container, f"http://127.0.0.1:{port}/xcap-root"
    await container.stop()


class Client:
    """Container B, whose XDM client parent does what L{do} says and journals the answers."""

    def __init__(self, container):
        from probe_unit.ra import ProbeAdaptor
        from xdmparent_unit import JOURNAL
        self.container = container
        self.probe = ProbeAdaptor.instance
        self.journal = JOURNAL
        self.adaptor = container.registry.ra_entities["xcap"].adaptor

    async def do(self, *commands):
        """Have the parent run C{commands}; @return: the journal entries of their answers."""
        first = len(self.journal)
        for command in commands:
            self.probe.fire("a", command)
        await within(self.journal.wait_length(first + len(commands)))
        return self.journal[first:]


@pytest_twisted.async_yield_fixture
async def remote(tmp_path):
    """
    Start container B with given properties of its XCAP client RA, once the
    one before is stopped (the test units' modules are one container's).
    """
    made = []

    async def start(**properties):
        if made:
            await made[-1].stop()
        # SIP: the XDM client's SBBs handle SIP events (xcap-diff subscriptions)
        units = [UNITS / "probe", shipped_units() / "sip", shipped_units() / "xcap-remote",
                 UNITS / "xdmparent"]
        container = await started_container(tmp_path / f"b{len(made)}", units, ra_properties={
            "xcap": properties, "sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}})
        made.append(container)
        client = Client(container)
        client.journal.clear()
        client.probe.start("a")
        return client

    yield start
    if made:
        await made[-1].stop()


def put(uri, xui=None, content=LIST, **conditions):
    return {"op": "put", "uri": uri, "content": content, "type": RL_TYPE, "xui": xui,
            **conditions}


@pytest_twisted.ensureDeferred
async def test_documents_of_a_remote_xdms_for_the_proxy_and_for_a_user(xdms, remote):
    _, url = xdms
    client = await remote(**{"xcap-root-url": url, "username": "proxy", "password": "proxypw"})
    [(operation, uri, status, etag)] = await client.do(put(DOC, JOE))
    assert (operation, uri, status) == ("put", DOC, 201) and etag
    answers = await client.do(
        {"op": "get", "uri": DOC, "xui": JOE},
        {"op": "get", "uri": DOC + '/~~/resource-lists/list[@name="f"]/@name'})   # as the proxy
    assert sorted(answers) == sorted([("get", DOC, 200, etag, LIST, RL_TYPE),
                                      ("get", DOC + '/~~/resource-lists/list[@name="f"]/@name',
                                       200, etag, b"f", "application/xcap-att+xml")])
    answers = await client.do(
        put(DOC, JOE, if_match='"stale"'),
        {"op": "get", "uri": DOC, "xui": "sip:bob@example.com"},      # not bob's
        put(BOBS, JOE),                                              # not joe's
        {"op": "get", "uri": "resource-lists/users/joe/../x/index"})
    assert sorted(entry[:3] for entry in answers) == sorted([
        ("put", DOC, 412), ("get", DOC, 403), ("put", BOBS, 403),
        ("get", "resource-lists/users/joe/../x/index", 404)])
    [answer] = await client.do({"op": "delete", "uri": DOC, "xui": JOE})
    assert answer[:3] == ("delete", DOC, 200)
    assert client.adaptor.calls == {}


@pytest_twisted.ensureDeferred
async def test_a_remote_xdms_is_watched_over_sip(xdms, remote, monkeypatch):
    """
    The XDM client of container B watches joe's documents on container A
    through an xcap-diff subscription over SIP: each change reaches the
    parent's document_updated as it would in-process.
    """
    from sbbs.xdms.client import XdmClientSbb
    container, url = xdms
    sip_port = container.registry.ra_entities["sip"].adaptor.transports.listening[0].port
    first_notify = defer.Deferred()
    notified = XdmClientSbb.notified

    def noting(self, *args):
        notified(self, *args)
        if not first_notify.called:
            first_notify.callback(None)

    monkeypatch.setattr(XdmClientSbb, "notified", noting)
    client = await remote(**{"xcap-root-url": url, "username": "proxy", "password": "proxypw",
                             "xcap-diff-uri": f"sip:xcap-diff@127.0.0.1:{sip_port}",
                             "sip-identity": "sip:proxy"})
    client.probe.fire("a", {"op": "subscribe", "uri": f"resource-lists/users/{JOE}/"})
    await within(first_notify)                  # the subscription is up

    async def answered_and_heard(command):
        """@return: the answer to C{command}, and the change it made as the parent heard of it."""
        first = len(client.journal)
        client.probe.fire("a", command)
        await within(client.journal.wait_length(first + 2))
        entries = client.journal[first:first + 2]
        [heard] = [entry for entry in entries if entry[0] == "updated"]
        [answer] = [entry for entry in entries if entry[0] != "updated"]
        return answer, heard

    created, updated = await answered_and_heard(put(DOC, JOE))
    assert created[:3] == ("put", DOC, 201)
    assert updated == ("updated", DOC, None, created[3], LIST)      # fetched: a new document

    changed = LIST.replace(b'name="f"', b'name="g"')
    replaced, patched = await answered_and_heard(put(DOC, JOE, changed))
    assert patched[:4] == ("updated", DOC, created[3], replaced[3])
    assert b'name="g"' in patched[4]                             # carried by the NOTIFY

    _, gone = await answered_and_heard({"op": "delete", "uri": DOC, "xui": JOE})
    assert gone == ("updated", DOC, replaced[3], None, None)


@pytest.mark.parametrize("account, algorithm", [("md5", "MD5"), ("sha", "SHA-256")])
@pytest_twisted.ensureDeferred
async def test_digest_with_the_hash_the_store_holds_then_up_front(xdms, remote, monkeypatch,
                                                                  account, algorithm):
    container, url = xdms
    challenged = challenges_of(server_of(container), monkeypatch)
    client = await remote(**{"xcap-root-url": url, "username": account,
                             "password": f"{account}pw"})
    [answer] = await client.do(put(DOC))
    assert answer[2] == 201
    # a 401 to the first request; for the MD5-only account another one to its SHA-256 response
    assert len(challenged) == (2 if algorithm == "MD5" else 1)
    assert client.adaptor._digest.algorithm == algorithm
    answers = await client.do({"op": "get", "uri": DOC}, {"op": "delete", "uri": DOC})
    assert sorted(entry[2] for entry in answers) == [200, 200]
    assert len(challenged) == (2 if algorithm == "MD5" else 1)      # signed up front


@pytest_twisted.ensureDeferred
async def test_a_stale_nonce_is_answered_again(xdms, remote, monkeypatch):
    from twisted.internet import reactor
    container, url = xdms
    server = server_of(container)

    class Later:
        """The server's clock, put forward at will."""
        offset = 0

        def seconds(self):
            return reactor.seconds() + self.offset

    clock = Later()
    monkeypatch.setattr(server, "clock", clock)
    challenged = challenges_of(server, monkeypatch)
    client = await remote(**{"xcap-root-url": url, "username": "proxy", "password": "proxypw"})
    [answer] = await client.do(put(DOC))
    assert answer[2] == 201 and challenged == [False]
    clock.offset = 3600                          # the nonce is stale now
    for _ in range(2):
        [answer] = await client.do({"op": "get", "uri": DOC})
        assert answer[2] == 200
    assert challenged == [False, True]           # answered once, then signed up front again


@pytest_twisted.ensureDeferred
async def test_bad_credentials_and_accounts_that_may_not_assert_identities(xdms, remote):
    _, url = xdms
    wrong = await remote(**{"xcap-root-url": url, "username": "proxy", "password": "nope"})
    [answer] = await wrong.do(put(DOC))
    assert answer[:3] == ("put", DOC, 401)
    nobody = await remote(**{"xcap-root-url": url})                # no account at all
    [answer] = await nobody.do(put(DOC))
    assert answer[:3] == ("put", DOC, 401)
    joe = await remote(**{"xcap-root-url": url, "username": "joe@example.com",
                          "password": "secret"})
    [answer] = await joe.do(put(DOC, JOE))                          # a user speaks for nobody
    assert answer[:3] == ("put", DOC, 403)
    [answer] = await joe.do(put(DOC))                               # but as itself, it may
    assert answer[:3] == ("put", DOC, 201)


@pytest_twisted.ensureDeferred
async def test_a_server_that_trusts_the_local_host_takes_asserted_identities(tmp_path, remote):
    container = await start_xdms(tmp_path / "a", auth="trust-localhost")
    try:
        port = server_of(container).port.getHost().port
        client = await remote(**{"xcap-root-url": f"http://127.0.0.1:{port}/xcap-root"})
        answers = await client.do(put(DOC, JOE), put(BOBS, JOE))
        assert sorted(entry[:3] for entry in answers) == [("put", BOBS, 403), ("put", DOC, 201)]
        await client.container.stop()
    finally:
        await container.stop()


@pytest_twisted.ensureDeferred
async def test_an_xui_the_header_cannot_carry_is_refused_unsent(remote):
    client = await remote(**{"xcap-root-url": "http://127.0.0.1:1/xcap-root"})
    [answer] = await client.do({"op": "get", "uri": DOC, "xui": 'sip:"joe"@x'})
    assert answer[2:] == (400, None, b"'sip:\"joe\"@x' cannot be carried in "
                                     b"X-XCAP-Asserted-Identity\n", TEXT)


@pytest_twisted.ensureDeferred
async def test_a_server_that_is_down_gives_502(remote):
    from twisted.internet import reactor
    port = reactor.listenTCP(0, protocol.Factory(), interface="127.0.0.1")
    number = port.getHost().port
    await port.stopListening()
    client = await remote(**{"xcap-root-url": f"http://127.0.0.1:{number}/xcap-root"})
    [(_, _, status, etag, body, content_type)] = await client.do({"op": "get", "uri": DOC})
    assert (status, etag, content_type) == (502, None, TEXT)
    assert body.startswith(b"no answer from the XCAP server: ") and b"refused" in body


class Silent(protocol.Protocol):
    """A server that takes the request and never answers."""

    def connectionMade(self):
        self.factory.connected.callback(None)

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


async def silent_server():
    """@return: the listening port of a L{Silent} server; its factory has the Deferreds."""
    from twisted.internet import reactor
    factory = protocol.Factory.forProtocol(Silent)
    factory.connected, factory.lost = defer.Deferred(), defer.Deferred()
    return reactor.listenTCP(0, factory, interface="127.0.0.1")


@pytest_twisted.ensureDeferred
async def test_a_server_that_never_answers_gives_504(remote):
    port = await silent_server()
    try:
        client = await remote(**{"xcap-root-url": f"http://127.0.0.1:{port.getHost().port}/x",
                                 "timeout": 0.2})
        [answer] = await client.do(put(DOC))
        assert answer == ("put", DOC, 504, None)
        await within(port.factory.lost)          # the connection was closed
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_stopping_answers_what_is_in_flight_and_closes_its_connection(remote):
    port = await silent_server()
    try:
        client = await remote(**{"xcap-root-url": f"http://127.0.0.1:{port.getHost().port}/x"})
        client.probe.fire("a", {"op": "get", "uri": DOC})
        await within(port.factory.connected)
        await client.container.stop()
        assert client.journal[-1][:3] == ("get", DOC, 503)
        assert client.adaptor.calls == {}
        await within(port.factory.lost)
    finally:
        await port.stopListening()


@pytest_twisted.ensureDeferred
async def test_an_answer_over_max_body_size_gives_502(xdms, remote):
    _, url = xdms
    big = f'<resource-lists xmlns="{RL}">{"<list/>" * 200}</resource-lists>'.encode()
    client = await remote(**{"xcap-root-url": url, "username": "proxy", "password": "proxypw",
                             "max-body-size": 1000})
    [answer] = await client.do(put(DOC, content=big))
    assert answer[2] == 201
    [(_, _, status, _, body, _)] = await client.do({"op": "get", "uri": DOC})
    assert status == 502 and b"larger than 1000 bytes" in body
    [answer] = await client.do({"op": "delete", "uri": DOC})          # the RA goes on
    assert answer[2] == 200


@pytest_twisted.ensureDeferred
async def test_https_checks_the_server_against_the_ca_file(tmp_path, remote, monkeypatch):
    from pathlib import Path
    monkeypatch.syspath_prepend(str(Path(__file__).parent.parent / "sip"))
    from certificates import self_signed
    certificate, key = self_signed(tmp_path)
    endpoint = f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={certificate}"
    container = await start_xdms(tmp_path / "a", endpoint=endpoint)
    try:
        url = f"https://127.0.0.1:{server_of(container).port.getHost().port}/xcap-root"
        trusting = await remote(**{"xcap-root-url": url, "username": "proxy",
                                   "password": "proxypw", "ca-file": str(certificate)})
        [answer] = await trusting.do(put(DOC, JOE))
        assert answer[2] == 201
        doubting = await remote(**{"xcap-root-url": url, "username": "proxy",
                                   "password": "proxypw"})     # the system's CAs only
        [(_, _, status, _, body, _)] = await doubting.do({"op": "get", "uri": DOC})
        assert status == 502 and b"certificate verify failed" in body
        await doubting.container.stop()
    finally:
        await container.stop()


@pytest.mark.parametrize("properties, message", [
    ({"xcap-root-url": "ftp://x/xcap-root"}, "expected an http or https URL"),
    ({"xcap-root-url": "http://u:p@x/xcap-root"}, "no credentials"),
    ({"xcap-root-url": "http://x:99999/"}, "is no URL"),
    ({"username": "jo\u00eb"}, "printable ASCII"),
    ({"timeout": 0}, "must be > 0"),
    ({"ca-file": "/no/such/file.pem"}, "/no/such/file.pem"),
])
def test_bad_properties_are_refused_naming_them(properties, message):
    with pytest.raises(ConfigurationError, match=message):
        RemoteXcapAdaptor().configure(properties)


def test_the_root_is_the_path_of_the_url():
    adaptor = RemoteXcapAdaptor()
    adaptor.configure({"xcap-root-url": "https://xdms.example.com:8443/services/xcap/"})
    assert adaptor.root == "/services/xcap"


def test_the_shipped_units_deployed_are_those_of_the_profile(tmp_path):
    integrated = [path.name for path in units_in(shipped_units())]
    assert "xcap" in integrated and "xcap-remote" not in integrated
    alone = [path.name for path in units_in(shipped_units(), "presence-server")]
    assert "xcap-remote" in alone and "xcap" not in alone and "xdms" not in alone
    mine = tmp_path / "mine"                            # no profile in a directory of one's own
    mine.mkdir()
    (mine / "xcap-remote").symlink_to(shipped_units() / "xcap-remote")
    assert [path.name for path in units_in(mine)] == ["xcap-remote"]


# -- X-XCAP-Asserted-Identity, as the XCAP server reads it -----------------------------

ADMIN = User("proxy", "sip:proxy@example.com", admin=True)


def test_an_administrator_asserts_an_identity_and_acts_as_that_user():
    assert asserted_user(ADMIN, asserting(JOE)) == User(JOE, JOE)
    assert asserted_user(ADMIN, f' "{JOE}" ') == User(JOE, JOE)
    assert asserted_user(ADMIN, None) is ADMIN


@pytest.mark.parametrize("user, value, status", [
    (User("joe", JOE), f'"{JOE}"', 403),               # no administrator
    (ADMIN, JOE, 400),                                  # not quoted
    (ADMIN, '""', 400),
    (ADMIN, '"sip:a b@x"', 400),
    (ADMIN, '"sip:a\\"b@x"', 400),
])
def test_identities_that_cannot_be_honoured(user, value, status):
    with pytest.raises(IdentityError) as refused:
        asserted_user(user, value)
    assert refused.value.status == status
