"""
The xcap-diff event package (RFC 5875) on the SIP event engine: SIP
watchers of XCAP documents, directories, elements and attributes.

A SUBSCRIBE carries a resource list (RFC 5875 §4.1) of what to watch,
relative to the XCAP root: documents, collections (C{resource-lists/},
C{resource-lists/users/sip:joe@example.com/}, C{.../global/}), elements and
attributes (a document URI with a node selector).  The watcher may watch
what it may read over XCAP (L{sbbs.xdms.server}): its own documents and
the global tree, everything if it is an administrator.  Who it is, the SIP
RA decided (the request's C{identity}: a Digest user of the store shared
with the XCAP server, or the P-Asserted-Identity of a trusted peer; for a
service's subscription, its subscriber), and the XCAP RA says what that
user may read, as it would over HTTP
(L{resource_adaptors.xcap.provider.IXcapProvider.user_for}).

The first NOTIFY, and the one after each refresh, lists every document
watched with its ETag, and each watched element and attribute with its
content (RFC 5875 §4.4).  Then each committed change, heard from the XDMS
on the activities of L{sbbs.xdms.changes}, makes a NOTIFY with the
document's previous and new ETags; the Event header's C{diff-processing}
(RFC 5875 §4.2) says what more it carries:

- C{no-patching} (the default): nothing more: the watcher fetches;
- C{xcap-patching} and C{aggregate}: the new document, as one patch
  replacing its root element (RFC 5874), so that the watcher needs no
  fetch, except for a document just created, which no patch makes.  Changes made while a NOTIFY is in flight are aggregated into the
  next one: the first previous ETag, the last new one and content; a full
  replacement makes that exact in every mode.
"""

from urllib.parse import unquote

from resource_adaptors.xcap.uri import DocumentSelector, XcapUriError, parse_xcap_uri
from sbbs.sipevent.notifier import NotifierSbb, Refusal
from sbbs.sipevent.subscription import State
from sbbs.xdms import nodes
from sbbs.xdms.appusage import REGISTRY, documents_under
from sbbs.xdms.changes import DOCUMENT_CHANGED, watched_names
from sbbs.xdms.safexml import parse_document
from sbbs.xdms.server import STORE, document_key, may
from sbbs.xdms.stored import etag_and_content
from sbbs.xdms.xcapdiff import XcapDiffBuilder, XcapDiffError, parse_subscription
from slee.sbb import CmpField, handler

XCAP_DIFF_TYPE = "application/xcap-diff+xml"
RESOURCE_LISTS_TYPE = "application/resource-lists+xml"
#: The C{diff-processing} modes that carry the new documents.
PATCHING = frozenset(("xcap-patching", "aggregate"))


class Watched:
    """
    One entry of a subscription's resource list: a document, a collection,
    or a node of a document.

    @ivar text: the entry as the watcher wrote it (the C{sel} of its
        element and attribute reports).
    @ivar uri: for a document or a node, its L{XcapUri}; None for a collection.
    @ivar collection: for a collection, its AUID, tree (C{"global"},
        C{"users"} or None: both), XUI (None: every user's) and directory
        path (C{""} or C{"friends/"}).
    """

    __slots__ = ("text", "uri", "collection")

    def __init__(self, text):
        self.text = text
        self.uri = self.collection = None
        path, _, query = text.partition("?")
        if path.endswith("/"):
            self.collection = _collection(path)
        else:
            self.uri = parse_xcap_uri("/" + path, "/", query)
            if REGISTRY.get(self.uri.document.auid) is None:
                raise XcapUriError(404, f"no application usage {self.uri.document.auid!r}")

    @property
    def is_node(self):
        return self.uri is not None and self.uri.node is not None

    def readable_by(self, user):
        """Whether C{user} may read all of it over XCAP."""
        if self.uri is not None:
            return may(user, self.uri.document, "GET")
        _, tree, xui, _ = self.collection
        return user.admin or tree == "global" or (tree == "users" and xui == user.xui)

    def watch_name(self):
        """The name of the activity where the XDMS announces its changes (L{sbbs.xdms.changes})."""
        if self.uri is not None:
            return watched_names(self.uri.document)[0]
        auid, tree, xui, _ = self.collection
        if tree is None or (tree == "users" and xui is None):
            return watched_names(DocumentSelector(auid, None, ("-",)))[2]
        return watched_names(DocumentSelector(auid, xui, ("-",)))[1]

    def covers(self, key):
        """Whether the document stored under C{key} is (in) it."""
        if self.uri is not None:
            return document_key(self.uri.document) == key
        auid, tree, xui, directory = self.collection
        return (key[0] == auid and (tree is None or key[1] == tree)
                and (xui is None or key[2] == xui) and key[3].startswith(directory))

    def store_prefix(self):
        """The first parts of the store keys of the documents of a collection."""
        auid, tree, xui, _ = self.collection
        return (auid,) if tree is None else (auid, tree) if xui is None else (auid, tree, xui)

    def node_report(self, store):
        """@return: the watched element or attribute now (bytes), or None if absent."""
        document = self.uri.document
        stored = etag_and_content(store.get(document_key(document)))
        if stored is None:
            return None
        usage = REGISTRY.get(document.auid)
        steps, attribute = self.uri.node.resolve(self.uri.bindings, usage.namespace)
        root = parse_document(stored[1])
        try:
            if attribute is None:
                return nodes.element_xml(root, steps)
            return nodes.attribute_body(root, steps, attribute)
        except nodes.NotFound:
            return None


def _collection(path):
    """
    @return: (AUID, tree, XUI, directory) of a collection URI (ending in C{/}).
    @raise XcapUriError: 400 when it is no collection of an application usage.
    """
    segments = [unquote(segment) for segment in path[:-1].split("/")]
    if any(segment in ("", ".", "..") or "\0" in segment for segment in segments):
        raise XcapUriError(400, f"bad collection {path!r}")
    auid, *tree = segments
    if REGISTRY.get(auid) is None or tree[:1] not in ([], ["global"], ["users"]):
        raise XcapUriError(400, f"no collection {path!r}")
    if not tree:
        return auid, None, None, ""
    if tree[0] == "global":
        return auid, "global", "", "".join(f"{name}/" for name in tree[1:])
    xui = tree[1] if len(tree) > 1 else None
    return auid, "users", xui, "".join(f"{name}/" for name in tree[2:])


def _selector(key):
    """The document selector, below the XCAP root, of a store key."""
    auid, tree, xui, path = key
    return str(DocumentSelector(auid, xui if tree == "users" else None, tuple(path.split("/"))))


class XcapDiffNotifierSbb(NotifierSbb):
    """One xcap-diff subscription; see the module docstring."""

    package = "xcap-diff"
    content_types = (XCAP_DIFF_TYPE,)

    #: The entries watched, as written (L{Watched} is made again from them).
    entries = CmpField(default=())
    #: The names of the XDMS activities attached to.
    watching = CmpField(default=())
    #: document selector -> (previous ETag, new ETag, new content) of the
    #: changes not NOTIFYed yet.
    changes = CmpField(default_factory=dict)
    #: element or attribute entry -> the body last reported (None: absent).
    reported = CmpField(default_factory=dict)

    def check_subscribe(self, request, subscription):
        if not request.body:
            return Refusal(400, "An xcap-diff SUBSCRIBE needs a resource list")
        if request.content_type != RESOURCE_LISTS_TYPE:
            return Refusal(415, "Unsupported Media Type", (("Accept", RESOURCE_LISTS_TYPE),))
        try:
            entries = parse_subscription(request.body)
            watched = [Watched(entry) for entry in entries]
        except XcapDiffError as error:
            return Refusal(400, f"Bad resource list: {error}")
        except XcapUriError as error:
            return Refusal(400, f"Bad resource list entry: {error.reason}")
        identity = request.identity
        user = self.context.resource_adaptor("xcap").user_for(
            request.subscriber if identity is None else identity.xui, request.host)
        for entry in watched:
            if not entry.readable_by(user):
                return Refusal(403, f"Not allowed to watch {entry.text}")
        self.entries = tuple(entries)
        self.watching = tuple(sorted({entry.watch_name() for entry in watched}))
        for name in self.watching:
            self.context.naming.join(name, self.context.sbb_local_object)
        return State.ACTIVE

    def subscription_ended(self, subscription):
        for name in self.watching:
            self.context.naming.leave(name, self.context.sbb_local_object)
        self.watching = ()

    @handler(DOCUMENT_CHANGED)
    def on_document_changed(self, event, aci):
        key = _document_key(event.document)
        if not any(entry.covers(key) for entry in self._watched()):
            return
        changes = dict(self.changes)
        earlier = changes.get(event.document)
        if earlier is not None and earlier[1] == event.new_etag:
            return          # heard already, on another activity watching it
        previous = event.old_etag if earlier is None else earlier[0]
        changes[event.document] = (previous, event.new_etag, event.content)
        self.changes = changes
        self.state_changed()

    def notify_body(self, subscription, full_state):
        xcap = self.context.resource_adaptor("xcap")
        store = self.context.shared_data(STORE)
        diff = XcapDiffBuilder(xcap.root_url + "/")
        watched = self._watched()
        if full_state:
            for key, (etag, _) in self._documents(store, watched):
                diff.document(_selector(key), new_etag=etag)
            self.reported = {}
        else:
            patching = subscription.parameters.get("diff-processing") in PATCHING
            for document, (previous, new, content) in sorted(self.changes.items()):
                # A new document is no patch of anything: the watcher fetches it.
                diff.document(document, previous_etag=previous, new_etag=new,
                              content=content if patching and previous else None)
        self.changes = {}
        self._report_nodes(diff, store, watched)
        return diff.to_bytes()

    def _documents(self, store, watched):
        """(key, (ETag, content)) of every document the entries name, each once, in key order."""
        found = {}
        for entry in watched:
            if entry.uri is not None:
                if entry.is_node:
                    continue
                key = document_key(entry.uri.document)
                stored = etag_and_content(store.get(key))
                if stored is not None:
                    found[key] = stored
            else:
                found.update((key, value) for key, value in
                             documents_under(store, *entry.store_prefix()) if entry.covers(key))
        return sorted(found.items())

    def _report_nodes(self, diff, store, watched):
        """Add the watched elements and attributes that changed since last reported."""
        reported = dict(self.reported)
        for entry in watched:
            if not entry.is_node:
                continue
            body = entry.node_report(store)
            if entry.text in reported and reported[entry.text] == body:
                continue
            reported[entry.text] = body
            if entry.uri.node.attribute is None:
                diff.element(entry.text, body)
            else:
                diff.attribute(entry.text, None if body is None else body.decode("utf-8"))
        self.reported = reported

    def _watched(self):
        return [Watched(entry) for entry in self.entries]


def _document_key(text):
    return document_key(parse_xcap_uri("/" + text, "/").document)
