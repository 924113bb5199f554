"""
The bodies of list NOTIFYs (RFC 4662 §5): an RLMI document saying which
resources the list has and the state of their subscriptions, sent as the
root of a C{multipart/related} body (RFC 2387) whose other parts are the
resources' states; each may itself be a C{multipart/related} of a nested
list.

Building runs for every NOTIFY of lists of hundreds of members, so
L{rlmi_document} writes the XML as text, with the escaping XML needs:
several times faster than building it with lxml.

Parsing reads what back-end servers send for nested lists (and what tests
check): L{parse_multipart} splits a body into its parts, L{parse_rlmi}
reads the RLMI root, safely (L{sbbs.xml.safe}: no DTD, no entity, no
network).  Both bound what the peer controls (body size, parts, headers,
resources, instances) and raise L{RlmiError} for anything they refuse.
"""

import re
import secrets
from dataclasses import dataclass
from xml.sax.saxutils import escape

from lxml import etree

from resource_adaptors.sip.core.headers import ContentType
from resource_adaptors.sip.core.syntax import ParseError
from sbbs.xml.safe import BadXml, parse_document
from sbbs.xml.namespaces import RLMI as RLMI_NAMESPACE

RLMI_TYPE = "application/rlmi+xml"
MULTIPART_RELATED = "multipart/related"

LIST = f"{{{RLMI_NAMESPACE}}}list"
NAME = f"{{{RLMI_NAMESPACE}}}name"
RESOURCE = f"{{{RLMI_NAMESPACE}}}resource"
INSTANCE = f"{{{RLMI_NAMESPACE}}}instance"

#: The states of an instance (RFC 4662 §5.2).
STATES = frozenset(("active", "pending", "terminated"))

#: Limits on what a peer sends: a body, its parts (a list's RLMI and a
#: state per resource), the header lines of a part, the resources and the
#: instances of an RLMI document.
MAX_BODY = 1 << 20
MAX_PARTS = 1001
MAX_PART_HEADERS = 32
MAX_RESOURCES = 1000
MAX_INSTANCES = 4000

#: The Content-Transfer-Encodings whose body is the bytes as they are.
_IDENTITY_ENCODINGS = frozenset(("binary", "8bit", "7bit"))

_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
# Characters XML 1.0 does not allow, and lone surrogates (not UTF-8).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class RlmiError(ValueError):
    """A multipart body or an RLMI document that is refused: C{reason} says why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Instance:
    """
    One subscription of the RLS to a resource (RFC 4662 §5.2).

    @ivar id: its id, unique in the list and stable across NOTIFYs.
    @ivar state: C{active}, C{pending} or C{terminated}.
    @ivar reason: why it was terminated (C{rejected}, C{noresource}...), or
        None; only a terminated instance has one.
    @ivar cid: the Content-ID (without angle brackets) of the part with its
        state, or None when this NOTIFY carries none.
    """

    id: str
    state: str
    reason: str | None = None
    cid: str | None = None

    def __post_init__(self):
        if self.state not in STATES:
            raise ValueError(f"no instance state {self.state!r}")
        if self.reason is not None and self.state != "terminated":
            raise ValueError("only a terminated instance has a reason")


@dataclass(frozen=True)
class Resource:
    """
    A resource of the list.

    @ivar uri: its URI.
    @ivar name: its display name, or None.
    @ivar instances: its L{Instance}s, a tuple.
    """

    uri: str
    name: str | None
    instances: tuple


@dataclass(frozen=True)
class RlmiList:
    """
    An RLMI document, parsed.

    @ivar uri: the list's URI.
    @ivar version: its version number.
    @ivar full_state: whether it lists every resource, or only those that changed.
    @ivar name: the list's name, or None.
    @ivar resources: the L{Resource}s, a tuple.
    """

    uri: str
    version: int
    full_state: bool
    name: str | None
    resources: tuple


@dataclass(frozen=True)
class Part:
    """
    A part of a C{multipart/related} body.

    @ivar content_id: its Content-ID, without angle brackets.
    @ivar content_type: its Content-Type value, parameters included.
    @ivar body: its bytes.
    """

    content_id: str
    content_type: str
    body: bytes


def rlmi_document(uri, version, full_state, name, resources):
    """
    @param uri: the list's URI.
    @param version: the version of this notification (RFC 4662 §5.2: one
        more for each NOTIFY of the subscription).
    @param full_state: whether every resource is listed.
    @param name: the list's name, or None.
    @param resources: the L{Resource}s.
    @return: the RLMI document, as UTF-8 bytes.
    @raise ValueError: for text XML cannot hold.
    """
    pieces = ['<?xml version="1.0" encoding="UTF-8"?>\n',
              f'<list xmlns="{RLMI_NAMESPACE}" uri="{_attribute(uri)}" version="{int(version)}"'
              f' fullState="{"true" if full_state else "false"}">']
    if name:
        pieces.append(f"<name>{escape(name)}</name>")
    for resource in resources:
        pieces.append(f'<resource uri="{_attribute(resource.uri)}">')
        if resource.name:
            pieces.append(f"<name>{escape(resource.name)}</name>")
        for instance in resource.instances:
            pieces.append(f'<instance id="{_attribute(instance.id)}" state="{instance.state}"')
            if instance.reason is not None:
                pieces.append(f' reason="{_attribute(instance.reason)}"')
            if instance.cid is not None:
                pieces.append(f' cid="{_attribute(instance.cid)}"')
            pieces.append("/>")
        pieces.append("</resource>")
    pieces.append("</list>")
    text = "".join(pieces)
    if _NOT_XML.search(text):
        raise ValueError("a character XML cannot hold")
    return text.encode("utf-8")


def _attribute(value):
    return escape(value, _ATTRIBUTE_ENTITIES)


def new_boundary():
    """@return: a random multipart boundary, which no body holds but by a 2**-128 chance."""
    return secrets.token_hex(16)


def new_content_id(domain):
    """@return: a random Content-ID (RFC 2392 C{id@domain}), without angle brackets."""
    return f"{secrets.token_hex(8)}@{domain}"


def multipart_related(boundary, root, parts):
    """
    @param boundary: the boundary (see L{new_boundary}).
    @param root: the L{Part} with the RLMI document.
    @param parts: the other L{Part}s: resources' states, nested lists (a
        C{multipart/related} whose C{content_type} carries its own
        parameters, and whose body is taken as it is).
    @return: (the Content-Type value, the body): RFC 2387's
        C{multipart/related} with the root first and named by C{start},
        CRLF line endings, each part C{binary}.
    @raise ValueError: a body holds the boundary, or a Content-ID or
        Content-Type holds a line break.
    """
    delimiter = f"--{boundary}".encode("ascii")
    pieces = []
    for part in (root, *parts):
        headers = part.content_id + part.content_type
        if "\r" in headers or "\n" in headers:
            raise ValueError("a line break in a part's header")
        if delimiter in part.body:
            raise ValueError("a part holds the boundary")
        pieces += (delimiter, b"\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <",
                   part.content_id.encode("utf-8"), b">\r\nContent-Type: ",
                   part.content_type.encode("utf-8"), b"\r\n\r\n", part.body, b"\r\n")
    pieces += (delimiter, b"--\r\n")
    content_type = (f'{MULTIPART_RELATED};type="{RLMI_TYPE}";start="<{root.content_id}>";'
                    f'boundary="{boundary}"')
    return content_type, b"".join(pieces)


def parse_multipart(content_type_value, body):
    """
    @param content_type_value: the body's Content-Type value, a
        C{multipart/related} of RLMI with a C{boundary}.
    @param body: the body.
    @return: (the root L{Part}: the one C{start} names, else the first; the
        other parts, in order).
    @raise RlmiError: not C{multipart/related}, no boundary, more than
        L{MAX_BODY} bytes or L{MAX_PARTS} parts, a part without Content-ID
        or with headers that cannot be read, a root that is not RLMI.
    """
    try:
        content_type = ContentType.parse(content_type_value)
    except ParseError:
        raise RlmiError("bad Content-Type") from None
    if content_type.mime != MULTIPART_RELATED:
        raise RlmiError(f"not {MULTIPART_RELATED}")
    boundary = content_type.params.get("boundary")
    if not boundary:
        raise RlmiError("no boundary")
    if len(body) > MAX_BODY:
        raise RlmiError(f"body larger than {MAX_BODY} bytes")
    parts = [_part(text) for text in _split(body, boundary.encode("utf-8"))]
    if not parts:
        raise RlmiError("no part")
    start = (content_type.params.get("start") or "").strip().strip("<>")
    root = next((part for part in parts if part.content_id == start), None) if start else parts[0]
    if root is None:
        raise RlmiError("no part is the start")
    if root.content_type.split(";")[0].strip().lower() != RLMI_TYPE:
        raise RlmiError(f"the root is not {RLMI_TYPE}")
    return root, [part for part in parts if part is not root]


def _split(body, boundary):
    """@return: the encapsulations of C{body} (each a part's headers and body)."""
    delimiter = b"\r\n--" + boundary
    body = b"\r\n" + body   # the first delimiter may have no CRLF before it
    pieces = body.split(delimiter, MAX_PARTS + 1)
    if len(pieces) < 2:
        raise RlmiError("no boundary in the body")
    encapsulations = []
    for piece in pieces[1:]:    # pieces[0] is the preamble
        if piece.startswith(b"--"):
            return encapsulations
        if len(encapsulations) == MAX_PARTS:
            raise RlmiError(f"more than {MAX_PARTS} parts")
        line_end = piece.find(b"\r\n")
        if line_end < 0 or piece[:line_end].strip(b" \t"):
            raise RlmiError("a boundary line with more than the boundary")
        encapsulations.append(piece[line_end + 2:])
    raise RlmiError("no closing boundary")


def _part(encapsulation):
    """@return: the L{Part} of an encapsulation."""
    head, separator, body = encapsulation.partition(b"\r\n\r\n")
    if not separator or encapsulation.startswith(b"\r\n"):
        raise RlmiError("a part without headers")
    lines = head.split(b"\r\n", MAX_PART_HEADERS)
    if len(lines) > MAX_PART_HEADERS:
        raise RlmiError(f"a part with more than {MAX_PART_HEADERS} header lines")
    headers = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise RlmiError("a part header without a name")
        try:
            headers[name.strip().decode("ascii").lower()] = value.strip().decode("utf-8")
        except UnicodeDecodeError:
            raise RlmiError("a part header that is not text") from None
    encoding = headers.get("content-transfer-encoding", "binary").lower()
    if encoding not in _IDENTITY_ENCODINGS:
        raise RlmiError(f"Content-Transfer-Encoding {encoding!r}")
    content_id = headers.get("content-id", "").strip("<>")
    if not content_id:
        raise RlmiError("a part without Content-ID")
    return Part(content_id, headers.get("content-type", "text/plain"), body)


def parse_rlmi(document):
    """
    @param document: an RLMI document, from a peer.
    @return: its L{RlmiList}.  A reason on an instance that is not
        terminated is dropped.
    @raise RlmiError: not well-formed, not RLMI, a missing or bad
        attribute, an unknown state, more than L{MAX_RESOURCES} resources
        or L{MAX_INSTANCES} instances.
    """
    if len(document) > MAX_BODY:
        raise RlmiError(f"document larger than {MAX_BODY} bytes")
    try:
        root = parse_document(document)
    except BadXml as conflict:
        raise RlmiError(f"not well-formed: {conflict}") from None
    if root.tag != LIST:
        raise RlmiError("not an RLMI list")
    resources, instances = [], 0
    for resource in root.iterfind(RESOURCE):
        if len(resources) == MAX_RESOURCES:
            raise RlmiError(f"more than {MAX_RESOURCES} resources")
        found = [_instance(instance) for instance in resource.iterfind(INSTANCE)]
        instances += len(found)
        if instances > MAX_INSTANCES:
            raise RlmiError(f"more than {MAX_INSTANCES} instances")
        resources.append(Resource(_required(resource, "uri"), _name(resource), tuple(found)))
    version = _required(root, "version")
    full_state = _required(root, "fullState")
    if not version.isdigit() or len(version) > 10:
        raise RlmiError("bad version")
    if full_state not in ("true", "false", "1", "0"):
        raise RlmiError("bad fullState")
    return RlmiList(_required(root, "uri"), int(version), full_state in ("true", "1"),
                    _name(root), tuple(resources))


def _instance(element):
    state = _required(element, "state")
    if state not in STATES:
        raise RlmiError(f"unknown instance state {state[:20]!r}")
    return Instance(_required(element, "id"), state,
                    element.get("reason") if state == "terminated" else None, element.get("cid"))


def _required(element, attribute):
    value = element.get(attribute)
    if value is None:
        raise RlmiError(f"{etree.QName(element).localname} without {attribute}")
    return value


def _name(element):
    """@return: the text of the first C{<name>} of C{element}, or None."""
    name = element.find(NAME)
    return None if name is None else name.text


def full_state(previous, update):
    """
    The whole state of a list, after a notification of it: what a list
    server keeps of a member that is itself a list, so that each of its
    own notifications carries the member's whole state, whatever the
    member's last one said.

    @param previous: (Content-Type value, body) of the list's whole state
        before, or None.
    @param update: (Content-Type value, body) of a notification of the list.
    @return: (Content-Type value, body): C{update} itself when it has the
        full state (or nothing came before), else C{previous} with the
        resources C{update} lists replaced by its own, their parts with
        them, under C{update}'s version, boundary and root Content-ID.
    @raise RlmiError: either body cannot be read.
    """
    root, parts = parse_multipart(*update)
    changes = parse_rlmi(root.body)
    if changes.full_state or previous is None:
        return update
    previous_root, previous_parts = parse_multipart(*previous)
    before = parse_rlmi(previous_root.body)
    resources = {resource.uri: resource for resource in before.resources}
    resources.update((resource.uri, resource) for resource in changes.resources)
    bodies = {part.content_id: part for part in (*previous_parts, *parts)}
    kept = [bodies[instance.cid] for resource in resources.values()
            for instance in resource.instances if instance.cid in bodies]
    document = rlmi_document(changes.uri, changes.version, True,
                             changes.name or before.name, list(resources.values()))
    boundary = ContentType.parse(update[0]).params["boundary"]
    return multipart_related(boundary, Part(root.content_id, RLMI_TYPE, document), kept)
