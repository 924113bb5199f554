"""
The conflicts of RFC 4825 §11: a request that cannot be done as asked is
answered 409 with an C{application/xcap-error+xml} body naming the exact
condition, so that a client can tell a schema error from a lost race.
"""

from lxml import etree
from sbbs.xml.namespaces import XCAP_ERROR as XCAP_ERROR_NAMESPACE

XCAP_ERROR_TYPE = "application/xcap-error+xml"

#: The conditions this server reports (RFC 4825 §11.2).
CONDITIONS = frozenset((
    "not-well-formed", "not-xml-frag", "no-parent", "schema-validation-error",
    "not-xml-att-value", "cannot-insert", "cannot-delete", "uniqueness-failure",
    "constraint-failure", "not-utf-8"))


class XcapConflict(Exception):
    """
    A request that conflicts with the document or the rules of its
    application usage.

    @ivar condition: the element name of the condition (C{"cannot-insert"}).
    @ivar phrase: a description for humans, sent as the C{phrase} attribute.
    @ivar ancestor: for C{no-parent}, the URI of the closest existing
        ancestor (RFC 4825 §11.2), or None.
    @ivar exists: for C{uniqueness-failure}, (field node selector, values
        proposed instead) pairs.
    """

    def __init__(self, condition, phrase=None, ancestor=None, exists=()):
        if condition not in CONDITIONS:
            raise ValueError(f"no XCAP error condition {condition!r}")
        super().__init__(phrase or condition)
        self.condition = condition
        self.phrase = phrase
        self.ancestor = ancestor
        self.exists = tuple(exists)

    def document(self):
        """@return: the C{application/xcap-error+xml} body, as bytes."""
        namespace = f"{{{XCAP_ERROR_NAMESPACE}}}"
        root = etree.Element(namespace + "xcap-error", nsmap={None: XCAP_ERROR_NAMESPACE})
        condition = etree.SubElement(root, namespace + self.condition)
        if self.phrase:
            condition.set("phrase", self.phrase)
        if self.ancestor is not None:
            etree.SubElement(condition, namespace + "ancestor").text = self.ancestor
        for field, alternatives in self.exists:
            exists = etree.SubElement(condition, namespace + "exists", field=field)
            for value in alternatives:
                etree.SubElement(exists, namespace + "alt-value").text = value
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
