"""
Which resource a request is about: its address of record, the key under
which publications, subscriptions and rules meet.
"""

from urllib.parse import unquote

from resource_adaptors.sip.syntax import ParseError
from resource_adaptors.sip.uri import SipURI, parse_uri


def address_of_record(uri):
    """
    @return: C{scheme:user@host} of a SIP URI, with the user unescaped and
        the host in lower case, without port and parameters: clients
        differ in those (linphone drops the port from From and To), not in
        whom they mean.  Other URIs (tel:...) as they are written.
    """
    if isinstance(uri, SipURI):
        user = f"{unquote(uri.user)}@" if uri.user else ""
        return f"{uri.scheme}:{user}{uri.host.lower()}"
    return str(uri)


#: URI parameters that say how to reach a resource, not which one it is.
ROUTING_PARAMETERS = frozenset(("transport", "maddr", "ttl", "lr", "method", "user", "ob"))


def resource_key(uri):
    """
    @return: the L{address_of_record} of a SIP URI (a L{SipURI} or its
        text) followed by the parameters that name a resource, sorted by
        their lower-cased names: the key of a resource list, which OMA and
        RCS clients tell apart by a parameter
        (C{sip:alice@example.com;pres-list=buddies}); None for text that is
        not a SIP URI.
    """
    if not isinstance(uri, SipURI):
        try:
            uri = parse_uri(str(uri))
        except ParseError:
            return None
        if not isinstance(uri, SipURI):
            return None
    named = sorted((name.lower(), value) for name, value in uri.params.items()
                   if name.lower() not in ROUTING_PARAMETERS)
    return address_of_record(uri) + "".join(
        f";{name}" if value is None else f";{name}={value}" for name, value in named)
