"""
TCP and TLS: the Twisted protocols that frame a byte stream into SIP
messages (L{StreamProtocol}) for their
L{resource_adaptors.sip.connections.Connection}, the factory of a
listening point (L{StreamFactory}), and the making of outbound connections
(L{connect}).
"""

from functools import partial

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from zope.interface import implementer

from resource_adaptors.sip.core.parser import FramingError, ParseError


def connect(flows, connection, trust_root=None):
    """
    Make the outbound connection C{connection} stands for (a TCP or TLS one
    to its peer), within the connect timeout of C{flows} (the
    L{resource_adaptors.sip.interfaces.IFlows} that owns it); TLS verifies
    the server against C{trust_root} (default: the platform's trust store).
    """
    peer = connection.peer
    endpoint = HostnameEndpoint(flows.reactor, peer.host, peer.port,
                                timeout=flows.connect_timeout)
    if peer.transport == "tls":
        endpoint = wrapClientTLS(optionsForClientTLS(peer.host, trustRoot=trust_root), endpoint)
    factory = Factory.forProtocol(partial(stream_protocol(peer.transport), connection,
                                          flows.parser))
    connection.connecting(endpoint.connect(factory))


class StreamFactory(Factory):
    """Accepts TCP or TLS connections for one listening point."""

    def __init__(self, transports, transport):
        self.transports = transports
        self.transport = transport
        self.point = None

    def buildProtocol(self, address):
        protocol = self.transports.accept(stream_protocol(self.transport), self.transport,
                                          address, self.point)
        protocol.factory = self
        return protocol


class Refused(Protocol):
    """Closes a connection that is over the cap as soon as it is made."""

    def connectionMade(self):
        self.transport.abortConnection()


class StreamProtocol(Protocol):
    """
    A TCP connection: frames the byte stream into messages for its
    L{Connection}, and is that connection's pipe.
    """

    def __init__(self, connection, parser):
        """C{parser}: the stack's L{Parser}, whose memos the stream shares."""
        self.connection = connection
        self.parser = parser.stream()

    def connectionMade(self):
        self.connection.attached(self)
        self.connection.opened()

    def dataReceived(self, data):
        while True:
            try:
                for item in self.parser.feed(data):
                    self.connection.received(item)
                return
            except FramingError as error:
                self.connection.malformed(error)
                self.close()
                return
            except ParseError as error:
                self.connection.malformed(error)
                data = b""  # go on with what the parser holds after the bad message

    def write(self, data):
        self.transport.write(data)

    def close(self):
        self.transport.loseConnection()

    def abort(self):
        self.transport.abortConnection()

    def connectionLost(self, reason):
        self.connection.lost(reason)


@implementer(IHandshakeListener)
class TLSStreamProtocol(StreamProtocol):
    """A TLS connection: it opens when the handshake is done, so that
    messages sent before then wait, and are reported if it fails."""

    def connectionMade(self):
        self.connection.attached(self)

    def handshakeCompleted(self):
        self.connection.opened()


def stream_protocol(transport):
    return TLSStreamProtocol if transport == "tls" else StreamProtocol
