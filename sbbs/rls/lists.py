"""
The services of the resource list server and the members of their lists
(RFC 4826): pure functions on documents, no I/O.

A user's C{rls-services} document gives each of their services a URI, a
list and the event packages it serves (L{parse_services}).  The list is
written in the service (C{<list>}) or is a C{<list>} of a
C{resource-lists} document that the service references
(C{<resource-list>}); a list holds entries (C{<entry uri>}), lists, entries
of other documents (C{<entry-ref ref>}) and lists of other documents
(C{<external anchor>}).  L{flatten} turns it into the URIs the RLS
subscribes to, each once (RFC 4826 §4.3), and says which documents that
read, so that the caller flattens again when one changes.

Documents are the caller's business: L{flatten} asks a callable for each
by its path below the XCAP root, and the caller may answer that it does
not have it yet (L{DocumentNeeded}), fetch it, and flatten again.  Only
references to this server's C{resource-lists} documents are followed.

A URI is known by its key (L{resource_key}): SIP clients write the same
address in several ways, and OMA/RCS clients subscribe to a service with a
parameter (C{sip:alice@example.com;pres-list=rcs}), so the key keeps the
parameters that name a resource and drops those that route to it.

Every size and count a document's author controls is bounded: members,
elements visited, nesting, document and URI lengths, services.
"""

import re
from copy import deepcopy
from dataclasses import dataclass
from urllib.parse import urlsplit

from lxml import etree

from resource_adaptors.xcap.uri import XcapUriError, parse_xcap_uri
from sbbs.sipevent.addresses import MAX_URI_LENGTH, resource_key
from sbbs.xdms.nodes import NotFound, select_one
from sbbs.xml.safe import BadXml, parse_document
from sbbs.xml.namespaces import (
    RESOURCE_LISTS as RESOURCE_LISTS_NAMESPACE, RLS_SERVICES as RLS_SERVICES_NAMESPACE)


RLS_SERVICES = f"{{{RLS_SERVICES_NAMESPACE}}}rls-services"
SERVICE = f"{{{RLS_SERVICES_NAMESPACE}}}service"
SERVICE_LIST = f"{{{RLS_SERVICES_NAMESPACE}}}list"
RESOURCE_LIST = f"{{{RLS_SERVICES_NAMESPACE}}}resource-list"
PACKAGES = f"{{{RLS_SERVICES_NAMESPACE}}}packages"
PACKAGE = f"{{{RLS_SERVICES_NAMESPACE}}}package"
LIST = f"{{{RESOURCE_LISTS_NAMESPACE}}}list"
ENTRY = f"{{{RESOURCE_LISTS_NAMESPACE}}}entry"
ENTRY_REF = f"{{{RESOURCE_LISTS_NAMESPACE}}}entry-ref"
EXTERNAL = f"{{{RESOURCE_LISTS_NAMESPACE}}}external"
DISPLAY_NAME = f"{{{RESOURCE_LISTS_NAMESPACE}}}display-name"

#: The application usage whose lists references may name.
RESOURCE_LISTS_AUID = "resource-lists"

#: The most members a flattened list has, by default.
MAX_MEMBERS = 1000
#: How deep lists may nest, references and nested services included.
MAX_DEPTH = 32
#: The elements of lists a flattening may visit, per member allowed, and
#: beyond: what cuts off a huge list of duplicates, or lists referenced
#: over and over, long before it is all read.
VISITS_PER_MEMBER = 20
EXTRA_VISITS = 1000
#: The longest document read, in bytes (the XDMS's own limit).
MAX_DOCUMENT_SIZE = 1 << 20
#: The longest URI or reference, in characters.
#: The most services a user's document may have.
MAX_SERVICES = 1000


# A URI scheme at the start of a reference (RFC 3986 §3.1).
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


def member_key(uri_text):
    """@return: what members are told apart by: their L{resource_key}, else the text itself."""
    return resource_key(uri_text) or uri_text.strip()


class DocumentNeeded(Exception):
    """
    A document the flattening needs is not at hand: the caller fetches it
    and flattens again.

    @ivar uri: the document's path below the XCAP root
        (C{resource-lists/users/sip:bob@example.com/index}).
    """

    def __init__(self, uri):
        super().__init__(uri)
        self.uri = uri


class ListError(ValueError):
    """
    A list that cannot be flattened: a reference that does not resolve, a
    loop, lists nested too deep, a malformed document.

    @ivar reference: the reference, URI or element at fault, as written (cut
        to L{MAX_URI_LENGTH} characters).
    @ivar reason: what is wrong with it.
    """

    def __init__(self, reference, reason):
        reference = reference[:MAX_URI_LENGTH]
        super().__init__(f"{reference}: {reason}")
        self.reference = reference
        self.reason = reason


class ListTooBig(ValueError):
    """
    A list with more members than allowed, or so many elements that it was
    not read to its end.

    @ivar limit: the most members allowed.
    """

    def __init__(self, limit):
        super().__init__(f"more than {limit} members")
        self.limit = limit


@dataclass(frozen=True)
class Service:
    """
    A service of the RLS: a URI standing for a list.

    @ivar uri: the service URI, as written.
    @ivar key: its L{resource_key}.
    @ivar owner: the XUI of the user whose document has it.
    @ivar name: the display name of its C{<list>}, or None.
    @ivar packages: the event packages it serves (an empty tuple: any).
    @ivar element: its C{<service>} element, serialized without blank text
        or comments: what L{flatten} reads, and what may be stored.
    """

    uri: str
    key: str
    owner: str
    name: str | None
    packages: tuple
    element: bytes

    def serves(self, package):
        """@return: whether a subscription to C{package} may use this service."""
        return not self.packages or package in self.packages


@dataclass(frozen=True)
class Member:
    """
    A URI of a flattened list.

    @ivar uri: as written in its entry.
    @ivar name: its entry's display name, or None.
    """

    uri: str
    name: str | None


@dataclass(frozen=True)
class Flattened:
    """
    What L{flatten} found.

    @ivar members: the L{Member}s, in document order, each URI once.
    @ivar documents: the paths below the XCAP root of the documents read
        (those found missing included): when one changes, the list may have.
    @ivar name: the list's display name: the service's, or that of the
        list its C{<resource-list>} names; None when it has none.
    """

    members: tuple
    documents: frozenset
    name: str | None = None


def parse_services(document, owner):
    """
    @param document: a user's C{rls-services} document.
    @param owner: that user's XUI.
    @return: its L{Service}s, in document order; those whose URI has no key
        are left out, and so is a service with the key of an earlier one.
    @raise ListError: the document is not well-formed, is not an
        C{rls-services} document, or has more than L{MAX_SERVICES} services.
    """
    root = _parse(document, owner)
    if root.tag != RLS_SERVICES:
        raise ListError(owner, "not an rls-services document")
    services = {}
    for element in root.iterfind(SERVICE):
        if len(services) == MAX_SERVICES:
            raise ListError(owner, f"more than {MAX_SERVICES} services")
        uri = element.get("uri", "")
        key = resource_key(uri)
        if key is None or key in services:
            continue
        inline = element.find(SERVICE_LIST)
        packages = element.find(PACKAGES)
        services[key] = Service(
            uri, key, owner, None if inline is None else _display_name(inline),
            () if packages is None else tuple(
                package.text.strip() for package in packages.iterfind(PACKAGE)
                if package.text and package.text.strip()),
            _compact(element))
    return list(services.values())


def _compact(element):
    """@return: C{element} serialized without comments, blank text or unused namespaces."""
    copy = deepcopy(element)
    etree.strip_elements(copy, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    for descendant in copy.iter():
        if len(descendant) and not (descendant.text or "").strip():
            descendant.text = None
        if not (descendant.tail or "").strip():
            descendant.tail = None
    etree.cleanup_namespaces(copy)
    return etree.tostring(copy, encoding="UTF-8", xml_declaration=False)


def flatten(service, documents, xcap_root_url, max_members=MAX_MEMBERS, services=None):
    """
    Flatten the list of a service (RFC 4826 §4.3): its entries, those of
    its nested lists, the entries its C{<entry-ref>}s name and the lists
    its C{<external>}s and C{<resource-list>} name, in document order, each
    URI once (by L{member_key}; the first entry's display name is kept).

    References are XCAP URIs of this server's C{resource-lists} documents:
    absolute under C{xcap_root_url}, or absolute paths under its path, or
    relative to it (as C{<entry-ref>}'s are), with a node selector that
    selects an C{<entry>} (C{<entry-ref>}) or a C{<list>} (the others).

    A member that is itself a service (C{services} knows its key) stays one
    member, which the RLS subscribes to as a list; its own list is
    flattened only to refuse loops of services.  A nested service whose
    list cannot be flattened is taken as empty: subscriptions to it fail on
    their own.

    @param service: the L{Service}.
    @param documents: a callable taking a document's path below the XCAP
        root (C{resource-lists/users/sip:bob@example.com/index}) and
        returning its content, None when there is no such document, or
        raising L{DocumentNeeded}.  It is asked once for each path.
    @param xcap_root_url: this server's XCAP root
        (C{http://127.0.0.1:8080/xcap-root}).
    @param max_members: the most members allowed.
    @param services: a callable taking a L{resource_key} and returning the
        RLS's L{Service} of that key, or None; None when there are no others.
    @return: a L{Flattened}.
    @raise DocumentNeeded: from C{documents}.
    @raise ListError: a reference that does not resolve (a missing or
        malformed document, a node selector that selects nothing, another
        server), a loop of lists or of services, nesting deeper than
        L{MAX_DEPTH}.
    @raise ListTooBig: more than C{max_members} members, or more elements
        than their flattening may visit.
    """
    reader = _Reader(documents, xcap_root_url)
    members, name = _members(service, reader, max_members, depth=0)
    if services is not None:
        def members_of(nested, depth):
            try:
                return _members(nested, reader, max_members, depth)[0]
            except (ListError, ListTooBig):
                return ()
        _refuse_loops(members, (service.key,), services, members_of, set())
    return Flattened(tuple(members), frozenset(reader.paths), name)


def _members(service, reader, max_members, depth):
    """
    @return: the L{Member}s of C{service}'s list, flattened from C{depth}
        on, and the list's display name.
    """
    element = _parse(service.element, service.uri)
    flattening = _Flattening(reader, max_members)
    inline = element.find(SERVICE_LIST)
    if inline is not None:
        flattening.walk(inline, (None, "list"), depth)
        name = service.name
    else:
        reference = element.find(RESOURCE_LIST)
        if reference is None or not (reference.text or "").strip():
            raise ListError(service.uri, "the service has no list")
        name = service.name or _display_name(flattening.follow(reference.text.strip(), depth))
    return list(flattening.members.values()), name


def _refuse_loops(members, path, services, members_of, checked):
    """
    Refuse a loop of services: a member of the list that is a service on
    C{path}, or that leads back to one, however deep (a depth-first search).

    @param path: the keys of the services from the one flattened down to
        the one C{members} belong to.
    @param members_of: a callable taking a nested L{Service} and the depth
        it is at, returning its members.
    @param checked: the keys of the services whose lists were searched
        already, and lead to no loop.
    """
    if len(path) > MAX_DEPTH:
        raise ListError(path[-1], f"services nested deeper than {MAX_DEPTH}")
    for member in members:
        key = member_key(member.uri)
        if key in path:
            raise ListError(member.uri, "a loop of services: the list is its own member")
        if key in checked:
            continue
        nested = services(key)
        if nested is not None:
            _refuse_loops(members_of(nested, len(path)), path + (key,), services, members_of,
                          checked)
            checked.add(key)


def _parse(document, reference):
    """@return: the root element of C{document}, parsed safely."""
    if len(document) > MAX_DOCUMENT_SIZE:
        raise ListError(reference, f"the document is larger than {MAX_DOCUMENT_SIZE} bytes")
    try:
        return parse_document(document)
    except BadXml as conflict:
        raise ListError(reference, f"the document is not well-formed: {conflict}") from None


def _display_name(element):
    """@return: the text of the C{<display-name>} of C{element}, or None."""
    name = element.find(DISPLAY_NAME)
    return None if name is None else name.text


class _Reader:
    """
    The documents a flattening reads, each parsed once, and where its
    references lead.

    @ivar paths: the paths of the documents asked for.
    """

    def __init__(self, documents, xcap_root_url):
        self._documents = documents
        self._root = xcap_root_url.rstrip("/")
        self._root_path = urlsplit(self._root).path
        self._roots = {}
        self.paths = set()

    def select(self, reference, tag):
        """
        @param reference: an XCAP URI of an element (see L{flatten}).
        @param tag: the tag the element must have.
        @return: (the element, what identifies it: its document's path and
            its path in the document).
        """
        relative = self._relative(reference)
        path, _, query = relative.partition("?")
        try:
            uri = parse_xcap_uri("/" + path, "", query)
            node = uri.node
            if node is None or node.attribute is not None or node.namespaces:
                raise ListError(reference, "does not select an element")
            if uri.document.auid != RESOURCE_LISTS_AUID:
                raise ListError(reference, "not a resource-lists document")
            steps, _ = node.resolve(uri.bindings, RESOURCE_LISTS_NAMESPACE)
        except XcapUriError as error:
            raise ListError(reference, error.reason) from None
        document = str(uri.document)
        root = self._document(document, reference)
        try:
            element = select_one(root, steps)
        except NotFound:
            raise ListError(reference, "selects no element") from None
        if element.tag != tag:
            raise ListError(reference, f"does not select <{etree.QName(tag).localname}>")
        return element, (document, root.getroottree().getpath(element))

    def _relative(self, reference):
        """@return: C{reference} relative to the XCAP root."""
        if len(reference) > MAX_URI_LENGTH:
            raise ListError(reference, "reference too long")
        if reference.startswith(self._root + "/"):
            return reference[len(self._root) + 1:]
        if reference.startswith("/") and reference.startswith(self._root_path + "/"):
            return reference[len(self._root_path) + 1:]
        if reference.startswith("/") or _SCHEME.match(reference):
            raise ListError(reference, "not a document of this XCAP server")
        return reference

    def _document(self, path, reference):
        """@return: the root element of the document at C{path}."""
        if path not in self._roots:
            content = self._documents(path)
            self.paths.add(path)
            self._roots[path] = None if content is None else _parse(content, reference)
        root = self._roots[path]
        if root is None:
            raise ListError(reference, "no such document")
        return root


class _Flattening:
    """
    The members of one list, as its flattening finds them.

    @ivar members: L{member_key} -> L{Member}, in the order found.
    """

    def __init__(self, reader, max_members):
        self._reader = reader
        self._max_members = max_members
        self._visits_left = VISITS_PER_MEMBER * max_members + EXTRA_VISITS
        self._open = set()      # the lists being walked, by identity
        self._walked = set()    # the lists walked already, by identity
        self.members = {}

    def walk(self, element, identity, depth):
        """
        Add the members of the list C{element}.

        @param identity: what identifies it (see L{_Reader.select}).
        @param depth: how many lists it is nested in.
        """
        if depth > MAX_DEPTH:
            raise ListError(element.get("name") or "list", f"lists nested deeper than {MAX_DEPTH}")
        self._open.add(identity)
        for child in element:
            self._visits_left -= 1
            if self._visits_left < 0:
                raise ListTooBig(self._max_members)
            if child.tag == ENTRY:
                self._add(child.get("uri"), _display_name(child))
            elif child.tag == ENTRY_REF:
                reference = child.get("ref", "")
                entry, _ = self._reader.select(reference, ENTRY)
                self._add(entry.get("uri"), _display_name(child) or _display_name(entry))
            elif child.tag == EXTERNAL:
                self.follow(child.get("anchor", ""), depth + 1)
            elif child.tag == LIST:
                self.walk(child, (identity[0], child.getroottree().getpath(child)), depth + 1)
        self._open.remove(identity)
        self._walked.add(identity)

    def follow(self, reference, depth):
        """
        Add the members of the list C{reference} names, unless it was
        walked already; @return: that list's element.
        """
        element, identity = self._reader.select(reference, LIST)
        if identity in self._open:
            raise ListError(reference, "a loop: the list refers to a list that contains it")
        if identity not in self._walked:
            self.walk(element, identity, depth)
        return element

    def _add(self, uri, name):
        if not uri:
            raise ListError(name or "entry", "an entry has no uri")
        if len(uri) > MAX_URI_LENGTH:
            raise ListError(uri, "URI too long")
        key = member_key(uri)
        if key in self.members:
            return
        if len(self.members) == self._max_members:
            raise ListTooBig(self._max_members)
        self.members[key] = Member(uri.strip(), name)
