"""
The XDM client: how a service reads and writes XCAP documents (Mobicents'
XDM client interface, in Python).

A service makes L{XdmClientSbb} a child (its unit declares the SBB, and
its root a C{ChildRelation} to it), calls the child's L{IXdmClient}
methods, and gets each answer later, in another transaction, through the
L{IXdmClientParent} methods of its own local interface::

    class Watcher(Sbb):
        local_interface = IXdmClientParent
        xdm = ChildRelation(XdmClientSbb)

        @handler(SOMETHING, initial=True, select=(Select.ACTIVITY_CONTEXT,))
        def on_something(self, event, aci):
            client = self.xdm.create()
            client.get("resource-lists/users/sip:joe@example.com/index", "sip:joe@example.com")

        def get_response(self, uri, status, etag, content, content_type):
            ...

The child can also L{IXdmClient.subscribe} to documents and collections:
each change the XDMS commits comes to the parent's C{document_updated}
(L{sbbs.xdms.changes}).

A request goes to the XDMS of this container through the XCAP RA entity
C{xcap} (L{resource_adaptors.xcap.provider.IXcapProvider.request}), on the
path an HTTP client would use, and the XDMS authorizes it as it would an
HTTP one: for the user whose XUI is given, or as an administrator when it
is None (a service reading what it needs, as the presence server reads
pres-rules).  URIs are document or node URIs below the XCAP root, as in
the examples.
"""

from zope.interface import Interface, implementer

from resource_adaptors.auth.users import TRUSTED, User
from resource_adaptors.xcap.events import RESPONSE
from sbbs.xdms.changes import DOCUMENT_CHANGED, watch_name
from slee.sbb import CmpField, Sbb, handler


class IXdmClient(Interface):
    """What a service asks of its XDM client child."""

    def get(uri, xui=None):
        """Read a document, an element or an attribute; answered by C{get_response}."""

    def put(uri, content, content_type, xui=None, if_match=None, if_none_match=None):
        """
        Write a document, an element or an attribute (C{content}, bytes, of
        C{content_type}); answered by C{put_response}.  C{if_match} and
        C{if_none_match} are ETags (or C{*}) that make it conditional.
        """

    def delete(uri, xui=None, if_match=None, if_none_match=None):
        """Delete a document, an element or an attribute; answered by C{delete_response}."""

    def subscribe(uri):
        """
        Watch a document (C{"resource-lists/users/sip:a@b/index"}), a user's
        documents of a usage (C{"resource-lists/users/sip:a@b/"}) or all the
        documents of a usage (C{"resource-lists/"}): each change committed
        from now on comes to C{document_updated}.
        """

    def unsubscribe(uri):
        """Stop watching what L{subscribe} watched."""


class IXdmClientParent(Interface):
    """What the parent of an XDM client is told (in its own local interface)."""

    def get_response(uri, status, etag, content, content_type):
        """A C{get} was answered: HTTP status, ETag (or None), body, its type."""

    def put_response(uri, status, etag):
        """A C{put} was answered: HTTP status and the document's new ETag (or None)."""

    def delete_response(uri, status, etag):
        """A C{delete} was answered: HTTP status and the document's new ETag (or None)."""

    def document_updated(document, old_etag, new_etag, content):
        """
        A watched document changed: its URI below the XCAP root, its ETags
        before and now (None: it did not exist, or it is gone) and its
        content now (None when deleted).
        """


@implementer(IXdmClient)
class XdmClientSbb(Sbb):
    """The child SBB that carries a service's XCAP requests and brings the answers back."""

    local_interface = IXdmClient

    #: request activity key -> (operation, uri) of the requests not answered yet.
    waiting = CmpField(default_factory=dict)

    def get(self, uri, xui=None):
        self._request("get", "GET", uri, xui, (), b"")

    def put(self, uri, content, content_type, xui=None, if_match=None, if_none_match=None):
        headers = [("Content-Type", content_type), *_conditions(if_match, if_none_match)]
        self._request("put", "PUT", uri, xui, headers, content)

    def delete(self, uri, xui=None, if_match=None, if_none_match=None):
        self._request("delete", "DELETE", uri, xui, _conditions(if_match, if_none_match), b"")

    def subscribe(self, uri):
        naming, name = self.context.naming, watch_name(uri)
        watching = naming.lookup(name)
        if watching is None:
            watching = self.context.create_null_activity()
            naming.bind(watching, name)
        watching.attach(self.context.sbb_local_object)

    def unsubscribe(self, uri):
        naming, name = self.context.naming, watch_name(uri)
        watching = naming.lookup(name)
        if watching is None:
            return
        watching.detach(self.context.sbb_local_object)
        if not watching.attached_count():
            naming.unbind(name)     # nobody watches: the activity ends

    @handler(DOCUMENT_CHANGED)
    def on_document_changed(self, event, aci):
        self.context.parent.document_updated(event.document, event.old_etag, event.new_etag,
                                             event.content)

    def _request(self, operation, method, uri, xui, headers, body):
        xcap = self.context.resource_adaptor("xcap")
        user = TRUSTED if xui is None else User(xui, xui)
        aci = xcap.request(method, f"{xcap.root.rstrip('/')}/{uri.lstrip('/')}", user,
                           headers, body)
        aci.attach(self.context.sbb_local_object)
        self.waiting = {**self.waiting, aci.key: (operation, uri)}

    @handler(RESPONSE)
    def on_response(self, event, aci):
        waiting = dict(self.waiting)
        operation, uri = waiting.pop(aci.key)
        self.waiting = waiting
        aci.detach(self.context.sbb_local_object)
        etag = event.headers.get("etag")
        parent = self.context.parent
        if operation == "get":
            parent.get_response(uri, event.status, etag, event.body,
                                event.headers.get("content-type"))
        elif operation == "put":
            parent.put_response(uri, event.status, etag)
        else:
            parent.delete_response(uri, event.status, etag)


def _conditions(if_match, if_none_match):
    headers = []
    if if_match is not None:
        headers.append(("If-Match", if_match))
    if if_none_match is not None:
        headers.append(("If-None-Match", if_none_match))
    return headers
