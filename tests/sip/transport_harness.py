"""
What the transport tests share: SIP stacks (L{SipTransports} with a
recording receiver) and the peers that talk to them over real sockets on
127.0.0.1, all closed when the test ends; a self-signed certificate for
TLS; the warnings the transport layer logs.
"""

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.logger import LogLevel, globalLogPublisher

from resource_adaptors.sip.core.message import Request, make_response
from resource_adaptors.sip.transports import SipTransports
from certificates import self_signed
from sipclient import TIMEOUT, StreamPeer, UdpPeer


def within(deferred, seconds=TIMEOUT):
    """Bound a wait: the Deferred fails with a TimeoutError after C{seconds}."""
    from twisted.internet import reactor
    return deferred.addTimeout(seconds, reactor)


async def answered(peer, data):
    """Send C{data} from a peer and return the message it gets back."""
    peer.send(data)
    return await peer.next()


class Receiver:
    """
    The receiver of a stack: records what comes up, and answers requests
    (but ACKs) with a 200 while C{answer} is set.
    """

    def __init__(self):
        self.transports = None
        self.answer = True
        self.messages = defer.DeferredQueue()
        self.errors = defer.DeferredQueue()

    def message_received(self, message, peer, waited=0.0):
        self.messages.put((message, peer))
        if self.answer and isinstance(message, Request) and message.method != "ACK":
            self.transports.send_response(make_response(message, 200), peer)

    def transport_error(self, peer, reason):
        self.errors.put((peer, reason))

    def next(self):
        """A Deferred firing with the next (message, peer)."""
        return within(self.messages.get())

    def next_error(self):
        """A Deferred firing with the next (peer, reason) of a transport error."""
        return within(self.errors.get())

    @property
    def pending(self):
        return len(self.messages.pending)


class Network:
    """Stacks and peers on 127.0.0.1 that L{close} closes, all of them."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.stacks = []
        self.ports = []
        self.streams = []

    def stack(self, **options):
        """A L{SipTransports} with a L{Receiver} (its C{receiver})."""
        receiver = Receiver()
        transports = SipTransports(self.reactor, receiver, **options)
        receiver.transports = transports
        self.stacks.append(transports)
        return transports

    def udp_peer(self, server_port):
        peer = UdpPeer(self.reactor, server_port)
        self.ports.append(self.reactor.listenUDP(0, peer, interface="127.0.0.1"))
        return peer

    async def stream_peer(self, port, trust=None):
        """A connected L{StreamPeer}: over TLS when C{trust} (a PEM
        certificate) is given."""
        if trust is None:
            endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", port, timeout=TIMEOUT)
        else:
            options = optionsForClientTLS("127.0.0.1", trustRoot=Certificate.loadPEM(trust))
            endpoint = SSL4ClientEndpoint(self.reactor, "127.0.0.1", port, options,
                                          timeout=TIMEOUT)
        peer = await within(connectProtocol(endpoint, StreamPeer(self.reactor)))
        self.streams.append(peer)
        return peer

    def track(self, port):
        """Close this listening port at the end too."""
        self.ports.append(port)
        return port

    async def close(self):
        await within(defer.gatherResults([stack.stop() for stack in self.stacks]))
        for peer in self.streams:
            peer.transport.loseConnection()
            await within(peer.closed)
        await within(defer.gatherResults(
            [defer.maybeDeferred(port.stopListening) for port in self.ports]))


@pytest_twisted.async_yield_fixture
async def network():
    from twisted.internet import reactor
    net = Network(reactor)
    try:
        yield net
    finally:
        await net.close()


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1: (key file, cert file, PEM)."""
    cert_file, key_file = self_signed(tmp_path)
    return key_file, cert_file, cert_file.read_bytes()


@pytest.fixture
def warnings():
    """The texts of the warnings logged by the SIP transports during the test."""
    from twisted.logger import formatEvent
    texts = []

    def observe(event):
        if event.get("log_namespace", "").startswith("resource_adaptors.sip.") \
                and event.get("log_level") == LogLevel.warn:
            texts.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield texts
    globalLogPublisher.removeObserver(observe)
