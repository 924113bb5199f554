"""
A real C{twistd -n slee} with its shipped units answers OPTIONS on UDP,
TCP, TLS and WebSocket: SIPp drives UDP and TCP (its scenarios are in
tests/sip/scenarios), Python clients TLS and WebSocket.
"""

import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from sipclient import StreamPeer, options
from test_restart import processes, ra_status  # noqa: F401

SCENARIOS = Path(__file__).parent / "scenarios"
SIPP_TIMEOUT = 60


async def sip_listening(process):
    """@return: {transport: port} of the running container's SIP RA."""
    ports = {}
    for point in (await ra_status(process, "sip"))["listening"]:
        transport, _, port = point.split(":")
        ports[transport] = int(port)
    return ports


async def sipp(port, transport, scenario, base):
    """Run one SIPp call of C{scenario}; @return: the CompletedProcess."""
    from twisted.internet.threads import deferToThread
    assert shutil.which("sipp"), "sipp is missing: apt-get install sip-tester (.ci/run does)"
    argv = ["sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIOS / scenario), "-t", transport,
            "-m", "1", "-p", "0", "-i", "127.0.0.1", "-timeout", "20", "-timeout_error",
            "-nostdin", "-trace_err", "-error_file", str(base / f"{scenario}.errors")]
    result = await deferToThread(subprocess.run, argv, capture_output=True, text=True,
                                 cwd=base, timeout=SIPP_TIMEOUT)
    assert result.returncode == 0, (
        f"sipp {scenario} over {transport}: exit {result.returncode}\n{result.stdout[-3000:]}"
        f"\n{result.stderr[-2000:]}")
    return result


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate and key for 127.0.0.1, as PEM files."""
    from certificates import self_signed
    return self_signed(tmp_path)


@pytest.fixture
def sip_process(tmp_path, processes, certificate):  # noqa: F811
    cert, key = certificate
    return processes(tmp_path, tmp_path / "var", sip=(
        "udp:0:interface=127.0.0.1", "tcp:0:interface=127.0.0.1",
        f"tls:0:privateKey={key}:certKey={cert}:interface=127.0.0.1",
        "ws:0:interface=127.0.0.1"))


@pytest_twisted.ensureDeferred
async def test_twistd_answers_options_on_every_transport(sip_process, tmp_path, certificate):
    await sip_process.start().ready()
    ports = await sip_listening(sip_process)
    assert set(ports) == {"udp", "tcp", "tls", "ws"}

    await sipp(ports["udp"], "u1", "options_uac.xml", tmp_path)
    await sipp(ports["tcp"], "t1", "options_uac.xml", tmp_path)
    # The first 200 is lost; the retransmitted OPTIONS brings it again.
    await sipp(ports["udp"], "u1", "options_lost.xml", tmp_path)

    response = await tls_options(ports["tls"], certificate[0])
    assert response.status == 200 and "OPTIONS" in response.allow

    response = await websocket_options(ports["ws"])
    assert response.status == 200 and "OPTIONS" in response.allow


async def tls_options(port, cert):
    """Send OPTIONS over TLS, trusting C{cert}; @return: the response."""
    from twisted.internet import reactor, ssl
    from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
    authority = ssl.Certificate.loadPEM(Path(cert).read_bytes())
    context = ssl.optionsForClientTLS("127.0.0.1", trustRoot=authority)
    peer = StreamPeer(reactor)
    await connectProtocol(SSL4ClientEndpoint(reactor, "127.0.0.1", port, context), peer)
    try:
        peer.send(options(port, transport="TLS", local_port=peer.port))
        return await peer.next()
    finally:
        peer.transport.loseConnection()
        await peer.closed


async def websocket_options(port):
    """Send OPTIONS over a WebSocket (subprotocol sip); @return: the response."""
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint

    from resource_adaptors.sip.core.parser import parse_message

    answered, closed = defer.Deferred(), defer.Deferred()

    class Client(WebSocketClientProtocol):
        def onOpen(self):
            self.sendMessage(options(port, transport="WS", local_port=9,
                                     uri=f"sip:service@127.0.0.1:{port};transport=ws"))

        def onMessage(self, payload, is_binary):
            answered.callback(parse_message(payload))
            self.sendClose()

        def onClose(self, was_clean, code, reason):
            closed.callback(None)

    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}", protocols=["sip"])
    factory.protocol = Client
    await TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    response = await answered.addTimeout(10, reactor)
    await closed.addTimeout(10, reactor)
    return response
