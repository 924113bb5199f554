"""
Elements and attributes of a document, as XCAP reads and writes them
(RFC 4825 §6.3, §8.2, §8.3): pure functions on lxml trees.

A node selector's steps (L{resource_adaptors.xcap.uri.ResolvedStep}) are
evaluated from the document's root element down.  A step keeps the child
elements with its name (any name for C{*}), then the one at its position
among those (1-based), then those whose attribute has its value; comments
and processing instructions are never selected.  A selector selects a node
when it ends on exactly one element.

Writes keep the RFC's promise that a GET on the same URI gives back what
was put (the idempotency check of §8.2.5 and §8.3.2): each write is made,
the selector evaluated again, and the write undone with a 409 when it does
not select what it should.  Where a new element goes (§8.2.3):

- a last step with a position C{[n]} puts it right after the (n-1)-th
  element matching the step's name (any element for C{*}), or before the
  first for C{[1]}, so that it becomes the n-th;
- without a position, it goes after the last sibling with its name (the
  step's, or the new element's for C{*}), or last among the children when
  it has none.

White space stays where it was: an element inserted after a sibling takes
the text that followed that sibling, and a deleted element leaves the text
that followed it to what precedes it, so that deleting what was just put
gives back the document byte for byte.
"""

import re
import uuid

from lxml import etree

from sbbs.xdms.errors import XcapConflict
from sbbs.xdms.safexml import parse_element

XCAP_NS_TYPE = "application/xcap-ns+xml"
XCAP_ELEMENT_TYPE = "application/xcap-el+xml"
XCAP_ATTRIBUTE_TYPE = "application/xcap-att+xml"


class NotFound(Exception):
    """The selector selects no element (or more than one): 404."""


class NoParent(XcapConflict):
    """
    An element or attribute cannot be put: what would hold it does not
    exist (409 C{no-parent}).

    @ivar depth: how many leading steps select an element: the closest
        existing ancestor is what they select (0: the document itself; -1:
        the document does not exist either).
    """

    def __init__(self, depth):
        super().__init__("no-parent", "the parent of the new node does not exist")
        self.depth = depth


def select(root, steps):
    """@return: the elements C{steps} select in the document whose root element is C{root}."""
    current = _apply(steps[0], [root])
    for step in steps[1:]:
        current = [match for element in current for match in _apply(step, list(element))]
    return current


def select_one(root, steps):
    """
    @return: the element C{steps} select.
    @raise NotFound: when they select none, or several.
    """
    selected = select(root, steps)
    if len(selected) != 1:
        raise NotFound()
    return selected[0]


def element_body(root, steps):
    """
    @return: the selected element as it is written in its document
        (C{application/xcap-el+xml}, RFC 4825 §8.3): with the namespace
        declarations made on it and in its content, none of those of its
        ancestors (a client learns them with C{namespace::*}).
    @raise NotFound: when the selector selects no single element.
    """
    element = select_one(root, steps)
    if element is root:
        return etree.tostring(root, encoding="UTF-8")
    # lxml declares on a subelement it serializes the namespaces of all its
    # ancestors: the element is cut from the whole document instead, between
    # two marks.
    mark = etree.ProcessingInstruction(_MARK, uuid.uuid4().hex)
    text = etree.tostring(mark, encoding="UTF-8")
    tail, element.tail = element.tail, None
    before, after = etree.ProcessingInstruction(_MARK, mark.text), \
        etree.ProcessingInstruction(_MARK, mark.text)
    element.addprevious(before)
    element.addnext(after)
    try:
        document = etree.tostring(root, encoding="UTF-8")
    finally:
        for added in (before, after):
            added.getparent().remove(added)
        element.tail = tail
    start = document.index(text) + len(text)
    return document[start:document.index(text, start)]


def element_xml(root, steps):
    """
    @return: the selected element as an XML document of its own: with
        declarations of all the namespaces in scope where it is (what an
        xcap-diff C{<element>} carries, RFC 5874 §4).
    @raise NotFound: when the selector selects no single element.
    """
    return etree.tostring(select_one(root, steps), encoding="UTF-8", with_tail=False)


#: The target of the processing instructions that mark where an element is.
_MARK = "xcap-element-span"


def attribute_body(root, steps, attribute):
    """@return: the value of the selected element's attribute, escaped as in XML."""
    value = select_one(root, steps).get(attribute)
    if value is None:
        raise NotFound()
    return _escape(value).encode("utf-8")


def namespaces_body(root, steps):
    """
    @return: the namespace bindings in scope at the selected element
        (C{application/xcap-ns+xml}, RFC 4825 §8.1.3): an element of its
        name that declares them all.
    """
    element = select_one(root, steps)
    bindings = dict(element.nsmap)
    return etree.tostring(etree.Element(element.tag, nsmap=bindings), encoding="UTF-8")


def put_element(root, steps, body):
    """
    Replace the selected element by the element in C{body}, or insert it
    where the selector says; it is read with the namespace bindings in
    scope where it goes.

    @return: True if it was inserted (201), False if it replaced one (200).
    @raise NoParent: when no single element would hold it.
    @raise XcapConflict: C{cannot-insert} when the selector would not
        select C{new} afterwards, or selects several elements now.
    """
    existing = select(root, steps)
    if len(existing) > 1:
        raise XcapConflict("cannot-insert", "the node selector selects several elements")
    if existing:
        old = existing[0]
        if old is root:
            raise XcapConflict("cannot-insert", "replace the root element with a document PUT")
        new = parse_element(body, old.getparent().nsmap)
        _replace(old, new)
        if select(root, steps) != [new]:
            _replace(new, old)
            raise _cannot_insert()
        return False
    if len(steps) == 1:
        raise XcapConflict("cannot-insert", "a document has one root element")
    parent = _parent_of(root, steps)
    new = parse_element(body, parent.nsmap)
    _insert(parent, steps[-1], new)
    if select(root, steps) != [new]:
        _remove(new)
        raise _cannot_insert()
    return True


def delete_element(root, steps):
    """
    Delete the selected element.

    @raise NotFound: when the selector selects no single element.
    @raise XcapConflict: C{cannot-delete} for the root element, or when
        the selector would select another element afterwards (RFC 4825
        §8.4: a GET of the URI must then be a 404), as a positional step
        does when a later sibling takes the deleted one's place.
    """
    element = select_one(root, steps)
    if element is root:
        raise XcapConflict("cannot-delete", "the root element can only go with its document")
    parent, index, tail = element.getparent(), element.getparent().index(element), element.tail
    _remove(element)
    if len(select(root, steps)) == 1:           # a GET would find another one
        element.tail = tail
        parent.insert(index, element)
        _take_back_tail(element)
        raise XcapConflict("cannot-delete", "the node selector would select another element")


def put_attribute(root, steps, attribute, body):
    """
    Set an attribute of the selected element from a request body.

    @return: True if the attribute is new (201), False if it was replaced.
    @raise NoParent: when the element does not exist.
    @raise XcapConflict: C{not-xml-att-value} for a body that is no
        attribute value; C{cannot-insert} when the selector would no longer
        select the element.
    """
    value = parse_attribute_value(body)
    selected = select(root, steps)
    if len(selected) != 1:
        raise NoParent(_existing_depth(root, steps))
    element = selected[0]
    old = element.get(attribute)
    element.set(attribute, value)
    if select(root, steps) != [element]:
        _restore_attribute(element, attribute, old)
        raise _cannot_insert()
    return old is None


def delete_attribute(root, steps, attribute):
    """
    Delete an attribute of the selected element; the selector may then
    select no element (C{list[@name="a"]/@name}): a GET of the URI is a 404,
    as RFC 4825 §8.4 wants.

    @raise NotFound: when the element or its attribute does not exist.
    @raise XcapConflict: C{cannot-delete} when the URI would select another
        attribute afterwards.
    """
    element = select_one(root, steps)
    old = element.get(attribute)
    if old is None:
        raise NotFound()
    del element.attrib[attribute]
    after = select(root, steps)
    if len(after) == 1 and after[0].get(attribute) is not None:
        element.set(attribute, old)
        raise XcapConflict("cannot-delete", "the URI would select another attribute")


_REFERENCE = re.compile(r"&(?:#([0-9]{1,8})|#x([0-9A-Fa-f]{1,6})|(lt|gt|amp|quot|apos));")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def parse_attribute_value(body):
    """
    @return: the value an C{application/xcap-att+xml} body stands for: the
        text of an attribute value as written in XML, references replaced.
    @raise XcapConflict: C{not-utf-8}, or C{not-xml-att-value}.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise XcapConflict("not-utf-8", "the body is not UTF-8") from None
    if "<" in text or "&" in _REFERENCE.sub("", text):
        raise XcapConflict("not-xml-att-value", "not an XML attribute value")

    def replace(match):
        decimal, hexadecimal, entity = match.groups()
        if entity is not None:
            return _ENTITIES[entity]
        return chr(int(decimal) if decimal is not None else int(hexadecimal, 16))
    try:
        value = _REFERENCE.sub(replace, text)
        etree.Element("check").set("value", value)    # characters XML allows
    except ValueError:
        raise XcapConflict("not-xml-att-value", "a character XML does not allow") from None
    return value


def _apply(step, elements):
    name = step.name
    matching = [element for element in elements
                if isinstance(element.tag, str) and (name is None or element.tag == name)]
    if step.position is not None:
        matching = matching[step.position - 1:step.position] if step.position > 0 else []
    if step.attribute is not None:
        matching = [element for element in matching if element.get(step.attribute) == step.value]
    return matching


def _parent_of(root, steps):
    parents = select(root, steps[:-1])
    if len(parents) != 1:
        raise NoParent(_existing_depth(root, steps[:-1]))
    return parents[0]


def _existing_depth(root, steps):
    """@return: how many leading steps of C{steps} select a single element."""
    depth = 0
    while depth < len(steps) and len(select(root, steps[:depth + 1])) == 1:
        depth += 1
    return depth


def _insert(parent, step, new):
    children = [child for child in parent if isinstance(child.tag, str)]
    if step.position is not None:
        peers = [child for child in children if step.name is None or child.tag == step.name]
        position = step.position
        if not 1 <= position <= len(peers) + 1:
            raise _cannot_insert()
        if position > 1:
            _insert_after(peers[position - 2], new)
        elif peers:
            _insert_before(peers[0], new)
        else:
            parent.append(new)
        return
    name = step.name if step.name is not None else new.tag
    peers = [child for child in children if child.tag == name]
    if peers:
        _insert_after(peers[-1], new)
    else:
        parent.append(new)


def _insert_before(sibling, new):
    new.tail = None
    sibling.addprevious(new)


def _insert_after(sibling, new):
    new.tail, sibling.tail = sibling.tail, None
    sibling.addnext(new)


def _replace(old, new):
    new.tail = old.tail
    old.getparent().replace(old, new)


def _remove(element):
    """Remove C{element}, leaving the text after it where it was."""
    tail = element.tail
    previous = element.getprevious()
    parent = element.getparent()
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    element.tail = None
    parent.remove(element)


def _take_back_tail(element):
    """Undo what L{_remove} did with C{element}'s tail, once it is back."""
    tail = element.tail
    if not tail:
        return
    previous = element.getprevious()
    if previous is not None:
        previous.tail = previous.tail[:-len(tail)] or None
    else:
        parent = element.getparent()
        parent.text = parent.text[:-len(tail)] or None


def _restore_attribute(element, attribute, old):
    if old is None:
        del element.attrib[attribute]
    else:
        element.set(attribute, old)


def _cannot_insert():
    return XcapConflict("cannot-insert", "the node selector would not select the new node")


def _escape(value):
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
