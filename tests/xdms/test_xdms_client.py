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
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1"}})
    await container.start()
    for unit in (UNITS / "probe", shipped_units() / "xcap", shipped_units() / "xdms",
                 UNITS / "xdmparent"):
        described = await container.deploy(str(unit))
        for service_id in described["services"]:
            container.activate(service_id)
    from probe_unit.ra import ProbeAdaptor
    from xdmparent_unit import JOURNAL
    JOURNAL.clear()
    ProbeAdaptor.instance.start("a")
    yield ProbeAdaptor.instance, JOURNAL
    await container.stop()


@pytest_twisted.ensureDeferred
async def test_put_get_and_delete_through_the_client(service):
    probe, journal = service
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
