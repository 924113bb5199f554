"""
The SIP RA answering the Digest challenges its own requests meet
(resource_adaptors/sip/adaptor.py, C{client-username}): the sipprobe unit's
MessageSbb sends a MESSAGE to a bare UDP peer that challenges it, and
relays the answer it hears; the journal says how many it heard.
"""

import pytest_twisted
from twisted.internet import task

from resource_adaptors.auth.digest import DigestAuthority, DigestResponse
from resource_adaptors.auth.users import ha1
from resource_adaptors.sip.core.message import Request
from slee.container import Container
from slee.settings import shipped_units

from sipclient import reply
from test_sip_adaptor import ENDPOINTS, Slee, listening_peer, send_via_service
from units import UNITS, memory_db

REALM = "remote.test"


def relayed(journal):
    """The answers MessageSbb heard and relayed."""
    return [entry for entry in journal if entry[0] == "relayed"]


@pytest_twisted.async_yield_fixture
async def slee(tmp_path):
    """The container of test_sip_adaptor, with an account to answer challenges with."""
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "sip": {"endpoints": ENDPOINTS, "t1": 0.02,
                "client-username": "probe", "client-password": "secret"}})
    await container.start()
    for unit in (shipped_units() / "sip", shipped_units() / "options", UNITS / "sipprobe"):
        described = await container.deploy(str(unit))
        for service in described["services"]:
            container.activate(service)
    yield Slee(container)
    await container.stop()


udp = pytest_twisted.async_yield_fixture(name="udp")(listening_peer)
target = pytest_twisted.async_yield_fixture(name="target")(listening_peer)


def challenge(request, authority, status=401):
    """@return: the bytes of a 401 (or 407) with C{authority}'s challenges."""
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    fields = "".join(f"{header}: {value}\r\n" for value in authority.challenges(0))
    return reply(request, status, "Unauthorized").replace(
        b"Content-Length: 0\r\n", fields.encode() + b"Content-Length: 0\r\n")


def signed_by_probe(request, authority, header="Authorization"):
    """Whether C{request} carries a good Digest response of the account probe/secret."""
    credentials = authority.response(request.headers.get(header), request.method,
                                     str(request.uri), 0)
    assert isinstance(credentials, DigestResponse) and credentials.username == "probe"
    return credentials.checkHash(ha1(credentials.algorithm, "probe", REALM, "secret"))


@pytest_twisted.ensureDeferred
async def test_a_challenged_request_goes_again_signed_and_the_sbb_hears_the_last_answer(
        udp, target, slee):
    authority = DigestAuthority(REALM)
    send_via_service(udp, target)
    first = await target.next()
    assert "Authorization" not in first.headers
    target.send(challenge(first, authority))
    again = await target.next()
    assert isinstance(again, Request) and again.method == "MESSAGE"
    assert (again.call_id, again.from_.tag) == (first.call_id, first.from_.tag)
    assert again.cseq.number == first.cseq.number + 1
    assert again.via[0].branch != first.via[0].branch
    assert again.body == first.body
    assert signed_by_probe(again, authority)
    assert "algorithm=SHA-256" in again.headers.get("Authorization")
    target.send(reply(again, 200))
    assert (await udp.next()).status == 200
    assert relayed(slee.journal) == [("relayed", 200)]


@pytest_twisted.ensureDeferred
async def test_a_signed_request_challenged_again_is_answered_with_that_challenge(
        udp, target, slee):
    authority = DigestAuthority(REALM)
    send_via_service(udp, target)
    target.send(challenge(await target.next(), authority))
    again = await target.next()
    target.send(challenge(again, authority))        # the account is refused
    assert (await udp.next()).status == 401
    assert relayed(slee.journal) == [("relayed", 401)]
    from twisted.internet import reactor
    await task.deferLater(reactor, 0.2, lambda: None)
    assert all(message.cseq.number <= again.cseq.number for message in target.inbox.messages)


@pytest_twisted.ensureDeferred
async def test_a_proxy_challenge_is_answered_with_proxy_authorization(udp, target, slee):
    authority = DigestAuthority(REALM)
    send_via_service(udp, target)
    target.send(challenge(await target.next(), authority, status=407))
    again = await target.next()
    assert "Authorization" not in again.headers
    assert signed_by_probe(again, authority, "Proxy-Authorization")
    target.send(reply(again, 202, "Accepted"))
    assert (await udp.next()).status == 202


@pytest_twisted.ensureDeferred
async def test_a_challenge_without_digest_is_the_answer(udp, target, slee):
    send_via_service(udp, target)
    first = await target.next()
    target.send(reply(first, 401, "Unauthorized").replace(
        b"Content-Length", b'WWW-Authenticate: Basic realm="x"\r\nContent-Length'))
    assert (await udp.next()).status == 401
    assert relayed(slee.journal) == [("relayed", 401)]

