"""
PUBLISH and SUBSCRIBE(+NOTIFY) per CPU second through the whole presence
server in one process, without the network: what bench/sip_stack.py is for
OPTIONS, for bench/presence.sh's two SIPp loads.

The server is what `twistd slee` runs on its defaults (the integrated
profile, FileStorage in a temporary var directory, group commits), with the
presence server's default policy set to allow, as bench/presence.sh sets it.
The SIP RA's UDP protocol is handed datagrams directly and its socket
writes are kept; the SUBSCRIBE load answers each NOTIFY the server sends
with a 200, as SIPp's scenario does.

  - publish: an initial PUBLISH of a new presentity per request
    (bench/presence/publish.xml);
  - subscribe: a new watcher per request subscribes to one of 1,000
    presentities published first (bench/presence/subscribe.xml); a request
    is the SUBSCRIBE, its 200, the NOTIFY and the 200 answering it;
  - fanout: --requests watchers subscribe to one presentity first; each
    round, a PUBLISH changes its state, and a request is one watcher's
    NOTIFY and the 200 answering it (bench/presence_fanout.py's figure).

It isolates slee's own work per request from the kernel, the reactor and
SIPp, so it is the figure to watch while optimizing; bench/presence.sh
measures the real thing against Kamailio.

Usage: python bench/presence_stack.py [--load publish|subscribe|fanout] [--requests N]
           [--rounds R] [--profile FILE]

Prints requests per CPU second for each round (the first one warms up)
and for the best round after it, the steadiest figure on a noisy machine;
--profile writes a cProfile of the rounds after the warm-up to FILE, and
prints the Python function calls per request, a figure the machine's noise
does not move.
"""

import argparse
import cProfile
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

from twisted.internet import reactor, task

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT))

from slee.runtime import SleeService  # noqa: E402
from slee.settings import DEFAULT_PROFILE, Settings, shipped_profiles, shipped_units  # noqa: E402

PUBLISH = (
    "PUBLISH sip:{name}@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:{name}@example.com>;tag={n}SIPpTag001\r\n"
    "To: <sip:{name}@example.com>\r\n"
    "Call-ID: {n}-4242@127.0.0.1\r\n"
    "CSeq: 1 PUBLISH\r\n"
    "Event: presence\r\n"
    "Expires: 3600\r\n{if_match}"
    "Content-Type: application/pidf+xml\r\n"
    "Content-Length: {length}\r\n\r\n{body}")

PIDF = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{name}@example.com">\n'
    '  <tuple id="t1"><status><basic>open</basic></status><note>{note}</note></tuple>\n'
    '</presence>\n')

SUBSCRIBE = (
    "SUBSCRIBE sip:{presentity}@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-{n}-1-0\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:w{n}@example.com>;tag={n}W\r\n"
    "To: <sip:{presentity}@example.com>\r\n"
    "Call-ID: {n}-4343@127.0.0.1\r\n"
    "CSeq: 1 SUBSCRIBE\r\n"
    "Contact: <sip:w{n}@127.0.0.1:{port};transport=UDP>\r\n"
    "Event: presence\r\n"
    "Accept: application/pidf+xml\r\n"
    "Expires: 600\r\n"
    "Content-Length: 0\r\n\r\n")

PRESENTITIES = 1000     # the SUBSCRIBE load watches these, in turn
CLIENTS = 1000          # source ports the requests come from
READS_PER_DRAIN = 200   # datagrams read between two batches, as a busy reactor would
POLICY_LINE = 'env = { default-policy = "confirm" }'


def publish(number, name, note="", etag=None):
    body = PIDF.format(name=name, note=note)
    port = 40000 + number % CLIENTS
    if_match = "" if etag is None else f"SIP-If-Match: {etag}\r\n"
    return (PUBLISH.format(name=name, n=number, port=port, length=len(body), body=body,
                           if_match=if_match).encode(), ("127.0.0.1", port))


def subscribe(number, presentity=None):
    port = 40000 + number % CLIENTS
    presentity = presentity or f"p{number % PRESENTITIES}"
    return (SUBSCRIBE.format(presentity=presentity, n=number, port=port).encode(),
            ("127.0.0.1", port))


def answer(notify):
    """The 200 a watcher sends for C{notify}: its Via, From, To, Call-ID and CSeq."""
    head = notify.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    kept = [line for line in head[1:]
            if line.split(b":", 1)[0].strip().lower() in (b"via", b"from", b"to", b"call-id",
                                                          b"cseq", b"v", b"f", b"t", b"i")]
    return b"SIP/2.0 200 OK\r\n" + b"\r\n".join(kept) + b"\r\nContent-Length: 0\r\n\r\n"


def units_with_allow(directory):
    """The default profile's shipped units, copied, with the default policy allow."""
    for name in shipped_profiles()[DEFAULT_PROFILE]:
        shutil.copytree(shipped_units() / name, directory / name)
    descriptor = directory / "presence-server" / "deployable.toml"
    text = descriptor.read_text()
    if POLICY_LINE not in text:
        raise SystemExit(f"{descriptor} has no line {POLICY_LINE!r}")
    descriptor.write_text(text.replace(POLICY_LINE, 'env = { default-policy = "allow" }'))


class Server:
    """The presence server in this process, its socket writes kept in C{sent}."""

    def __init__(self, work):
        units = work / "units"
        units.mkdir()
        units_with_allow(units)
        settings = Settings(var=work / "var", deploy_dir=units, admin="tcp:0:interface=127.0.0.1",
                            ra_properties={"sip": {"endpoints": ["udp:0:interface=127.0.0.1"]},
                                           "xcap": {"endpoint": "tcp:0:interface=127.0.0.1"}})
        self.service = SleeService(settings, reactor)
        self.sent = []

    async def start(self):
        self.service.startService()
        await self.service.ready
        transports = self.service.container.registry.ra_entities["sip"].adaptor.transports
        socket, = transports._datagram_sockets.values()
        socket.socket_port.write = lambda data, address: self.sent.append((data, address))
        self.socket = socket

    def feed(self, datagrams):
        """Hand C{datagrams} to the RA, running the router as a busy reactor would."""
        router = self.service.container.router
        for index, (data, address) in enumerate(datagrams, 1):
            self.socket.datagramReceived(data, address)
            if index % READS_PER_DRAIN == 0:
                router.drain()
                router.collector()
        router.drain()
        router.collector()

    def take(self):
        sent, self.sent = self.sent, []
        return sent


def publish_round(server, first, count):
    server.feed([publish(n, f"q{n}") for n in range(first, first + count)])
    sent = server.take()
    assert len(sent) == count and all(d.startswith(b"SIP/2.0 200 ") for d, _ in sent), sent[:1]


def subscribe_round(server, first, count, presentity=None):
    server.feed([subscribe(n, presentity) for n in range(first, first + count)])
    sent = server.take()
    notifies = [(d, a) for d, a in sent if d.startswith(b"NOTIFY ")]
    assert len(notifies) == count and len(sent) == 2 * count, (len(notifies), len(sent))
    server.feed([(answer(d), a) for d, a in notifies])
    assert not server.take()


FANOUT = "fan"      # the fanout load's presentity


def fanout_round(server, first, count):
    """A change of the watched presentity's state: its 200, the NOTIFYs, their answers."""
    server.feed([publish(first, FANOUT, note=str(first), etag=server.etag)])
    sent = server.take()
    answered, = (d for d, _ in sent if d.startswith(b"SIP/2.0 "))
    server.etag = _header(answered, b"SIP-ETag")
    notifies = [(d, a) for d, a in sent if d.startswith(b"NOTIFY ")]
    assert len(notifies) == count and str(first).encode() in notifies[-1][0], len(notifies)
    server.feed([(answer(d), a) for d, a in notifies])
    assert not server.take()


def _header(message, name):
    for line in message.split(b"\r\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(f"no {name!r} in {message[:200]!r}")


async def run(options):
    work = Path(tempfile.mkdtemp(prefix="presence-stack-"))
    server = Server(work)
    await server.start()
    run_round = {"publish": publish_round, "subscribe": subscribe_round,
                 "fanout": fanout_round}[options.load]
    if options.load == "subscribe":
        server.feed([publish(n, f"p{n}") for n in range(PRESENTITIES)])
        server.take()
    if options.load == "fanout":
        server.feed([publish(0, FANOUT)])
        server.etag = _header(server.take()[0][0], b"SIP-ETag")
        subscribe_round(server, PRESENTITIES, options.requests, FANOUT)
    profiler = cProfile.Profile() if options.profile else None
    number = PRESENTITIES + options.requests
    unit = {"publish": "PUBLISH", "subscribe": "SUBSCRIBE", "fanout": "NOTIFY"}[options.load]
    best = None
    for round_ in range(options.rounds):
        if profiler is not None and round_ == 1:
            profiler.enable()
        cpu = time.process_time()
        run_round(server, number, options.requests)
        cpu = time.process_time() - cpu
        number += options.requests
        label = "warm-up" if round_ == 0 else f"round {round_}"
        if round_ and (best is None or cpu < best):
            best = cpu
        print(f"{label}: {options.requests / cpu:,.0f} {unit}s per CPU second "
              f"({1e6 * cpu / options.requests:.0f} us each)", flush=True)
    if best is not None:
        print(f"best round: {options.requests / best:,.0f} {unit}s per CPU second "
              f"({1e6 * best / options.requests:.0f} us each)")
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(options.profile)
        calls = pstats.Stats(profiler).total_calls
        print(f"profiled: {calls / (options.requests * (options.rounds - 1)):,.0f} Python "
              f"function calls per {unit} (steadier than time)")
    await server.service.stopService()
    shutil.rmtree(work)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--load", choices=("publish", "subscribe", "fanout"), default="publish")
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", metavar="FILE")
    options = parser.parse_args()
    task.react(lambda _: task.ensureDeferred(run(options)))


if __name__ == "__main__":
    main()
