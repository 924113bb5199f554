"""
A bare SIP peer for the tests: it sends the bytes a test writes and hands
back what arrives, parsed, over real UDP or TCP sockets on 127.0.0.1.

Every wait is bounded (L{TIMEOUT}); nothing sleeps.
"""

import uuid

from twisted.internet import defer, protocol

from resource_adaptors.sip.core.parser import Limits, StreamParser, parse_message

#: The tests send themselves requests with Request-URIs padded past the
#: size of a UDP request (test_sip_adaptor.PADDING).
LIMITS = Limits(max_uri_length=4096)

TIMEOUT = 10.0


def options(port, transport="UDP", local_port=5999, headers="", method="OPTIONS", body="",
            call_id=None, branch=None, to_tag=None, cseq=1, uri=None,
            from_uri="sip:tester@127.0.0.1", from_tag=None, contact=None):
    """@return: the bytes of a request from a client at C{local_port}."""
    contact = contact or f"sip:tester@127.0.0.1:{local_port}"
    call_id = call_id or uuid.uuid4().hex
    branch = branch or "z9hG4bK" + uuid.uuid4().hex
    to = "<sip:service@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")
    uri = uri or f"sip:service@127.0.0.1:{port}"
    text = (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} 127.0.0.1:{local_port};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <{from_uri}>;tag={from_tag or 't' + uuid.uuid4().hex[:8]}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <{contact}>\r\n"
            f"{headers}"
            f"Content-Length: {len(body.encode())}\r\n\r\n{body}")
    return text.encode()


class _Inbox:
    """Messages that arrived, and the waiters for the next ones."""

    def __init__(self, reactor):
        self.reactor = reactor
        self.messages = []
        self.waiters = []

    def put(self, message):
        while self.waiters:
            waiter = self.waiters.pop(0)
            if not waiter.called:       # else it timed out
                waiter.callback(message)
                return
        self.messages.append(message)

    def next(self, timeout=TIMEOUT):
        """@return: a Deferred firing with the next message (or timing out)."""
        if self.messages:
            return defer.succeed(self.messages.pop(0))
        d = defer.Deferred()
        self.waiters.append(d)
        return d.addTimeout(timeout, self.reactor)


class UdpPeer(protocol.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that sends to C{server_port}."""

    def __init__(self, reactor, server_port):
        self.server = ("127.0.0.1", server_port)
        self.inbox = _Inbox(reactor)
        self.sources = []

    def datagramReceived(self, data, address):
        self.sources.append(address)
        self.inbox.put(parse_message(data, LIMITS))

    @property
    def port(self):
        return self.transport.getHost().port

    def send(self, data):
        self.transport.write(data, self.server)

    def next(self, timeout=TIMEOUT):
        return self.inbox.next(timeout)


class StreamPeer(protocol.Protocol):
    """A TCP (or TLS) connection; messages are framed by Content-Length."""

    def __init__(self, reactor):
        self.inbox = _Inbox(reactor)
        self.parser = StreamParser(LIMITS)
        self.closed = defer.Deferred()
        self.raw = bytearray()

    def dataReceived(self, data):
        self.raw += data
        for message in self.parser.feed(data):
            if not isinstance(message, bytes) and hasattr(message, "headers"):
                self.inbox.put(message)

    def connectionLost(self, reason):
        self.closed.callback(None)

    @property
    def port(self):
        return self.transport.getHost().port

    def send(self, data):
        self.transport.write(data)

    def next(self, timeout=TIMEOUT):
        return self.inbox.next(timeout)


def reply(request, status=200, reason="OK"):
    """@return: the bytes of a minimal response to C{request} (a NOTIFY, say)."""
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {value}" for value in request.headers.get_all("Via")]
    for name in ("From", "To", "Call-ID", "CSeq"):
        lines.append(f"{name}: {request.headers.get(name)}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()
