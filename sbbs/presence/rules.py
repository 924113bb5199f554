"""
Presence authorization rules: which watchers may subscribe to a
presentity, and what of its presence each of them is sent.

A rules document is a common policy rule set (RFC 4745) with the actions
and transformations of RFC 5025 (the IETF C{pres-rules} usage) and, for
the OMA usage (C{org.openmobilealliance.pres-rules}), the conditions of
OMA XDM's common policy (C{urn:oma:xml:xdm:common-policy}):
C{<external-list>}, C{<anonymous-request>} and C{<other-identity>}.

The presence server reads a presentity's document once (L{parse_rules})
and keeps the L{Ruleset}: immutable, picklable and free of XML, so that
L{Ruleset.evaluate}, run for every SUBSCRIBE and every re-evaluation, only
compares strings and numbers.  Evaluation gives a L{Decision}: what is done
with the subscription (L{SubHandling}) and what the watcher may see
(L{Transformations}), which L{transform} applies to a PIDF document.  When
no rule matches it gives None, and the caller applies its configured
default policy (L{DEFAULT_DECISIONS}).

Evaluation (RFC 4745 §10): a rule matches when all its conditions hold (a
rule without conditions matches every request); the permissions of all
matching rules are combined, sub-handling by its highest value (block 0 <
confirm 10 < polite-block 20 < allow 30), the transformations by union
(booleans or'ed, sets united, provide-user-input by its fullest level).
The choices this module makes where the documents leave room:

- Privacy comes first: a condition this module does not know never holds,
  so its rule never matches (RFC 4745 §7); an action or transformation it
  does not know grants nothing; matching rules none of which has a
  C{<sub-handling>} give C{block}, the lowest value.
- Identities are compared as RFC 4745 §7.1 asks, as C{user@domain}: the
  scheme (C{sip:}, C{sips:}, C{pres:}...), a password, the port, the
  parameters and headers do not count; the user part is %-decoded and
  case-sensitive, the domain is not.  A URI without user part (C{tel:})
  is compared whole, in lower case, without its parameters.  C{<many
  domain>} and C{<except domain>} compare the domain exactly (no
  subdomains), case-insensitively.
- An anonymous request (C{anonymous=True}) has no identity: no C{<identity>}
  or C{<external-list>} matches it, only C{<anonymous-request>}.
- C{<other-identity>} holds when no identity condition (C{<identity>},
  C{<external-list>}, C{<anonymous-request>}) of any other rule holds for
  the request, whatever the other conditions of those rules.
- C{<sphere value>} is a list of tokens: the condition holds when the
  presentity's current sphere is one of them (case-insensitively); with no
  known sphere it never holds.
- A C{<validity>} period holds from its C{<from>} (included) to its
  C{<until>} (excluded); a time without time zone is UTC.

Limits: a document may hold at most L{MAX_RULES} rules and, in all their
C{<conditions>} together, at most L{MAX_CONDITIONS} elements (each
C{<one>}, C{<many>}, C{<except>}, list C{<entry>}, C{<from>}, C{<until>}
counts), so that a stored document cannot make every SUBSCRIBE expensive.
"""

import copy
import enum
import functools
import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from urllib.parse import unquote

from lxml import etree

from sbbs.xdms.errors import XcapConflict
from sbbs.xdms.safexml import parse_document
from slee.compact import Compact

COMMON_POLICY = "urn:ietf:params:xml:ns:common-policy"
PRES_RULES = "urn:ietf:params:xml:ns:pres-rules"
OMA_COMMON_POLICY = "urn:oma:xml:xdm:common-policy"
PIDF = "urn:ietf:params:xml:ns:pidf"
DATA_MODEL = "urn:ietf:params:xml:ns:pidf:data-model"
RPID = "urn:ietf:params:xml:ns:pidf:rpid"

#: The most rules a document may hold.
MAX_RULES = 256
#: The most elements all the rules' conditions may hold together.
MAX_CONDITIONS = 5000

_CP = f"{{{COMMON_POLICY}}}"
_PR = f"{{{PRES_RULES}}}"
_OCP = f"{{{OMA_COMMON_POLICY}}}"
_PIDF = f"{{{PIDF}}}"
_DM = f"{{{DATA_MODEL}}}"
_RPID = f"{{{RPID}}}"


class RulesError(ValueError):
    """
    A rules document this module cannot use, or a document given to
    L{transform} that is not PIDF.

    @ivar reason: C{not-utf-8}, C{not-well-formed}, C{wrong-root},
        C{too-many-rules}, C{too-many-conditions} or C{invalid} (a value or
        an element the schema does not allow there).
    @ivar detail: what is wrong, for humans.
    """

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self):
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


class SubHandling(enum.StrEnum):
    """
    What is done with a subscription (RFC 5025 §3.2.1).  A member is equal
    to its name in the document (C{SubHandling.ALLOW == "allow"}); they
    are ranked by L{rank}, not by their order as strings.
    """

    #: Rejected.
    BLOCK = "block"
    #: Pending until the presentity decides.
    CONFIRM = "confirm"
    #: Accepted, but the watcher is never told anything true.
    POLITE_BLOCK = "polite-block"
    #: Accepted, and sent what the transformations provide.
    ALLOW = "allow"

    @property
    def rank(self):
        """The value RFC 5025 gives it: combined, the highest one wins."""
        return _RANKS[self]


_RANKS = {SubHandling.BLOCK: 0, SubHandling.CONFIRM: 10, SubHandling.POLITE_BLOCK: 20,
          SubHandling.ALLOW: 30}

#: The levels of C{<provide-user-input>}, from the least provided.
USER_INPUT_LEVELS = ("false", "bare", "thresholds", "full")


@dataclass(frozen=True)
class Selection:
    """
    Which occurrences of one kind of data component (the tuples, the
    persons or the devices) a watcher is sent (RFC 5025 §3.3.1): all, or
    those matching one of the values listed.

    @ivar all: every occurrence.
    @ivar ids: occurrence ids (their C{id} attribute).
    @ivar classes: values of their RPID C{<class>}.
    @ivar uris: service URIs: the C{<contact>} of tuples (scheme in lower
        case, the rest as written).
    @ivar schemes: URI schemes of the C{<contact>} of tuples, in lower case.
    @ivar device_ids: the C{<deviceID>} of devices.
    """

    all: bool = False
    ids: frozenset = frozenset()
    classes: frozenset = frozenset()
    uris: frozenset = frozenset()
    schemes: frozenset = frozenset()
    device_ids: frozenset = frozenset()

    def __or__(self, other):
        return Selection(self.all or other.all, self.ids | other.ids,
                         self.classes | other.classes, self.uris | other.uris,
                         self.schemes | other.schemes, self.device_ids | other.device_ids)

    def selects(self, component):
        """Whether the C{<tuple>}, C{<person>} or C{<device>} element is provided."""
        if self.all or component.get("id") in self.ids:
            return True
        if _child_text(component, _RPID + "class") in self.classes:
            return True
        if _child_text(component, _DM + "deviceID") in self.device_ids:
            return True
        contact = _child_text(component, _PIDF + "contact")
        return contact is not None and (_uri_key(contact) in self.uris
                                        or _scheme(contact) in self.schemes)


@dataclass(frozen=True)
class Transformations:
    """
    What a watcher may be sent (RFC 5025 §3.3): which data components, and
    which presence attributes inside them.  The empty value (the default)
    provides nothing.

    @ivar services: the tuples provided.
    @ivar persons: the persons provided.
    @ivar devices: the devices provided.
    @ivar attributes: the boolean attribute permissions granted, named as
        the elements without C{provide-}: C{activities}, C{class},
        C{deviceID}, C{mood}, C{place-is}, C{place-type}, C{privacy},
        C{relationship}, C{sphere}, C{status-icon}, C{time-offset},
        C{note}.
    @ivar user_input: the level of C{<provide-user-input>}, one of
        L{USER_INPUT_LEVELS}.
    @ivar all_attributes: C{<provide-all-attributes>}: every attribute of the
        components provided, and every other child of C{<presence>}.
    @ivar unknown_attributes: elements granted by
        C{<provide-unknown-attribute>}, by Clark name (C{"{urn:x}foo"}).
    """

    services: Selection = Selection()
    persons: Selection = Selection()
    devices: Selection = Selection()
    attributes: frozenset = frozenset()
    user_input: str = "false"
    all_attributes: bool = False
    unknown_attributes: frozenset = frozenset()

    def __or__(self, other):
        return Transformations(
            self.services | other.services, self.persons | other.persons,
            self.devices | other.devices, self.attributes | other.attributes,
            max(self.user_input, other.user_input, key=USER_INPUT_LEVELS.index),
            self.all_attributes or other.all_attributes,
            self.unknown_attributes | other.unknown_attributes)


@dataclass(frozen=True)
class Decision(Compact):
    """What the rules decide for one watcher (stored with each subscription: compact)."""

    sub_handling: SubHandling
    transformations: Transformations = Transformations()

    def __hash__(self):
        # Kept once made: a decision keys the cache of transformed documents,
        # looked up for every watcher of every change.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.sub_handling, self.transformations))
            object.__setattr__(self, "_hash", cached)
        return cached


#: Everything provided: the document unchanged (but for its comments).
EVERYTHING = Transformations(services=Selection(all=True), persons=Selection(all=True),
                             devices=Selection(all=True), all_attributes=True)

#: The decision of each default policy the presence server can be
#: configured with, for a watcher no rule matches: only C{allow} provides
#: anything (everything).
DEFAULT_DECISIONS = MappingProxyType({
    "allow": Decision(SubHandling.ALLOW, EVERYTHING),
    "confirm": Decision(SubHandling.CONFIRM),
    "polite-block": Decision(SubHandling.POLITE_BLOCK),
    "block": Decision(SubHandling.BLOCK),
})


@dataclass(frozen=True)
class Ruleset:
    """A presentity's rules, as L{parse_rules} reads them."""

    rules: tuple

    def evaluate(self, watcher, now, *, anonymous=False, lists=None, sphere=None):
        """
        @param watcher: the watcher's authenticated identity, a URI
            (C{"sip:bob@example.com"}).
        @param now: the time, in seconds since the epoch (for C{<validity>}).
        @param anonymous: whether the request is anonymous: C{watcher} then
            does not count.
        @param lists: None (no C{<external-list>} holds), or a callable
            giving the member URIs of the list an C{<external-list>} entry
            names (its C{anc} URI, as written); an empty collection or None
            for a list it cannot resolve.  Each list is asked for at most
            once per evaluation.
        @param sphere: the presentity's current sphere (C{"work"}), or None
            when unknown (no C{<sphere>} condition holds).
        @return: the L{Decision} of the rules that match, or None when none
            does.
        """
        return self.decide(watcher, now, anonymous=anonymous, lists=lists, sphere=sphere)[0]

    def decide(self, watcher, now, *, anonymous=False, lists=None, sphere=None):
        """
        L{evaluate}, and why: @return: (the L{Decision} or None, the ids of
        the rules that matched), for the logs.
        """
        request = _Request(watcher, now, anonymous, lists, sphere)
        named = [False] * len(self.rules)
        if any(rule.other_identity for rule in self.rules):
            named = [rule.names(request) for rule in self.rules]
        naming = sum(named)
        matching = [rule for rule, names in zip(self.rules, named)
                    if rule.applies(request, named_by_others=naming - names > 0)]
        if not matching:
            return None, ()
        sub_handling = max((rule.sub_handling for rule in matching if rule.sub_handling),
                           key=operator.attrgetter("rank"), default=SubHandling.BLOCK)
        return Decision(sub_handling, functools.reduce(
            operator.or_, (rule.transformations for rule in matching))), \
            tuple(rule.id for rule in matching)


def parse_rules(document):
    """
    @param document: the bytes of a pres-rules document (IETF or OMA usage).
    @return: its L{Ruleset}.
    @raise RulesError: when it is not one (see L{RulesError.reason}) or
        exceeds the limits (L{MAX_RULES}, L{MAX_CONDITIONS}).
    """
    root = _parse(document)
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
    root = copy.deepcopy(pidf) if etree.iselement(pidf) else _parse(pidf)
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


# Evaluation.

@dataclass(frozen=True)
class _Rule:
    """
    @ivar conditions: the conditions that must all hold, but
        C{<other-identity>}, which is C{other_identity}.
    @ivar sub_handling: the rule's L{SubHandling}, None when it has none.
    """

    id: str
    conditions: tuple
    other_identity: bool
    sub_handling: SubHandling | None
    transformations: Transformations

    def names(self, request):
        """Whether one of its identity conditions holds: what C{<other-identity>} looks at."""
        return any(condition.identifies and condition.holds(request)
                   for condition in self.conditions)

    def applies(self, request, named_by_others):
        if self.other_identity and named_by_others:
            return False
        return all(condition.holds(request) for condition in self.conditions)


class _Request:
    """One evaluation: who asks, when, and the lists resolved so far."""

    def __init__(self, watcher, now, anonymous, lists, sphere):
        self.anonymous = anonymous
        self.identity = None if anonymous else _identity(watcher)
        self.domain = _domain(self.identity)
        self.now = now
        self.sphere = sphere.strip().lower() if sphere else None
        self._lists = lists
        self._members = {}

    def members(self, uri):
        """@return: the identities of the members of the list at C{uri}."""
        if self._lists is None:
            return frozenset()
        if uri not in self._members:
            identities = (_identity(member) for member in self._lists(uri) or ())
            self._members[uri] = frozenset(identity for identity in identities if identity)
        return self._members[uri]


@dataclass(frozen=True)
class _Identity:
    """C{<identity>}: one of its C{<one>} or C{<many>} names the watcher (RFC 4745 §7.1)."""

    ones: frozenset
    manys: tuple
    identifies = True

    def holds(self, request):
        if request.identity is None:
            return False
        return request.identity in self.ones or any(
            many.holds(request) for many in self.manys)


@dataclass(frozen=True)
class _Many:
    """C{<many>}: everyone authenticated, or of a domain, but its C{<except>}s."""

    domain: str | None
    except_ids: frozenset
    except_domains: frozenset

    def holds(self, request):
        if self.domain is not None and request.domain != self.domain:
            return False
        return (request.identity not in self.except_ids
                and request.domain not in self.except_domains)


@dataclass(frozen=True)
class _Sphere:
    """C{<sphere>}: the presentity is in one of these spheres (RFC 4745 §7.2)."""

    values: frozenset
    identifies = False

    def holds(self, request):
        return request.sphere in self.values


@dataclass(frozen=True)
class _Validity:
    """C{<validity>}: now is in one of the periods, (from, until) epoch seconds."""

    periods: tuple
    identifies = False

    def holds(self, request):
        return any(start <= request.now < end for start, end in self.periods)


@dataclass(frozen=True)
class _ExternalList:
    """OMA C{<external-list>}: the watcher is on one of the lists at these URIs."""

    uris: tuple
    identifies = True

    def holds(self, request):
        return request.identity is not None and any(
            request.identity in request.members(uri) for uri in self.uris)


@dataclass(frozen=True)
class _AnonymousRequest:
    """OMA C{<anonymous-request>}: the request is anonymous."""

    identifies = True

    def holds(self, request):
        return request.anonymous


@dataclass(frozen=True)
class _Unknown:
    """A condition this module does not know: it never holds (RFC 4745 §7)."""

    identifies = False

    def holds(self, request):
        return False


# Reading documents.

def _parse(document):
    try:
        return parse_document(document)
    except XcapConflict as conflict:
        raise RulesError(conflict.condition, conflict.phrase or "") from None


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
    return _Rule(element.get("id", ""), tuple(conditions), other_identity,
                 max(sub_handlings, key=operator.attrgetter("rank"), default=None),
                 transformations)


def _children(rule, tag):
    """The child elements of the rule's C{tag} child, none when it has none."""
    part = rule.find(tag)
    return [] if part is None else _elements(part)


def _identity_condition(element):
    ones = {_identity(one.get("id", "")) for one in element.iterfind(_CP + "one")}
    ones.discard(None)
    return _Identity(frozenset(ones), tuple(map(_many, element.iterfind(_CP + "many"))))


def _many(element):
    exceptions = element.findall(_CP + "except")
    except_ids = {_identity(exception.get("id")) for exception in exceptions
                  if exception.get("id") is not None}
    except_domains = {_lower(exception.get("domain")) for exception in exceptions
                      if exception.get("domain") is not None}
    return _Many(_lower(element.get("domain")), frozenset(except_ids - {None}),
                 frozenset(except_domains))


def _sphere(element):
    return _Sphere(frozenset(element.get("value", "").lower().split()))


def _validity(element):
    tags = [child.tag for child in _elements(element)]
    if tags != [_CP + "from", _CP + "until"] * (len(tags) // 2):
        raise RulesError("invalid", "a <validity> holds <from> and <until> pairs")
    times = [_time(child.text) for child in _elements(element)]
    return _Validity(tuple(zip(times[::2], times[1::2])))


def _time(text):
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise RulesError("invalid", f"not a dateTime: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _external_list(element):
    return _ExternalList(tuple(entry.get("anc").strip()
                               for entry in element.iterfind(_OCP + "entry")
                               if entry.get("anc")))


def _anonymous_request(element):
    return _AnonymousRequest()


def _unknown(element):
    return _Unknown()


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
    if name in _BOOLEAN_PERMISSIONS and _boolean(element):
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
    """A value as it is compared: service URIs by L{_uri_key}, schemes in lower case."""
    if field == "uris":
        return _uri_key(text)
    return text.lower() if field == "schemes" else text


def _unknown_attribute(element):
    namespace, name = element.get("ns"), element.get("name")
    if namespace is None or name is None:
        raise RulesError("invalid", "<provide-unknown-attribute> needs ns and name")
    key = f"{{{namespace.strip()}}}{name.strip()}"
    # A permission for an attribute the server knows is ignored (RFC 5025 §3.3.2.14).
    if key in _ATTRIBUTE_PERMISSIONS or not _boolean(element):
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


# Identities.

def _identity(uri):
    """
    The identity a URI names, compared as the module docstring says:
    C{"bob@example.com"} for C{"sip:bob@Example.COM:5060;transport=tcp"},
    C{"tel:+15551234"} for C{"tel:+15551234;phone-context=x"}.  None for
    what is not a URI.
    """
    text = uri.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    scheme, colon, rest = text.partition(":")
    if not colon or not scheme or not rest:
        return None
    user, at, host = rest.partition("@")
    if not at:
        return f"{scheme.lower()}:{_without_parameters(rest).lower()}"
    return f"{unquote(user.partition(':')[0])}@{_host(host)}"


def _domain(identity):
    if identity is None or "@" not in identity:
        return None
    return identity.rpartition("@")[2]


def _host(hostport):
    host = _without_parameters(hostport)
    if host.startswith("["):
        return host.partition("]")[0].lower() + "]"
    return host.partition(":")[0].lower()


def _without_parameters(text):
    return text.split(";", 1)[0].split("?", 1)[0].strip()


def _uri_key(uri):
    """A URI as service URIs are compared: scheme in lower case, the rest as written."""
    scheme, colon, rest = uri.strip().partition(":")
    return f"{scheme.lower()}{colon}{rest}"


def _scheme(uri):
    scheme, colon, _ = uri.strip().partition(":")
    return scheme.lower() if colon else None


# Applying transformations.

#: The presence attributes RFC 5025 §3.3.2 has a permission for, and the
#: permission (its element's name without C{provide-}).
_ATTRIBUTE_PERMISSIONS = {
    _RPID + "activities": "activities",
    _RPID + "class": "class",
    _DM + "deviceID": "deviceID",
    _RPID + "mood": "mood",
    _RPID + "place-is": "place-is",
    _RPID + "place-type": "place-type",
    _RPID + "privacy": "privacy",
    _RPID + "relationship": "relationship",
    _RPID + "sphere": "sphere",
    _RPID + "status-icon": "status-icon",
    _RPID + "time-offset": "time-offset",
    _RPID + "user-input": "user-input",
    _PIDF + "note": "note",
    _DM + "note": "note",
}

#: The permissions that are booleans (provide-user-input has levels).
_BOOLEAN_PERMISSIONS = frozenset(_ATTRIBUTE_PERMISSIONS.values()) - {"user-input"}

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
    permission = _ATTRIBUTE_PERMISSIONS.get(element.tag)
    if permission == "user-input":
        return granted.user_input != "false"
    if permission is not None:
        return permission in granted.attributes
    return element.tag in granted.unknown_attributes


def _trim_user_input(element, level):
    for name in ("idle-threshold", "last-input"):
        if name not in _USER_INPUT_ATTRIBUTES[level]:
            element.attrib.pop(name, None)


def _child_text(element, tag):
    child = element.find(tag)
    return None if child is None or child.text is None else child.text.strip()
