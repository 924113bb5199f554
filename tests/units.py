"""
Helpers for the tests: a container on an in-memory database driven by a
fake clock, and the test units under tests/units.
"""

from pathlib import Path

import zodburi
import ZODB
from twisted.internet import defer
from twisted.internet.task import Clock

from slee.container import Container

UNITS = Path(__file__).parent / "units"


def memory_db():
    factory, options = zodburi.resolve_uri("memory://")
    return ZODB.DB(factory(), **options)


#: The RA properties of a live test: SIP on a free UDP port, XCAP on a free TCP
#: port trusting the local host, all on 127.0.0.1.
LOCAL_RAS = {"xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "auth": "trust-localhost"},
             "sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}}


async def started_container(directory, units, ra_properties=LOCAL_RAS, clock=None, db=None):
    """
    @return: a started container (on the reactor, or C{clock}) with C{units}
        (paths) deployed in that order and their services active; stopped
        again if one of them cannot be deployed.
    """
    if clock is None:
        from twisted.internet import reactor as clock
    container = Container(db or memory_db(), directory, clock=clock, ra_properties=ra_properties)
    await container.start()
    try:
        for unit in units:
            described = await container.deploy(str(unit))
            for service in described["services"]:
                container.activate(service)
    except Exception:
        await container.stop()
        raise
    return container


def sip_port_of(container):
    """The UDP port the container's SIP RA entity listens on."""
    return container.registry.ra_entities["sip"].adaptor.transports.listening[0].port


def xcap_port_of(container):
    """The TCP port the container's XCAP server RA entity listens on."""
    return container.registry.ra_entities["xcap"].adaptor.port.getHost().port


def started(d):
    """@return: the result of a Deferred that must have fired already."""
    results = []
    d.addBoth(results.append)
    assert results, "expected the Deferred to have fired"
    if hasattr(results[0], "raiseException"):
        results[0].raiseException()
    return results[0]


class ContainerHarness:
    """A started container on a fake clock; C{run()} delivers what is queued."""

    def __init__(self, var_dir, db=None, batch_max=256, queue_max=100000):
        self.clock = Clock()
        self.db = db or memory_db()
        self.var_dir = var_dir
        self.container = Container(self.db, var_dir, clock=self.clock, batch_max=batch_max,
                                   queue_max=queue_max)
        started(self.container.start())

    def deploy(self, name, activate=True):
        unit = started(self.container.deploy(str(UNITS / name)))
        if activate:
            for service in unit["services"]:
                self.container.activate(service)
        self.run()
        return unit

    def run(self, seconds=0):
        """
        Deliver everything queued now, then advance the clock by C{seconds}
        and deliver what that made due.
        """
        self._settle()
        if seconds:
            self.clock.advance(seconds)
            self._settle()

    def _settle(self):
        while len(self.container.router) or any(
                c.getTime() <= self.clock.seconds() for c in self.clock.getDelayedCalls()):
            self.clock.advance(0)

    def read(self, function):
        """Run C{function(state)} in a transaction, for assertions."""
        return self.container.router.run_in_transaction(function, self.container.engine.state)

    def stop(self):
        started(self.container.stop())


#: What L{Journal.wait_length} waits for: any entry.
_LENGTH = object()


class Journal(list):
    """
    What the SBBs saw, outside any transaction; tests can wait for an entry.
    A test waiting goes on in the reactor's next turn, not inside the
    delivery that wrote the entry.
    """

    def __init__(self):
        super().__init__()
        self.waiters = []

    def append(self, entry):
        super().append(entry)
        for wanted, d in list(self.waiters):
            if wanted == entry or wanted is _LENGTH:
                from twisted.internet import reactor
                self.waiters.remove((wanted, d))
                reactor.callLater(0, d.callback, entry)

    def wait_for(self, entry, count=1):
        """@return: a Deferred firing once C{entry} was appended C{count} times."""
        if self.count(entry) >= count:
            return defer.succeed(entry)
        d = defer.Deferred()
        self.waiters.append((entry, d))
        return d.addCallback(lambda _: self.wait_for(entry, count))

    def wait_length(self, length):
        """@return: a Deferred firing once the journal holds C{length} entries."""
        if len(self) >= length:
            return defer.succeed(self)
        d = defer.Deferred()
        self.waiters.append((_LENGTH, d))
        return d.addCallback(lambda _: self.wait_length(length))

    def clear(self):
        super().clear()
        self.waiters.clear()


class SteppedClock:
    """
    A container clock for live tests of timers: what is due at once runs on
    the reactor, as the router's turns must; what is due later waits until
    the test advances the clock.  So a test makes an hour pass without
    waiting for it, while real sockets go on working.
    """

    def __init__(self):
        from twisted.internet import reactor, task
        self.reactor = reactor
        self.later = task.Clock()
        self.later.advance(reactor.seconds())

    def seconds(self):
        return self.later.seconds()

    def callLater(self, delay, function, *args, **kwargs):
        if delay <= 0:
            return self.reactor.callLater(0, function, *args, **kwargs)
        return self.later.callLater(delay, function, *args, **kwargs)

    def advance(self, seconds):
        self.later.advance(seconds)
