"""
Connection control of the SIP transport, over real TCP sockets: thousands
of idle connections do not lock a new client out, one source does not get
more than its share, and an idle connection closes unless a dialog or a
registration uses it.

Every 127.x.y.z address is the machine's (Linux), so a flood and a newcomer
come from addresses of their own: a client binds its source address before
it connects.
"""

import re
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock

from resource_adaptors.sip.adaptor import SipResourceAdaptor
from resource_adaptors.sip.transports import DEFAULT_MAX_CONNECTIONS_PER_PEER, reserve_descriptors
from sipclient import TIMEOUT, StreamPeer, options, reply
from slee.errors import ConfigurationError
from slee.settings import shipped_units
from transport_harness import network, warnings, within  # noqa: F401 (fixtures)
from units import UNITS, started_container

LOCAL = "interface=127.0.0.1"
IDLE_TIMEOUT = 300.0    # the RA's default
USER = "sip:service@127.0.0.1"      # the To of sipclient.options


class Quiet(Protocol):
    """
    A client that sends a keep-alive ping (RFC 5626) when it connects and
    when asked, and nothing else: a pong proves that the server took the
    connection, or that it still works.
    """

    def __init__(self):
        self.pongs = defer.DeferredQueue()
        self.closed = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"\r\n\r\n")

    def dataReceived(self, data):
        self.pongs.put(data)

    def connectionLost(self, reason):
        self.closed.callback(None)

    def pong(self):
        """A Deferred firing with the next pong."""
        return within(self.pongs.get())

    def ping(self):
        self.transport.write(b"\r\n\r\n")
        return self.pong()


class Clients:
    """The test's connections to one port, each from the source address it
    names; all closed at the end."""

    def __init__(self, port):
        self.port = port
        self.all = []

    async def connect(self, protocol, source="127.0.0.1"):
        from twisted.internet import reactor
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=TIMEOUT,
                                      bindAddress=(source, 0))
        client = await within(connectProtocol(endpoint, protocol))
        self.all.append(client)
        return client

    def peer(self, source="127.0.0.1"):
        """A connected L{StreamPeer} from C{source}."""
        from twisted.internet import reactor
        return self.connect(StreamPeer(reactor), source)

    async def quiet(self, source, count, batch=50):
        """C{count} L{Quiet} connections from C{source}, taken by the server;
        made C{batch} at a time, which the listen backlog holds."""
        made = []
        for start in range(0, count, batch):
            clients = await within(defer.gatherResults(
                [defer.ensureDeferred(self.connect(Quiet(), source))
                 for _ in range(min(batch, count - start))]))
            await within(defer.gatherResults([client.pong() for client in clients]))
            made += clients
        return made

    async def close(self):
        for client in self.all:
            client.transport.abortConnection()
        await within(defer.gatherResults([client.closed for client in self.all]), 60)


@pytest_twisted.async_yield_fixture
async def slee(tmp_path):
    """A started container whose SIP RA listens on TCP only (its properties
    the defaults), with the registrar, OPTIONS and the test subscription
    service: its SIP RA, and L{Clients} of it."""
    units = [shipped_units() / "sip", shipped_units() / "options", shipped_units() / "registrar",
             UNITS / "sipprobe"]
    container = await started_container(tmp_path, units, {"sip": {"endpoints": [f"tcp:0:{LOCAL}"]}})
    sip = container.registry.ra_entities["sip"].adaptor
    clients = Clients(sip.transports.listening_point("tcp").port)
    try:
        yield sip, clients
    finally:
        await clients.close()
        await container.stop()


async def ask(client, port, **kwargs):
    """Send a request over a L{StreamPeer}; @return: its final answer."""
    client.send(options(port, "TCP", client.port, **kwargs))
    answer = await client.next()
    while answer.status < 200:
        answer = await client.next()
    return answer


def register(client, port, device, expires=600, cseq=1):
    """A REGISTER of the test user's C{device} (its own Call-ID) over a
    L{StreamPeer}; @return: its final answer."""
    return ask(client, port, method="REGISTER", uri="sip:127.0.0.1", call_id=f"{device}-call",
               from_uri=USER, contact=f"sip:{device}@127.0.0.1:{client.port};transport=tcp",
               cseq=cseq, headers=f"Expires: {expires}\r\n")


# -- bounds ----------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_thousands_of_idle_connections_leave_room_for_new_clients(slee, warnings):
    sip, clients = slee
    port = clients.port
    sources = [f"127.0.1.{n}" for n in range(1, 11)]
    flood = []
    for source in sources:      # 10 sources, each with as many as it may open: 5,000
        flood += await clients.quiet(source, DEFAULT_MAX_CONNECTIONS_PER_PEER)
    assert len(flood) == 5000

    # A source at its bound is refused, at once...
    refused = await clients.connect(Quiet(), sources[0])
    await within(refused.closed)
    assert not refused.pongs.pending
    assert any(f"{DEFAULT_MAX_CONNECTIONS_PER_PEER} connections from 127.0.1.1 are open" in text
               for text in warnings)
    # ...while a newcomer gets in and is answered, and the flood's are still open.
    newcomer = await clients.peer("127.0.0.1")
    assert (await ask(newcomer, port)).status == 200
    registering = await clients.peer("127.0.2.1")
    assert (await register(registering, port, "newcomer")).status == 200
    await within(defer.gatherResults([client.ping() for client in flood[::50]]))


@pytest_twisted.ensureDeferred
async def test_connections_beyond_a_sources_bound_are_refused(network, warnings):
    stack = network.stack(max_connections_per_peer=3)
    point = await stack.listen(f"tcp:0:{LOCAL}")
    clients = Clients(point.port)
    try:
        kept = [await clients.peer("127.0.3.1") for _ in range(3)]
        for client in kept:
            assert (await ask(client, point.port)).status == 200
        connections = [(await stack.receiver.next())[1].connection for _ in kept]
        refused = [await clients.connect(Quiet(), "127.0.3.1") for _ in range(20)]
        await within(defer.gatherResults([client.closed for client in refused]))
        assert len(warnings) == 5, "held back after a burst"
        assert "3 connections from 127.0.3.1 are open" in warnings[0]
        other = await clients.peer("127.0.3.2")
        assert (await ask(other, point.port)).status == 200
        for client in kept:
            assert (await ask(client, point.port)).status == 200

        # Once one of the source's goes, it may open one again.
        await within(connections[0].close())
        again = await clients.peer("127.0.3.1")
        assert (await ask(again, point.port)).status == 200
    finally:
        await clients.close()


@pytest.mark.parametrize("value, complaint", [
    (0, "property 'max-connections-per-peer': must be > 0, not 0"),
    ("many", "property 'max-connections-per-peer': expected int"),
])
def test_a_bad_bound_is_refused_naming_it(value, complaint):
    with pytest.raises(ConfigurationError, match=re.escape(complaint)):
        SipResourceAdaptor().configure({"max-connections-per-peer": value})


def test_the_process_may_open_as_many_files_as_connections_allowed():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > 4096, "a hard limit to test under"
    lowered = 4096
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert reserve_descriptors(100) is None
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == lowered, "enough already"
        assert reserve_descriptors(lowered) is None
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] > lowered
        if hard != resource.RLIM_INFINITY:
            assert reserve_descriptors(hard) == hard, "short of the hard limit"
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- the idle timeout ------------------------------------------------------------


async def idle_stack(network, clock, idle_timeout=30):
    """A stack whose connections close after C{idle_timeout} on C{clock};
    a client connected to it, the connection the stack sees, and the port."""
    stack = network.stack(clock=clock, idle_timeout=idle_timeout)
    point = await stack.listen(f"tcp:0:{LOCAL}")
    client = await network.stream_peer(point.port)
    assert (await ask(client, point.port)).status == 200
    _, peer = await stack.receiver.next()
    return client, peer.connection, point.port


@pytest_twisted.ensureDeferred
async def test_a_held_connection_stays_however_idle_until_released(network):
    """(A connection that is closed reads nothing more: a request answered
    shows that it was not.)"""
    clock = Clock()
    client, connection, port = await idle_stack(network, clock)
    connection.hold("dialog 1")
    connection.hold("dialog 2")
    clock.advance(1000)
    assert (await ask(client, port)).status == 200
    connection.release("dialog 1")
    clock.advance(1000)
    assert (await ask(client, port)).status == 200
    connection.release("dialog 2")
    connection.release("dialog 2")      # twice: nothing more
    clock.advance(30)
    await within(client.closed)
    assert connection.closed


@pytest_twisted.ensureDeferred
async def test_a_connection_held_until_a_time_closes_then(network):
    clock = Clock()
    client, connection, port = await idle_stack(network, clock)
    connection.hold("registration", until=100)
    clock.advance(99)
    assert (await ask(client, port)).status == 200
    connection.hold("registration", until=150)      # refreshed
    clock.advance(50)
    assert (await ask(client, port)).status == 200
    clock.advance(30)                               # past it, and idle since
    await within(client.closed)


@pytest_twisted.ensureDeferred
async def test_a_held_connection_still_closes_when_the_peer_closes_it(network):
    clock = Clock()
    client, connection, _ = await idle_stack(network, clock)
    connection.hold("dialog")
    client.transport.loseConnection()
    await within(client.closed)
    await within(connection.close())
    connection.hold("dialog")           # a closed connection is held by nobody
    assert connection.closed


@pytest_twisted.ensureDeferred
async def test_the_ra_holds_connections_for_dialogs_and_registrations(slee):
    """
    Over the RA: an unused connection closes when idle; one with a
    subscription dialog stays until the dialog ends, one with a
    registration until it expires, or until it is removed.
    """
    from twisted.internet import reactor
    sip, clients = slee
    clock = sip.transports.clock = Clock()
    port = clients.port
    unused, subscriber, phone, leaving = [await clients.peer() for _ in range(4)]
    assert (await ask(unused, port)).status == 200

    call_id = uuid.uuid4().hex
    assert (await ask(subscriber, port, method="SUBSCRIBE", call_id=call_id,
                      headers="Event: test\r\nExpires: 60\r\n")).status == 200
    notify = await subscriber.next()
    subscriber.send(reply(notify))

    # Two phones of one user, on connections of their own; one leaves.
    assert (await register(phone, port, "phone", expires=1000)).status == 200
    assert (await register(leaving, port, "leaving", expires=1000)).status == 200
    left = await register(leaving, port, "leaving", expires=0, cseq=2)
    assert left.status == 200 and len(left.contact) == 1, "the phone's binding"

    clock.advance(IDLE_TIMEOUT)
    await within(defer.gatherResults([unused.closed, leaving.closed]))
    assert (await ask(phone, port)).status == 200       # still open

    # The subscriber ends its subscription; its connection is then like any other.
    subscriber.send(options(port, "TCP", subscriber.port, method="SUBSCRIBE", call_id=call_id,
                            cseq=2, from_tag=notify.to.tag, to_tag=notify.from_.tag,
                            headers="Event: test\r\nExpires: 0\r\n"))
    assert (await subscriber.next()).status == 200
    last = await subscriber.next()
    subscriber.send(reply(last))
    journal = sip_journal()
    await journal.wait_for(("notify answered", 200), count=2).addTimeout(TIMEOUT, reactor)
    assert not sip.dialogs
    clock.advance(IDLE_TIMEOUT)
    await within(subscriber.closed)
    assert (await ask(phone, port)).status == 200

    clock.advance(1000 - 2 * IDLE_TIMEOUT)      # the registration expires
    await within(phone.closed)


def sip_journal():
    import sipprobe_unit
    return sipprobe_unit.JOURNAL
