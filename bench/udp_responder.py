"""
The ceiling for SIP over UDP in one Python process: a Twisted UDP server
that answers every request with a 200 OK and does nothing else.

It does not parse SIP.  It finds the Via, From, To, Call-ID and CSeq lines
by their names (long or compact, any case) and copies them, as bytes, into
the answer; that is all a UAC such as SIPp needs to match the 200 to its
request.  Whatever slee does on top of this (parsing, transactions, the
resource adaptor, the service) is the price measured by bench/sip_options.sh,
which compares the two.

Its socket asks the kernel for the same receive buffer as slee's SIP UDP
sockets (the SIP RA's C{udp-receive-buffer}), so that both meet the same
kernel.

Usage: python bench/udp_responder.py [--port N] [--interface ADDRESS]

Prints the port it listens on (one line, the number alone) and answers until
it is killed.
"""

import argparse
import socket
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol

sys.path.insert(0, str(Path(__file__).parent.parent))
from resource_adaptors.sip.transports import DEFAULT_UDP_RECEIVE_BUFFER  # noqa: E402

# Lower-cased line starts of the header fields a response copies from its
# request (RFC 3261 §8.2.6.2), long and compact forms.
COPIED_FIELDS = (b"via:", b"v:", b"from:", b"f:", b"to:", b"t:", b"call-id:", b"i:",
                 b"cseq:")

STATUS_LINE = b"SIP/2.0 200 OK\r\n"
TRAILER = (b"Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, SUBSCRIBE, NOTIFY, PUBLISH\r\n"
           b"Content-Length: 0\r\n\r\n")


def answer(datagram):
    """
    @return: the bytes of a 200 OK to the request in C{datagram}, or None
        for what must not be answered: responses, ACKs, and datagrams without
        a header section (keep-alives, garbage).
    """
    if datagram.startswith((b"SIP/", b"ACK ")):
        return None
    end = datagram.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = datagram[:end].split(b"\r\n")
    copied = [line for line in lines[1:] if line[:8].lower().startswith(COPIED_FIELDS)]
    return STATUS_LINE + b"\r\n".join(copied) + b"\r\n" + TRAILER


class Responder(DatagramProtocol):
    """Answers each request datagram to the address it came from."""

    def datagramReceived(self, datagram, address):
        response = answer(datagram)
        if response is not None:
            self.transport.write(response, address)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="UDP port (0: any free one)")
    parser.add_argument("--interface", default="127.0.0.1", help="address to bind")
    options = parser.parse_args(argv)
    port = reactor.listenUDP(options.port, Responder(), interface=options.interface)
    port.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, DEFAULT_UDP_RECEIVE_BUFFER)
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
