"""
The two XML formats of the xcap-diff event package: pure parsing and
building, no I/O.

What a subscriber asks to watch (RFC 5875 §4.4) is the body of its
SUBSCRIBE, an C{application/resource-lists+xml} document (RFC 4826) whose
C{<entry uri="...">} elements, in C{<list>} elements that may nest, each name
an XCAP resource::

    resource-lists/users/sip:joe@example.com/index              a document
    rls-services/users/sip:joe@example.com/                     a user's documents of a usage
    resource-lists/                                             all documents of a usage
    .../index/~~/resource-lists/list%5b@name=%22L1%22%5d         an element
    .../index/~~/resource-lists/list%5b@name=%22L1%22%5d/@name   an attribute

These URIs are relative to the XCAP root: the subscriber does not choose the
root, the notifier does, and says which one in the C{xcap-root} attribute of
every notification.  An absolute URI is refused (an C{http:} URI, like a SIP
URI put there by mistake), and so is a path that resolution against the root
would change: one that starts with C{/} (it would replace the root's path) or
has a dot segment (C{..} climbs out of the document's tree, into another
user's; RFC 3986 §5.2.4).

What the notifier sends (RFC 5874) is an C{application/xcap-diff+xml}
document: under C{<xcap-diff xcap-root="...">}, in any number and order,

 - C{<document sel="..." previous-etag="..." new-etag="...">}: a document
   changed.  Without C{previous-etag} it was created (or is reported as it
   is), without C{new-etag} it was removed.  Its content is empty (fetch the
   document to learn more), C{<body-not-changed/>} (only the ETag changed),
   or RFC 5261 patch operations C{<add>}, C{<replace>} and C{<remove>} (in
   the xcap-diff namespace) that turn the previous version into the new one;
 - C{<element sel="..." exists="0|1">}: an element watched on its own, with
   its content when it exists;
 - C{<attribute sel="..." exists="0|1">}: an attribute, its value as text.

Every C{sel} is relative to C{xcap-root}, as the subscription's URIs are.
Namespace prefixes in an element's node selector are bound by namespace
declarations in scope in the xcap-diff document (where XCAP URIs would use
an C{xmlns()} query).

Both directions parse with L{sbbs.xdms.safexml} (no DTD, no entity, no
network, bounded depth, UTF-8 only) and bound what a peer controls: the
number of entries or changes, the length of a URI.  Whatever is refused
raises L{XcapDiffError}.
"""

import copy
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from lxml import etree

from sbbs.xdms.errors import XcapConflict
from sbbs.xdms.safexml import parse_document
from sbbs.xml.namespaces import (
    RESOURCE_LISTS as RESOURCE_LISTS_NAMESPACE, XCAP_DIFF as XCAP_DIFF_NAMESPACE)

SUBSCRIPTION_TYPE = "application/resource-lists+xml"
XCAP_DIFF_TYPE = "application/xcap-diff+xml"

#: The longest URI accepted, in characters: a subscription or a C{sel}.
MAX_URI_LENGTH = 2048


class XcapDiffError(ValueError):
    """
    A subscription body or an xcap-diff document that cannot be used.

    @ivar reason: why, for humans (it never quotes the URI at fault).
    """

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def parse_subscription(body, max_entries=1000):
    """
    Read what a SUBSCRIBE to xcap-diff asks to watch.

    Only C{<entry>} elements count, wherever they are in the lists: the
    other children of a list (C{<entry-ref>}, C{<external>},
    C{<display-name>}, extensions) name nothing this package can watch.

    @param body: the SUBSCRIBE body (C{application/resource-lists+xml}).
    @param max_entries: the most entries accepted, duplicates included: each
        one costs the notifier a watch for as long as the subscription lasts.
    @return: the entries' URIs, relative to the XCAP root, without
        duplicates, in document order.
    @raise XcapDiffError: the body is not UTF-8, not well-formed, has a
        document type declaration, is not a resource-lists document, has no
        entry or more than C{max_entries}, an entry without C{uri}, or a URI
        that is not a relative XCAP URI (see L{_relative}).
    """
    root = _parse(body)
    if root.tag != _RL + "resource-lists":
        raise XcapDiffError("the body is not a resource-lists document")
    uris = []
    for entry in _entries(root):
        if len(uris) == max_entries:
            raise XcapDiffError(f"more than {max_entries} entries")
        uri = entry.get("uri")
        if uri is None:
            raise XcapDiffError("an entry has no uri")
        uris.append(_relative(uri))
    if not uris:
        raise XcapDiffError("the lists have no entry")
    return tuple(dict.fromkeys(uris))


@dataclass(frozen=True)
class DocumentChange:
    """
    A C{<document>}: one document changed.

    @ivar sel: the document selector, relative to the XCAP root.
    @ivar previous_etag: its ETag before, None when it was created or is
        only reported as it is.
    @ivar new_etag: its ETag now, None when it was removed.
    @ivar body_not_changed: only the ETag changed.
    @ivar content: the whole new document (UTF-8 bytes) when the patch is
        a single replacement of the root element, as L{XcapDiffBuilder}
        makes; else None.
    @ivar patched: patch operations were present (whether or not they
        amount to C{content}).
    """

    sel: str
    previous_etag: str | None = None
    new_etag: str | None = None
    body_not_changed: bool = False
    content: bytes | None = None
    patched: bool = False


@dataclass(frozen=True)
class ElementChange:
    """
    An C{<element>}: an element watched on its own.

    @ivar sel: its XCAP URI, relative to the XCAP root.
    @ivar exists: whether it exists now.
    @ivar content: the element (UTF-8 bytes, no XML declaration) when it
        exists and was sent, else None.
    @ivar namespaces: the prefixes the C{sel} may use, prefix -> namespace
        (the declarations in scope, less the xcap-diff namespace's own):
        what an XCAP URI would carry in its C{xmlns()} query.
    """

    sel: str
    exists: bool = True
    content: bytes | None = None
    namespaces: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeChange:
    """
    An C{<attribute>}: an attribute watched on its own.

    @ivar sel: its XCAP URI, relative to the XCAP root.
    @ivar exists: whether it exists now.
    @ivar value: its value when it exists, else None.
    """

    sel: str
    exists: bool = True
    value: str | None = None


@dataclass(frozen=True)
class XcapDiff:
    """
    A parsed xcap-diff document.  The changes of one kind keep the
    document's order (a notifier that aggregates changes may report several
    versions of one document, oldest first); the order between kinds is not
    kept.

    @ivar xcap_root: the XCAP root URI every C{sel} is relative to.
    @ivar documents: L{DocumentChange}s.
    @ivar elements: L{ElementChange}s.
    @ivar attributes: L{AttributeChange}s.
    """

    xcap_root: str
    documents: tuple = ()
    elements: tuple = ()
    attributes: tuple = ()


class XcapDiffBuilder:
    """
    Builds an xcap-diff document, change after change, in call order.

    The xcap-diff elements carry a prefix rather than being the default
    namespace: an element of the content in no namespace (allowed in XCAP
    documents) then stays in no namespace when read back, which a default
    namespace declaration above it would otherwise capture.
    """

    def __init__(self, xcap_root):
        """
        @param xcap_root: the XCAP root's absolute HTTP(S) URI, which every
            C{sel} is relative to (C{http://xcap.example.com/xcap-root/}).
        @raise ValueError: it is not an absolute HTTP or HTTPS URI.
        """
        parts = urlsplit(xcap_root)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the XCAP root must be an absolute HTTP or HTTPS URI")
        self._root = etree.Element(_XD + "xcap-diff", {"xcap-root": xcap_root},
                                   nsmap={_XD_PREFIX: XCAP_DIFF_NAMESPACE})

    def document(self, sel, *, previous_etag=None, new_etag=None, body_not_changed=False,
                 content=None):
        """
        Report a change of a document.

        A new C{content} is sent as one patch operation, C{<replace
        sel="/*">} holding the new root element.  A C{<replace>} may target
        the root element: RFC 5261 forbids only removing it or adding a
        sibling to it (its C{<invalid-root-element-operation>} error), and
        C{/*} always locates exactly that element: an absolute location path
        of one step from the document node, whose wildcard matches the
        document element whatever its name and namespace.  So it needs no
        namespace declaration, where a named selector would:
        C{/rl:resource-lists} needs C{rl} declared in scope of the
        C{<replace>}, a prefix even for a document in a default namespace,
        since XPath 1.0 reads an unprefixed name as being in no namespace.
        And it cannot miss when the new root is named otherwise than the
        old one.  The patch applies to the version C{previous_etag} names,
        so it needs both ETags.  Comments and processing instructions
        outside the root element are not sent.

        @param sel: the document selector, relative to the XCAP root.
        @param previous_etag: its ETag before; None if it was created.
        @param new_etag: its ETag now; None if it was removed.
        @param body_not_changed: only the ETag changed (both are needed).
        @param content: the whole new document, bytes.
        @raise ValueError: no ETag at all, C{content} together with
            C{body_not_changed}, or either without both ETags; L{XcapDiffError} for a C{sel} that is
            not a relative XCAP URI or a C{content} that is not a UTF-8,
            well-formed document without DTD.
        """
        if previous_etag is None and new_etag is None:
            raise ValueError("a document change needs an ETag: the previous one, the new one "
                             "or both")
        if body_not_changed and content is not None:
            raise ValueError("a document whose body did not change has no new content")
        if (body_not_changed or content is not None) \
                and (previous_etag is None or new_etag is None):
            raise ValueError("a patch, or an unchanged body, goes from one ETag to another: "
                             "both are needed")
        sel = _relative(sel)
        new_root = None if content is None else _parse(content)
        change = etree.SubElement(self._root, _XD + "document", sel=sel)
        if previous_etag is not None:
            change.set("previous-etag", previous_etag)
        if new_etag is not None:
            change.set("new-etag", new_etag)
        if body_not_changed:
            etree.SubElement(change, _XD + "body-not-changed")
        if new_root is not None:
            etree.SubElement(change, _XD + "replace", sel=_ROOT_SELECTOR).append(new_root)

    def element(self, sel, content=None, *, namespaces=None):
        """
        Report an element watched on its own.

        @param sel: its XCAP URI, relative to the XCAP root.
        @param content: the element, bytes; None if it does not exist.
        @param namespaces: the prefixes C{sel} uses, prefix -> namespace,
            declared on the C{<element>} element.  There is no default one:
            an unprefixed name in a node selector is in the application
            usage's namespace (RFC 4825 §6.3), not the XML default one.
        @raise ValueError: a C{None} prefix in C{namespaces}; L{XcapDiffError}
            for a C{sel} that is not a relative XCAP URI or a C{content}
            that is not a UTF-8, well-formed element without DTD.
        """
        namespaces = dict(namespaces or {})
        if None in namespaces:
            raise ValueError("an XCAP node selector has no default namespace to declare")
        sel = _relative(sel)
        element = None if content is None else _parse(content)
        change = etree.SubElement(self._root, _XD + "element", sel=sel, nsmap=namespaces)
        if element is None:
            change.set("exists", "0")
        else:
            change.append(element)

    def attribute(self, sel, value=None):
        """
        Report an attribute watched on its own.

        @param sel: its XCAP URI, relative to the XCAP root.
        @param value: its value; None if it does not exist.
        @raise XcapDiffError: C{sel} is not a relative XCAP URI.
        """
        change = etree.SubElement(self._root, _XD + "attribute", sel=_relative(sel))
        if value is None:
            change.set("exists", "0")
        else:
            change.text = value

    def to_bytes(self):
        """@return: the xcap-diff document, UTF-8 with an XML declaration."""
        return etree.tostring(self._root, xml_declaration=True, encoding="UTF-8")


def parse_xcap_diff(body, max_changes=10_000):
    """
    Read an xcap-diff document, as a notifier sent it.

    Elements in other namespaces are extensions (RFC 5874's schema allows
    them) and are skipped; an unknown element in the xcap-diff namespace is
    refused.

    @param body: the document (C{application/xcap-diff+xml}).
    @param max_changes: the most C{<document>}, C{<element>} and
        C{<attribute>} children accepted, together.
    @return: an L{XcapDiff}.
    @raise XcapDiffError: the body is not UTF-8, not well-formed, has a
        document type declaration, is not an xcap-diff document, has more
        than C{max_changes} changes, a change without C{sel} or whose
        C{sel} is not a relative XCAP URI, or a change that contradicts
        itself (content for what does not exist, C{<body-not-changed/>}
        beside patch operations).
    """
    root = _parse(body)
    if root.tag != _XD + "xcap-diff":
        raise XcapDiffError("the body is not an xcap-diff document")
    xcap_root = root.get("xcap-root")
    if not xcap_root:
        raise XcapDiffError("the xcap-diff document has no xcap-root")
    changes = {"document": [], "element": [], "attribute": []}
    for count, child in enumerate(_own_children(root), 1):
        if count > max_changes:
            raise XcapDiffError(f"more than {max_changes} changes")
        name = etree.QName(child).localname
        if name not in changes:
            raise XcapDiffError(f"<{name}> is not a change xcap-diff knows")
        changes[name].append(_READERS[name](child))
    return XcapDiff(xcap_root, tuple(changes["document"]), tuple(changes["element"]),
                    tuple(changes["attribute"]))


def _document_change(element):
    """@return: the L{DocumentChange} a C{<document>} reports."""
    children = list(_own_children(element))
    names = [etree.QName(child).localname for child in children]
    for name in names:
        if name not in ("body-not-changed", *_PATCH_OPERATIONS):
            raise XcapDiffError(f"<{name}> is not a change of a document")
    body_not_changed = "body-not-changed" in names
    if body_not_changed and len(names) > 1:
        raise XcapDiffError("<body-not-changed> goes alone in a document")
    operations = [] if body_not_changed else children
    return DocumentChange(_sel(element), element.get("previous-etag"), element.get("new-etag"),
                          body_not_changed, _replaced_root(operations), bool(operations))


def _replaced_root(operations):
    """
    @return: the new document, when C{operations} are one C{<replace>} of
        the root element (see L{XcapDiffBuilder.document}), else None.
        Whatever selector has one step from the document node, a name or
        C{*} without predicate, with or without the leading C{/}, can only
        locate the root element.
    """
    if len(operations) != 1:
        return None
    [replace] = operations
    if etree.QName(replace).localname != "replace" \
            or not _ROOT_STEP.fullmatch(replace.get("sel", "")):
        return None
    elements = [child for child in replace if isinstance(child.tag, str)]
    text = (replace.text or "") + "".join(child.tail or "" for child in replace)
    if len(elements) != 1 or text.strip():
        return None
    return _standalone(elements[0], xml_declaration=True)


def _element_change(element):
    """@return: the L{ElementChange} an C{<element>} reports."""
    exists = _exists(element)
    children = [child for child in element if isinstance(child.tag, str)]
    if len(children) > 1:
        raise XcapDiffError("an <element> holds one element at most")
    if children and not exists:
        raise XcapDiffError("an element that does not exist has no content")
    namespaces = {prefix: namespace for prefix, namespace in element.nsmap.items()
                  if prefix is not None and namespace != XCAP_DIFF_NAMESPACE}
    return ElementChange(_sel(element), exists,
                         _standalone(children[0]) if children else None, namespaces)


def _attribute_change(element):
    """@return: the L{AttributeChange} an C{<attribute>} reports."""
    exists = _exists(element)
    if any(isinstance(child.tag, str) for child in element):
        raise XcapDiffError("an attribute's value is text, not elements")
    value = element.xpath("string()")
    if not exists and value.strip():
        raise XcapDiffError("an attribute that does not exist has no value")
    return AttributeChange(_sel(element), exists, value if exists else None)


_READERS = {"document": _document_change, "element": _element_change,
            "attribute": _attribute_change}


def _relative(uri):
    """
    Check that C{uri} names an XCAP resource relative to the XCAP root, as
    the subscription (RFC 5875 §4.4) and every C{sel} (RFC 5874) do.

    Refused: an empty URI, one longer than L{MAX_URI_LENGTH}, an absolute
    one (it has a scheme), one whose path starts with C{/} (resolved against
    the root, it would replace the root's path), one with whitespace or a
    control character (not a URI at all), and one with a dot segment, even
    percent-encoded (C{%2e%2e}): resolution would remove it, so the URI
    would not name what it spells, and C{..} would climb out of the
    document's tree.  Each segment is decoded on its own, as the XCAP RA
    decodes a document selector, so that C{%2F} inside a segment makes no
    new one.

    @return: C{uri}, unchanged.
    @raise XcapDiffError: it is one of those.
    """
    if not uri:
        raise XcapDiffError("a URI is empty")
    if len(uri) > MAX_URI_LENGTH:
        raise XcapDiffError(f"a URI is longer than {MAX_URI_LENGTH} characters")
    if _SCHEME.match(uri):
        raise XcapDiffError("a URI is absolute: it must be relative to the XCAP root")
    if uri.startswith("/"):
        raise XcapDiffError("a URI starts with '/': it must be relative to the XCAP root")
    if _NOT_IN_URI.search(uri):
        raise XcapDiffError("a URI has whitespace or a control character")
    path = uri.split("?", 1)[0].split("#", 1)[0]
    if any(unquote(segment) in (".", "..") for segment in path.split("/")):
        raise XcapDiffError("a URI has a '.' or '..' segment")
    return uri


def _sel(element):
    """@return: the C{sel} of a change, checked by L{_relative}."""
    sel = element.get("sel")
    if sel is None:
        raise XcapDiffError(f"a <{etree.QName(element).localname}> has no sel")
    return _relative(sel)


def _exists(element):
    """@return: the C{exists} attribute (an XML Schema boolean), True if absent."""
    value = element.get("exists", "true").strip()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise XcapDiffError("exists must be 0, 1, false or true")


def _entries(root):
    """
    @return: the C{<entry>} elements of a resource-lists document that are
        in its lists (nested ones included), in document order; not those
        inside an extension element or another entry.
    """
    for entry in root.iter(_RL + "entry"):
        ancestors = list(entry.iterancestors())[:-1]
        if ancestors and all(ancestor.tag == _RL + "list" for ancestor in ancestors):
            yield entry


def _own_children(element):
    """@return: the children of C{element} in the xcap-diff namespace."""
    return (child for child in element
            if isinstance(child.tag, str) and etree.QName(child).namespace == XCAP_DIFF_NAMESPACE)


def _standalone(element, xml_declaration=False):
    """
    @return: C{element} as a document of its own, UTF-8 bytes.  It is
        copied first: the copy keeps the namespace declarations made on the
        element and inside it, and takes from above it only those its names
        use, not the xcap-diff document's own.
    """
    return etree.tostring(copy.deepcopy(element), xml_declaration=xml_declaration,
                          encoding="UTF-8", with_tail=False)


def _parse(body):
    """
    @return: the root element of C{body}, parsed by L{parse_document}.
    @raise XcapDiffError: what it refused, and why.
    """
    try:
        return parse_document(body)
    except XcapConflict as conflict:
        raise XcapDiffError(str(conflict)) from None


_RL = f"{{{RESOURCE_LISTS_NAMESPACE}}}"
_XD = f"{{{XCAP_DIFF_NAMESPACE}}}"
_XD_PREFIX = "d"
_PATCH_OPERATIONS = ("add", "replace", "remove")
_ROOT_SELECTOR = "/*"
_NCNAME = r"[^\W\d][\w.-]*"
_ROOT_STEP = re.compile(rf"/?(?:\*|(?:{_NCNAME}:)?{_NCNAME})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_NOT_IN_URI = re.compile(r"[\x00-\x20\x7f]")
