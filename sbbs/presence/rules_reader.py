"""
Reading a presence rules document (RFC 4745, RFC 5025, and OMA XDM's
common policy conditions) into the L{sbbs.presence.rules.Ruleset} the
presence server keeps.

Limits: a document may hold at most L{MAX_RULES} rules and, in all their
C{<conditions>} together, at most L{MAX_CONDITIONS} elements (each
C{<one>}, C{<many>}, C{<except>}, list C{<entry>}, C{<from>}, C{<until>}
counts), so that a stored document cannot make every SUBSCRIBE expensive.
"""

import functools
import operator
from datetime import datetime, timezone

from lxml import etree

from sbbs.presence.rules import (
    ATTRIBUTE_PERMISSIONS, BOOLEAN_PERMISSIONS, USER_INPUT_LEVELS, AnonymousRequestCondition,
    ExternalListCondition, IdentityCondition, ManyCondition, Rule, Ruleset, RulesError,
    Selection, SphereCondition, SubHandling, Transformations, UnknownCondition,
    ValidityCondition, identity_key, parse_xml, uri_key)
from sbbs.xml.namespaces import COMMON_POLICY, PRES_RULES

#: The most rules a document may hold.
MAX_RULES = 256
#: The most elements all the rules' conditions may hold together.
MAX_CONDITIONS = 5000

OMA_COMMON_POLICY = "urn:oma:xml:xdm:common-policy"

_CP = f"{{{COMMON_POLICY}}}"
_PR = f"{{{PRES_RULES}}}"
_OCP = f"{{{OMA_COMMON_POLICY}}}"


def parse_rules(document):
    """
    @param document: the bytes of a pres-rules document (IETF or OMA usage).
    @return: its L{Ruleset}.
    @raise RulesError: when it is not one (see L{RulesError.reason}) or
        exceeds the limits (L{MAX_RULES}, L{MAX_CONDITIONS}).
    """
    root = parse_xml(document)
    if root.tag != _CP + "ruleset":
        raise RulesError("wrong-root", f"{root.tag} is not a common policy <ruleset>")
    elements = _elements(root)
    if len(elements) > MAX_RULES:
        raise RulesError("too-many-rules", f"{len(elements)} rules, at most {MAX_RULES}")
    conditions = sum(sum(1 for _ in element.iterdescendants())
                     for element in root.iterfind(f"{_CP}rule/{_CP}conditions"))
    if conditions > MAX_CONDITIONS:
        raise RulesError("too-many-conditions",
                         f"{conditions} condition elements, at most {MAX_CONDITIONS}")
    return Ruleset(tuple(_rule(element) for element in elements))


# Reading documents.



def _elements(parent):
    """The child elements of C{parent} (not its comments or processing instructions)."""
    return [child for child in parent if isinstance(child.tag, str)]


def _rule(element):
    if element.tag != _CP + "rule":
        raise RulesError("invalid", f"{element.tag} in a <ruleset>")
    conditions = []
    other_identity = False
    for child in _children(element, _CP + "conditions"):
        if child.tag == _OCP + "other-identity":
            other_identity = True
        else:
            conditions.append(_CONDITIONS.get(child.tag, _unknown)(child))
    sub_handlings = [SubHandling(_token(child, tuple(SubHandling)))
                     for child in _children(element, _CP + "actions")
                     if child.tag == _PR + "sub-handling"]
    transformations = functools.reduce(
        operator.or_, map(_transformation, _children(element, _CP + "transformations")),
        Transformations())
    return Rule(element.get("id", ""), tuple(conditions), other_identity,
                 max(sub_handlings, key=operator.attrgetter("rank"), default=None),
                 transformations)


def _children(rule, tag):
    """The child elements of the rule's C{tag} child, none when it has none."""
    part = rule.find(tag)
    return [] if part is None else _elements(part)


def _identity_condition(element):
    ones = {identity_key(one.get("id", "")) for one in element.iterfind(_CP + "one")}
    ones.discard(None)
    return IdentityCondition(frozenset(ones), tuple(map(_many, element.iterfind(_CP + "many"))))


def _many(element):
    exceptions = element.findall(_CP + "except")
    except_ids = {identity_key(exception.get("id")) for exception in exceptions
                  if exception.get("id") is not None}
    except_domains = {_lower(exception.get("domain")) for exception in exceptions
                      if exception.get("domain") is not None}
    return ManyCondition(_lower(element.get("domain")), frozenset(except_ids - {None}),
                 frozenset(except_domains))


def _sphere(element):
    return SphereCondition(frozenset(element.get("value", "").lower().split()))


def _validity(element):
    tags = [child.tag for child in _elements(element)]
    if tags != [_CP + "from", _CP + "until"] * (len(tags) // 2):
        raise RulesError("invalid", "a <validity> holds <from> and <until> pairs")
    times = [_time(child.text) for child in _elements(element)]
    return ValidityCondition(tuple(zip(times[::2], times[1::2])))


def _time(text):
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise RulesError("invalid", f"not a dateTime: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _external_list(element):
    return ExternalListCondition(tuple(entry.get("anc").strip()
                               for entry in element.iterfind(_OCP + "entry")
                               if entry.get("anc")))


def _anonymous_request(element):
    return AnonymousRequestCondition()


def _unknown(element):
    return UnknownCondition()


_CONDITIONS = {
    _CP + "identity": _identity_condition,
    _CP + "sphere": _sphere,
    _CP + "validity": _validity,
    _OCP + "external-list": _external_list,
    _OCP + "anonymous-request": _anonymous_request,
}


def _transformation(element):
    """The L{Transformations} that one transformation element grants."""
    tag = element.tag
    if tag in _COMPONENT_PERMISSIONS:
        return Transformations(**{_COMPONENT_PERMISSIONS[tag]: _selection(element)})
    if tag == _PR + "provide-all-attributes":
        return Transformations(all_attributes=True)
    if tag == _PR + "provide-user-input":
        return Transformations(user_input=_token(element, USER_INPUT_LEVELS))
    if tag == _PR + "provide-unknown-attribute":
        return _unknown_attribute(element)
    name = tag[len(_PR + "provide-"):] if tag.startswith(_PR + "provide-") else None
    if name in BOOLEAN_PERMISSIONS and _boolean(element):
        return Transformations(attributes=frozenset({name}))
    return Transformations()


#: The transformations that select data components, and the field of each.
_COMPONENT_PERMISSIONS = {_PR + "provide-services": "services",
                          _PR + "provide-persons": "persons",
                          _PR + "provide-devices": "devices"}

#: The children of those transformations, and the L{Selection} field each fills.
_SELECTORS = {_PR + "occurrence-id": "ids", _PR + "class": "classes",
              _PR + "service-uri": "uris", _PR + "service-uri-scheme": "schemes",
              _PR + "deviceID": "device_ids"}


def _selection(element):
    everything = _PR + "all-" + element.tag[len(_PR + "provide-"):]
    values = {field: set() for field in _SELECTORS.values()}
    for child in _elements(element):
        if child.tag == everything:
            return Selection(all=True)
        text = (child.text or "").strip()
        if child.tag in _SELECTORS and text:
            field = _SELECTORS[child.tag]
            values[field].add(_selector_value(field, text))
    return Selection(**{field: frozenset(found) for field, found in values.items()})


def _selector_value(field, text):
    """A value as it is compared: service URIs by L{uri_key}, schemes in lower case."""
    if field == "uris":
        return uri_key(text)
    return text.lower() if field == "schemes" else text


def _unknown_attribute(element):
    namespace, name = element.get("ns"), element.get("name")
    if namespace is None or name is None:
        raise RulesError("invalid", "<provide-unknown-attribute> needs ns and name")
    key = f"{{{namespace.strip()}}}{name.strip()}"
    # A permission for an attribute the server knows is ignored (RFC 5025 §3.3.2.14).
    if key in ATTRIBUTE_PERMISSIONS or not _boolean(element):
        return Transformations()
    return Transformations(unknown_attributes=frozenset({key}))


def _boolean(element):
    text = (element.text or "").strip()
    if text not in ("true", "false", "1", "0"):
        raise RulesError("invalid", f"<{etree.QName(element).localname}> is not a boolean")
    return text in ("true", "1")


def _token(element, allowed):
    text = (element.text or "").strip()
    if text not in allowed:
        raise RulesError("invalid", f"<{etree.QName(element).localname}> cannot be {text!r}")
    return text


def _lower(text):
    return None if text is None else text.strip().lower()
