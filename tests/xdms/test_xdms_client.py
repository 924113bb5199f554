"""
The XDM client (sbbs/xdms/client.py): a service's child SBB reads and writes
documents of the XDMS in the same container, through the XCAP RA's internal
requests, and gets each answer in its parent's callbacks; the XDMS
authorizes them as HTTP requests.
"""

import pytest_twisted

from slee.container import Container
from slee.settings import shipped_units
from units import UNITS, memory_db

RL = "urn:ietf:params:xml:ns:resource-lists"
DOC = "resource-lists/users/sip:joe@example.com/index"
LIST = f'<resource-lists xmlns="{RL}"><list name="f"/></resource-lists>'.encode()
RL_TYPE = "application/resource-lists+xml"


@pytest_twisted.async_yield_fixture
async def service(tmp_path):
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1"},
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}})
    await container.start()
    # The XDM client needs the SIP unit: with a remote XDMS it watches over SIP.
    for unit in (UNITS / "probe", shipped_units() / "sip", shipped_units() / "xcap",
                 shipped_units() / "xdms", UNITS / "xdmparent"):
        described = await container.deploy(str(unit))
        for service_id in described["services"]:
            container.activate(service_id)
    from probe_unit.ra import ProbeAdaptor
    from xdmparent_unit import JOURNAL
    JOURNAL.clear()
    ProbeAdaptor.instance.start("a")
    yield ProbeAdaptor.instance, JOURNAL, container
    await container.stop()


@pytest_twisted.ensureDeferred
async def test_put_get_and_delete_through_the_client(service):
    probe, journal, _ = service
    probe.fire("a", {"op": "put", "uri": DOC, "content": LIST, "type": RL_TYPE,
                     "xui": "sip:joe@example.com"})
    await journal.wait_length(1)
    operation, uri, status, etag = journal[0]
    assert (operation, uri, status) == ("put", DOC, 201) and etag
    probe.fire("a", {"op": "get", "uri": DOC, "xui": "sip:joe@example.com"})
    probe.fire("a", {"op": "get", "uri": DOC + "/~~/resource-lists/list/@name"})   # as admin
    await journal.wait_length(3)
    assert journal[1] == ("get", DOC, 200, etag, LIST, RL_TYPE)
    assert journal[2][2:5] == (200, etag, b"f")
    probe.fire("a", {"op": "put", "uri": DOC, "content": LIST, "type": RL_TYPE,
                     "xui": "sip:joe@example.com", "if_match": '"stale"'})
    probe.fire("a", {"op": "get", "uri": DOC, "xui": "sip:bob@example.com"})      # not bob's
    probe.fire("a", {"op": "delete", "uri": DOC, "xui": "sip:joe@example.com"})
    probe.fire("a", {"op": "get", "uri": "resource-lists/users/joe/../x/index"})
    await journal.wait_length(7)
    # each answer comes when it is ready: the last, refused by the RA, first
    assert sorted(entry[:3] for entry in journal[3:]) == sorted([
        ("put", DOC, 412), ("get", DOC, 403), ("delete", DOC, 200),
        ("get", "resource-lists/users/joe/../x/index", 404)])


@pytest_twisted.ensureDeferred
async def test_subscribers_hear_of_changes_to_what_they_watch(service):
    probe, journal, container = service
    other = "resource-lists/users/sip:bob@example.com/index"
    probe.fire("a", {"op": "subscribe", "uri": DOC})
    probe.fire("a", {"op": "put", "uri": DOC, "content": LIST, "type": RL_TYPE})
    await journal.wait_length(2)
    updated = [entry for entry in journal if entry[0] == "updated"]
    [put] = [entry for entry in journal if entry[0] == "put"]
    assert updated == [("updated", DOC, None, put[3], LIST)]
    probe.fire("a", {"op": "put", "uri": other, "content": LIST, "type": RL_TYPE})
    await journal.wait_length(3)                    # bob's document: nobody watches it yet
    assert journal[2][:3] == ("put", other, 201)
    probe.fire("a", {"op": "subscribe", "uri": "resource-lists/"})       # every user's lists
    probe.fire("a", {"op": "delete", "uri": DOC})
    await journal.wait_length(6)
    # the delete is heard twice: the document and the usage are watched
    assert sorted(entry[:4] for entry in journal[3:] if entry[0] == "updated") == \
        [("updated", DOC, put[3], None)] * 2
    probe.fire("a", {"op": "unsubscribe", "uri": DOC})
    probe.fire("a", {"op": "unsubscribe", "uri": "resource-lists/"})
    probe.fire("a", {"op": "put", "uri": other, "content": LIST, "type": RL_TYPE})
    probe.fire("a", {"op": "get", "uri": other})    # queued behind any change the put made
    await journal.wait_length(8)
    assert [entry[:3] for entry in journal[6:]] == [("put", other, 200), ("get", other, 200)]
    assert len([entry for entry in journal if entry[0] == "updated"]) == 3     # no more
    names = container.router.run_in_transaction(
        lambda: list(container.engine.state.names.keys()))
    assert not [name for name in names if name.startswith("xdms:")]    # nobody watches
