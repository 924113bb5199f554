"""
The rules of a registrar (RFC 3261 §10.3), sans I/O: what a REGISTER does
to the bindings of an address of record, and what it is answered.

The registrar SBB (L{sbbs.registrar.registrar}) reads a request with
L{read_register}, applies it to the address's live bindings with
L{register}, stores the L{Outcome}'s bindings and answers with
L{contact_fields}.  Nothing here knows of SIP transactions, timers or the
database: the clock's time is a parameter.
"""

from dataclasses import dataclass
from urllib.parse import unquote

from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.uri import SipURI
from sbbs.sipevent.subscription import ExpiryPolicy
from slee.compact import Compact


@dataclass(frozen=True)
class Limits:
    """
    What a registrant may ask of us: a peer controls every number of a
    REGISTER, so each is bounded.

    @ivar expiry: the seconds a binding may last (default 3600, shorter
        than the minimum: 423 with Min-Expires, longer: cut down).
    @ivar max_contacts: bindings one address of record may have (403 past it).
    @ivar max_uri_length: characters of a Contact or Path URI (400 past it).
    @ivar max_path: Path entries kept with a binding (400 past it).
    """

    expiry: ExpiryPolicy = ExpiryPolicy(default=3600, minimum=60, maximum=86400)
    max_contacts: int = 20
    max_uri_length: int = 1024
    max_path: int = 10


@dataclass(frozen=True)
class Binding(Compact):
    """
    One contact of an address of record (stored with the others at every
    REGISTER: compact).

    @ivar uri: the Contact URI, as the registrant wrote it.
    @ivar key: what the URI is compared by (L{contact_key}).
    @ivar q: its preference (0 to 1), or None when it gave none.
    @ivar expires_at: when it ends unless refreshed (clock seconds).
    @ivar call_id: the Call-ID of the REGISTER that last wrote it.
    @ivar cseq: that REGISTER's CSeq number (RFC 3261 §10.3 step 7).
    @ivar path: the Path URIs of that REGISTER (RFC 3327), top first:
        the route to the contact.
    """

    uri: str
    key: str
    q: float | None
    expires_at: float
    call_id: str
    cseq: int
    path: tuple = ()


@dataclass(frozen=True)
class Contact:
    """One Contact of a REGISTER: its URI, key, q, and its C{expires} parameter or None."""

    uri: str
    key: str
    q: float | None
    expires: int | None


#: The C{Contact: *} of a REGISTER removing every binding.
STAR = "*"


@dataclass(frozen=True)
class Register:
    """
    What a REGISTER asks.

    @ivar contacts: a tuple of L{Contact} (empty: a query), or L{STAR}.
    @ivar expires: its Expires header, or None.
    """

    contacts: tuple | str
    expires: int | None
    call_id: str
    cseq: int
    path: tuple = ()


@dataclass(frozen=True)
class Outcome:
    """
    What a REGISTER came to.

    @ivar status: 200, or the refusal: 400, 403, 423, 500.
    @ivar reason: the reason phrase.
    @ivar bindings: the bindings once it is applied (200), else None.
    @ivar min_expires: the Min-Expires of a 423, else None.
    """

    status: int
    reason: str
    bindings: tuple | None = None
    min_expires: int | None = None


class Refusal(Exception):
    """A REGISTER that cannot be read: answered C{status} with C{reason}."""

    def __init__(self, status, reason):
        super().__init__(status, reason)
        self.status, self.reason = status, reason


def contact_key(uri):
    """
    @return: the text two Contact URIs are equal by when they name the same
        contact (as RFC 3261 §19.1.4 compares the usual ones): scheme, user
        unescaped, host without case, port, and parameters, names and
        values without case, in name order.  URI headers are not compared.
    """
    if not isinstance(uri, SipURI):
        return str(uri)
    user = f"{unquote(uri.user)}@" if uri.user else ""
    port = "" if uri.port is None else f":{uri.port}"
    parameters = "".join(f";{name}" if value is None else f";{name}={value.lower()}"
                         for name, value in sorted((name.lower(), value)
                                                   for name, value in uri.params.items()))
    return f"{uri.scheme}:{user}{uri.host.lower()}{port}{parameters}"


def read_register(request, limits):
    """
    @param request: a REGISTER (L{resource_adaptors.sip.core.message.Request}).
    @return: the L{Register} it makes.
    @raise Refusal: (400) a header it cannot be read by, a C{*} with
        other contacts or without C{Expires: 0} (RFC 3261 §10.3 step 6), a
        URI longer than C{limits} allow, more Path entries than they allow;
        (403) more contacts than an address may have, before any is read.
    """
    try:
        names = request.contact or ()
        expires = request.expires
        path = tuple(request.headers.get_all("Path"))
        if len(names) > limits.max_contacts:
            raise Refusal(403, f"At most {limits.max_contacts} contacts per address of record")
        if len(path) > limits.max_path:
            raise Refusal(400, f"At most {limits.max_path} Path entries")
        if any(len(entry) > limits.max_uri_length for entry in path):
            raise Refusal(400, "Path entry too long")
        if any(name.star for name in names):
            if len(names) > 1 or expires != 0:
                raise Refusal(400, "Contact * needs Expires: 0 and no other contact")
            contacts = STAR
        else:
            contacts = tuple(_contact(name, limits) for name in names)
    except ParseError as error:
        raise Refusal(400, error.reason) from None
    return Register(contacts, expires, request.call_id, request.cseq.number, path)


def _contact(name, limits):
    uri = str(name.uri)
    if len(uri) > limits.max_uri_length:
        raise Refusal(400, "Contact URI too long")
    return Contact(uri, contact_key(name.uri), name.q, name.expires)


def live(bindings, now):
    """@return: those of C{bindings} that have not expired at C{now}."""
    return tuple(binding for binding in bindings if binding.expires_at > now)


def register(bindings, request, now, limits):
    """
    Apply a REGISTER to the live bindings of its address of record (RFC
    3261 §10.3 steps 6 to 8): all or nothing.

    A binding that exists already is changed only by a request with
    another Call-ID (a registrant that restarted) or a higher CSeq in the
    same Call-ID: otherwise the request is out of order (a retransmission
    that lost a race, a stale request) and fails with 500, without
    Retry-After, since sending it again cannot succeed.

    @param bindings: the live bindings (L{live}).
    @param request: a L{Register}.
    @return: an L{Outcome}; a 200's bindings are best first (L{ordered}).
    """
    by_key = {binding.key: binding for binding in bindings}
    if request.contacts == STAR:
        if any(_out_of_order(binding, request) for binding in bindings):
            return _out_of_order_outcome()
        return Outcome(200, "OK", ())
    for contact in request.contacts:
        granted = limits.expiry.grant(
            request.expires if contact.expires is None else contact.expires)
        if granted is None:
            return Outcome(423, "Interval Too Brief", min_expires=limits.expiry.minimum)
        existing = by_key.get(contact.key)
        if existing is not None and _out_of_order(existing, request):
            return _out_of_order_outcome()
        if granted == 0:
            by_key.pop(contact.key, None)
        else:
            by_key[contact.key] = Binding(contact.uri, contact.key, contact.q, now + granted,
                                          request.call_id, request.cseq, request.path)
    if len(by_key) > limits.max_contacts:
        return Outcome(403, f"At most {limits.max_contacts} contacts per address of record")
    return Outcome(200, "OK", ordered(by_key.values()))


def _out_of_order(binding, request):
    return binding.call_id == request.call_id and request.cseq <= binding.cseq


def _out_of_order_outcome():
    return Outcome(500, "Out of order: CSeq not higher than the binding's")


def ordered(bindings):
    """@return: C{bindings} best first: by q (none counts as 1), then the latest to expire."""
    return tuple(sorted(bindings, key=lambda binding: (
        -(1.0 if binding.q is None else binding.q), -binding.expires_at, binding.key)))


def next_expiry(bindings):
    """@return: when the first of C{bindings} expires, or None when there are none."""
    return min((binding.expires_at for binding in bindings), default=None)


def contact_fields(bindings, now):
    """
    @return: the Contact header fields of a 200 to a REGISTER: every
        binding, with its q and the seconds it has left (RFC 3261 §10.3
        step 8).
    """
    return [("Contact", f"<{binding.uri}>"
             + ("" if binding.q is None else f";q={binding.q:g}")
             + f";expires={max(0, round(binding.expires_at - now))}")
            for binding in bindings]
