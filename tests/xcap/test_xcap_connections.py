"""
The XCAP server's connections over real sockets on loopback addresses (each
127.x.y.z a peer of its own): a request that comes too slowly gets 408, an
early 413 reaches a client that sends its whole body before reading, the
lingering after it is bounded, connections are bounded in all and per peer
while those open keep working, and idle ones are closed; a plain client
sees none of it.  The deadlines are made short in the RA's properties and
the tests wait for the server to act, bounded by L{within}.
"""

import re
import socket

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.error import ConnectError, ConnectionDone
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from resource_adaptors.xcap.adaptor import XcapResourceAdaptor
from slee.errors import ConfigurationError
from slee.settings import shipped_units
from sipclient import TIMEOUT
from transport_harness import within
from units import LOCAL_RAS, started_container, xcap_port_of

DOC = "/xcap-root/resource-lists/users/sip:joe@example.com/index"
LIST = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>\n')
GET = f"GET {DOC} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def put(length, *fields):
    """The head of a PUT of the document with a body of C{length} bytes."""
    return "\r\n".join([f"PUT {DOC} HTTP/1.1", "Host: x",
                        "Content-Type: application/resource-lists+xml",
                        f"Content-Length: {length}", *fields, "", ""]).encode()


def status(answer):
    return int(answer.split(b" ", 2)[1])


@implementer(IHalfCloseableProtocol)
class Client(Protocol):
    """
    A raw HTTP client: the test writes what it likes, and reads the answers
    (framed by their Content-Length).  When the server shuts its write side
    (C{eof} fires), it closes, as most clients do, unless it C{ignores_eof}.
    """

    def __init__(self, ignores_eof=False):
        self.ignores_eof = ignores_eof
        self.buffer = b""
        self.eof = defer.Deferred()
        self.closed = defer.Deferred()
        self._waiting = []

    def next_answer(self):
        answer = defer.Deferred()
        self._waiting.append(answer)
        self._deliver()
        return within(answer)

    def dataReceived(self, data):
        self.buffer += data
        self._deliver()

    def _deliver(self):
        while self._waiting:
            head, blank, rest = self.buffer.partition(b"\r\n\r\n")
            if not blank:
                return
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            self._waiting.pop(0).callback(head + blank + rest[:length])

    def readConnectionLost(self):
        self.eof.callback(None)
        if not self.ignores_eof:
            self.transport.loseConnection()

    def writeConnectionLost(self):
        pass

    def connectionLost(self, reason):
        for answer in self._waiting:
            answer.errback(reason)
        self.closed.callback(reason.value)     # the exception: how it ended


class Server:
    """The XCAP RA and the XDMS in a container, and the clients connected to it."""

    def __init__(self, directory):
        self.directory = directory
        self.container = None
        self.port = None
        self.clients = []

    async def start(self, **properties):
        self.container = await started_container(
            self.directory, [shipped_units() / "xcap", shipped_units() / "xdms"],
            ra_properties={"xcap": {**LOCAL_RAS["xcap"], **properties}})
        self.port = xcap_port_of(self.container)

    async def connect(self, source="127.0.0.1", ignores_eof=False):
        """@return: a L{Client} connected from C{source}."""
        from twisted.internet import reactor
        client = Client(ignores_eof)
        self.clients.append(client)
        await within(connectProtocol(
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=TIMEOUT,
                               bindAddress=(source, 0)), client))
        return client

    async def stop(self):
        for client in self.clients:
            if client.transport is not None and client.transport.connected:
                client.transport.abortConnection()
                await within(client.closed)
        if self.container is not None:
            await self.container.stop()


@pytest_twisted.async_yield_fixture
async def server(tmp_path):
    server = Server(tmp_path)
    yield server
    await server.stop()


def dribble(client, data, size=1, interval=0.05):
    """Send C{data} C{size} bytes every C{interval} seconds; @return: the running LoopingCall."""
    from twisted.internet import reactor
    chunks = iter(data[i:i + size] for i in range(0, len(data), size))
    loop = LoopingCall(lambda: client.transport.write(next(chunks, b"")))
    loop.clock = reactor
    loop.start(interval)
    return loop


async def timed_out(client, loop):
    """@return: the seconds until C{client}, sending with C{loop}, got a 408 and was closed."""
    from twisted.internet import reactor
    started = reactor.seconds()
    try:
        answer = await client.next_answer()
        ended = await within(client.closed)
    finally:
        loop.stop()
    assert status(answer) == 408
    assert b"connection: close" in answer.lower()
    assert isinstance(ended, ConnectionDone)
    return reactor.seconds() - started


@pytest_twisted.ensureDeferred
async def test_a_plain_client_is_served_on_one_connection(server):
    await server.start()
    client = await server.connect()
    client.transport.write(put(len(LIST)) + LIST)
    assert status(await client.next_answer()) == 201
    client.transport.write(GET)
    answer = await client.next_answer()
    assert status(answer) == 200 and answer.endswith(LIST)


@pytest_twisted.ensureDeferred
async def test_a_request_whose_head_dribbles_gets_408_at_the_header_deadline(server):
    await server.start(**{"header-timeout": 0.5})
    client = await server.connect()
    # A byte every 0.05 s: an idle timeout, reset by each, would never fire.
    loop = dribble(client, GET[:-4] + b"\r\nX-Slow: " + b"a" * 1000)
    assert await timed_out(client, loop) > 0.4


@pytest_twisted.ensureDeferred
async def test_a_body_that_dribbles_gets_408_at_the_body_deadline(server):
    await server.start(**{"body-timeout": 0.5, "body-min-rate": 1000})
    client = await server.connect()
    client.transport.write(put(len(LIST)))
    assert await timed_out(client, dribble(client, LIST)) > 0.4
    reader = await server.connect()
    reader.transport.write(GET)
    assert status(await reader.next_answer()) == 404     # nothing was stored


@pytest_twisted.ensureDeferred
async def test_a_body_at_the_minimum_rate_may_take_longer_than_the_body_timeout(server):
    from twisted.internet import reactor
    await server.start(**{"body-timeout": 0.5, "body-min-rate": 500})
    body = LIST + b" " * (6000 - len(LIST))
    client = await server.connect()
    client.transport.write(put(len(body)))
    started = reactor.seconds()
    # 5000 bytes/s: each chunk moves the deadline 0.5 s, and comes 0.05 s after the last.
    loop = dribble(client, body, size=250)
    try:
        answer = await client.next_answer()
    finally:
        loop.stop()
    assert status(answer) == 201
    assert reactor.seconds() - started > 0.5


def send_all_then_read(port, data):
    """
    A blocking client, as most are: it sends all of C{data}, then reads
    the answer to the end.  @return: what it read, or the error it met.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as connection:
        try:
            connection.sendall(data)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
        except OSError as error:
            return error
        return received


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_a_too_large_body_sent_before_reading_gets_the_413(server, framing):
    # More than the kernel's buffers hold: the client is still sending when the 413 comes.
    await server.start(**{"max-body-size": 1000, "lingering-size": 8 << 20})
    body = b"x" * (4 << 20)
    if framing == "chunked":
        request = put(0, "Transfer-Encoding: chunked").replace(b"Content-Length: 0\r\n", b"")
        request += b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    else:
        request = put(len(body)) + body
    received = await within(deferToThread(send_all_then_read, server.port, request))
    assert not isinstance(received, OSError), received
    assert received.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in received


@pytest_twisted.ensureDeferred
async def test_an_early_413_is_the_only_answer_even_when_100_continue_is_expected(server):
    await server.start(**{"max-body-size": 1000})
    client = await server.connect()
    client.transport.write(put(5000, "Expect: 100-continue"))
    assert status(await client.next_answer()) == 413
    assert isinstance(await within(client.closed), ConnectionDone)
    assert client.buffer == b""


@pytest_twisted.ensureDeferred
async def test_the_lingering_close_is_bounded_in_bytes(server):
    await server.start(**{"max-body-size": 1000, "lingering-size": 100_000,
                          "lingering-time": 60.0})
    client = await server.connect(ignores_eof=True)
    client.transport.write(put(10_000_000))
    assert status(await client.next_answer()) == 413
    await within(client.eof)
    client.transport.write(b"x" * 500_000)
    await within(client.closed)


@pytest_twisted.ensureDeferred
async def test_the_lingering_close_is_bounded_in_time(server):
    await server.start(**{"max-body-size": 1000, "lingering-time": 0.3})
    client = await server.connect(ignores_eof=True)
    client.transport.write(put(10_000_000))
    assert status(await client.next_answer()) == 413
    await within(client.eof)
    # The client neither closes nor sends enough to reach lingering-size: the
    # server closes (a write shows it to the client, which reads no more).
    loop = dribble(client, b"x" * 1000)
    try:
        await within(client.closed)
    finally:
        loop.stop()


async def answered(client, *fields):
    """@return: the status of a GET on C{client}'s connection."""
    client.transport.write(GET[:-2] + b"".join(field + b"\r\n" for field in fields) + b"\r\n")
    return status(await client.next_answer())


async def refused(server, source):
    """Whether a connection from C{source} is closed before any answer."""
    try:
        client = await server.connect(source)
    except ConnectError:
        return True     # reset before the connect was seen through
    await within(client.closed)
    return client.buffer == b""


@pytest.mark.parametrize("properties, sources, beyond", [
    ({"max-connections-per-peer": 2}, ["127.0.0.2", "127.0.0.2"], "127.0.0.2"),
    ({"max-connections": 2}, ["127.0.0.2", "127.0.0.3"], "127.0.0.4"),
])
@pytest_twisted.ensureDeferred
async def test_connections_beyond_the_bounds_are_refused_while_those_open_work(
        server, properties, sources, beyond):
    await server.start(**properties)
    first, second = [await server.connect(source) for source in sources]
    assert await answered(first) == 403     # trust-localhost: 127.0.0.1 only
    assert await answered(second) == 403
    assert await refused(server, beyond)
    if "max-connections" not in properties:
        assert await answered(await server.connect("127.0.0.3")) == 403   # another peer
    assert await answered(first) == 403
    assert await answered(second, b"Connection: close") == 403
    await within(second.closed)     # closed by the server, which counted it out first
    assert await answered(await server.connect(beyond)) == 403


@pytest_twisted.ensureDeferred
async def test_an_idle_connection_is_closed(server):
    await server.start(**{"idle-timeout": 0.3})
    client = await server.connect()
    assert await answered(client) == 404
    assert isinstance(await within(client.closed), ConnectionDone)
    assert client.buffer == b""


@pytest.mark.parametrize("name", ["max-connections", "max-connections-per-peer",
                                  "idle-timeout", "header-timeout", "body-timeout",
                                  "body-min-rate", "lingering-time", "lingering-size"])
def test_bad_connection_properties_are_refused_naming_them(name):
    with pytest.raises(ConfigurationError, match=f"property '{name}': must be > 0"):
        XcapResourceAdaptor().configure({name: 0})
    with pytest.raises(ConfigurationError, match=f"property '{name}': expected"):
        XcapResourceAdaptor().configure({name: "soon"})
