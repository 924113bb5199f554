"""
A line-protocol resource adaptor: each TCP connection is an activity, each
received line an event.  The counter unit's RA, and a complete small
example of the resource adaptor API (it exercises all of it); handy for
scripting a service by hand with C{nc}.  It ships in this test unit, not
among slee's resource adaptors: a unit carries its own code.

Properties:

- C{endpoint}: a Twisted server endpoint (default C{tcp:0:interface=127.0.0.1});
- C{port-file}: where to write the bound port number, for tools and tests
  that listen on port 0 (default: none);
- C{max-line}: the longest line accepted, in bytes (default 4096); a longer
  one closes the connection;
- C{max-connections}: connections beyond this are closed at once (default 1000).

When the container is overloaded (its event queue is full) a line cannot be
delivered: the connection is closed, so the client knows it was not.

Events, on the connection's activity: L{CONNECTION_OPENED}, then one
L{LINE_RECEIVED} per line (the address is the peer's host).  The activity
ends when the connection closes.

SBBs get the L{LineResourceAdaptor} itself as the SBB interface: C{send}
and C{close} act only when the SBB's transaction commits.
"""

import uuid
from dataclasses import dataclass

from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver

from slee.errors import OverloadError
from slee.events import EventType
from slee.resources import Property, ResourceAdaptor, positive
from slee.trace import log_observer

VENDOR = "slee.line"
CONNECTION_OPENED = EventType("ConnectionOpened", VENDOR, "1.0")
LINE_RECEIVED = EventType("LineReceived", VENDOR, "1.0")


@dataclass(frozen=True)
class ConnectionOpened:
    peer: str


@dataclass(frozen=True)
class LineReceived:
    line: str


class LineConnection(LineReceiver):
    """One connection: the activity object SBBs see as C{aci.activity}."""

    delimiter = b"\n"

    def __init__(self, adaptor):
        self.adaptor = adaptor
        self.handle = uuid.uuid4().hex
        self.MAX_LENGTH = adaptor.config["max-line"]

    def connectionMade(self):
        self.adaptor.opened(self)

    def lineReceived(self, line):
        self.adaptor.received(self, line.rstrip(b"\r").decode("utf-8", "replace"))

    def lineLengthExceeded(self, line):
        self.transport.loseConnection()

    def connectionLost(self, reason):
        self.adaptor.closed(self)


class LineResourceAdaptor(ResourceAdaptor):
    """See the module docstring."""

    log = Logger(namespace="slee.ra.line", observer=log_observer)

    properties = {
        "endpoint": Property(str, "tcp:0:interface=127.0.0.1"),
        "port-file": Property(str, ""),
        "max-line": Property(int, 4096, positive),
        "max-connections": Property(int, 1000, positive),
    }
    event_types = (CONNECTION_OPENED, LINE_RECEIVED)

    def __init__(self):
        super().__init__()
        self.connections = {}
        self.listening = None
        self.port = None

    async def activate(self, endpoint):
        super().activate(endpoint)
        factory = Factory.forProtocol(lambda: LineConnection(self))
        listening = serverFromString(endpoint.reactor, self.config["endpoint"])
        self.listening = await listening.listen(factory)
        self.port = self.listening.getHost().port
        if self.config["port-file"]:
            with open(self.config["port-file"], "w") as f:
                f.write(f"{self.port}\n")

    async def stop(self):
        if self.listening is not None:
            await self.listening.stopListening()
            self.listening = None
        for connection in list(self.connections.values()):
            connection.transport.abortConnection()

    def get_activity(self, handle):
        return self.connections.get(handle)

    def opened(self, connection):
        if len(self.connections) >= self.config["max-connections"]:
            connection.transport.abortConnection()
            return
        self.connections[connection.handle] = connection
        self.endpoint.start_activity(connection.handle)
        peer = connection.transport.getPeer()
        self._fire(connection, CONNECTION_OPENED,
                   ConnectionOpened(getattr(peer, "host", str(peer))), None)

    def received(self, connection, line):
        if connection.handle in self.connections:
            peer = connection.transport.getPeer()
            self._fire(connection, LINE_RECEIVED, LineReceived(line),
                       getattr(peer, "host", None))

    def _fire(self, connection, event_type, event, address):
        try:
            self.endpoint.fire_event(connection.handle, event_type, event, address=address)
        except OverloadError as e:
            self.log.warn("closing connection {handle}: {error}", handle=connection.handle,
                          error=str(e))
            connection.transport.loseConnection()

    def closed(self, connection):
        if self.connections.pop(connection.handle, None) is not None:
            self.endpoint.end_activity(connection.handle)

    # The SBB interface.

    def send(self, aci, line):
        """Send a line on the connection behind C{aci}, once committed."""
        connection = aci.activity
        if connection is not None:
            data = line.encode("utf-8") + b"\r\n"
            self.endpoint.after_commit(lambda: connection.transport.write(data))

    def close(self, aci):
        """Close the connection behind C{aci}, once committed."""
        connection = aci.activity
        if connection is not None:
            self.endpoint.after_commit(connection.transport.loseConnection)
