"""
bench/overload.sh's probe: a client that publishes now and then, to see
when an overloaded server answers promptly again, and a sampler of the
server's memory (stdlib only, no reactor: it must not need the CPU the
server is short of).

    python bench/overload_probe.py --server 127.0.0.1:PORT --pids "PID ..." \\
        --seconds N [--interval 0.02]

For N seconds it sends a PUBLISH of a new presentity every C{interval}
seconds (each over its own socket, so that answers are matched by socket)
and reads the answers as they come, and every second it reads the
servers' VmRSS.  A publication answered 200 is removed again at once (a
PUBLISH with its SIP-ETag and Expires: 0, whose answer is not awaited), as
the load's calls remove theirs: otherwise the probe's own publications,
50 a second living 60 s, would be state that grows through the run, and
the memory figures would count them as the overload's.  It prints one line per PUBLISH, C{probe SENT STATUS
LATENCY} (SENT: the wall-clock time it was sent; STATUS 0 and LATENCY -1
when no answer came within 2 s), and one per memory sample, C{rss TIME
KIB}.
"""

import argparse
import os
import selectors
import socket
import time

from procmem import memory

#: How long the probe waits for an answer, seconds.
ANSWER_WITHIN = 2.0

BODY = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{uri}">'
        '<tuple id="t"><status><basic>open</basic></status></tuple></presence>\n')


def publish(number, local_port):
    uri = f"sip:probe{os.getpid()}-{number}@example.com"
    body = BODY.format(uri=uri)
    return (f"PUBLISH {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-probe-{number}\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <{uri}>;tag=probe{number}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: probe-{os.getpid()}-{number}@127.0.0.1\r\n"
            f"CSeq: 1 PUBLISH\r\n"
            f"Event: presence\r\n"
            f"Expires: 60\r\n"
            f"Content-Type: application/pidf+xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


def removal(number, local_port, etag):
    uri = f"sip:probe{os.getpid()}-{number}@example.com"
    return (f"PUBLISH {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK-probe-{number}-0\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <{uri}>;tag=probe{number}\r\n"
            f"To: <{uri}>\r\n"
            f"Call-ID: probe-{os.getpid()}-{number}@127.0.0.1\r\n"
            f"CSeq: 2 PUBLISH\r\n"
            f"Event: presence\r\n"
            f"SIP-If-Match: {etag}\r\n"
            f"Expires: 0\r\n"
            f"Content-Length: 0\r\n\r\n").encode()


def etag_of(data):
    """@return: the SIP-ETag of a response, or None."""
    for line in data.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sip-etag":
            return value.strip().decode("ascii")
    return None


def status_of(data):
    """@return: the status of a final response, or None for a provisional one."""
    status = int(data.split(b" ", 2)[1])
    return status if status >= 200 else None


def run(server, pids, seconds, interval):
    selector = selectors.DefaultSelector()
    end = time.monotonic() + seconds
    next_probe = next_sample = time.monotonic()
    number = 0
    while True:
        now = time.monotonic()
        if now >= end and not selector.get_map():
            return
        if now >= next_sample:
            print(f"rss {time.time():.3f} {memory(pids)[0]}", flush=True)
            next_sample += 1.0
        if now >= next_probe and now < end:
            number += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.sendto(publish(number, sock.getsockname()[1]), server)
            selector.register(sock, selectors.EVENT_READ, (time.time(), now, number))
            next_probe += interval
        for key, _ in selector.select(timeout=0.005):
            data = key.fileobj.recv(65536)
            status = status_of(data)
            if status is not None:
                sent, started, number = key.data
                print(f"probe {sent:.3f} {status} {time.monotonic() - started:.4f}", flush=True)
                etag = etag_of(data) if status == 200 else None
                if etag is not None:
                    key.fileobj.sendto(removal(number, key.fileobj.getsockname()[1], etag),
                                       server)
                selector.unregister(key.fileobj)
                key.fileobj.close()
        for key in list(selector.get_map().values()):
            sent, started, _ = key.data
            if time.monotonic() - started > ANSWER_WITHIN:
                print(f"probe {sent:.3f} 0 -1", flush=True)
                selector.unregister(key.fileobj)
                key.fileobj.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--server", required=True, help="HOST:PORT of the server (UDP)")
    parser.add_argument("--pids", required=True, help="the server's processes")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--interval", type=float, default=0.02)
    options = parser.parse_args()
    host, port = options.server.rsplit(":", 1)
    run((host, int(port)), [int(pid) for pid in options.pids.split()], options.seconds,
        options.interval)


if __name__ == "__main__":
    main()
