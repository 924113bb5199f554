"""
Which resource a request is about: its address of record, the key under
which publications, subscriptions and rules meet.
"""

from urllib.parse import unquote

from resource_adaptors.sip.uri import SipURI


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
