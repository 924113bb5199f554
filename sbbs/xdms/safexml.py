"""
The safe XML parser (L{sbbs.xml.safe}) as the XDMS uses it: what it
refuses is an XCAP conflict, answered 409 with the condition that says why.
"""

from sbbs.xdms.errors import XcapConflict
from sbbs.xml import safe


def parse_document(body):
    """L{sbbs.xml.safe.parse_document}, refusing with L{XcapConflict}."""
    try:
        return safe.parse_document(body)
    except safe.BadXml as error:
        raise XcapConflict(error.condition, error.phrase) from None


def parse_element(body, namespaces):
    """L{sbbs.xml.safe.parse_element}, refusing with L{XcapConflict}."""
    try:
        return safe.parse_element(body, namespaces)
    except safe.BadXml as error:
        raise XcapConflict(error.condition, error.phrase) from None
