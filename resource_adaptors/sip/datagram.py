"""
UDP: each datagram is a message.  L{DatagramPort} reads datagrams with the
time the kernel received them and sends to addresses without Twisted's
checks; L{DatagramSocket} turns them into messages for the transports.
This is the hot path of the stack under load.
"""

import socket
import struct
import sys
import time
from errno import ECONNREFUSED, EINTR, EMSGSIZE

from twisted.internet import udp
from twisted.internet.error import MessageLengthError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from resource_adaptors.sip.core.parser import ParseError
from resource_adaptors.sip.core.routing import Peer
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.datagram", observer=log_observer)

# The biggest UDP payload; a datagram is read whole up to the parser's
# limit plus one byte, so that an oversized one is seen as oversized.
MAX_DATAGRAM = 65535

#: How many source addresses a UDP listening point keeps the L{Peer} of.
KNOWN_PEERS = 4096


class DatagramSocket(DatagramProtocol):
    """
    One UDP listening point: each datagram is a message.  This is the hot
    path: no logging, one parse, and the Peer of the source address made
    once, not for each datagram (clients send again and again).
    """

    def __init__(self, transports):
        self.transports = transports
        self.socket_port = None
        self.point = None
        self._peers = {}    # source address -> its Peer

    def datagramReceived(self, data, address):
        self.datagram_arrived(data, address, 0.0)

    def datagram_arrived(self, data, address, waited):
        """A datagram came from C{address}, after C{waited} seconds in the
        socket's buffer (see L{DatagramPort.doRead})."""
        if data[:1] in (b"\r", b"\n") and not data.strip(b"\r\n"):
            return  # a keep-alive: there is nothing to answer over UDP
        peer = self._peers.get(address) or self._new_peer(address)
        shedder = self.transports.shedder
        if shedder is not None and shedder(data, peer, waited):
            return
        try:
            message = self.transports.parser.parse(data)
        except ParseError as error:
            self.transports.reject(error, peer)
            return
        self.transports.deliver(message, peer, waited)

    def _new_peer(self, address):
        """@return: the Peer of a source address, kept; all are forgotten
        when there are too many (addresses come from the network)."""
        if len(self._peers) >= KNOWN_PEERS:
            self._peers.clear()
        peer = self._peers[address] = Peer("udp", address[0], address[1], None, self.point)
        return peer


#: Linux's SO_TIMESTAMPNS: each datagram read comes with the time the
#: kernel received it, a C{struct timespec} (seconds and nanoseconds).
#: Python's socket module does not name it: 35 is its value on the
#: architectures Debian builds for but a few (alpha, hppa, mips, sparc).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS",
                          35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@ll")
_TIMESPEC_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)


class DatagramPort(udp.Port):
    """
    The UDP port of a listening point (what C{reactor.listenUDP} makes),
    with two departures from Twisted's.

    It reads each datagram with the time the kernel received it
    (SO_TIMESTAMPNS, where the system has it), and tells its protocol how
    long the datagram waited in the socket's buffer.  That buffer is where
    the backlog of an overloaded server piles up, unseen from inside the
    process: the door (L{resource_adaptors.sip.admission}) sheds new
    requests by that wait.  C{wall_clock} is what the kernel's stamps are
    compared with.

    Its C{write} sends to an IP address of the socket's family at once.
    Twisted's tests the address up to five ways before it sends, some 1.5 us
    a datagram; one C{inet_pton} says the same of the addresses answers go
    to, the sources of requests.  Anything else (a name, an address of the
    other family) goes to Twisted's C{write}, which refuses it as it should.
    """

    wall_clock = staticmethod(time.time)
    #: Bytes read per turn of the reactor (Twisted's 256 KiB): under
    #: overload most of what is read is refused at once, and the door bounds
    #: what is taken in, so a turn may read the buffer's backlog further.
    maxThroughput = 1024 * 1024

    def startListening(self):
        super().startListening()
        if _SO_TIMESTAMPNS is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)

    def doRead(self):
        """Twisted's C{doRead}, but with C{recvmsg}, for the kernel's time stamps."""
        read = 0
        while read < self.maxThroughput:
            try:
                data, ancillary, _, address = self.socket.recvmsg(self.maxPacketSize,
                                                                  _TIMESPEC_SPACE)
            except OSError as error:
                if error.errno in udp._sockErrReadIgnore or \
                        error.errno in udp._sockErrReadRefuse:
                    return
                raise
            read += len(data)
            waited = 0.0
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = _TIMESPEC.unpack(value)
                    waited = max(0.0, self.wall_clock() - seconds - nanoseconds * 1e-9)
            try:
                self.protocol.datagram_arrived(data, address[:2], waited)
            except BaseException:
                self.protocol.transports.peer_log.failure(
                    log, address[0], "the SIP stack failed on a datagram from {address}",
                    address=address[:2])

    def write(self, datagram, addr):
        """
        Send C{datagram} to C{addr}.  The port is never connected (C{connect}
        is never called on it: a listening point answers every peer), so
        there is always an address, and no connected-mode path to take.
        """
        try:
            socket.inet_pton(self.addressFamily, addr[0])
        except (OSError, ValueError):
            return super().write(datagram, addr)
        try:
            return self.socket.sendto(datagram, addr)
        except OSError as error:
            # What udp.Port.write does with them.
            if error.errno == EINTR:
                return self.write(datagram, addr)
            if error.errno == EMSGSIZE:
                raise MessageLengthError("message too long") from error
            if error.errno == ECONNREFUSED:
                return None
            raise
