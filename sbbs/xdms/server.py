"""
The XDMS service: one short-lived entity per XCAP request (RFC 4825 §7, §8).

Who may do what is each application usage's authorization policy
(L{sbbs.xdms.appusage.AppUsage.authorize}); by default an administrator
anything, a user reads and writes the documents of its own XUI
(C{users/<XUI>/...}) and reads the global tree; anything else is 403.

Documents live in the data shared under L{STORE} (L{slee.interfaces.ISbbContext.shared_data}:
the xcap-diff notifier reads them too), written in the request's transaction: an answer 200 or 201 is only sent once
the change is committed.  Each stored document is an ETag and bytes, in a
database object of its own (L{sbbs.xdms.stored}); the ETag is strong and
new on every change.

Conditional requests (RFC 7232) compare the document's ETag: C{If-Match}
(C{*}: the document exists) and C{If-None-Match} (C{*}: it does not) on
every method, 412 when they fail, 304 for a GET whose C{If-None-Match}
matches.
"""

import hashlib
import uuid
from urllib.parse import quote

from lxml import etree

from resource_adaptors.xcap import events
from resource_adaptors.xcap.uri import node_selector_text
from sbbs.xdms import nodes
from sbbs.xdms.appusage import REGISTRY, documents_of
from sbbs.xdms.changes import DOCUMENT_CHANGED, DocumentChangedEvent, watched_names
from sbbs.xdms.errors import XCAP_ERROR_TYPE, XcapConflict
from sbbs.xdms.safexml import parse_document
from sbbs.xdms.stored import etag_and_content, store_document
from slee.sbb import Sbb, Select, handler


#: The name of the shared data holding the documents: (AUID, C{"global"} or
#: C{"users"}, XUI or C{""}, document path) -> its L{StoredDocument}.
STORE = "slee.xdms.documents"

#: What a user's writes may amount to: the peer controls both.
MAX_DOCUMENT_SIZE = 1 << 20
MAX_DOCUMENTS_PER_USER = 1000


class HttpError(Exception):
    """An answer other than a conflict: C{status}, a reason, extra headers."""

    def __init__(self, status, reason, headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = tuple(headers)


class XdmsSbb(Sbb):
    """Serves one XCAP request, answers it, and goes."""

    @handler(events.GET, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_get(self, event, aci):
        self._serve(event, aci, _get)

    @handler(events.PUT, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_put(self, event, aci):
        self._serve(event, aci, _put)

    @handler(events.DELETE, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_delete(self, event, aci):
        self._serve(event, aci, _delete)

    def _serve(self, event, aci, operation):
        xcap = self.context.resource_adaptor("xcap")
        try:
            request = _Request(event, self.context.shared_data(STORE), xcap.root)
            status, headers, body = operation(request)
            if request.change is not None:
                self._announce(event.uri.document, *request.change)
        except nodes.NoParent as conflict:
            conflict.ancestor = _ancestor(event, xcap.root, conflict.depth)
            status, headers, body = 409, [("Content-Type", XCAP_ERROR_TYPE)], conflict.document()
        except XcapConflict as conflict:
            status, headers, body = 409, [("Content-Type", XCAP_ERROR_TYPE)], conflict.document()
        except nodes.NotFound:
            status, headers, body = 404, [], b"no such node\n"
        except HttpError as error:
            status, headers, body = error.status, list(error.headers), \
                (error.reason + "\n").encode("utf-8")
        xcap.respond(event, status, headers, body)
        aci.detach(self.context.sbb_local_object)

    def _announce(self, document, old_etag, new_etag, content):
        """Tell whoever watches C{document} (see L{sbbs.xdms.changes}) that it changed."""
        change = DocumentChangedEvent(str(document), old_etag, new_etag, content)
        naming = self.context.naming
        for name in watched_names(document):
            watching = naming.lookup(name)
            if watching is not None:
                self.context.fire_event(watching, DOCUMENT_CHANGED, change)


class _Request:
    """One request against the store: its URI, usage, document and ETag."""

    def __init__(self, event, store, root):
        self.event = event
        self.uri = event.uri
        self.store = store
        document = self.uri.document
        self.usage = REGISTRY.get(document.auid)
        if self.usage is None:
            raise HttpError(404, f"no application usage {document.auid!r}")
        if not self.usage.authorize(event.user, document, event.method):
            raise HttpError(403, "not yours")
        self.key = document_key(document)
        # (old ETag, new ETag, new content) once the document changed.
        self.change = None
        if self.usage.generate is not None:
            self.etag, self.content = _generated(
                lambda: self.usage.generate(REGISTRY, store, document, _base(event, root)),
                document.auid, event.method)
            return
        if document.is_global and self.usage.generate_global is not None:
            self.etag, self.content = _generated(
                lambda: self.usage.generate_global(store, document), document.auid,
                event.method)
            return
        stored = etag_and_content(store.get(self.key))
        self.etag, self.content = stored if stored is not None else (None, None)

    def check_conditions(self, reading=False):
        """@raise HttpError: 412 (or 304 for a GET) when a condition fails."""
        headers = self.event.headers
        if_match = headers.get("if-match")
        if if_match is not None and not _matches(if_match, self.etag, weak=False):
            raise HttpError(412, "If-Match failed")
        if_none_match = headers.get("if-none-match")
        if if_none_match is not None and _matches(if_none_match, self.etag, weak=True):
            if reading:
                raise HttpError(304, "not modified", [("ETag", self.etag)])
            raise HttpError(412, "If-None-Match failed")

    def tree(self):
        """@return: the stored document's root element; 404 when there is none."""
        if self.content is None:
            raise HttpError(404, "no such document")
        return parse_document(self.content)

    def tree_to_change(self):
        """@return: the stored document's root element, to change a node of it."""
        if self.content is None:
            raise nodes.NoParent(-1)
        return parse_document(self.content)

    def node_steps(self):
        """@return: (the node selector's resolved steps, its attribute's name or None)."""
        return self.uri.node.resolve(self.uri.bindings, self.usage.namespace)

    def write(self, root, content=None):
        """
        Store the document of C{root} once its usage's schema and
        constraints accept it: C{content} as it came, or C{root} serialized.

        @return: its new ETag.
        """
        usage = self.usage
        usage.validate(root)
        if usage.constraints is not None:
            usage.constraints(root, self.key, self.store)
        if content is None:
            content = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
        self._check_bounds(content)
        etag = f'"{uuid.uuid4().hex}"'
        store_document(self.store, self.key, etag, content)
        if usage.stored is not None:
            usage.stored(self._old_root(), root, self.key, self.store)
        self.change = (self.etag, etag, content)
        return etag

    def _check_bounds(self, content):
        """
        @raise XcapConflict: C{constraint-failure} for a document larger than
            L{MAX_DOCUMENT_SIZE} (element PUTs can make one grow), or a new
            document of a user who has L{MAX_DOCUMENTS_PER_USER} already.
        """
        if len(content) > MAX_DOCUMENT_SIZE:
            raise XcapConflict("constraint-failure",
                               f"a document may not exceed {MAX_DOCUMENT_SIZE} bytes")
        xui = self.uri.document.xui
        if self.content is None and xui is not None:
            owned = sum(1 for usage in REGISTRY if usage.generate is None
                        for _ in documents_of(self.store, usage.auid, xui))
            if owned >= MAX_DOCUMENTS_PER_USER:
                raise XcapConflict("constraint-failure",
                                   f"a user may have at most {MAX_DOCUMENTS_PER_USER} documents")

    def remove(self):
        """Delete the document."""
        del self.store[self.key]
        if self.usage.stored is not None:
            self.usage.stored(self._old_root(), None, self.key, self.store)
        self.change = (self.etag, None, None)

    def _old_root(self):
        return None if self.content is None else parse_document(self.content)


def _get(request):
    request.check_conditions(reading=True)
    node = request.uri.node
    if request.content is None:
        raise HttpError(404, "no such document")
    headers = [("ETag", request.etag)]
    if node is None:
        return 200, [("Content-Type", request.usage.mime_type), *headers], request.content
    root = request.tree()
    steps, attribute = request.node_steps()
    if node.namespaces:
        return 200, [("Content-Type", nodes.XCAP_NS_TYPE), *headers], \
            nodes.namespaces_body(root, steps)
    if attribute is not None:
        return 200, [("Content-Type", nodes.XCAP_ATTRIBUTE_TYPE), *headers], \
            nodes.attribute_body(root, steps, attribute)
    return 200, [("Content-Type", nodes.XCAP_ELEMENT_TYPE), *headers], \
        nodes.element_body(root, steps)


def _put(request):
    request.check_conditions()
    node, event = request.uri.node, request.event
    content_type = event.headers.get("content-type", "").split(";")[0].strip().lower()
    if node is None:
        _expect_type(content_type, request.usage.mime_type)
        created = request.content is None
        etag = request.write(parse_document(event.body), event.body)   # a GET gives it back
        return (201 if created else 200), [("ETag", etag)], b""
    if node.namespaces:
        raise HttpError(405, "namespace bindings are read only", [("Allow", "GET")])
    steps, attribute = request.node_steps()
    root = request.tree_to_change()
    if attribute is not None:
        _expect_type(content_type, nodes.XCAP_ATTRIBUTE_TYPE)
        created = nodes.put_attribute(root, steps, attribute, event.body)
    else:
        _expect_type(content_type, nodes.XCAP_ELEMENT_TYPE)
        created = nodes.put_element(root, steps, event.body)
    etag = request.write(root)
    return (201 if created else 200), [("ETag", etag)], b""


def _delete(request):
    request.check_conditions()
    node = request.uri.node
    if node is None:
        if request.content is None:
            raise HttpError(404, "no such document")
        request.remove()
        return 200, [], b""
    if node.namespaces:
        raise HttpError(405, "namespace bindings are read only", [("Allow", "GET")])
    steps, attribute = request.node_steps()
    root = request.tree()
    if attribute is not None:
        nodes.delete_attribute(root, steps, attribute)
    else:
        nodes.delete_element(root, steps)
    etag = request.write(root)
    return 200, [("ETag", etag)], b""


def _ancestor(event, root, depth):
    """
    @return: the HTTP URI of the closest existing ancestor of what a request
        wanted to put (RFC 4825 §11.2): the first C{depth} steps of its node
        selector, its document (depth 0), or the collection holding the
        document when the document is missing (depth -1).
    """
    document = event.uri.document
    base = _base(event, root)
    if depth < 0:
        tree = ["global"] if document.is_global else ["users", document.xui]
        return base + "/" + "/".join(quote(part, safe=":@") for part in (document.auid, *tree))
    uri = f"{base}/{document}"
    if depth > 0:
        uri += "/~~/" + node_selector_text(event.uri.node.steps[:depth])
    return uri


def _base(event, root):
    """@return: the HTTP URI of the XCAP root, as the client reached it."""
    return f"http://{event.headers.get('host', 'localhost')}{root.rstrip('/')}"


def _generated(generate, auid, method):
    """
    @return: (ETag, content) of a document a usage makes (xcap-caps, the
        xcap-directory, rls-services' global index), read only; its ETag
        changes when its content does.
    """
    if method != "GET":
        raise HttpError(405, f"these {auid} documents are read only", [("Allow", "GET")])
    content = generate()
    if content is None:
        raise HttpError(404, "no such document")
    return f'"{hashlib.sha256(content).hexdigest()[:32]}"', content


def document_key(document):
    """The key a L{DocumentSelector}'s document is stored under in L{STORE}."""
    return (document.auid, "global" if document.is_global else "users", document.xui or "",
            "/".join(document.path))


def may(user, document, method):
    """Whether C{user} may do C{method} on C{document}, as its usage's policy says."""
    usage = REGISTRY.get(document.auid)
    return usage is not None and usage.authorize(user, document, method)


def _expect_type(content_type, expected):
    if content_type != expected:
        raise HttpError(415, f"expected a body of type {expected}", [("Accept", expected)])


def _matches(header, etag, weak):
    """Whether an If-Match / If-None-Match value matches the current C{etag} (None: no document)."""
    values = [value.strip() for value in header.split(",")]
    if "*" in values:
        return etag is not None
    if etag is None:
        return False
    if weak:
        values = [value[2:] if value.startswith("W/") else value for value in values]
    return etag in values
