"""
Applying a decision of the presence rules to a PIDF document (RFC 5025
§3.3): what a watcher is sent of the presentity's presence.
"""

import copy

from lxml import etree

from sbbs.presence.rules import (
    ATTRIBUTE_PERMISSIONS, RulesError, SubHandling, Transformations, parse_xml)
from sbbs.xml.namespaces import DATA_MODEL, PIDF, RPID

_PIDF = f"{{{PIDF}}}"
_DM = f"{{{DATA_MODEL}}}"
_RPID = f"{{{RPID}}}"


def transform(pidf, decision):
    """
    The presence document a watcher is sent (RFC 5025 §3.3): the
    components the decision selects, each with only the attributes it
    grants.  Some children are always kept, for the document to stay valid
    PIDF and the components usable: the C{<presence>} element and its
    C{entity}; a tuple's C{<status>} (with its C{<basic>}), C{<contact>}
    and C{<timestamp>}; a person's C{<timestamp>}; a device's
    C{<deviceID>} and C{<timestamp>}.  Comments are dropped.

    A decision that provides nothing (no transformations at all), or whose
    sub-handling is not C{allow} (a polite-blocked, pending or blocked
    watcher is never told anything), yields an empty C{<presence>}.

    @param pidf: the PIDF document, as bytes or as its root element (left
        unchanged).
    @param decision: a L{Decision}.
    @return: the document, as bytes.
    @raise RulesError: when C{pidf} is not a PIDF document.
    """
    root = copy.deepcopy(pidf) if etree.iselement(pidf) else parse_xml(pidf)
    if root.tag != _PIDF + "presence":
        raise RulesError("wrong-root", f"{root.tag} is not a PIDF <presence>")
    granted = decision.transformations
    if decision.sub_handling != SubHandling.ALLOW:
        granted = Transformations()
    for child in list(root):
        selection = _selection_of(granted, child)
        if selection is None:
            keep = _attribute_allowed(child, granted)
        else:
            keep = selection.selects(child)
            if keep:
                _keep_allowed_attributes(child, granted)
        if not keep:
            root.remove(child)
    etree.cleanup_namespaces(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# Applying transformations.


#: What each kind of component always keeps (PIDF, RFC 4479), and the
#: children kept inside those.
_FRAMES = {
    _PIDF + "tuple": {_PIDF + "status", _PIDF + "contact", _PIDF + "timestamp"},
    _DM + "person": {_DM + "timestamp"},
    _DM + "device": {_DM + "deviceID", _DM + "timestamp"},
    _PIDF + "status": {_PIDF + "basic"},
}

#: The attributes of C{<user-input>} each level of provide-user-input keeps.
_USER_INPUT_ATTRIBUTES = {"bare": (), "thresholds": ("idle-threshold",),
                          "full": ("idle-threshold", "last-input")}


#: The data components, and the L{Transformations} field that selects them.
_COMPONENTS = {_PIDF + "tuple": "services", _DM + "person": "persons",
               _DM + "device": "devices"}


def _selection_of(granted, element):
    """The L{Selection} for a child of C{<presence>}, None when it is not a component."""
    field = _COMPONENTS.get(element.tag)
    return None if field is None else getattr(granted, field)


def _keep_allowed_attributes(element, granted):
    frame = _FRAMES[element.tag]
    for child in list(element):
        if child.tag in frame:
            if child.tag in _FRAMES:
                _keep_allowed_attributes(child, granted)
        elif _attribute_allowed(child, granted):
            if child.tag == _RPID + "user-input" and not granted.all_attributes:
                _trim_user_input(child, granted.user_input)
        else:
            element.remove(child)


def _attribute_allowed(element, granted):
    if not isinstance(element.tag, str):
        return False
    if granted.all_attributes:
        return True
    permission = ATTRIBUTE_PERMISSIONS.get(element.tag)
    if permission == "user-input":
        return granted.user_input != "false"
    if permission is not None:
        return permission in granted.attributes
    return element.tag in granted.unknown_attributes


def _trim_user_input(element, level):
    for name in ("idle-threshold", "last-input"):
        if name not in _USER_INPUT_ATTRIBUTES[level]:
            element.attrib.pop(name, None)
