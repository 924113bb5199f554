"""
Parsing what peers send, safely.

Documents and element bodies come from the network.  The parser resolves no
entity and loads no DTD, reads nothing from the network or the disk, and
keeps libxml2's limits on nesting depth and text size (no C{huge_tree}).  A
document type declaration is refused outright: the documents of presence
and XCAP have none, and an internal subset is how billion-laughs and
external entities arrive.  Bodies must be UTF-8 (RFC 4825 §7.2, RFC 3863).

What is refused raises L{BadXml}, named by the XCAP error condition that
says why (RFC 4825 §11.2): the XDMS answers it as such, other services as
their protocols say.
"""

from lxml import etree


class BadXml(ValueError):
    """
    A body that is not the safe, well-formed UTF-8 XML asked for.

    @ivar condition: C{not-utf-8}, C{not-well-formed} or C{not-xml-frag}.
    @ivar phrase: what is wrong, for humans.
    """

    def __init__(self, condition, phrase):
        super().__init__(phrase)
        self.condition = condition
        self.phrase = phrase


def _parser():
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=False)


_PARSER = _parser()


def parse_document(body):
    """
    @param body: the bytes of a whole document.
    @return: its root element (an lxml element, in its own tree).
    @raise BadXml: C{not-utf-8} or C{not-well-formed}.
    """
    return _parse(body, "not-well-formed")


def parse_element(body, namespaces):
    """
    @param body: the bytes of an element (the body of a PUT on an element).
    @param namespaces: the namespace bindings in scope where it goes
        (prefix -> namespace, None for the default one): the body is read
        in that context, as if written there (RFC 4825 §8.2.3).
    @return: the element, in a tree of its own.
    @raise BadXml: C{not-utf-8}, or C{not-xml-frag} when the body is
        not exactly one well-formed element.
    """
    text = _text(body, "not-xml-frag")
    if text.lstrip().startswith("<?xml"):
        text = text.lstrip().split("?>", 1)[-1]
    declarations = "".join(
        f' xmlns{"" if prefix is None else ":" + prefix}="{_quoted(namespace)}"'
        for prefix, namespace in namespaces.items())
    wrapper = _parse(f"<{_WRAPPER}{declarations}>{text}</{_WRAPPER}>".encode("utf-8"),
                     "not-xml-frag")
    if etree.QName(wrapper).localname != _WRAPPER or len(wrapper) != 1 \
            or (wrapper.text or "").strip() \
            or (wrapper[0].tail or "").strip() or not isinstance(wrapper[0].tag, str):
        raise BadXml("not-xml-frag", "the body must be exactly one element")
    element = wrapper[0]
    wrapper.remove(element)
    element.tail = None
    return element


#: The element a fragment is read in (its name cannot be an XCAP element's).
_WRAPPER = "xcap-fragment-context"


def _quoted(namespace):
    return namespace.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def _text(body, condition):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadXml("not-utf-8", "the body is not UTF-8") from None
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise BadXml(condition, "document type declarations are not allowed")
    return text


def _parse(body, condition):
    _text(body, condition)
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as error:
        raise BadXml(condition, _first_line(str(error))) from None
    if root is None:
        raise BadXml(condition, "no element")
    return root


def _first_line(message):
    return message.splitlines()[0] if message else "not well-formed"
