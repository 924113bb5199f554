"""
The XCAP server's access log over real HTTP on 127.0.0.1: a combined-log
style line per request answered, to the file of C{access-log}
(C{--xcap-access-log}) or to the log.
"""

import re

import pytest
import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from resource_adaptors.xcap.command_line import check_access_log
from slee.container import Container
from slee.settings import shipped_units
from units import memory_db
from xcapclient import Xdms

DOC = "/xcap-root/resource-lists/users/sip:joe@example.com/index"
LIST = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>')

# client - user [time] "request line" status bytes seconds
LINE = re.compile(r'127\.0\.0\.1 - (?P<user>\S+) \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d '
                  r'\+0000\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+) '
                  r'\d+\.\d{4}$')


async def xdms_client(tmp_path, **properties):
    """A started container with the XCAP RA (on a free port) and the XDMS, and a client."""
    from twisted.internet import reactor
    container = Container(memory_db(), tmp_path, clock=reactor, ra_properties={
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", **properties}})
    await container.start()
    for unit in ("xcap", "xdms"):
        described = await container.deploy(str(shipped_units() / unit))
        for service in described["services"]:
            container.activate(service)
    return Xdms(container, container.registry.ra_entities["xcap"].adaptor.port.getHost().port)


async def closed(client):
    await client.pool.closeCachedConnections()
    await client.container.stop()


def fields(line):
    match = LINE.match(line)
    assert match, line
    return match["user"], match["request"], int(match["status"]), int(match["bytes"])


@pytest_twisted.ensureDeferred
async def test_requests_are_appended_to_the_access_log_file(tmp_path):
    path = tmp_path / "access.log"
    path.write_text("an older line\n")
    client = await xdms_client(tmp_path, auth="trust-localhost", **{"access-log": str(path)})
    try:
        await client.request("PUT", DOC, LIST, "application/resource-lists+xml")
        _, body = await client.request("GET", DOC + '?"quoted"')
        # Line-buffered: each line is on disk as soon as its request is answered.
        older, put, get = path.read_text().splitlines()
    finally:
        await closed(client)
    assert older == "an older line"
    assert fields(put) == ("(trusted)", f"PUT {DOC} HTTP/1.1", 201, 0)
    assert fields(get) == ("(trusted)", f'GET {DOC}?\\"quoted\\" HTTP/1.1', 400, len(body))


@pytest_twisted.ensureDeferred
async def test_without_a_file_requests_go_to_the_log_at_info(tmp_path):
    logged = []

    def observe(event):
        if event.get("log_namespace") == "resource_adaptors.xcap.access":
            logged.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        client = await xdms_client(tmp_path)   # digest, no users: every request gets 401
        try:
            _, body = await client.request("GET", DOC)
        finally:
            await closed(client)
    finally:
        globalLogPublisher.removeObserver(observe)
    line, = logged
    assert fields(line) == ("-", f"GET {DOC} HTTP/1.1", 401, len(body))


@pytest.mark.parametrize("value, expected", [("", ""), ("/var/log/xcap.log", "/var/log/xcap.log")])
def test_the_option_takes_a_path(value, expected):
    assert check_access_log(value) == expected
