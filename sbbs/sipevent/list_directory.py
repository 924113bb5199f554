"""
Which resources are resource lists (RFC 4662): a SUBSCRIBE to one of them
is a list subscription, served by the resource list server, and every other
notifier of its package lets it pass; so one SIP port serves lists and
single resources alike.

Notifiers choose their SUBSCRIBEs in initial event selectors, which run
before any entity exists and read no stored state; so the URIs of the
lists live here, in the process, as L{sbbs.sipevent.addresses.resource_key}
keys.  The resource list server keeps them in step with the services it
stores: it fills the directory when it starts and changes it after each
commit that changes its services (C{context.after_commit}), so that the
directory never says what the database does not.

A SUBSCRIBE that carries its list (RFC 5367: a body of disposition
C{recipient-list}) is a list subscription wherever it goes.
"""

from sbbs.sipevent.addresses import resource_key

#: The Content-Disposition of a list a SUBSCRIBE carries (RFC 5367).
RECIPIENT_LIST = "recipient-list"


class ListDirectory:
    """The keys of the resource lists this process serves."""

    def __init__(self):
        self._keys = frozenset()

    def __contains__(self, key):
        return key in self._keys

    def __len__(self):
        return len(self._keys)

    def replace(self, keys):
        """Make C{keys} the lists served (the server starts)."""
        self._keys = frozenset(keys)

    def update(self, added=(), removed=()):
        """Serve the lists C{added} and no longer those C{removed}."""
        self._keys = (self._keys - frozenset(removed)) | frozenset(added)


#: The lists of this process.
LISTS = ListDirectory()


def is_list_resource(uri):
    """Whether C{uri} (a SIP URI or its text) is a resource list of this process."""
    return bool(LISTS) and resource_key(uri) in LISTS


def is_list_request(request):
    """Whether a SIP SUBSCRIBE is a list subscription: to a list, or carrying one."""
    if request.body:
        disposition = request.headers.get("Content-Disposition")
        if disposition and disposition.split(";")[0].strip().lower() == RECIPIENT_LIST:
            return True
    return is_list_resource(request.uri)
