"""
Which resource a request is about: its address of record, the key under
which publications, subscriptions and rules meet.
"""

import re
from urllib.parse import quote, unquote

from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.uri import SipURI, parse_uri


def address_of_record(uri):
    """
    @return: C{scheme:user@host} of a SIP URI, with the user unescaped and
        the host in lower case, without port and parameters: clients
        differ in those (linphone drops the port from From and To), not in
        whom they mean.  Other URIs (tel:...) as they are written.  A user
        whose escapes stand for control characters stays escaped: an
        address is text that documents (watcher information...) carry.
    """
    if isinstance(uri, SipURI):
        user = ""
        if uri.user:
            unescaped = unquote(uri.user)
            user = (uri.user if _CONTROL.search(unescaped) else unescaped) + "@"
        return f"{uri.scheme}:{user}{uri.host.lower()}"
    return str(uri)


_CONTROL = re.compile("[\x00-\x1f\x7f]")


def identity_address(identity):
    """
    @param identity: who a request comes from, as the SIP RA decided (a
        L{resource_adaptors.auth.users.User}: the event's C{identity}).
    @return: the address of record of its XUI: whom services authorize.
    @raise ParseError: for an XUI that is no URI.
    """
    return address_of_record(parse_uri(identity.xui))


#: The longest URI a resource key is made of.
MAX_URI_LENGTH = 2048

#: URI parameters that say how to reach a resource, not which one it is.
ROUTING_PARAMETERS = frozenset(("transport", "maddr", "ttl", "lr", "method"))

# What a URI parameter's value may hold unescaped (RFC 3261 §25.1
# param-unreserved and unreserved), beyond what quote always keeps.
_PARAMETER_SAFE = "[]/:&+$!*'()"


def resource_key(uri):
    """
    @param uri: a URI as written (a service's, a member's, a Request-URI),
        or a parsed L{SipURI}.
    @return: the key it is matched by: for a SIP or SIPS URI, C{sip:} and
        its address of record (L{address_of_record}: user unescaped, host in
        lower case, no port), then its parameters but those of
        L{ROUTING_PARAMETERS}, names in lower case, sorted by name, values
        with their %-escapes normalized; URI headers dropped.  A SIPS URI
        has the key of the SIP URI: both name the same resource.  Without
        parameters, the key is the address of record the presence server
        keys the resource by.  Another URI (C{tel:}) is its own key.  None
        when C{uri} is not a URI, or longer than L{MAX_URI_LENGTH}.
    """
    if not isinstance(uri, SipURI):
        if len(uri) > MAX_URI_LENGTH:
            return None
        try:
            uri = parse_uri(uri.strip())
        except ParseError:
            return None
    if not isinstance(uri, SipURI):
        return address_of_record(uri)
    parameters = sorted((name.lower(), value) for name, value in uri.params.items()
                        if name.lower() not in ROUTING_PARAMETERS)
    return address_of_record(SipURI("sip", uri.user, None, uri.host)) + "".join(
        f";{name}" if value is None else f";{name}={quote(unquote(value), safe=_PARAMETER_SAFE)}"
        for name, value in parameters)
