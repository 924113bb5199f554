"""
A PUT the XDMS acknowledged is durable: a real C{twistd -n slee} (shipped
units, default FileStorage) killed with SIGKILL right after the last 201
gives every document back, byte for byte, once restarted.
"""

import pytest_twisted
from twisted.internet import defer

from test_restart import processes, ra_status  # noqa: F401
from test_xdms_http import LIST, RL_TYPE
from xcapclient import Xdms

DOCUMENTS = 20


async def xcap_port(process):
    return int((await ra_status(process, "xcap"))["listening"].rsplit(":", 1)[1])


def path(number):
    return f"/xcap-root/resource-lists/users/sip:user{number}@example.com/index"


@pytest_twisted.ensureDeferred
async def test_acknowledged_puts_survive_sigkill(processes, tmp_path):  # noqa: F811
    process = processes(tmp_path, tmp_path / "var", extra=["--xcap-auth", "trust-localhost"])
    await process.start().ready()
    client = Xdms(None, await xcap_port(process))
    try:
        for number in range(DOCUMENTS):
            response, _ = await client.request("PUT", path(number), LIST, RL_TYPE)
            assert response.code == 201
        await process.kill()        # nothing between the last 201 and the kill
    finally:
        await client.pool.closeCachedConnections()

    await process.start().ready()
    client = Xdms(None, await xcap_port(process))
    try:
        answers = await defer.gatherResults(
            [defer.ensureDeferred(client.request("GET", path(number)))
             for number in range(DOCUMENTS)])
        assert [(response.code, body) for response, body in answers] == \
            [(200, LIST)] * DOCUMENTS
    finally:
        await client.pool.closeCachedConnections()
    assert "Traceback" not in process.log(), process.output()
