"""
Presence authorization rules: which watchers may subscribe to a
presentity, and what of its presence each of them is sent.

A rules document is a common policy rule set (RFC 4745) with the actions
and transformations of RFC 5025 (the IETF C{pres-rules} usage) and, for
the OMA usage (C{org.openmobilealliance.pres-rules}), the conditions of
OMA XDM's common policy (C{urn:oma:xml:xdm:common-policy}):
C{<external-list>}, C{<anonymous-request>} and C{<other-identity>}.

The presence server reads a presentity's document once
(L{sbbs.presence.rules_reader.parse_rules})
and keeps the L{Ruleset}: immutable, picklable and free of XML, so that
L{Ruleset.evaluate}, run for every SUBSCRIBE and every re-evaluation, only
compares strings and numbers.  Evaluation gives a L{Decision}: what is done
with the subscription (L{SubHandling}) and what the watcher may see
(L{Transformations}), which L{sbbs.presence.filtering.transform} applies
to a PIDF document.  When
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

The document is read by L{sbbs.presence.rules_reader}; a decision is
applied to a PIDF document by L{sbbs.presence.filtering}.
"""

import enum
import functools
import operator
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

from sbbs.xml.namespaces import DATA_MODEL, PIDF, RPID
from sbbs.xml.safe import BadXml, parse_document
from slee.compact import Compact

_PIDF = f"{{{PIDF}}}"
_DM = f"{{{DATA_MODEL}}}"
_RPID = f"{{{RPID}}}"

#: The presence attributes RFC 5025 §3.3.2 has a permission for, and the
#: permission (its element's name without C{provide-}).
ATTRIBUTE_PERMISSIONS = {
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
BOOLEAN_PERMISSIONS = frozenset(ATTRIBUTE_PERMISSIONS.values()) - {"user-input"}


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
        if child_text(component, _RPID + "class") in self.classes:
            return True
        if child_text(component, _DM + "deviceID") in self.device_ids:
            return True
        contact = child_text(component, _PIDF + "contact")
        return contact is not None and (uri_key(contact) in self.uris
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


# Evaluation.

@dataclass(frozen=True)
class Rule:
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
        self.identity = None if anonymous else identity_key(watcher)
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
            identities = (identity_key(member) for member in self._lists(uri) or ())
            self._members[uri] = frozenset(identity for identity in identities if identity)
        return self._members[uri]


@dataclass(frozen=True)
class IdentityCondition:
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
class ManyCondition:
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
class SphereCondition:
    """C{<sphere>}: the presentity is in one of these spheres (RFC 4745 §7.2)."""

    values: frozenset
    identifies = False

    def holds(self, request):
        return request.sphere in self.values


@dataclass(frozen=True)
class ValidityCondition:
    """C{<validity>}: now is in one of the periods, (from, until) epoch seconds."""

    periods: tuple
    identifies = False

    def holds(self, request):
        return any(start <= request.now < end for start, end in self.periods)


@dataclass(frozen=True)
class ExternalListCondition:
    """OMA C{<external-list>}: the watcher is on one of the lists at these URIs."""

    uris: tuple
    identifies = True

    def holds(self, request):
        return request.identity is not None and any(
            request.identity in request.members(uri) for uri in self.uris)


@dataclass(frozen=True)
class AnonymousRequestCondition:
    """OMA C{<anonymous-request>}: the request is anonymous."""

    identifies = True

    def holds(self, request):
        return request.anonymous


@dataclass(frozen=True)
class UnknownCondition:
    """A condition this module does not know: it never holds (RFC 4745 §7)."""

    identifies = False

    def holds(self, request):
        return False


# Identities.

def identity_key(uri):
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


def uri_key(uri):
    """A URI as service URIs are compared: scheme in lower case, the rest as written."""
    scheme, colon, rest = uri.strip().partition(":")
    return f"{scheme.lower()}{colon}{rest}"


def _scheme(uri):
    scheme, colon, _ = uri.strip().partition(":")
    return scheme.lower() if colon else None


# Reading XML.

def parse_xml(document):
    """
    @return: the root element of C{document} (bytes), parsed safely.
    @raise RulesError: C{not-utf-8} or C{not-well-formed}.
    """
    try:
        return parse_document(document)
    except BadXml as conflict:
        raise RulesError(conflict.condition, conflict.phrase or "") from None


def child_text(element, tag):
    """@return: the stripped text of C{element}'s first C{tag} child, or None."""
    child = element.find(tag)
    return None if child is None or child.text is None else child.text.strip()
