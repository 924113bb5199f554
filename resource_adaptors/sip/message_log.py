"""
What the SIP stack tells the log about the messages it carries, so that an
operator can follow a call flow and see why a request was refused without
a packet capture.

The loggers, by namespace (levels are set with C{--log-level}, see
L{slee.trace}):

- C{resource_adaptors.sip.messages}, at debug: one line for each message
  received or sent, with its first line, Call-ID, CSeq and peer.  The
  transports call L{received} where a parsed message goes up and L{sent}
  where one is made ready to go (a retransmission is not logged again).
- C{resource_adaptors.sip.messages.bodies}, at debug: the whole message,
  headers and body, after its summary.  It logs only when that namespace
  is set to debug itself: a level set on C{resource_adaptors.sip.messages}
  or above does not turn it on, since bodies (presence documents, resource
  lists) are large and personal.
- C{resource_adaptors.sip.refusals}, at info: each 4xx, 5xx or 6xx response
  the stack sends (L{refused}), whoever decided it (a service, the
  resource adaptor, the transaction layer or the transports), with the
  reason, who asked and for which resource.

The stack's hot path calls these for every message: each checks the level
of its namespace before it formats anything.
"""

from twisted.logger import Logger, LogLevel

from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.uri import SipURI
from slee.trace import LOG_LEVELS, log_observer

MESSAGES = "resource_adaptors.sip.messages"
BODIES = MESSAGES + ".bodies"
REFUSALS = "resource_adaptors.sip.refusals"

_messages = Logger(namespace=MESSAGES, observer=log_observer)
_bodies = Logger(namespace=BODIES, observer=log_observer)
_refusals = Logger(namespace=REFUSALS, observer=log_observer)


def received(message, peer):
    """A parsed message came from C{peer} (a L{Peer}) and goes up the stack."""
    if LOG_LEVELS.enabled(MESSAGES, LogLevel.debug):
        _log_message("received", "from", message, peer)


def sent(message, peer):
    """C{message} goes to C{peer} (a L{Peer}): for a response, the peer its
    request came from when known."""
    if LOG_LEVELS.enabled(MESSAGES, LogLevel.debug):
        _log_message("sent", "to", message, peer)


def refused(request, response, peer):
    """
    C{response} answers C{request}, which came from C{peer}: logged when it
    is a refusal (4xx to 6xx).

    The identity logged is the address of record of the request's From,
    which anyone can write: once SIP requests are authenticated, the
    authenticated identity is to replace it.
    """
    if response.status >= 400 and LOG_LEVELS.enabled(REFUSALS, LogLevel.info):
        warning = response.headers.get("Warning")
        _refusals.info(
            "refused {method} {resource} from {identity} ({peer}): {status} {reason}"
            "{warning}", method=request.method, resource=request.uri,
            identity=_identity(request), peer=peer_text(peer), status=response.status,
            reason=response.reason, warning=f" (Warning: {warning})" if warning else "")


def peer_text(peer):
    """@return: C{transport:host:port} of a L{Peer}."""
    return f"{peer.transport}:{peer.host}:{peer.port}"


def _log_message(verb, preposition, message, peer):
    headers = message.headers
    _messages.debug("{verb} {first_line} {preposition} {peer} (Call-ID: {call_id}, "
                    "CSeq: {cseq})", verb=verb, first_line=message.start_line(),
                    preposition=preposition, peer=peer_text(peer),
                    call_id=headers.get("Call-ID"), cseq=headers.get("CSeq"))
    if BODIES in LOG_LEVELS.configured() and LOG_LEVELS.enabled(BODIES, LogLevel.debug):
        _bodies.debug("{verb} {preposition} {peer}:\n{text}", verb=verb,
                      preposition=preposition, peer=peer_text(peer),
                      text=bytes(message).decode("utf-8", "replace"))


def _identity(request):
    """@return: the address of record of the request's From (C{sip:user@host},
    without port and parameters), or its text when it does not parse."""
    try:
        uri = request.from_.uri
    except (ParseError, AttributeError):
        return request.headers.get("From") or "(no From)"
    if isinstance(uri, SipURI):
        user = f"{uri.user}@" if uri.user else ""
        return f"{uri.scheme}:{user}{uri.host.lower()}"
    return str(uri)
