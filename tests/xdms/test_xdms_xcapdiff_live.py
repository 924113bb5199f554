"""
The xcap-diff event package (RFC 5875) live: a bare SIP peer on UDP
subscribes to documents of the XDMS, a plain HTTP client changes them, and
the NOTIFYs come back, all over real sockets on 127.0.0.1.
"""

import uuid

import pytest_twisted
from lxml import etree

from sbbs.xdms.xcapdiff import parse_xcap_diff
from sipclient import UdpPeer, options, reply
from slee.settings import shipped_units
from test_xdms_http import LIST, RL, RL_TYPE, USER
from xcapclient import Xdms, header
from units import SteppedClock, sip_port_of, started_container, xcap_port_of

DOC = f"resource-lists/users/{USER}/index"
XDMS_UNITS = [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms", "xdms-xcap-diff")]
XCAP_DIFF = "application/xcap-diff+xml"


def watch_list(*uris):
    entries = "".join(f'<entry uri="{uri}"/>' for uri in uris)
    return f'<resource-lists xmlns="{RL}"><list>{entries}</list></resource-lists>'


class Watcher:
    """A SIP peer that subscribes to xcap-diff and answers the NOTIFYs it gets."""

    def __init__(self, peer, sip_port, user=USER):
        self.peer = peer
        self.sip_port = sip_port
        self.user = user
        self.call_id = uuid.uuid4().hex
        self.from_tag = "w" + uuid.uuid4().hex[:8]
        self.to_tag = None
        self.cseq = 0

    def subscribe(self, body=None, headers="", event="xcap-diff", content_type=RL_TYPE):
        self.cseq += 1
        fields = f"Event: {event}\r\n" + headers
        if body is not None:
            fields += f"Content-Type: {content_type}\r\n"
        self.peer.send(options(self.sip_port, method="SUBSCRIBE", headers=fields,
                               body=body or "", call_id=self.call_id, cseq=self.cseq,
                               local_port=self.peer.port, from_uri=self.user,
                               from_tag=self.from_tag, to_tag=self.to_tag,
                               uri=f"sip:xdms@127.0.0.1:{self.sip_port}"))

    async def answer(self):
        """@return: the answer to the last SUBSCRIBE (its To tag is the dialog's)."""
        response = await self.peer.next()
        if response.status < 300 and self.to_tag is None:
            self.to_tag = response.to.tag
        return response

    async def notified(self, status=200):
        """@return: the next NOTIFY, answered with C{status}."""
        notify = await self.peer.next()
        assert notify.method == "NOTIFY"
        self.peer.send(reply(notify, status))
        return notify


@pytest_twisted.async_yield_fixture
async def xdms(tmp_path):
    """A container with SIP, XCAP (trusting the local host) and the XDMS, with its ports."""
    from twisted.internet import reactor
    clock = SteppedClock()
    container = await started_container(tmp_path, XDMS_UNITS, clock=clock)
    sip_port = sip_port_of(container)
    client = Xdms(container, xcap_port_of(container))
    peer = UdpPeer(reactor, sip_port)
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    client.clock = clock
    yield client, Watcher(peer, sip_port)
    await port.stopListening()
    await client.pool.closeCachedConnections()
    await container.stop()


def diff_of(notify):
    assert notify.headers.get("Content-Type") == XCAP_DIFF
    return parse_xcap_diff(notify.body)


@pytest_twisted.ensureDeferred
async def test_a_watcher_hears_of_every_change_to_a_document(xdms):
    client, watcher = xdms
    watcher.subscribe(watch_list(DOC))
    answer = await watcher.answer()
    assert answer.status == 200 and answer.headers.get("Expires") == "3600"
    first = await watcher.notified()
    assert first.headers.get("Subscription-State") == "active;expires=3600"
    assert first.headers.get("Event") == "xcap-diff"
    assert diff_of(first).documents == ()          # nothing stored yet

    response, _ = await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    assert response.code == 201
    created = diff_of(await watcher.notified())
    [change] = created.documents
    assert (change.sel, change.previous_etag, change.new_etag) == \
        (DOC, None, header(response, "etag"))
    assert change.content is None                    # no-patching: the watcher fetches
    assert created.xcap_root.endswith("/xcap-root/")

    response, _ = await client.request("DELETE", "/xcap-root/" + DOC)
    deleted = diff_of(await watcher.notified())
    [change] = deleted.documents
    assert (change.previous_etag, change.new_etag) == (created.documents[0].new_etag, None)


@pytest_twisted.ensureDeferred
async def test_xcap_patching_carries_the_new_document(xdms):
    client, watcher = xdms
    watcher.subscribe(watch_list(f"resource-lists/users/{USER}/"),
                      event="xcap-diff;diff-processing=xcap-patching")
    assert (await watcher.answer()).status == 200
    await watcher.notified()
    response, _ = await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    [created] = diff_of(await watcher.notified()).documents
    assert created.content is None          # a new document is fetched, not patched
    changed_list = LIST.replace(b"bob", b"carol")
    response, _ = await client.request("PUT", "/xcap-root/" + DOC, changed_list, RL_TYPE)
    [change] = diff_of(await watcher.notified()).documents
    assert (change.previous_etag, change.new_etag) == (created.new_etag, header(response, "etag"))
    assert etree.tostring(etree.fromstring(change.content), method="c14n") == \
        etree.tostring(etree.fromstring(changed_list), method="c14n")


@pytest_twisted.ensureDeferred
async def test_a_refresh_resends_the_full_state_and_an_unsubscribe_ends_it(xdms):
    client, watcher = xdms
    response, _ = await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    etag = header(response, "etag")
    attribute = DOC + "/~~/resource-lists/list/@name"
    watcher.subscribe(watch_list(DOC, attribute))
    assert (await watcher.answer()).status == 200
    initial = diff_of(await watcher.notified())
    assert [(d.sel, d.new_etag) for d in initial.documents] == [(DOC, etag)]
    assert [(a.sel, a.exists, a.value) for a in initial.attributes] == \
        [(attribute, True, "friends")]

    watcher.subscribe(headers="Expires: 600\r\n")       # a refresh, in the dialog
    refreshed = await watcher.answer()
    assert refreshed.status == 200 and refreshed.headers.get("Expires") == "600"
    again = await watcher.notified()
    assert again.headers.get("Subscription-State") == "active;expires=600"
    assert [(d.sel, d.new_etag) for d in diff_of(again).documents] == [(DOC, etag)]

    watcher.subscribe(headers="Expires: 0\r\n")
    assert (await watcher.answer()).status == 200
    final = await watcher.notified()
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    watcher.subscribe(headers="Expires: 600\r\n")       # the dialog is gone
    assert (await watcher.answer()).status == 481


@pytest_twisted.ensureDeferred
async def test_a_fetch_gets_one_notify_with_the_state(xdms):
    client, watcher = xdms
    response, _ = await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    watcher.subscribe(watch_list(DOC), headers="Expires: 0\r\n")
    assert (await watcher.answer()).status == 200
    notify = await watcher.notified()
    assert notify.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert diff_of(notify).documents[0].new_etag == header(response, "etag")


@pytest_twisted.ensureDeferred
async def test_a_subscription_not_refreshed_expires(xdms):
    client, watcher = xdms
    watcher.subscribe(watch_list(DOC), headers="Expires: 60\r\n")
    assert (await watcher.answer()).headers.get("Expires") == "60"
    assert (await watcher.notified()).headers.get("Subscription-State") == "active;expires=60"
    client.clock.advance(59)
    watcher.subscribe(headers="Expires: 60\r\n")     # refreshed in time: 60 s more
    assert (await watcher.answer()).status == 200
    assert (await watcher.notified()).headers.get("Subscription-State") == "active;expires=60"
    client.clock.advance(59)
    await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    assert (await watcher.notified()).headers.get("Subscription-State") == "active;expires=1"
    client.clock.advance(1)
    final = await watcher.notified()
    assert final.headers.get("Subscription-State") == "terminated;reason=timeout"
    assert [d.sel for d in diff_of(final).documents] == [DOC]     # the state, a last time
    watcher.subscribe(headers="Expires: 60\r\n")
    assert (await watcher.answer()).status == 481


@pytest_twisted.ensureDeferred
async def test_a_notify_refused_with_481_ends_the_subscription(xdms):
    client, watcher = xdms
    watcher.subscribe(watch_list(DOC))
    assert (await watcher.answer()).status == 200
    await watcher.notified(status=481)
    await client.request("PUT", "/xcap-root/" + DOC, LIST, RL_TYPE)
    watcher.subscribe(headers="Expires: 600\r\n")
    assert (await watcher.answer()).status == 481


@pytest_twisted.ensureDeferred
async def test_bad_subscriptions_get_the_standard_answers(xdms):
    _, watcher = xdms
    cases = [
        (dict(body=watch_list(DOC), event="no-such-package"), 489),
        (dict(body=None), 400),
        (dict(body=watch_list(DOC), content_type="text/plain"), 415),
        (dict(body="<resource-lists"), 400),
        (dict(body=watch_list("resource-lists/users/sip:bob@example.com/index")), 200),  # local: admin
        (dict(body=watch_list("no-such-usage/global/index")), 400),
        (dict(body=watch_list(DOC), headers="Expires: 5\r\n"), 423),
        (dict(body=watch_list(DOC), headers="Accept: text/plain\r\n"), 406),
    ]
    for arguments, status in cases:
        watcher.to_tag, watcher.call_id = None, uuid.uuid4().hex
        watcher.subscribe(**arguments)
        answer = await watcher.answer()
        assert answer.status == status, (arguments, answer.status, answer.reason)
        if status == 489:
            assert "xcap-diff" in answer.headers.get("Allow-Events")
        if status == 423:
            assert answer.headers.get("Min-Expires") == "60"
        if status == 200:
            await watcher.notified()


@pytest_twisted.ensureDeferred
async def test_a_watcher_may_watch_what_it_may_read(tmp_path):
    """With Digest users, a SIP watcher is the store's user of its XUI, as over HTTP."""
    from twisted.internet import reactor
    users = tmp_path / "users.toml"
    users.write_text('realm = "example.com"\n'
                     '[users."joe@example.com"]\npassword = "x"\n'
                     '[users.proxy]\npassword = "y"\nadmin = true\n')
    container = await started_container(tmp_path, XDMS_UNITS, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "users": str(users)},
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}})
    sip_port = sip_port_of(container)
    peer = UdpPeer(reactor, sip_port)
    port = reactor.listenUDP(0, peer, interface="127.0.0.1")
    try:
        bobs = "resource-lists/users/sip:bob@example.com/index"
        cases = [(USER, [DOC, "pres-rules/users/sip:joe@example.com/"], 200),
                 (USER, ["resource-lists/global/index"], 200),
                 (USER, [DOC, bobs], 403),
                 (USER, ["resource-lists/"], 403),
                 (USER, ["resource-lists/users/"], 403),
                 ("sip:proxy", ["resource-lists/", bobs], 200)]
        for user, uris, status in cases:
            watcher = Watcher(peer, sip_port, user=user)
            watcher.subscribe(watch_list(*uris))
            answer = await watcher.answer()
            assert answer.status == status, (user, uris, answer.reason)
            if status == 200:
                await watcher.notified()
                watcher.subscribe(headers="Expires: 0\r\n")
                assert (await watcher.answer()).status == 200
                await watcher.notified()
        # an administrator's P-Asserted-Identity from a peer not trusted gains nothing
        watcher = Watcher(peer, sip_port, user=USER)
        watcher.subscribe(watch_list("resource-lists/"),
                          headers='P-Asserted-Identity: "Proxy" <sip:proxy>\r\n')
        assert (await watcher.answer()).status == 403
    finally:
        await port.stopListening()
        await container.stop()
