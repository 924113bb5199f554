"""
OPTIONS per CPU second through the whole stack in one process, without the
network: the SIP RA's UDP protocol is handed datagrams directly and its
socket writes are kept in a list.  Everything else is what `twistd slee`
runs: parsing, the transaction layer, the RA, the event router's group
commits (memory://), the OPTIONS service's SBB, the 200 and its lingering
record.

It isolates what slee adds per request from the kernel, the reactor and
SIPp, so it is the figure to watch while optimizing; bench/sip_options.sh
measures the real thing against the ceiling.

Usage: python bench/sip_stack.py [--requests N] [--rounds R]

Prints requests per CPU second for each round (the first one warms up),
and the collector's share of the time.
"""

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

import zodburi
import ZODB
from twisted.internet import reactor, task

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from resource_adaptors.sip.datagram import DatagramSocket  # noqa: E402
from slee.container import Container  # noqa: E402
from slee.collector import TurnCollector  # noqa: E402
from slee.settings import shipped_units  # noqa: E402

# What SIPp's OPTIONS scenario (tests/sip/scenarios/options_uac.xml) sends.
OPTIONS = (
    "OPTIONS sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:sipp@127.0.0.1:{port}>;tag={n}SIPpTag001\r\n"
    "To: <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: {n}-4242@127.0.0.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Contact: <sip:sipp@127.0.0.1:{port};transport=UDP>\r\n"
    "Accept: application/sdp\r\n"
    "Content-Length: 0\r\n\r\n")

CLIENTS = 1000     # source ports the requests come from
READS_PER_DRAIN = 200   # datagrams read between two batches, as a busy reactor would


class CollectorClock:
    """Adds up the time the garbage collector runs."""

    def __init__(self):
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start":
            self._started = time.process_time()
        else:
            self.total += time.process_time() - self._started


async def run(options):
    db = ZODB.DB(zodburi.resolve_uri("memory://")[0]())
    container = Container(db, tempfile.mkdtemp(prefix="sip-stack-"), clock=reactor,
                          ra_properties={"sip": {"endpoints": ["udp:0:interface=127.0.0.1"]}})
    await container.start()
    for unit in ("sip", "options"):
        deployed = await container.deploy(str(shipped_units() / unit))
        for service in deployed["services"]:
            container.activate(service)
    socket, = (o for o in gc.get_objects() if isinstance(o, DatagramSocket))
    sent = []
    socket.socket_port.write = lambda data, address: sent.append(data)
    # What twistd slee does once up: the router collects at the end of each
    # turn, which each drain below stands for.
    turn_collector = TurnCollector()
    turn_collector.install()
    collector = CollectorClock()
    number = 0
    for round_ in range(options.rounds):
        datagrams = []
        for _ in range(options.requests):
            number += 1
            port = 40000 + number % CLIENTS
            datagrams.append((OPTIONS.format(n=number, port=port).encode(), ("127.0.0.1", port)))
        sent.clear()
        collected, cpu = collector.total, time.process_time()
        for index, (data, address) in enumerate(datagrams, 1):
            socket.datagramReceived(data, address)
            if index % READS_PER_DRAIN == 0:
                container.router.drain()
                turn_collector()
        container.router.drain()
        turn_collector()
        cpu = time.process_time() - cpu
        assert len(sent) == options.requests and all(b" 200 OK\r\n" in d[:20] for d in sent)
        label = "warm-up" if round_ == 0 else f"round {round_}"
        print(f"{label}: {options.requests / cpu:,.0f} OPTIONS per CPU second "
              f"({1e6 * cpu / options.requests:.1f} us each, garbage collector "
              f"{100 * (collector.total - collected) / cpu:.0f}%)", flush=True)
    await container.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=4)
    options = parser.parse_args()
    failure = []
    task.react(lambda _: task.ensureDeferred(run(options)).addErrback(failure.append))
    if failure:
        failure[0].printTraceback()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
