"""
Subscriptions to a resource list (RFC 4662, RFC 4826) under load, over UDP:
a bench/rls.sh tool, for any resource list server (slee's, Kamailio's).

The list (--list, owned by --owner, its members sip:member0@example.com to
sip:member{N-1}@example.com, --members N) must already be stored in the
server's XDMS (bench/rls/rls-services.xml).  One UDP socket of 127.0.0.1
stands for the members (their PUBLISHes) and for every watcher (a dialog
each, answering every NOTIFY with 200).  Its watchers are all the list's
owner, one dialog per device: Kamailio's rls only finds a list in the
rls-services document of the user who subscribes (bench/rls/kamailio.cfg.in).
A list SUBSCRIBE carries Event: presence, Supported: eventlist and Accept:
application/pidf+xml, application/rlmi+xml, multipart/related.

What it does:

 0. PUBLISH each member's state (PIDF, open, Expires 3600), all at once,
    and wait for the 200s: their SIP-ETags are kept.
 a. One watcher SUBSCRIBEs to the list: the time from sending the SUBSCRIBE
    to the NOTIFY after which it knows every member active with its PIDF
    (RLMI instance state="active" and a body part for its cid).  A NOTIFY
    of full state (fullState="true") replaces what the watcher knew, one of
    partial state updates the resources it names: a server may tell the
    list's state over several NOTIFYs.  The watcher then unsubscribes.
    Again, --repeat-a times in all, one watcher after the other, each
    starting a further 1/--repeat-a s later: the median (a server that
    batches NOTIFYs on a clock of its own, as Kamailio's rls does every
    waitn_time, is met at phases spread over its interval).
 b. --watchers-b watchers subscribe and wait until each knows every member
    active; then the members PUBLISH again (SIP-If-Match, a modify: RFC
    3903) at --rate PUBLISHes/s in all, in turn, for --seconds, each with a
    unique note in its tuple.  Figures: the NOTIFYs/s all the watchers
    received within those seconds, the resources (RLMI <resource>s) per
    NOTIFY, and the time from sending a PUBLISH to each watcher receiving
    the NOTIFY part that carries its note (p50, p99; a server may fold
    several PUBLISHes of a member into one NOTIFY: the note it skips is
    not counted, and the share delivered is printed).  The watchers then
    unsubscribe.
 c. --watchers-c watchers subscribe at once (--watchers-c x --members
    back-end subscriptions; with --window-c N, at most N of them at a time
    subscribed and not yet knowing every member active): the time from the
    first SUBSCRIBE until every watcher knows every member active; and
    with --pids the memory of the server's processes before the first
    SUBSCRIBE and --settle seconds after the last watcher was complete:
    VmRSS (/proc/PID/status) and Pss (/proc/PID/smaps_rollup), each summed
    over the processes.

A NOTIFY whose CSeq is not above the last one of its dialog (the server
sent it again, having missed the 200) is answered and otherwise ignored: a
late full-state NOTIFY would undo what the watcher learnt since.
Unanswered requests are sent again after 1, 2, 4, 4... seconds, for 32 s
(UDP loses datagrams under load; a server retransmits its NOTIFYs too, and
each one is answered).  Each phase waits at most --timeout seconds for what
it waits for, then its figures read "timeout" and the next phase runs.

Usage (stdlib only: any Python 3.9+):

    python3 bench/rls_load.py --server 127.0.0.1:5060 [--list sip:list100@example.com] \\
        [--owner sip:owner@example.com] [--members 100] [--watchers-b 10] \\
        [--watchers-c 100] [--window-c 100] [--rate 100] [--seconds 10] \\
        [--repeat-a 5] [--pids "PID ..."] [--timeout 120] [--settle 2] [--phases abc]

Prints a line per step, then one line "RESULT key=value ..." (a_seconds,
a_min, a_max, b_publishes, b_notifies_per_second, b_resources_per_notify,
b_latency_p50, b_latency_p99, b_delivered, c_seconds (c_complete: the
watchers complete, when it timed out), and with --pids
c_rss_before_kib, c_rss_after_kib, c_pss_before_kib, c_pss_after_kib;
"timeout" for a phase that did not complete; retransmissions and
stale_notifies).  Exits 2, with a line "ERROR reason", when the server
refuses the list SUBSCRIBE or answers it as something other than a
resource list (a NOTIFY that is not multipart/related RLMI); 1 when the
members' PUBLISHes fail.
"""

import argparse
import asyncio
import math
import re
import socket
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree

from procmem import memory

#: The kernel receive buffer asked for (forced as root, as bench/presence_fanout.py does):
#: a list's NOTIFYs are large and come in bursts.
RECEIVE_BUFFER = 64 * 1024 * 1024

#: Linux's SO_RCVBUFFORCE, which Python's socket module does not name.
SO_RCVBUFFORCE = 33

#: Seconds before the first retransmission of an unanswered request; it doubles up to 4 s,
#: until the request is 32 s old (RFC 3261's Timer F): then it is given up.
RETRANSMIT_FIRST = 1.0
RETRANSMIT_MOST = 4.0
GIVE_UP_AFTER = 32.0

#: Lower-cased line starts of the header fields a response copies from the
#: request it answers (RFC 3261 section 8.2.6.2), long and compact forms.
COPIED_FIELDS = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:",
                 b"cseq:")

#: Compact forms of the header fields read here (RFC 3261 section 7.3.3, RFC 3265).
COMPACT = {b"i": b"call-id", b"f": b"from", b"t": b"to", b"v": b"via", b"c": b"content-type",
           b"l": b"content-length", b"o": b"event", b"m": b"contact", b"k": b"supported"}

ACCEPT = "application/pidf+xml, application/rlmi+xml, multipart/related"

NOTE = re.compile(rb"<(?:[\w.-]+:)?note\b[^>]*>([^<]*)<")
TAG = re.compile(rb";\s*tag=([^;>\s]+)")
ANGLE = re.compile(rb"<([^>]*)>")


class Refused(Exception):
    """The server refused the list subscription, or is no resource list server."""


def pidf(entity, note):
    """@return: a PIDF document of C{entity}, open, with C{note} in its tuple."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{entity}">'
            f'<tuple id="t1"><status><basic>open</basic></status><note>{note}</note>'
            f'</tuple></presence>\r\n').encode()


def parse_message(datagram):
    """
    @return: (first line, header lines, {lower-case long name: first value},
        body), all bytes; None for a datagram without a blank line.
    """
    end = datagram.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = datagram[:end].split(b"\r\n")
    fields = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name = name.strip().lower()
        name = COMPACT.get(name, name)
        fields.setdefault(name, value.strip())
    return lines[0], lines, fields, datagram[end + 4:]


def header_params(value):
    """@return: (the value before its first ';', {lower-case param: value unquoted}), str."""
    text = value.decode("utf-8", "replace")
    main, *params = re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', text)
    found = {}
    for param in params:
        name, _, param_value = param.partition("=")
        found[name.strip().lower()] = param_value.strip().strip('"')
    return main.strip().lower(), found


def multipart(body, boundary):
    """@return: the parts of a multipart body: [(headers {lower name: str}, content bytes)]."""
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon:
                headers[name.strip().lower().decode()] = value.strip().decode("utf-8", "replace")
        parts.append((headers, content))
    return parts


def local(tag):
    """@return: an ElementTree tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def percentile(values, fraction):
    """@return: the nearest-rank percentile of C{values} (sorted), or None."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))]


class Watcher:
    """
    One list subscription (a dialog), and what its NOTIFYs told: each
    resource's state (RLMI instance state, whether a body part came for it,
    the note of that body).

    @ivar complete: resolved (with the instant) once the watcher knows every
        member active with its body.
    @ivar notifies: (instant, resources in the RLMI) of each NOTIFY received.
    """

    def __init__(self, client, name):
        self.client = client
        self.call_id = f"rls-{client.run}-{name}"
        self.from_tag = f"t{name}-{client.run}"
        self.to_tag = None
        self.target = client.options.list
        self.cseq = 1
        self.resources = {}       # uri -> (active with a body, note or None)
        self.last_cseq = -1       # of the last NOTIFY taken in
        self.complete = asyncio.get_running_loop().create_future()
        self.notifies = []

    def request(self, expires):
        """SUBSCRIBE (initial, or in the dialog once it has one); @return: a future response."""
        client = self.client
        to = f"<{client.options.list}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        headers = [f"Contact: <sip:watcher@{client.local}>", "Event: presence",
                   "Supported: eventlist", f"Accept: {ACCEPT}", f"Expires: {expires}"]
        response = client.request("SUBSCRIBE", self.target, self.call_id,
                                  f"<{client.options.owner}>;tag={self.from_tag}", to,
                                  self.cseq, headers)
        self.cseq += 1
        return response

    async def subscribe(self):
        """SUBSCRIBE; raise L{Refused} unless it gets a 2xx."""
        self.client.dialogs[self.call_id.encode()] = self
        status, reason, fields = await self.request(3600)
        if status >= 300:
            self.client.failure = self.client.failure or \
                f"the list SUBSCRIBE got {status} {reason}"
            raise Refused(self.client.failure)
        if self.to_tag is None:
            found = TAG.search(fields.get(b"to", b""))
            self.to_tag = found.group(1).decode() if found else None
        contact = ANGLE.search(fields.get(b"contact", b""))
        if contact:
            self.target = contact.group(1).decode()

    def unsubscribe(self):
        """SUBSCRIBE with Expires: 0 in the dialog, if it has one; @return: a future."""
        if self.to_tag is None:
            return None
        return self.request(0)

    def notified(self, fields, body, now):
        """
        Take in a NOTIFY of this dialog, unless it is one already taken in
        (a retransmission, when the server missed the 200) or older than
        one taken in: its CSeq tells.
        """
        cseq = fields.get(b"cseq", b"").split()
        cseq = int(cseq[0]) if cseq and cseq[0].isdigit() else 0
        if cseq <= self.last_cseq:
            self.client.stale_notifies += 1
            return
        self.last_cseq = cseq
        if self.to_tag is None:
            found = TAG.search(fields.get(b"from", b""))
            if found:
                self.to_tag = found.group(1).decode()
        kind, params = header_params(fields.get(b"content-type", b""))
        if fields.get(b"subscription-state", b"").lower().startswith(b"terminated"):
            return                # the end of a subscription this tool ended
        if b"eventlist" not in fields.get(b"require", b"").lower():
            # RFC 4662 section 5.1: a list's NOTIFYs require eventlist.
            self.client.failure = (
                f"a NOTIFY to the list SUBSCRIBE has no Require: eventlist (Content-Type "
                f"{kind or 'none'}): the server does not serve {self.client.options.list} "
                f"as a resource list")
            return
        if not body.strip():
            self.notifies.append((now, 0))
            return
        if kind != "multipart/related" or "boundary" not in params:
            self.client.failure = (
                f"a NOTIFY to the list SUBSCRIBE has Content-Type {kind or 'none'}, not "
                f"multipart/related RLMI: the server does not serve "
                f"{self.client.options.list} as a resource list")
            return
        parts = multipart(body, params["boundary"])
        by_cid = {}
        root = None
        start = params.get("start", "").strip("<>")
        for headers, content in parts:
            cid = headers.get("content-id", "").strip().strip("<>")
            by_cid[cid] = (headers, content)
            if root is None and (cid == start if start else
                                 "rlmi" in headers.get("content-type", "")):
                root = content
        if root is None:
            self.client.failure = "a NOTIFY's multipart body has no RLMI root part"
            return
        try:
            rlmi = ElementTree.fromstring(root)
        except ElementTree.ParseError as error:
            self.client.failure = f"a NOTIFY's RLMI does not parse: {error}"
            return
        if rlmi.get("fullState", "").lower() in ("true", "1"):
            self.resources = {}
        resources = 0
        for resource in rlmi:
            if local(resource.tag) != "resource":
                continue
            resources += 1
            uri = resource.get("uri")
            state = (False, None)
            for instance in resource:
                if local(instance.tag) != "instance":
                    continue
                part = by_cid.get((instance.get("cid") or "").strip("<>"))
                if instance.get("state") == "active" and part is not None \
                        and "pidf" in part[0].get("content-type", ""):
                    note = NOTE.search(part[1])
                    state = (True, note.group(1).decode() if note else None)
                    break
            self.resources[uri] = state
            if state[1] is not None:
                self.client.noted(self, state[1], now)
        self.notifies.append((now, resources))
        if not self.complete.done() and \
                sum(1 for active, _ in self.resources.values() if active) \
                >= self.client.options.members:
            self.complete.set_result(now)


class Client(asyncio.DatagramProtocol):
    """
    The members and the watchers, on one UDP socket: sends requests (and
    again until answered), answers NOTIFYs, hands them to their watcher.
    """

    def __init__(self, options):
        self.options = options
        host, port = options.server.rsplit(":", 1)
        self.server = (host, int(port))
        self.run = uuid.uuid4().hex[:8]
        self.pending = {}         # (Call-ID, CSeq) -> [request, future, next send, interval,
        #                           given up at]
        self.dialogs = {}         # Call-ID -> Watcher
        self.retransmissions = 0  # requests sent again
        self.stale_notifies = 0   # NOTIFYs sent again by the server, or overtaken
        self.failure = None       # why the server serves no list, once that showed
        self.on_note = None       # called with (watcher, note, instant) for each body's note

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        host, port = sock.getsockname()[:2]
        self.local = f"{host}:{port}"
        self.retransmitter = asyncio.get_running_loop().create_task(self._retransmit())

    def close(self):
        self.retransmitter.cancel()
        self.transport.close()

    # -- requests ---------------------------------------------------------------------

    def request(self, method, uri, call_id, from_, to, cseq, headers, body=b""):
        """Send a request; @return: a future of its final response (status, reason, fields)."""
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {self.local};branch=z9hG4bK-{call_id}-{cseq};rport",
                 "Max-Forwards: 70", f"From: {from_}", f"To: {to}", f"Call-ID: {call_id}",
                 f"CSeq: {cseq} {method}", *headers, f"Content-Length: {len(body)}", "", ""]
        request = "\r\n".join(lines).encode() + body
        answered = asyncio.get_running_loop().create_future()
        now = time.monotonic()
        self.pending[call_id.encode(), cseq] = [request, answered, now + RETRANSMIT_FIRST,
                                                RETRANSMIT_FIRST, now + GIVE_UP_AFTER]
        self.transport.sendto(request, self.server)
        return answered

    def publish(self, member, note, etag=None, call_id=None):
        """PUBLISH member C{member}'s state; @return: a future response."""
        entity = f"sip:member{member}@example.com"
        headers = ["Event: presence", "Expires: 3600", "Content-Type: application/pidf+xml"]
        if etag is not None:
            headers.append(f"SIP-If-Match: {etag}")
        call_id = call_id or f"pub-{self.run}-{uuid.uuid4().hex[:12]}"
        return self.request("PUBLISH", entity, call_id, f"<{entity}>;tag={self.run}",
                            f"<{entity}>", 1, headers, pidf(entity, note))

    async def _retransmit(self):
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for key, entry in list(self.pending.items()):
                if entry[4] <= now:
                    del self.pending[key]     # whoever waits for it has a deadline of its own
                elif entry[2] <= now:
                    self.transport.sendto(entry[0], self.server)
                    self.retransmissions += 1
                    entry[3] = min(2 * entry[3], RETRANSMIT_MOST)
                    entry[2] = now + entry[3]

    # -- what comes in ------------------------------------------------------------------

    def datagram_received(self, datagram, address):
        now = time.perf_counter()
        message = parse_message(datagram)
        if message is None:
            return
        first, lines, fields, body = message
        if first.startswith(b"SIP/2.0 "):
            status = int(first[8:11])
            if status < 200:
                return
            cseq = fields.get(b"cseq", b"0").split()
            waiting = self.pending.pop((fields.get(b"call-id"), int(cseq[0]) if cseq else 0),
                                       None)
            if waiting is not None and not waiting[1].done():
                waiting[1].set_result((status, first[12:].decode("utf-8", "replace"), fields))
        elif first.startswith(b"NOTIFY "):
            copied = [line for line in lines[1:] if line[:8].lower().startswith(COPIED_FIELDS)]
            self.transport.sendto(b"SIP/2.0 200 OK\r\n" + b"\r\n".join(copied)
                                  + b"\r\nContent-Length: 0\r\n\r\n", address)
            watcher = self.dialogs.get(fields.get(b"call-id"))
            if watcher is not None:
                watcher.notified(fields, body, now)

    def noted(self, watcher, note, now):
        if self.on_note is not None:
            self.on_note(watcher, note, now)


async def bounded(awaitable, seconds):
    """@return: C{awaitable}'s result, or None if it took more than C{seconds}."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        return None


async def all_complete(client, watchers, seconds):
    """
    Wait until each watcher knows every member active; @return: the instant
    the last one did, or None after C{seconds}.  Raises L{Refused} as soon as
    a NOTIFY shows the server serves no list.
    """
    deadline = time.perf_counter() + seconds
    pending = [watcher.complete for watcher in watchers]
    while True:
        if client.failure:
            raise Refused(client.failure)
        if all(future.done() for future in pending):
            return max(future.result() for future in pending)
        left = deadline - time.perf_counter()
        if left <= 0:
            return None
        await asyncio.wait([f for f in pending if not f.done()], timeout=min(left, 0.2))


async def subscribe_all(client, watchers, seconds):
    """SUBSCRIBE the watchers at once; @return: False if their answers took over C{seconds}."""
    done = await bounded(asyncio.gather(*(watcher.subscribe() for watcher in watchers)),
                         seconds)
    return done is not None


async def subscribe_window(client, watchers, window, seconds):
    """
    SUBSCRIBE the watchers, C{window} at a time: the next one goes once one
    before it knows every member active.  @return: False if that took over
    C{seconds}; raises L{Refused} as L{all_complete} does.
    """
    deadline = time.perf_counter() + seconds
    waiting = set()
    for watcher in watchers:
        while len(waiting) >= window:
            if client.failure:
                raise Refused(client.failure)
            left = deadline - time.perf_counter()
            if left <= 0:
                return False
            done, _ = await asyncio.wait(waiting, timeout=min(left, 0.2),
                                         return_when=asyncio.FIRST_COMPLETED)
            waiting -= done
        subscribing = asyncio.ensure_future(watcher.subscribe())
        waiting.add(asyncio.ensure_future(_subscribed_and_complete(subscribing, watcher)))
    return True


async def _subscribed_and_complete(subscribing, watcher):
    try:
        await subscribing
    except Refused:
        return                # client.failure says why
    await watcher.complete


async def unsubscribe_all(client, watchers, seconds):
    """End the watchers' subscriptions (Expires: 0) and wait a little for their answers."""
    futures = [f for f in (watcher.unsubscribe() for watcher in watchers) if f is not None]
    if futures:
        await bounded(asyncio.gather(*futures), seconds)
    for watcher in watchers:
        client.dialogs.pop(watcher.call_id.encode(), None)


def say(text):
    print(f"   {text}", flush=True)


async def run(options):
    """The phases of the module docstring; @return: the results, by name."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(lambda: Client(options),
                                                    local_addr=("127.0.0.1", 0))
    results = {}
    members = options.members
    try:
        # 0. the members' states.
        etags = {}
        started = time.perf_counter()
        answers = await bounded(asyncio.gather(*(client.publish(m, f"{client.run}.initial")
                                                 for m in range(members))), options.timeout)
        if answers is None:
            raise SystemExit(f"rls_load: the {members} PUBLISHes were not all answered "
                             f"within {options.timeout:g} s")
        for member, (status, reason, fields) in enumerate(answers):
            if status != 200 or b"sip-etag" not in fields:
                raise SystemExit(f"rls_load: the PUBLISH of member {member} got {status} "
                                 f"{reason}")
            etags[member] = fields[b"sip-etag"].decode()
        say(f"0. {members} members published in {time.perf_counter() - started:.3f} s")

        if "a" in options.phases:
            results.update(await phase_a(client, options))

        if "b" in options.phases:
            results.update(await phase_b(client, options, etags))

        if "c" in options.phases:
            results.update(await phase_c(client, options))
        results["retransmissions"] = client.retransmissions
        results["stale_notifies"] = client.stale_notifies
        return results
    finally:
        client.close()


async def phase_a(client, options):
    """
    Phase a of the module docstring, --repeat-a times in turn (a server that
    batches on a clock of its own answers at a random moment of its
    interval): @return: the median time, by name.
    """
    members, times = options.members, []
    for attempt in range(options.repeat_a):
        watcher = Watcher(client, f"a{attempt}")
        started = time.perf_counter()
        await watcher.subscribe()
        completed = await all_complete(client, [watcher], options.timeout)
        if completed is None:
            say(f"a. one watcher: timeout, {len(watcher.notifies)} NOTIFYs, "
                f"{sum(a for a, _ in watcher.resources.values())} of {members} members "
                f"known active after {options.timeout:g} s")
            await unsubscribe_all(client, [watcher], 5)
            return {"a_seconds": "timeout"}
        times.append(completed - started)
        notifies = sum(1 for at, _ in watcher.notifies if at <= completed)
        say(f"a. one watcher: all {members} members active {completed - started:.3f} s "
            f"after its SUBSCRIBE, in {notifies} NOTIFY(s)")
        await unsubscribe_all(client, [watcher], 5)
        # The next one starts a further fraction of a second later: a server that sends on a
        # clock of its own is met at phases spread over its interval, not at the same one.
        await asyncio.sleep(options.settle + (attempt + 1) / options.repeat_a)
    times.sort()
    median = times[len(times) // 2] if len(times) % 2 else \
        (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
    say(f"a. median of {len(times)}: {median:.3f} s (from {times[0]:.3f} to {times[-1]:.3f} s)")
    return {"a_seconds": round(median, 4), "a_min": round(times[0], 4),
            "a_max": round(times[-1], 4)}


async def phase_b(client, options, etags):
    """Phase b of the module docstring; @return: its results, by name."""
    members, rate, seconds = options.members, options.rate, options.seconds
    watchers = [Watcher(client, f"b{i}") for i in range(options.watchers_b)]
    timeout = {"b_notifies_per_second": "timeout", "b_resources_per_notify": "timeout",
               "b_latency_p50": "timeout", "b_latency_p99": "timeout", "b_delivered": "timeout"}
    if not await subscribe_all(client, watchers, options.timeout) \
            or await all_complete(client, watchers, options.timeout) is None:
        say(f"b. {len(watchers)} watchers: timeout before each knew every member active")
        await unsubscribe_all(client, watchers, 5)
        return timeout

    sent = {}                 # PUBLISH number -> instant sent
    received = {}             # (watcher's Call-ID, PUBLISH number) -> first instant received
    prefix = f"{client.run}."

    def on_note(watcher, note, now):
        if note.startswith(prefix) and note[len(prefix):].isdigit():
            key = (watcher.call_id, int(note[len(prefix):]))
            if key not in received:
                received[key] = now

    client.on_note = on_note
    in_flight = {}            # member -> future of its PUBLISH's answer
    failed = skipped = 0
    start = time.perf_counter()
    end = start + seconds
    number = 0
    while True:
        due = start + number / rate
        if due >= end:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        member = number % members
        previous = in_flight.get(member)
        if previous is not None and not previous.done():
            skipped += 1              # its last PUBLISH is not answered yet: no ETag to use
            number += 1
            continue
        sent[number] = time.perf_counter()
        answer = client.publish(member, f"{prefix}{number}", etags.get(member))

        def answered(future, member=member):
            nonlocal failed
            status, _, fields = future.result()
            if status == 200 and b"sip-etag" in fields:
                etags[member] = fields[b"sip-etag"].decode()
            else:
                failed += 1
                if status == 412:     # the publication is gone: the next one starts anew
                    etags.pop(member, None)

        answer.add_done_callback(answered)
        in_flight[member] = answer
        number += 1
    # Time for the last PUBLISHes to reach the watchers: NOTIFYs are batched.
    await asyncio.sleep(options.drain)
    client.on_note = None

    notifies = [count for watcher in watchers for at, count in watcher.notifies
                if start <= at <= end]
    latencies = sorted(at - sent[number] for (_, number), at in received.items()
                       if number in sent)
    expected = len(sent) * len(watchers)
    results = {
        "b_publishes": len(sent),
        "b_notifies_per_second": round(len(notifies) / seconds, 1),
        "b_resources_per_notify": round(sum(notifies) / len(notifies), 1) if notifies else 0,
        "b_latency_p50": round(percentile(latencies, 0.50), 4) if latencies else "none",
        "b_latency_p99": round(percentile(latencies, 0.99), 4) if latencies else "none",
        "b_delivered": round(len(latencies) / expected, 3) if expected else 0,
    }
    say(f"b. {len(watchers)} watchers, {len(sent)} PUBLISHes in {seconds:g} s "
        f"({len(sent) / seconds:.0f}/s; {failed} not 200, {skipped} skipped while their "
        f"member's last was unanswered): {results['b_notifies_per_second']} NOTIFYs/s, "
        f"{results['b_resources_per_notify']} resources per NOTIFY, PUBLISH to watcher "
        f"p50 {results['b_latency_p50']} s, p99 {results['b_latency_p99']} s "
        f"({len(latencies)} of {expected} (PUBLISH, watcher) notes seen: "
        f"{results['b_delivered']:.1%}; the rest folded into later NOTIFYs or late)")
    await unsubscribe_all(client, watchers, 5)
    await asyncio.sleep(options.settle)
    return results


async def phase_c(client, options):
    """Phase c of the module docstring; @return: its results, by name."""
    results = {}
    watchers = [Watcher(client, f"c{i}") for i in range(options.watchers_c)]
    if options.pids:
        results["c_rss_before_kib"], results["c_pss_before_kib"] = memory(options.pids)
    started = time.perf_counter()
    subscribed = await subscribe_window(client, watchers, options.window_c, options.timeout)
    left = options.timeout - (time.perf_counter() - started)
    completed = await all_complete(client, watchers, left) if subscribed else None
    if completed is None:
        done = sum(1 for watcher in watchers if watcher.complete.done())
        results["c_seconds"] = "timeout"
        results["c_complete"] = done
        say(f"c. {len(watchers)} watchers: timeout, {done} knew every member active after "
            f"{options.timeout:g} s")
    else:
        results["c_seconds"] = round(completed - started, 4)
        notifies = sum(len(watcher.notifies) for watcher in watchers)
        say(f"c. {len(watchers)} watchers x {options.members} members: all active "
            f"{completed - started:.3f} s after the first SUBSCRIBE ({notifies} NOTIFYs)")
    if options.pids:
        await asyncio.sleep(options.settle)
        results["c_rss_after_kib"], results["c_pss_after_kib"] = memory(options.pids)
        say("c. memory of the server's processes, before -> after: VmRSS "
            f"{results['c_rss_before_kib'] / 1024:.1f} -> "
            f"{results['c_rss_after_kib'] / 1024:.1f} MiB, Pss "
            f"{results['c_pss_before_kib'] / 1024:.1f} -> "
            f"{results['c_pss_after_kib'] / 1024:.1f} MiB")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="the server's HOST:PORT (UDP)")
    parser.add_argument("--list", default="sip:list100@example.com", help="the list's URI")
    parser.add_argument("--owner", default="sip:owner@example.com",
                        help="the list's owner, who subscribes")
    parser.add_argument("--members", type=int, default=100,
                        help="the list's members: sip:member0@example.com ...")
    parser.add_argument("--repeat-a", type=int, default=5,
                        help="how many single watchers phase a times, one after the other")
    parser.add_argument("--watchers-b", type=int, default=10)
    parser.add_argument("--watchers-c", type=int, default=100)
    parser.add_argument("--window-c", type=int, default=100,
                        help="most watchers of phase c subscribed and not complete at once "
                             "(default: all at once)")
    parser.add_argument("--rate", type=float, default=100.0, help="PUBLISHes/s in phase b")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of phase b")
    parser.add_argument("--drain", type=float, default=3.0,
                        help="seconds phase b waits for NOTIFYs after its last PUBLISH")
    parser.add_argument("--pids", type=lambda text: [int(pid) for pid in text.split()],
                        default=[], help="the server's processes, for their memory")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each phase may wait")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds after a phase (and before reading memory)")
    parser.add_argument("--phases", default="abc")
    options = parser.parse_args(argv)
    try:
        results = asyncio.run(run(options))
    except Refused as refused:
        print(f"rls_load: {refused}", file=sys.stderr)
        print(f"ERROR {refused}", flush=True)
        return 2
    print("RESULT " + " ".join(f"{name}={value}" for name, value in results.items()),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
