"""
Request-contained lists (RFC 5367): a SUBSCRIBE that carries its list as
its body, an C{application/resource-lists+xml} document, instead of
naming a service.  linphone subscribes to its contacts' presence this way.

The body comes from the subscriber, so it is read with care: inflated
(C{Content-Encoding: deflate}) into at most L{MAX_INFLATED} bytes, however
much it claims to hold, and parsed safely (L{sbbs.xml.safe}).  Only
entries count: the RLS cannot follow a client's C{<entry-ref>} or
C{<external>} into documents that are not its to read, so a list with
one is refused.  Each refusal is an L{AdhocError} with the status to
answer.
"""

import zlib

from sbbs.rls.lists import (
    DISPLAY_NAME, ENTRY, ENTRY_REF, EXTERNAL, MAX_MEMBERS, MAX_URI_LENGTH,
    RESOURCE_LISTS_NAMESPACE, Member, member_key)
from sbbs.xml.safe import BadXml, parse_document

RESOURCE_LISTS = f"{{{RESOURCE_LISTS_NAMESPACE}}}resource-lists"

#: The largest list accepted, in bytes, once inflated.
MAX_INFLATED = 256 * 1024

#: The Content-Encoding values that mean none.
_IDENTITY = frozenset(("", "identity"))


class AdhocError(ValueError):
    """
    A request-contained list that is refused.

    @ivar status: the SIP status to answer: 400 (malformed), 403 (too many
        members, or references), 413 (too large), 415 (an unknown encoding).
    @ivar reason: why, fit for a reason phrase.
    """

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def request_list(body, content_encoding, max_members=MAX_MEMBERS):
    """
    @param body: the SUBSCRIBE's body, an C{application/resource-lists+xml}
        document whose lists (which may nest) hold C{<entry uri>}s.
    @param content_encoding: its Content-Encoding value, or None.
    @param max_members: the most members accepted.
    @return: the L{Member}s, in document order, each URI once (by
        L{member_key}, the first entry's display name kept).
    @raise AdhocError: see L{AdhocError}.
    """
    root = _parse(_decoded(body, content_encoding))
    if root.tag != RESOURCE_LISTS:
        raise AdhocError(400, "not a resource-lists document")
    if next(root.iter(ENTRY_REF, EXTERNAL), None) is not None:
        raise AdhocError(403, "references to other lists are not supported")
    members = {}
    for entry in root.iter(ENTRY):
        uri = (entry.get("uri") or "").strip()
        if not uri or len(uri) > MAX_URI_LENGTH:
            raise AdhocError(400, "an entry without a usable uri")
        key = member_key(uri)
        if key in members:
            continue
        if len(members) == max_members:
            raise AdhocError(403, "list too big")
        name = entry.find(DISPLAY_NAME)
        members[key] = Member(uri, None if name is None else name.text)
    return list(members.values())


def _decoded(body, content_encoding):
    """@return: C{body} without its Content-Encoding, at most L{MAX_INFLATED} bytes."""
    if len(body) > MAX_INFLATED:
        raise AdhocError(413, "list too large")
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY:
        return body
    if encoding != "deflate":
        raise AdhocError(415, f"unsupported Content-Encoding {encoding[:20]}")
    # "deflate" is the zlib format (RFC 1950), but some send raw deflate
    # (RFC 1951): try the one, then the other.
    for window in (zlib.MAX_WBITS, -zlib.MAX_WBITS):
        inflater = zlib.decompressobj(window)
        try:
            inflated = inflater.decompress(body, MAX_INFLATED + 1)
        except zlib.error:
            continue
        if len(inflated) > MAX_INFLATED:
            raise AdhocError(413, "list too large once inflated")
        if inflater.eof and not inflater.unused_data:
            return inflated
    raise AdhocError(400, "the body is not deflate data")


def _parse(document):
    try:
        return parse_document(document)
    except BadXml:
        raise AdhocError(400, "not a well-formed list") from None
