"""
SIPp, a third-party SIP client, subscribes to a list of the resource list
server (tests/rls/scenarios/list_subscribe.xml), reads its RLMI
multipart NOTIFYs and unsubscribes.
"""

import shutil
import socket
from pathlib import Path

import pytest_twisted

from rlsharness import RLS_TYPE, RlsServer, entries, rls_unit, services_document

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_TIMEOUT = 20


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest_twisted.ensureDeferred
async def test_sipp_subscribes_to_a_list_and_reads_its_rlmi(tmp_path):
    from twisted.internet import reactor
    from twisted.internet.utils import getProcessOutputAndValue
    assert shutil.which("sipp"), "sipp is missing: apt-get install sip-tester (.ci/run does)"
    server = await RlsServer().start(tmp_path, reactor,
                                     rls=rls_unit(tmp_path, notify_interval="0.05"))
    try:
        await server.put("rls-services/users/sip:alice@example.com/index", services_document(
            ("sip:alice@example.com;pres-list=buddies", entries("sip:bob@example.com"),
             ("presence",))), RLS_TYPE)
        bob = server.peer("sip:bob@example.com")
        bob.publish()
        assert (await bob.answer()).status == 200
        errors = tmp_path / "sipp.errors"
        out, err, code = await getProcessOutputAndValue("sipp", [
            f"127.0.0.1:{server.sip_port}", "-sf", str(SCENARIOS / "list_subscribe.xml"),
            "-t", "u1", "-m", "1", "-i", "127.0.0.1", "-p", str(free_udp_port()),
            "-timeout", str(SIPP_TIMEOUT), "-timeout_error", "-nostdin",
            "-trace_err", "-error_file", str(errors)], path=str(tmp_path))
        events = errors.read_text(errors="replace") if errors.exists() else ""
        assert code == 0, f"sipp: exit {code}\n{out[-3000:]}\n{err[-2000:]}\n{events[-4000:]}"
    finally:
        await server.stop()
