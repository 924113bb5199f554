"""
The events the SIP resource adaptor fires, and their types.

Incoming requests fire one event type per method (``OPTIONS``,
``SUBSCRIBE``, ...) and one for every method the stack does not know
(`UNKNOWN_REQUEST`); responses fire one type per status class
(`RESPONSE_1XX` ... `RESPONSE_6XX`).  A request is fired on its server
transaction's activity, or on its dialog's activity when it belongs to a
dialog the RA knows; a response on its client transaction's activity, or
on its dialog's when the request was sent in a dialog.  An SBB declares the
methods it serves by handling their event types: that is also how the RA
builds the Allow header of a 405.

Event objects live in memory only: an SBB that must answer later keeps
`RequestEvent.transaction` (a string) in a CMP field, not the event.
"""

from dataclasses import dataclass

from slee.events import EventType

VENDOR = "slee.sip"
VERSION = "1.0"

#: The methods with an event type of their own (RFC 3261, 3262, 3265/6665,
#: 3311, 3428, 3515, 3903, 6086).
METHODS = ("ACK", "BYE", "CANCEL", "INFO", "INVITE", "MESSAGE", "NOTIFY", "OPTIONS",
           "PRACK", "PUBLISH", "REFER", "REGISTER", "SUBSCRIBE", "UPDATE")

REQUEST = {method: EventType(method, VENDOR, VERSION) for method in METHODS}
UNKNOWN_REQUEST = EventType("UnknownMethod", VENDOR, VERSION)

RESPONSE_1XX = EventType("Response1xx", VENDOR, VERSION)
RESPONSE_2XX = EventType("Response2xx", VENDOR, VERSION)
RESPONSE_3XX = EventType("Response3xx", VENDOR, VERSION)
RESPONSE_4XX = EventType("Response4xx", VENDOR, VERSION)
RESPONSE_5XX = EventType("Response5xx", VENDOR, VERSION)
RESPONSE_6XX = EventType("Response6xx", VENDOR, VERSION)
RESPONSE = (None, RESPONSE_1XX, RESPONSE_2XX, RESPONSE_3XX, RESPONSE_4XX, RESPONSE_5XX,
            RESPONSE_6XX)

TRANSACTION_TIMEOUT = EventType("TransactionTimeout", VENDOR, VERSION)
TRANSPORT_ERROR = EventType("TransportError", VENDOR, VERSION)

EVENT_TYPES = (*REQUEST.values(), UNKNOWN_REQUEST, *RESPONSE[1:], TRANSACTION_TIMEOUT,
               TRANSPORT_ERROR)


def request_event_type(method):
    """@return: the event type an incoming C{method} request fires."""
    return REQUEST.get(method, UNKNOWN_REQUEST)


@dataclass(frozen=True, eq=False, slots=True)
class RequestEvent:
    """
    A request arrived.

    @ivar request: the L{resource_adaptors.sip.core.message.Request}.
    @ivar transaction: the server transaction's id, which the provider's
        C{respond} takes; C{None} for an ACK (it has no transaction).
    @ivar peer: the L{resource_adaptors.sip.core.routing.Peer} it came from.
    @ivar dialog: the id of the dialog it belongs to, or C{None}.
    @ivar identity: who it comes from, as the RA decided
        (L{resource_adaptors.sip.authentication}): a
        L{resource_adaptors.auth.users.User} (its C{xui} the address of
        record, C{admin} whether it acts for anyone), or C{None} for a
        request that needs no identity (OPTIONS, ACK, CANCEL, a NOTIFY in a
        dialog we started).  Services authorize by it, never by From or
        P-Asserted-Identity.
    """

    request: object
    transaction: object
    peer: object
    dialog: object = None
    identity: object = None


@dataclass(frozen=True, eq=False, slots=True)
class ResponseEvent:
    """
    A response to a request an SBB sent arrived.

    @ivar transaction: the client transaction's id (what C{send_request}
        returned).
    """

    response: object
    transaction: str
    dialog: object = None


@dataclass(frozen=True, eq=False, slots=True)
class TransactionTimeoutEvent:
    """A client transaction got no final response in time (Timer B or F)."""

    transaction: str
    request: object


@dataclass(frozen=True, eq=False, slots=True)
class TransportErrorEvent:
    """A request or response could not be sent (connection refused, ...)."""

    transaction: str
    request: object
    reason: str
