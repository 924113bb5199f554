"""
Fan-out of one PUBLISH to N watchers of one presentity, over UDP, and the
memory those N subscriptions take in the server: a bench/presence.sh tool,
for any presence server (slee, Kamailio).

What it does, on one UDP socket of 127.0.0.1 that stands for every watcher:

 1. PUBLISH the presentity's state (PIDF, open, Expires 3600) and wait
    for the 200: its SIP-ETag is kept;
 2. read the memory of the server's processes (--pids): VmRSS from
    /proc/PID/status and Pss from /proc/PID/smaps_rollup, each summed;
 3. SUBSCRIBE N watchers (sip:watcherI@example.com, a dialog each,
    Expires 3600), at most --window of them at a time not active yet,
    answering every NOTIFY with 200, until each has had a NOTIFY
    "active" (a server may make a watcher wait pending first); a
    SUBSCRIBE answered 503 (a server shedding the burst) goes again after
    its Retry-After, as a client's does (the window, 50 by default, is
    small enough that slee's door sheds none: a copy of a refused
    SUBSCRIBE that was already on its way may be let in, and leave a
    subscription the tool does not know of);
 4. after --settle seconds, read the memory again;
 5. send a PUBLISH that changes the state (SIP-If-Match, a new marker in
    the tuple's note) and time it: from just before it is sent to the
    moment the N-th watcher got a NOTIFY whose body carries the marker.

Requests are sent again every second until answered (UDP loses datagrams
under load; a server retransmits its NOTIFYs too, and each is answered).
The tool itself parses little: it finds the header lines it needs by
name, as bytes; with the server it shares the machine's CPUs, and its
own speed bounds the fan-out time it can see.

Usage:

    python bench/presence_fanout.py --server 127.0.0.1:5060 --watchers 10000 \\
        [--presentity sip:fanout@example.com] [--pids "PID ..."] [--window 50] \\
        [--settle 2] [--timeout 300]

Prints one line of key=value pairs (subscribed, subscribe_seconds,
publish_answer_seconds, fanout_seconds, notified, and with --pids
rss_before_kib, rss_after_kib, pss_before_kib, pss_after_kib); exits 1,
saying why on stderr, when a step does not complete within --timeout
seconds.
"""

import argparse
import socket
import sys
import time
import uuid

from twisted.internet import defer, reactor, task
from twisted.internet.protocol import DatagramProtocol

from procmem import memory

#: The kernel receive buffer asked for: the NOTIFYs of a fan-out come in a
#: burst, faster than this process answers them.  As root the tool forces
#: it (SO_RCVBUFFORCE); otherwise net.core.rmem_max caps it, and NOTIFYs the
#: kernel drops come again only with the server's retransmissions.
RECEIVE_BUFFER = 64 * 1024 * 1024

#: Linux's SO_RCVBUFFORCE, which Python's socket module does not name.
SO_RCVBUFFORCE = 33

#: Seconds between two sendings of an unanswered request.
RETRANSMIT_EVERY = 1.0

#: How many times a watcher SUBSCRIBEs when answered 503 (the server's door
#: sheds the window's burst while its queue is long) before it gives up.
MAX_ATTEMPTS = 20

#: Lower-cased line starts of the header fields a response copies from the
#: request it answers (RFC 3261 §8.2.6.2), long and compact forms.
COPIED_FIELDS = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:",
                 b"cseq:")


def pidf(presentity, note):
    """@return: a PIDF document of C{presentity}, open, with C{note} in its tuple."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{presentity}">'
            f'<tuple id="t1"><status><basic>open</basic></status><note>{note}</note>'
            f'</tuple></presence>\r\n').encode()


def header(head, *names):
    """
    @param head: the header lines of a message, lower-cased names or not.
    @return: the value (bytes, stripped) of the first line whose name is one
        of C{names} (lower-case bytes with the colon), or None.
    """
    for line in head:
        if line[:20].lower().startswith(names):
            return line.split(b":", 1)[1].strip()
    return None


class Watchers(DatagramProtocol):
    """
    The presentity's publisher and its N watchers on one socket: sends
    requests, answers NOTIFYs, and keeps what each watcher saw.

    @ivar active: the indexes of the watchers that had an active NOTIFY.
    @ivar notified: the indexes of the watchers that had the marker.
    """

    def __init__(self, server, presentity, count):
        self.server = server
        self.presentity = presentity
        self.count = count
        self.run = uuid.uuid4().hex[:8]
        self.marker = None
        self.active = set()
        self.notified = set()
        self.all_active = defer.Deferred()
        self.all_notified = defer.Deferred()
        self.last_notified_at = None
        self.pending = {}       # Call-ID -> (request bytes, Deferred of the response)
        self.retransmitter = task.LoopingCall(self._retransmit)

    def startProtocol(self):
        try:
            self.transport.socket.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE,
                                             RECEIVE_BUFFER)
        except PermissionError:
            self.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                             RECEIVE_BUFFER)
        host = self.transport.getHost()
        self.local = f"{host.host}:{host.port}"
        self.retransmitter.start(RETRANSMIT_EVERY, now=False)

    def stopProtocol(self):
        if self.retransmitter.running:
            self.retransmitter.stop()

    # -- requests ----------------------------------------------------------------

    def _request(self, method, call_id, from_uri, from_tag, cseq, headers, body=b""):
        """Send a request out of any dialog; @return: a Deferred of its final response."""
        lines = [f"{method} {self.presentity} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.local};branch=z9hG4bK-{call_id}-{cseq};rport",
                 "Max-Forwards: 70",
                 f"From: <{from_uri}>;tag={from_tag}",
                 f"To: <{self.presentity}>",
                 f"Call-ID: {call_id}",
                 f"CSeq: {cseq} {method}",
                 *headers,
                 f"Content-Length: {len(body)}", "", ""]
        request = "\r\n".join(lines).encode() + body
        answered = defer.Deferred()
        self.pending[call_id.encode()] = (request, answered)
        self.transport.write(request, self.server)
        return answered

    def publish(self, note, etag=None):
        """PUBLISH the presentity's state; @return: a Deferred of the response's head."""
        headers = ["Event: presence", "Expires: 3600", "Content-Type: application/pidf+xml"]
        if etag is not None:
            headers.append(f"SIP-If-Match: {etag.decode()}")
        call_id = f"publish-{self.run}-{uuid.uuid4().hex[:8]}"
        return self._request("PUBLISH", call_id, self.presentity, self.run, 1, headers,
                             pidf(self.presentity, note))

    def subscribe_all(self, window):
        """
        SUBSCRIBE every watcher, C{window} at a time: the next one goes
        once one of those before it is active.  A SUBSCRIBE refused fails
        L{all_active}.
        """
        self.next_index = 0
        for _ in range(min(window, self.count)):
            self._subscribe_next()

    def _subscribe_next(self):
        if self.next_index == self.count:
            return
        index = self.next_index
        self.next_index += 1
        self._subscribe(index, 1)

    def _subscribe(self, index, cseq):
        uri = f"sip:watcher{index}@example.com"
        headers = [f"Contact: <sip:watcher{index}@{self.local}>", "Event: presence",
                   "Accept: application/pidf+xml", "Expires: 3600"]
        answered = self._request("SUBSCRIBE", f"watch-{self.run}-{index}", uri, f"w{index}",
                                 cseq, headers)
        answered.addCallback(self._subscribe_answered, index, cseq)

    def _subscribe_answered(self, response, index, cseq):
        status, head = response
        if status == 503 and cseq < MAX_ATTEMPTS:
            # An overloaded server's door (RFC 3261 §21.5.4): try again
            # when it says, as a client does.
            retry_after = header(head, b"retry-after:")
            delay = int(retry_after.split(b";")[0]) if retry_after else 1
            reactor.callLater(delay, self._subscribe, index, cseq + 1)
        elif status >= 300 and not self.all_active.called:
            self.all_active.errback(SystemExit(
                f"presence_fanout: the SUBSCRIBE of watcher {index} got "
                f"{head[0][8:].decode(errors='replace')}"))

    def _retransmit(self):
        for request, _ in list(self.pending.values()):
            self.transport.write(request, self.server)

    # -- what comes in -------------------------------------------------------------

    def datagramReceived(self, datagram, address):
        end = datagram.find(b"\r\n\r\n")
        if end < 0:
            return
        head = datagram[:end].split(b"\r\n")
        if head[0].startswith(b"SIP/2.0 "):
            status = int(head[0][8:11])
            if status >= 200:
                waiting = self.pending.pop(header(head, b"call-id:", b"i:"), None)
                if waiting is not None:
                    waiting[1].callback((status, head))
        elif head[0].startswith(b"NOTIFY "):
            self._notified(head, datagram[end + 4:], address)

    def _notified(self, head, body, address):
        copied = [line for line in head[1:] if line[:8].lower().startswith(COPIED_FIELDS)]
        self.transport.write(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(copied)
                             + b"\r\nContent-Length: 0\r\n\r\n", address)
        call_id = header(head, b"call-id:", b"i:") or b""
        if not call_id.startswith(f"watch-{self.run}-".encode()):
            return
        index = int(call_id.rsplit(b"-", 1)[1])
        state = header(head, b"subscription-state:") or b""
        if state.startswith(b"active") and index not in self.active:
            self.active.add(index)
            self._subscribe_next()
            if len(self.active) == self.count:
                self.all_active.callback(None)
        if self.marker is not None and self.marker in body and index not in self.notified:
            self.notified.add(index)
            if len(self.notified) == self.count:
                self.last_notified_at = time.perf_counter()
                self.all_notified.callback(None)


def within(deferred, seconds, what):
    """@return: C{deferred}, failing with a message naming C{what} after C{seconds}."""
    def timed_out(failure):
        failure.trap(defer.TimeoutError)
        raise SystemExit(f"presence_fanout: {what} did not happen within {seconds:g} s")
    return deferred.addTimeout(seconds, reactor).addErrback(timed_out)


async def fan_out(options):
    """Steps 1 to 5 of the module docstring; @return: the results, by name."""
    host, port = options.server.rsplit(":", 1)
    watchers = Watchers((host, int(port)), options.presentity, options.watchers)
    listening = reactor.listenUDP(0, watchers, interface="127.0.0.1")
    results = {}
    try:
        status, head = await within(watchers.publish("before"), options.timeout,
                                    "the 200 to the first PUBLISH")
        etag = header(head, b"sip-etag:")
        if status != 200 or etag is None:
            raise SystemExit(f"presence_fanout: the first PUBLISH got {status}")
        if options.pids:
            results["rss_before_kib"], results["pss_before_kib"] = memory(options.pids)

        started = time.perf_counter()
        watchers.subscribe_all(options.window)
        await within(watchers.all_active, options.timeout,
                     f"an active NOTIFY to each of {options.watchers} watchers")
        results["subscribed"] = len(watchers.active)
        results["subscribe_seconds"] = round(time.perf_counter() - started, 3)

        if options.pids:
            await task.deferLater(reactor, options.settle, lambda: None)
            results["rss_after_kib"], results["pss_after_kib"] = memory(options.pids)

        watchers.marker = f"fan-out-{uuid.uuid4().hex}".encode()
        sent = time.perf_counter()
        status, _ = await within(watchers.publish(watchers.marker.decode(), etag),
                                 options.timeout, "the 200 to the changing PUBLISH")
        results["publish_answer_seconds"] = round(time.perf_counter() - sent, 4)
        if status != 200:
            raise SystemExit(f"presence_fanout: the changing PUBLISH got {status}")
        await within(watchers.all_notified, options.timeout,
                     f"the change to reach {options.watchers} watchers")
        results["notified"] = len(watchers.notified)
        results["fanout_seconds"] = round(watchers.last_notified_at - sent, 4)
        return results
    finally:
        await listening.stopListening()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the server's HOST:PORT (UDP)")
    parser.add_argument("--watchers", type=int, required=True, help="how many watchers")
    parser.add_argument("--presentity", default="sip:fanout@example.com")
    parser.add_argument("--pids", type=lambda text: [int(pid) for pid in text.split()],
                        default=[], help="the server's processes, for their memory")
    parser.add_argument("--window", type=int, default=50,
                        help="most SUBSCRIBEs waiting for their answer at once")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds between the last active NOTIFY and reading memory")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds each step may take")
    options = parser.parse_args(argv)
    outcome = {}

    def done(results):
        outcome["results"] = results

    def failed(failure):
        outcome["error"] = failure.value if failure.check(SystemExit) else failure

    def start():
        d = defer.ensureDeferred(fan_out(options))
        d.addCallbacks(done, failed).addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if "results" not in outcome:
        print(outcome.get("error", "presence_fanout: stopped"), file=sys.stderr)
        return 1
    print(" ".join(f"{name}={value}" for name, value in outcome["results"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
