"""
The events the XCAP resource adaptor fires: one type per XCAP method, on
the request's own activity, which ends once the answer is sent; and, for a
request an SBB made (L{resource_adaptors.xcap.provider.IXcapProvider.request}),
the answer, on that same activity.

Event objects live in memory only: the request they stand for cannot
outlive the process.
"""

from dataclasses import dataclass

from slee.events import EventType

VENDOR = "slee.xcap"
VERSION = "1.0"

GET = EventType("XcapGet", VENDOR, VERSION)
PUT = EventType("XcapPut", VENDOR, VERSION)
DELETE = EventType("XcapDelete", VENDOR, VERSION)

#: HTTP method -> the event type it fires.
METHODS = {"GET": GET, "PUT": PUT, "DELETE": DELETE}
#: The answer to a request an SBB made.
RESPONSE = EventType("XcapResponse", VENDOR, VERSION)
EVENT_TYPES = (*METHODS.values(), RESPONSE)


@dataclass(frozen=True, eq=False, slots=True)
class XcapRequestEvent:
    """
    An XCAP request arrived.

    @ivar request: the request's id, its activity's handle: what the
        provider's C{respond} takes.
    @ivar method: C{"GET"}, C{"PUT"} or C{"DELETE"}.
    @ivar uri: the L{resource_adaptors.xcap.uri.XcapUri} it names.
    @ivar headers: lower-case header name -> value (the last one if repeated).
    @ivar body: the request body.
    @ivar user: the L{resource_adaptors.auth.users.User} who sent it
        (L{resource_adaptors.auth.users.TRUSTED} when the RA trusts the
        local host).
    """

    request: str
    method: str
    uri: object
    headers: dict
    body: bytes
    user: object


@dataclass(frozen=True, eq=False, slots=True)
class XcapResponseEvent:
    """
    The answer to a request an SBB made, fired on the request's activity.

    @ivar request: the request's id.
    @ivar status: the HTTP status.
    @ivar headers: lower-case header name -> value (C{etag}, C{content-type}...).
    @ivar body: the answer's body.
    """

    request: str
    status: int
    headers: dict
    body: bytes
