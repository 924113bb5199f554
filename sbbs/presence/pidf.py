"""
PIDF documents (RFC 3863) with the presence data model's person and device
elements (RFC 4479): what clients publish and what watchers are sent.

L{parse_pidf} takes a body from the network with the safe parser
(L{sbbs.xml.safe}: no DTD, no entity, no network), bounds its size and
its number of elements and tuples, checks what the PIDF schema cannot say
(ids present and unique, a status in every tuple, the data model's persons
and devices), puts the document in the schema's order and validates it
against C{pidf.xsd}.  Each refusal is a L{PidfError} whose C{reason} can
be the reason phrase of a 400.  Elements of other namespaces are welcome
wherever the schema has C{##other}: RPID (RFC 4480), CIPID, geopriv...
the XSD checks only the PIDF elements, this module the data model's.

Real clients do not all send valid PIDF 1.0, and presence is for the
clients people use.  These deviations are accepted, and repaired so that
what is stored and sent is valid:

 - a C{<basic>} that is neither C{open} nor C{closed} is dropped (the
   status then says nothing about basic availability, which PIDF allows):
   baresip's first PUBLISH has C{<basic>unknown</basic>} (C{unkown} in
   some versions); surrounding spaces and case are ignored
   (C{" Open "} is C{open});
 - children out of the schema's order are put in it, otherwise unchanged
   (baresip puts its C{<dm:person>} before its tuple; the schema wants
   tuples, then notes, then extensions; likewise inside a tuple, its
   status, a person and a device);
 - comments, processing instructions and the blank text between the
   elements of C{<presence>}, tuples, statuses, persons and devices are
   dropped.

Timestamps (C{xs:dateTime}) are read by L{instant}.
"""

import re
import unicodedata
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path

from lxml import etree

from sbbs.xml.namespaces import DATA_MODEL, PIDF, RPID
from sbbs.xml.safe import BadXml, parse_document

PIDF_TYPE = "application/pidf+xml"


PRESENCE = f"{{{PIDF}}}presence"
TUPLE = f"{{{PIDF}}}tuple"
STATUS = f"{{{PIDF}}}status"
BASIC = f"{{{PIDF}}}basic"
CONTACT = f"{{{PIDF}}}contact"
NOTE = f"{{{PIDF}}}note"
TIMESTAMP = f"{{{PIDF}}}timestamp"
PERSON = f"{{{DATA_MODEL}}}person"
DEVICE = f"{{{DATA_MODEL}}}device"
DEVICE_ID = f"{{{DATA_MODEL}}}deviceID"
DM_NOTE = f"{{{DATA_MODEL}}}note"
DM_TIMESTAMP = f"{{{DATA_MODEL}}}timestamp"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

#: The prefixes of the documents this server writes.
PREFIXES = {None: PIDF, "dm": DATA_MODEL, "rpid": RPID}

#: L{parse_pidf}'s default limits, which composed documents keep too (so
#: that a watcher with the same limits, the RLS, takes them).
MAX_SIZE = 65536
MAX_ELEMENTS = 2000
MAX_TUPLES = 100

#: Longest L{PidfError.reason}.
MAX_REASON = 120


class PidfError(ValueError):
    """
    A body that is not acceptable PIDF.

    @ivar reason: why, on one line of printable characters and at most
        L{MAX_REASON} characters: it may go in a SIP reason phrase and in
        logs, and may quote what the peer sent.
    """

    def __init__(self, reason):
        printable = "".join(" " if unicodedata.category(character) in _UNPRINTABLE
                            else character for character in reason)
        reason = " ".join(printable.split())
        if len(reason) > MAX_REASON:
            reason = reason[:MAX_REASON - 3] + "..."
        super().__init__(reason)
        self.reason = reason


#: Control, format and line and paragraph separator characters.
_UNPRINTABLE = frozenset(("Cc", "Cf", "Zl", "Zp"))


def parse_pidf(body, *, max_size=MAX_SIZE, max_elements=MAX_ELEMENTS, max_tuples=MAX_TUPLES):
    """
    @param body: the bytes of a PIDF document, from a peer.
    @return: its root element, repaired and put in the schema's order (see
        the module's docstring), valid.
    @raise PidfError: when it is not acceptable, saying why.
    """
    if len(body) > max_size:
        raise PidfError(f"body too large: {len(body)} bytes, at most {max_size}")
    try:
        root = parse_document(body)
    except BadXml as conflict:
        if conflict.condition == "not-utf-8":
            raise PidfError("body is not UTF-8") from None
        raise PidfError(f"not well-formed XML: {conflict.phrase}") from None
    if sum(1 for _ in root.iter(etree.Element)) > max_elements:
        raise PidfError(f"too many elements: more than {max_elements}")
    if root.tag != PRESENCE:
        raise PidfError("root element is not PIDF presence")
    if not root.get("entity"):
        raise PidfError("presence has no entity")
    if len(root.findall(TUPLE)) > max_tuples:
        raise PidfError(f"too many tuples: more than {max_tuples}")
    _check_ids(root)
    for tuple_ in root.iterfind(TUPLE):
        if tuple_.find(STATUS) is None:
            raise PidfError(f"tuple {tuple_.get('id')!r} has no status")
    etree.strip_elements(root, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    _repair_basic(root)
    ordered = [element for element in root.iter() if element.tag in _SEQUENCES]
    if all(_in_schema_order(element) for element in ordered):
        _strip_blanks(ordered)      # what ordered_copy would do, without a copy
    else:
        root = ordered_copy(root)
    for component in root:
        if component.tag in (PERSON, DEVICE):
            _check_component(component)
    if not _SCHEMA.validate(root.getroottree()):
        error = _SCHEMA.error_log.last_error
        message = error.message if error is not None else "not valid"
        raise PidfError(f"not valid PIDF: {message.replace(f'{{{PIDF}}}', '')}")
    return root


def _check_ids(root):
    """Tuples, persons and devices have ids, unique in the document (xs:ID)."""
    seen = set()
    for component in root:
        if component.tag in (TUPLE, PERSON, DEVICE):
            identifier = component.get("id")
            if not identifier:
                raise PidfError(f"{etree.QName(component).localname} without id")
            if identifier in seen:
                raise PidfError(f"duplicate id {identifier!r}")
            seen.add(identifier)


def _repair_basic(root):
    for basic in root.findall(f"{TUPLE}/{STATUS}/{BASIC}"):
        value = (basic.text or "").strip().lower()
        if value in ("open", "closed"):
            basic.text = value
        else:
            basic.getparent().remove(basic)


def _check_component(component):
    """
    What the data model's schema (RFC 4479 §4) says of a person or device
    and pidf.xsd cannot check: its notes are text, its timestamp a
    dateTime, and it has no text outside its elements.
    """
    name = f"{etree.QName(component).localname} {component.get('id')!r}"
    if (component.text or "").strip() or any((child.tail or "").strip() for child in component):
        raise PidfError(f"{name} has text outside its elements")
    for note in component.iterfind(DM_NOTE):
        if len(note):
            raise PidfError(f"{name} has a note with elements")
    for timestamp in component.iterfind(DM_TIMESTAMP):
        if instant(timestamp.text or "") is None:
            raise PidfError(f"{name} has an invalid timestamp")


#: The content models of the schemas (pidf.xsd, RFC 4479 §4), as the order
#: of their children; None stands for the elements of other namespaces.
_SEQUENCES = {
    PRESENCE: (TUPLE, NOTE, None),
    TUPLE: (STATUS, None, CONTACT, NOTE, TIMESTAMP),
    STATUS: (BASIC, None),
    PERSON: (None, DM_NOTE, DM_TIMESTAMP),
    DEVICE: (None, DEVICE_ID, DM_NOTE, DM_TIMESTAMP),
}


def ordered_copy(element, parent=None, children=None):
    """
    A copy of C{element} (with C{children} instead of its own, if given),
    as the last child of C{parent} or, without one, as a new root.  The
    children of C{<presence>}, tuples, statuses, persons and devices are
    put in the order their schemas want (a stable sort: elements of other
    namespaces keep theirs), without the blank text between them; the
    other elements are copied as they are.  The copy declares each
    namespace binding of C{element} that C{parent} lacks, so that prefixes
    are kept.  C{element} has no comment.

    Elements are built anew, never moved: lxml, moving an element (to
    another tree, or to another place in its own), may bind it to a
    prefix that the element itself redeclares for another namespace, and
    the document then reads it in that other namespace.
    """
    declarations = {prefix: namespace for prefix, namespace in element.nsmap.items()
                    if parent is None or parent.nsmap.get(prefix) != namespace}
    attributes = dict(element.attrib)
    if parent is None:
        copy = etree.Element(element.tag, attributes, nsmap=declarations)
    else:
        copy = etree.SubElement(parent, element.tag, attributes, nsmap=declarations)
    children = list(element) if children is None else children
    sequence = _SEQUENCES.get(element.tag)
    if sequence is None:
        copy.text = element.text
        for child in children:
            ordered_copy(child, copy).tail = child.tail
    else:
        copy.text = _unless_blank(element.text)
        for child in sorted(children, key=lambda child: _sequence_index(sequence, child)):
            ordered_copy(child, copy).tail = _unless_blank(child.tail)
    return copy


def _unless_blank(text):
    return text if (text or "").strip() else None


def _sequence_index(sequence, child):
    return sequence.index(child.tag if child.tag in sequence else None)


def _in_schema_order(element):
    """Whether the children of C{element} (which has a schema's order) are in it."""
    sequence = _SEQUENCES[element.tag]
    places = [_sequence_index(sequence, child) for child in element]
    return places == sorted(places)


def _strip_blanks(elements):
    """
    Drop the blank text between the children of C{elements} (those of a
    tree that have a schema's order), in place: L{ordered_copy} of a tree
    in order.
    """
    for element in elements:
        element.text = _unless_blank(element.text)
        for child in element:
            child.tail = _unless_blank(child.tail)


#: xs:dateTime, which datetime.fromisoformat reads once it matches.
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")


def instant(text):
    """
    @param text: an C{xs:dateTime}, as in C{<timestamp>} and
        C{<dm:timestamp>}.
    @return: that time in POSIX seconds (UTC when it names no time zone),
        or None when it is not one, or not one Python can represent (year
        beyond 9999, C{24:00:00}).
    """
    text = text.strip()
    if _DATETIME.fullmatch(text) is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def neutral_document(entity):
    """
    The document of a presentity that is offline: one tuple, closed, and
    nothing else.  It is what a polite-blocked watcher is sent (RFC 5025
    §3.2.1), so it must look like any offline presentity's: its tuple id
    is derived from the entity, as stable as a client's, not a telltale
    constant.  The presence server keeps it in its memo
    (L{sbbs.presence.memo}): each change of a presentity compares it, for
    each of its polite-blocked watchers.

    @param entity: the presentity's URI.
    @return: the document, as bytes.
    """
    root = etree.Element(PRESENCE, nsmap={None: PIDF}, entity=entity)
    tuple_ = etree.SubElement(root, TUPLE, id="t" + sha256(entity.encode("utf-8")).hexdigest()[:8])
    etree.SubElement(etree.SubElement(tuple_, STATUS), BASIC).text = "closed"
    return serialize(root)


def serialize(root):
    """@return: the document of C{root}, as UTF-8 bytes with an XML declaration."""
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _schema():
    """pidf.xsd, read with the safe parser's rules: no entity, no network."""
    path = Path(__file__).resolve().parent.parent / "xdms" / "schemas" / "pidf.xsd"
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


_SCHEMA = _schema()


def current_sphere(document):
    """
    @return: the presentity's current sphere (RFC 4480 §3.8: C{work},
        C{home}, or the text the client wrote) from the C{<rpid:sphere>} of
        the person of a composed document (bytes), or None when it says none:
        what pres-rules' C{<sphere>} conditions compare (RFC 4745 §7.2).
    """
    root = parse_document(document)
    for sphere in root.iter(f"{{{RPID}}}sphere"):
        if sphere.getparent() is None or sphere.getparent().tag != PERSON:
            continue
        text = (sphere.text or "").strip()
        if text:
            return text
        for child in sphere:
            if isinstance(child.tag, str):
                return etree.QName(child).localname
    return None
