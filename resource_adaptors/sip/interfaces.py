"""
The seams of the Twisted shell around the SIP core.

L{ITransports} is what the layers above (the transaction layer, the
resource adaptor, the door's fast lane) use of the transports, and
L{ITransportReceiver} what the transports call back on them;
L{ITransactionUser} is what the transaction layer tells the resource
adaptor.  L{IFlows} is
the other side: what the sockets and connections under the transports
(L{resource_adaptors.sip.datagram}, L{resource_adaptors.sip.stream},
L{resource_adaptors.sip.websocket}, L{resource_adaptors.sip.connections})
use of the layer that owns them, so that none of them imports another.
"""

from zope.interface import Attribute, Interface


class ITransportReceiver(Interface):
    """What the transports hand what they receive to (the transaction layer)."""

    def message_received(message, peer, waited):
        """A message came from a L{resource_adaptors.sip.core.routing.Peer};
        C{waited}: the seconds a datagram waited in the socket's buffer, 0
        for streams.  A request's top Via is stamped (RFC 3261 §18.2.1)."""

    def transport_error(peer, reason):
        """A message to C{peer} could not be sent after all (a connection
        refused, a name not resolved): C{reason} is a C{TransportError}."""


class ITransports(Interface):
    """All listening points and connections of one SIP stack."""

    receiver = Attribute("The L{ITransportReceiver}; may be set after construction.")
    shedder = Attribute(
        "None, or C{shedder(data, peer, waited)} called with each datagram before it is "
        "parsed, true when it answered the datagram itself.")
    listening = Attribute("The L{ListeningPoint}s, in the order they were listened on.")
    clock = Attribute("The IReactorTime that runs the timeouts.")
    peer_log = Attribute("The L{slee.log_limits.PeerLogLimit} what peers cause goes through.")

    def listen(description):
        """Listen as a C{parse_listen_description} text says; a Deferred
        firing with the L{ListeningPoint}, or failing with a TransportError."""

    def listening_point(transport):
        """The first listening point of C{transport}; TransportError if none."""

    def via_for(transport, branch):
        """A Via for a request we send on C{transport}."""

    def prepare_request(request, destination):
        """Route and serialize a request for a Peer once; the prepared message."""

    def prepare_response(response, peer=None):
        """Route and serialize a response once (RFC 3261 §18.2.2)."""

    def send(prepared):
        """Send a prepared message (again, for retransmissions)."""

    def send_request(request, destination):
        """Send a request once."""

    def send_response(response, peer=None):
        """Send a response once."""

    def find_connection(connection_id):
        """The open or opening connection with this id (a flow token), or None."""

    def stop():
        """Close every listening point and connection; a Deferred."""


class IFlows(Interface):
    """What the sockets and connections under the transports use of them."""

    reactor = Attribute("The reactor connections are made on.")
    clock = Attribute("The IReactorTime of the idle and connect timeouts.")
    receiver = Attribute("The L{ITransportReceiver}.")
    limits = Attribute("The parser's C{Limits}.")
    parser = Attribute("The C{Parser} every message received is read with.")
    peer_log = Attribute("The L{slee.log_limits.PeerLogLimit}.")
    shedder = Attribute("See L{ITransports.shedder}.")
    idle_timeout = Attribute("Seconds of silence before a connection nobody holds closes.")
    connect_timeout = Attribute("Seconds a connection may take to open.")

    def accept(protocol_class, transport, address, point):
        """The protocol for an incoming connection, or one that refuses it."""

    def deliver(message, peer, waited=0.0):
        """Pass a received message up, once checked and its Via stamped."""

    def reject(error, peer):
        """Answer (or drop) what did not parse: a ParseError from C{peer}."""

    def connection_added(connection):
        """A connection was made (it counts towards the caps)."""

    def connection_removed(connection):
        """A connection is gone."""


class ITransactionUser(Interface):
    """What the transaction layer tells its user."""

    def request_received(transaction, request):
        """A new request (not an ACK, not a CANCEL) started a
        L{resource_adaptors.sip.transaction_layer.ServerTransaction}: answer it with C{transaction.respond()}."""

    def cancel_received(transaction, cancel):
        """
        A CANCEL cancelled the INVITE of this L{resource_adaptors.sip.transaction_layer.ServerTransaction}: the
        layer answered the CANCEL 200 and the INVITE 487 already.
        """

    def response_received(transaction, response):
        """A response to the request of a L{resource_adaptors.sip.transaction_layer.ClientTransaction} (not a
        retransmission, except 2xx to an INVITE, which the user
        acknowledges each time)."""

    def stray_ack(ack, peer):
        """An ACK that is no transaction's: the ACK of a 2xx, for the
        dialog."""

    def stray_response(response, peer):
        """A response that matches no client transaction (a late 2xx from
        another fork, or garbage)."""

    def transaction_timeout(transaction):
        """
        The transaction timed out: a client's request got no final response
        (timer B or F), or an INVITE server's final response got no ACK
        (timer H).
        """

    def transaction_error(transaction, reason):
        """The transport failed the transaction (C{reason}: a
        L{TransportError})."""

    def transaction_terminated(transaction):
        """The transaction has nothing more for the user (it is over, or
        lingers only to absorb retransmissions): the last callback about
        it."""
