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
            client = self.xdm.get_or_create()
            client.get("resource-lists/users/sip:joe@example.com/index", "sip:joe@example.com")

        def get_response(self, uri, status, etag, content, content_type):
            ...

The child can also L{IXdmClient.subscribe} to documents and collections:
each change the XDMS commits comes to the parent's C{document_updated}
(L{sbbs.xdms.changes}).

A request goes through the XCAP RA entity C{xcap}
(L{resource_adaptors.xcap.provider.IXcapRequester.request}), on the path
an HTTP client would use, and the XDMS authorizes it as it would an HTTP
one: for the user whose XUI is given, or as an administrator when it is
None (a service reading what it needs, as the presence server reads
pres-rules).  URIs are document or node URIs below the XCAP root, as in
the examples.

Where the XDMS runs decides how, and the parent sees no difference:

- in this container (the RA entity is the XCAP server,
  L{resource_adaptors.xcap.adaptor}): requests are made of it in-process,
  and watching is attaching to the activities where it announces changes;
- on another host (the RA entity is the XCAP client,
  L{resource_adaptors.xcap.remote}): requests go over HTTP, and each
  watched URI is an xcap-diff subscription over SIP (RFC 5875, in
  C{xcap-patching} mode, by a L{SubscriberSbb} child), whose NOTIFYs are
  turned into the same C{document_updated} calls.  It comes from the RA
  entity's C{sip-identity}, asserted: an XDMS that trusts this server
  takes it as that administrator; one that authenticates it takes the
  account the SIP RA answers challenges with.
"""

from BTrees.OOBTree import OOBTree
from lxml import etree
from zope.interface import Interface, implementer

from resource_adaptors.auth.users import TRUSTED, User
from resource_adaptors.xcap.events import RESPONSE
from sbbs.sipevent.subscriber import ISubscriberParent, SubscriberSbb
from sbbs.xdms.changes import DOCUMENT_CHANGED, watch_name
from sbbs.xdms.xcapdiff import (
    RESOURCE_LISTS_NAMESPACE, SUBSCRIPTION_TYPE, XCAP_DIFF_TYPE, XcapDiffError, parse_xcap_diff)
from slee.sbb import ChildRelation, CmpField, Sbb, handler


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


class _IXdmClientLocal(IXdmClient, ISubscriberParent):
    """The child's local interface: its parent's calls, and its own subscriber children's."""


@implementer(_IXdmClientLocal)
class XdmClientSbb(Sbb):
    """The child SBB that carries a service's XCAP requests and brings the answers back."""

    local_interface = _IXdmClientLocal

    #: request activity key -> (operation, uri, ETag before) of the
    #: requests not answered yet.
    waiting = CmpField(default_factory=dict)
    #: A remote XDMS only: uri -> (reference to the L{SubscriberSbb} child
    #: watching it, whether its first NOTIFY came).
    remote_watches = CmpField(default_factory=dict)
    #: A remote XDMS only: document -> the ETag last heard of.
    known = CmpField(default_factory=dict)
    subscribers = ChildRelation(SubscriberSbb)

    def get(self, uri, xui=None):
        self._request("get", "GET", uri, xui, (), b"")

    def put(self, uri, content, content_type, xui=None, if_match=None, if_none_match=None):
        headers = [("Content-Type", content_type), *_conditions(if_match, if_none_match)]
        self._request("put", "PUT", uri, xui, headers, content)

    def delete(self, uri, xui=None, if_match=None, if_none_match=None):
        self._request("delete", "DELETE", uri, xui, _conditions(if_match, if_none_match), b"")

    def subscribe(self, uri):
        xcap = self.context.resource_adaptor("xcap")
        if xcap.xcap_diff_uri is None:
            self.context.naming.join(watch_name(uri), self.context.sbb_local_object)
            return
        if uri in self.remote_watches:
            return
        child = self.subscribers.create()
        child.start(xcap.xcap_diff_uri, xcap.sip_identity,
                    "xcap-diff;diff-processing=xcap-patching", resource_list([uri]),
                    SUBSCRIPTION_TYPE, assert_identity=True)
        self.remote_watches = {**self.remote_watches,
                               uri: (child.reference, False)}

    def unsubscribe(self, uri):
        xcap = self.context.resource_adaptor("xcap")
        if xcap.xcap_diff_uri is None:
            self.context.naming.leave(watch_name(uri), self.context.sbb_local_object)
            return
        watches = dict(self.remote_watches)
        watched = watches.pop(uri, None)
        if watched is not None:
            self.remote_watches = watches
            self.context.resolve(watched[0]).stop()

    @handler(DOCUMENT_CHANGED)
    def on_document_changed(self, event, aci):
        self.context.parent.document_updated(event.document, event.old_etag, event.new_etag,
                                             event.content)

    # -- a remote XDMS's NOTIFYs (ISubscriberParent) -----------------------------

    def notified(self, child, state, content_type, body):
        """
        An xcap-diff NOTIFY from the remote XDMS.  The first one of a watch
        says what exists: it is only noted.  Each later one tells the parent
        of every document whose ETag is not the one last heard of: with
        its content when the NOTIFY carried it, else once a GET brought it
        (a new document, or a change missed while the watch was down).
        """
        if content_type != XCAP_DIFF_TYPE or not body:
            return
        try:
            diff = parse_xcap_diff(body)
        except XcapDiffError as error:
            self.context.tracer.warn("bad xcap-diff NOTIFY: {reason}", reason=error.reason)
            return
        reference = child.reference
        watches = dict(self.remote_watches)
        first = [uri for uri, (watcher, synced) in watches.items()
                 if watcher == reference and not synced]
        known = dict(self.known)
        for change in diff.documents:
            old = known.get(change.sel, change.previous_etag)
            if change.new_etag == old:
                continue
            known[change.sel] = change.new_etag
            if first:
                continue
            if change.new_etag is None or change.content is not None:
                self.context.parent.document_updated(change.sel, old, change.new_etag,
                                                     change.content)
            else:
                self._request("fetch", "GET", change.sel, None, (), b"", old)
        self.known = known
        for uri in first:
            watches[uri] = (reference, True)
        self.remote_watches = watches

    def subscription_ended(self, child, reason):
        """The remote XDMS refused or ended a watch for good: the watch is dropped."""
        reference = child.reference
        self.remote_watches = {uri: watched for uri, watched in self.remote_watches.items()
                               if watched[0] != reference}
        self.context.tracer.warn("xcap-diff subscription ended: {reason}", reason=reason)
        child.remove()

    def _request(self, operation, method, uri, xui, headers, body, old_etag=None):
        xcap = self.context.resource_adaptor("xcap")
        user = TRUSTED if xui is None else User(xui, xui)
        aci = xcap.request(method, f"{xcap.root.rstrip('/')}/{uri.lstrip('/')}", user,
                           headers, body)
        aci.attach(self.context.sbb_local_object)
        self.waiting = {**self.waiting, aci.key: (operation, uri, old_etag)}

    @handler(RESPONSE)
    def on_response(self, event, aci):
        waiting = dict(self.waiting)
        operation, uri, old_etag = waiting.pop(aci.key)
        self.waiting = waiting
        aci.detach(self.context.sbb_local_object)
        etag = event.headers.get("etag")
        parent = self.context.parent
        if operation == "fetch":
            if event.status == 200:
                parent.document_updated(uri, old_etag, etag, event.body)
        elif operation == "get":
            parent.get_response(uri, event.status, etag, event.body,
                                event.headers.get("content-type"))
        elif operation == "put":
            parent.put_response(uri, event.status, etag)
        else:
            parent.delete_response(uri, event.status, etag)


def resource_list(uris):
    """@return: the body of an xcap-diff SUBSCRIBE watching C{uris} (RFC 5875 §4.1)."""
    namespace = f"{{{RESOURCE_LISTS_NAMESPACE}}}"
    root = etree.Element(namespace + "resource-lists", nsmap={None: RESOURCE_LISTS_NAMESPACE})
    listed = etree.SubElement(root, namespace + "list")
    for uri in uris:
        etree.SubElement(listed, namespace + "entry", uri=uri)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _conditions(if_match, if_none_match):
    headers = []
    if if_match is not None:
        headers.append(("If-Match", if_match))
    if if_none_match is not None:
        headers.append(("If-None-Match", if_none_match))
    return headers


class XdmReaderSbb(Sbb):
    """
    The base of a service's one reader of XDMS documents (the presence
    server's rules, the list server's services): a singleton root entity,
    living on the named activity C{reader}, with one XDM client child.  A
    subclass names C{reader}, declares its initial handlers, and implements the
    C{get_response} and C{document_updated} of L{IXdmClientParent}; a
    reader never writes.
    """

    local_interface = IXdmClientParent
    singleton = True
    xdm = ChildRelation(XdmClientSbb)
    #: The name of the activity where the reader lives.
    reader = None

    #: What is being read (a BTree: many reads may wait at once, and a
    #: change writes only its bucket); what it maps to is the subclass's.
    reading = CmpField(default_factory=OOBTree)

    def live_on_the_reader_activity(self, aci):
        """Leave the activity that started it (C{aci}) for the named one."""
        aci.detach(self.context.sbb_local_object)
        self.context.naming.lookup_or_create(self.reader).attach(self.context.sbb_local_object)

    def put_response(self, uri, status, etag):
        pass

    def delete_response(self, uri, status, etag):
        pass
