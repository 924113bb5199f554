"""
XCAP URIs (RFC 4825 §6): pure parsing, no I/O.

An XCAP URI names a document, or a node in it::

    <XCAP root>/<AUID>/users/<XUI>/<document path>[/~~/<node selector>][?<xmlns() bindings>]
    <XCAP root>/<AUID>/global/<document path>[/~~/<node selector>][?...]

What is percent-decoded when (§6, §6.3):

- the path is cut at its slashes first, and each segment of the document
  selector is decoded on its own, so that a XUI such as C{sip:joe@example.com}
  may carry a C{%2F} without it becoming a path separator;
- the segment C{~~} separates the node selector, which is decoded as a
  whole, then parsed (a slash inside a quoted attribute value does not
  separate steps);
- the query is decoded, then read as XPointer C{xmlns()} parts that bind the
  namespace prefixes the node selector uses.

A node selector is steps (element by name or C{*}, by position C{[n]}, by
attribute value C{[@a="v"]}, or both) and at most one terminal selector: an
attribute (C{@name}) or the namespace bindings in scope (C{namespace::*}).
An element name without a prefix is in the application usage's default
document namespace (§6.3), which L{NodeSelector.resolve} is given; an
attribute name without a prefix is in no namespace, as in XML.

Errors raise L{XcapUriError} with the HTTP status to answer: 404 for a path
that names no document (wrong tree, empty or dot segments, no document
name), 400 for a malformed node selector or query.  Every count a client
controls is bounded (segments, steps, the length of a position).
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from urllib.parse import quote, unquote

#: The node selector separator segment.
SEPARATOR = "~~"

#: Bounds on what a client controls.
MAX_SEGMENTS = 32
MAX_STEPS = 64
MAX_POSITION_DIGITS = 9

# XML 1.0 (5th edition) NameStartChar and NameChar, without ":" (NCName).
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff")
_NAME_CHAR = _NAME_START + r"\-.0-9\u00b7\u0300-\u036f\u203f-\u2040"
NCNAME = rf"[{_NAME_START}][{_NAME_CHAR}]*"
QNAME = rf"(?:({NCNAME}):)?({NCNAME})"
_ATT_VALUE = r'"[^"<]*"|' + r"'[^'<]*'"

_STEP = re.compile(
    rf"(?:{QNAME}|(\*))(?:\[([0-9]+)\])?(?:\[@{QNAME}=({_ATT_VALUE})\])?")
_ATTRIBUTE_SELECTOR = re.compile(rf"@{QNAME}")
_NAMESPACE_SELECTOR = "namespace::*"
_XMLNS_PART = re.compile(rf"xmlns\(\s*({NCNAME})\s*=\s*((?:[^()^]|\^[()^])*)\)")
_REFERENCE = re.compile(r"&(?:#([0-9]+)|#x([0-9A-Fa-f]+)|([A-Za-z]+));")
_PREDEFINED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}

# What a path segment may hold unescaped (RFC 3986 pchar).
_SEGMENT_SAFE = "!$&'()*+,;=:@"


class XcapUriError(ValueError):
    """
    A URI that is no XCAP resource, or a malformed one.

    @ivar status: the HTTP status to answer (404 or 400).
    @ivar reason: what is wrong, for the log and the error body.
    """

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class DocumentSelector:
    """
    A document: its application usage, its tree and its path there.

    @ivar auid: the application usage's id (C{"resource-lists"}).
    @ivar xui: the user's id (C{"sip:joe@example.com"}), or None in the global tree.
    @ivar path: the document's path in that tree, sub-directories first,
        percent-decoded (C{("index",)}, C{("friends", "list.xml")}).
    """

    auid: str
    xui: str | None
    path: tuple

    @property
    def is_global(self):
        return self.xui is None

    def __str__(self):
        """The selector as it appears in a URI, percent-encoded, without the root."""
        tree = ["global"] if self.xui is None else ["users", self.xui]
        return "/".join(quote(segment, safe=_SEGMENT_SAFE)
                        for segment in (self.auid, *tree, *self.path))


@dataclass(frozen=True)
class Name:
    """An element or attribute name of a node selector: a prefix (or None) and a local part."""

    prefix: str | None
    local: str

    def expanded(self, bindings, default_namespace):
        """
        @return: the name in Clark notation (C{{namespace}local}, or C{local}
            in no namespace).
        @param default_namespace: the namespace of a name without prefix.
        @raise XcapUriError: 400 for a prefix C{bindings} does not bind.
        """
        if self.prefix is None:
            namespace = default_namespace
        else:
            namespace = bindings.get(self.prefix)
            if namespace is None:
                raise XcapUriError(400, f"namespace prefix {self.prefix!r} is not bound")
        return self.local if not namespace else f"{{{namespace}}}{self.local}"

    def __str__(self):
        return self.local if self.prefix is None else f"{self.prefix}:{self.local}"


#: The name of a step that selects any element.
ANY = Name(None, "*")


@dataclass(frozen=True)
class Step:
    """
    One step of a node selector: the children of the current element with
    this name (or any name), then the C{position}-th of them (1-based), then
    those whose C{attribute} has C{value}.  RFC 4825 applies the position
    before the attribute test.
    """

    name: Name
    position: int | None = None
    attribute: Name | None = None
    value: str | None = None

    def __str__(self):
        """The step as written in a node selector (not percent-encoded)."""
        text = str(self.name)
        if self.position is not None:
            text += f"[{self.position}]"
        if self.attribute is not None:
            value = self.value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            text += f'[@{self.attribute}="{value}"]'
        return text


@dataclass(frozen=True)
class ResolvedStep:
    """A L{Step} with expanded names: C{name} is None for any element."""

    name: str | None
    position: int | None
    attribute: str | None
    value: str | None


@dataclass(frozen=True)
class NodeSelector:
    """
    @ivar steps: the L{Step}s, from the document's root element down.
    @ivar attribute: the name of the attribute selected (C{@name} at the
        end), or None.
    @ivar namespaces: whether it ends with C{namespace::*} (the namespace
        bindings in scope at the element).
    """

    steps: tuple
    attribute: Name | None = None
    namespaces: bool = False

    def resolve(self, bindings, default_namespace):
        """
        @return: (the L{ResolvedStep}s, the attribute's expanded name or None).
        @param bindings: prefix -> namespace, from the URI's query.
        @param default_namespace: the application usage's default document
            namespace, for element names without prefix.
        @raise XcapUriError: 400 for an unbound prefix.
        """
        steps = tuple(
            ResolvedStep(None if step.name is ANY else step.name.expanded(bindings,
                                                                          default_namespace),
                         step.position,
                         None if step.attribute is None else step.attribute.expanded(bindings,
                                                                                     None),
                         step.value)
            for step in self.steps)
        attribute = None if self.attribute is None else self.attribute.expanded(bindings, None)
        return steps, attribute


def node_selector_text(steps):
    """@return: the node selector of C{steps} (L{Step}s), percent-encoded for a URI."""
    return quote("/".join(map(str, steps)), safe="/:@*")


@dataclass(frozen=True)
class XcapUri:
    """
    @ivar document: the L{DocumentSelector}.
    @ivar node: the L{NodeSelector}, or None when the URI names the document.
    @ivar bindings: prefix -> namespace, from the query's C{xmlns()} parts
        (read only: a parsed URI is shared, see L{parse_xcap_uri}).
    """

    document: DocumentSelector
    node: NodeSelector | None
    bindings: dict


@lru_cache(maxsize=4096)
def parse_xcap_uri(path, root, query=""):
    """
    Parse the path and query of a request on the XCAP root C{root}.
    Remembered, as clients ask for the same documents again and again: an
    L{XcapUri} and all it holds are immutable, so every request for a URI
    shares one.

    @param path: the request path, percent-encoded, as received.
    @param root: the XCAP root's path (C{"/xcap-root"}).
    @param query: the query, percent-encoded, without its C{?}.
    @return: an L{XcapUri}.
    @raise XcapUriError: see the module docstring.
    """
    root = root.rstrip("/")
    if not path.startswith(root + "/"):
        raise XcapUriError(404, "not under the XCAP root")
    raw = path[len(root) + 1:].split("/")
    segments, node = [], None
    for index, segment in enumerate(raw):
        segment = _decode(segment, 404)
        if segment == SEPARATOR:
            node = parse_node_selector(_decode("/".join(raw[index + 1:]), 400))
            break
        if len(segments) == MAX_SEGMENTS:
            raise XcapUriError(404, "too many path segments")
        segments.append(segment)
    return XcapUri(document_selector(segments), node, MappingProxyType(parse_bindings(query)))


def document_selector(segments):
    """
    @return: the L{DocumentSelector} of the decoded path segments below the root.
    @raise XcapUriError: 404 when they name no document.
    """
    for segment in segments:
        if segment in ("", ".", "..") or "\0" in segment:
            raise XcapUriError(404, f"no document at a path segment {segment!r}")
    if len(segments) < 3:
        raise XcapUriError(404, "no document selected")
    auid, tree, *rest = segments
    if tree == "global":
        return DocumentSelector(auid, None, tuple(rest))
    if tree == "users":
        xui, *path = rest
        if not path:
            raise XcapUriError(404, "no document selected")
        return DocumentSelector(auid, xui, tuple(path))
    raise XcapUriError(404, f"no tree {tree!r} (global or users)")


def parse_node_selector(text):
    """
    @return: the L{NodeSelector} of C{text}, percent-decoded already.
    @raise XcapUriError: 400 when it is malformed.
    """
    parts = _split_steps(text)
    if len(parts) > MAX_STEPS:
        raise XcapUriError(400, "too many steps in the node selector")
    attribute, namespaces = None, False
    last = parts[-1]
    if last == _NAMESPACE_SELECTOR:
        namespaces = True
        parts.pop()
    elif last.startswith("@"):
        match = _ATTRIBUTE_SELECTOR.fullmatch(last)
        if match is None:
            raise XcapUriError(400, f"bad attribute selector {last!r}")
        attribute = Name(*match.groups())
        parts.pop()
    if not parts:
        raise XcapUriError(400, "a node selector needs an element step")
    return NodeSelector(tuple(map(_step, parts)), attribute, namespaces)


def parse_bindings(query):
    """
    @return: prefix -> namespace, from the XPointer C{xmlns()} parts of the
        query (percent-encoded, as received); C{{}} for an empty query.
    @raise XcapUriError: 400 for anything else in the query.
    """
    text = _decode(query, 400)
    bindings = {}
    position = 0
    while position < len(text):
        match = _XMLNS_PART.match(text, position)
        if match is None:
            raise XcapUriError(400, "the query holds something other than xmlns() bindings")
        prefix, namespace = match.groups()
        # White space cannot be part of a namespace name (a URI).
        bindings[prefix] = re.sub(r"\^([()^])", r"\1", namespace).strip(" \t")
        position = match.end()
        while position < len(text) and text[position] in " \t":
            position += 1
    return bindings


def _decode(text, status):
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise XcapUriError(status, "percent-escapes that are not UTF-8") from None


def _split_steps(text):
    """Split at the slashes outside quoted attribute values."""
    parts, start, quote_char = [], 0, None
    for index, char in enumerate(text):
        if quote_char is not None:
            if char == quote_char:
                quote_char = None
        elif char in "\"'":
            quote_char = char
        elif char == "/":
            parts.append(text[start:index])
            start = index + 1
    if quote_char is not None:
        raise XcapUriError(400, "an attribute value in the node selector is not closed")
    parts.append(text[start:])
    if "" in parts:
        raise XcapUriError(400, "an empty step in the node selector")
    return parts


def _step(text):
    match = _STEP.fullmatch(text)
    if match is None:
        raise XcapUriError(400, f"bad step {text!r} in the node selector")
    prefix, local, any_name, position, attribute_prefix, attribute, value = match.groups()
    if position is not None:
        # 1*DIGIT: [0] is well-formed, and selects nothing.
        if len(position) > MAX_POSITION_DIGITS:
            raise XcapUriError(400, f"bad position in step {text!r}")
        position = int(position)
    return Step(ANY if any_name else Name(prefix, local), position,
                None if attribute is None else Name(attribute_prefix, attribute),
                None if value is None else _attribute_value(value[1:-1]))


def _attribute_value(text):
    """The value of an AttValue without its quotes, references replaced."""
    def replace(match):
        decimal, hexadecimal, entity = match.groups()
        if entity is not None:
            if entity not in _PREDEFINED_ENTITIES:
                raise XcapUriError(400, f"unknown entity &{entity}; in the node selector")
            return _PREDEFINED_ENTITIES[entity]
        digits = decimal or hexadecimal
        code = 0 if len(digits) > 8 else int(digits, 10 if decimal is not None else 16)
        if not 0 < code <= 0x10FFFF:
            raise XcapUriError(400, "bad character reference in the node selector")
        return chr(code)
    value = _REFERENCE.sub(replace, text)
    if "&" in _REFERENCE.sub("", text):
        raise XcapUriError(400, "a bare & in an attribute value of the node selector")
    return value
