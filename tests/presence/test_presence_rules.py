"""
Presence authorization rules (sbbs/presence/rules.py, rules_reader.py, filtering.py): which rules match a
watcher (RFC 4745 conditions, OMA's extensions), how the permissions of
several are combined, and what a watcher is sent of a PIDF document
(RFC 5025 §3.3).
"""

import pickle
from datetime import datetime, timezone

import pytest
from lxml import etree

from sbbs.presence.filtering import transform
from sbbs.presence.rules import (
    DEFAULT_DECISIONS, EVERYTHING, Decision, RulesError, Selection, SubHandling,
    Transformations)
from sbbs.presence.rules_reader import MAX_CONDITIONS, MAX_RULES, parse_rules
from sbbs.xdms.appusage import PRES_RULES_SCHEMA, xml_schema

CP = "urn:ietf:params:xml:ns:common-policy"
PR = "urn:ietf:params:xml:ns:pres-rules"
OCP = "urn:oma:xml:xdm:common-policy"
PIDF = "urn:ietf:params:xml:ns:pidf"
DM = "urn:ietf:params:xml:ns:pidf:data-model"
RPID = "urn:ietf:params:xml:ns:pidf:rpid"
CIPID = "urn:ietf:params:xml:ns:pidf:cipid"
NS = {"p": PIDF, "dm": DM, "rpid": RPID, "c": CIPID}

NOW = datetime(2024, 6, 1, 12, tzinfo=timezone.utc).timestamp()
ALICE = "sip:alice@example.com"
LISTS = "http://xcap.example.com/xcap-root/resource-lists/users/sip:alice@example.com/index/~~"
FRIENDS = LISTS + '/resource-lists/list%5b@name=%22friends%22%5d'
BLOCKED = LISTS + '/resource-lists/list%5b@name=%22oma_blockedcontacts%22%5d'


def ruleset(*rules):
    """A pres-rules document of C{rules}, each (id, conditions, actions, transformations) XML."""
    body = "".join(
        f'<cr:rule id="{rule_id}"><cr:conditions>{conditions}</cr:conditions>'
        f'<cr:actions>{actions}</cr:actions>'
        f'<cr:transformations>{transformations}</cr:transformations></cr:rule>'
        for rule_id, conditions, actions, transformations in rules)
    document = (f'<?xml version="1.0" encoding="UTF-8"?>'
                f'<cr:ruleset xmlns:cr="{CP}" xmlns:pr="{PR}" xmlns:ocp="{OCP}">{body}'
                f'</cr:ruleset>').encode()
    PRES_RULES_SCHEMA.assertValid(etree.fromstring(document))
    return document


def handling(value):
    return f"<pr:sub-handling>{value}</pr:sub-handling>"


def rules_of(*rules):
    return parse_rules(ruleset(*rules))


def sub_handling_of(rules, watcher, **kwargs):
    decision = rules.evaluate(watcher, NOW, **kwargs)
    return None if decision is None else decision.sub_handling


# Conditions.

IDENTITIES = rules_of(
    ("bob", '<cr:identity><cr:one id="sip:bob@example.com"/>'
            '<cr:one id="tel:+15551234"/></cr:identity>', handling("allow"), ""),
    ("partners", '<cr:identity><cr:many domain="partner.example.org">'
                 '<cr:except id="sip:mallory@partner.example.org"/></cr:many></cr:identity>',
     handling("confirm"), ""),
    ("others", '<cr:identity><cr:many><cr:except domain="example.com"/>'
               '<cr:except domain="partner.example.org"/></cr:many></cr:identity>',
     handling("polite-block"), ""))


@pytest.mark.parametrize("watcher, expected", [
    ("sip:bob@example.com", "allow"),
    # RFC 4745 §7.1: user@domain; the scheme, port and parameters do not
    # count, the domain is case-insensitive, the user part is not.
    ("sips:bob@EXAMPLE.com:5061;transport=tls", "allow"),
    ("<sip:b%6fb@example.com>", "allow"),
    ("sip:Bob@example.com", None),
    ("tel:+15551234;phone-context=example.com", "allow"),
    ("sip:carol@partner.example.org", "confirm"),
    ("sip:carol@PARTNER.example.org", "confirm"),
    ("sip:mallory@partner.example.org", None),          # excepted by id
    ("sip:carol@sub.partner.example.org", "polite-block"),  # no subdomains
    ("sip:dave@elsewhere.net", "polite-block"),
    ("sip:eve@example.com", None),                      # excepted by domain
])
def test_identity_one_many_except(watcher, expected):
    assert sub_handling_of(IDENTITIES, watcher) == expected


def test_identity_conditions_never_match_an_anonymous_request():
    assert sub_handling_of(IDENTITIES, "sip:bob@example.com", anonymous=True) is None
    assert sub_handling_of(IDENTITIES, "not a uri") is None


def test_a_rule_without_conditions_matches_every_request():
    rules = rules_of(("everyone", "", handling("confirm"), ""))
    assert sub_handling_of(rules, "sip:anyone@anywhere.net") == "confirm"
    assert sub_handling_of(rules, "sip:anonymous@anonymous.invalid", anonymous=True) == "confirm"


def test_sphere():
    rules = rules_of(("colleagues", '<cr:sphere value="work  Meeting"/>', handling("allow"), ""))
    assert sub_handling_of(rules, ALICE, sphere="work") == "allow"
    assert sub_handling_of(rules, ALICE, sphere="meeting") == "allow"
    assert sub_handling_of(rules, ALICE, sphere="home") is None
    assert sub_handling_of(rules, ALICE) is None           # sphere unknown


def test_validity_periods():
    rules = rules_of(("holidays", '<cr:validity>'
                      '<cr:from>2024-06-01T08:00:00-04:00</cr:from>'
                      '<cr:until>2024-06-02T00:00:00Z</cr:until>'
                      '<cr:from>2024-07-01T00:00:00.000</cr:from>'
                      '<cr:until>2024-07-02T00:00:00</cr:until></cr:validity>',
                      handling("allow"), ""))

    def at(text):
        return rules.evaluate(ALICE, datetime.fromisoformat(text).timestamp())

    assert at("2024-06-01T12:00:00+00:00") is not None     # from is 12:00 UTC, included
    assert at("2024-06-01T11:59:59+00:00") is None
    assert at("2024-06-02T00:00:00+00:00") is None         # until excluded
    assert at("2024-07-01T00:00:00+00:00") is not None     # no time zone: UTC
    assert at("2024-07-01T23:59:59+00:00") is not None
    assert at("2024-08-01T00:00:00+00:00") is None


def test_conditions_of_a_rule_must_all_hold():
    rules = rules_of(("bob-at-work", '<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>'
                      '<cr:sphere value="work"/>', handling("allow"), ""))
    assert sub_handling_of(rules, "sip:bob@example.com", sphere="work") == "allow"
    assert sub_handling_of(rules, "sip:bob@example.com", sphere="home") is None
    assert sub_handling_of(rules, "sip:carol@example.com", sphere="work") is None


def test_an_unknown_condition_never_holds():
    document = ruleset(("odd", '<x:weather xmlns:x="urn:example:weather">sunny</x:weather>',
                        handling("allow"), ""))
    assert parse_rules(document).evaluate(ALICE, NOW) is None


def test_anonymous_request():
    rules = rules_of(("wp_prs_block_anonymous", "<ocp:anonymous-request/>", handling("block"), ""),
                     ("everyone", "<cr:identity><cr:many/></cr:identity>", handling("confirm"), ""))
    assert sub_handling_of(rules, "sip:anonymous@anonymous.invalid", anonymous=True) == "block"
    assert sub_handling_of(rules, "sip:bob@example.com") == "confirm"


def test_external_list_with_a_resolver():
    members = {FRIENDS: {"sip:bob@example.com", "sip:carol@example.net;transport=tcp"},
               BLOCKED: ["sip:mallory@example.org"]}
    asked = []

    def lists(uri):
        asked.append(uri)
        return members.get(uri)

    rules = rules_of(
        ("wp_prs_grantedcontacts", f'<ocp:external-list><ocp:entry anc="{FRIENDS}"/>'
                                   f'<ocp:entry anc="{LISTS}/unknown"/></ocp:external-list>',
         handling("allow"), ""),
        ("wp_prs_blockedcontacts", f'<ocp:external-list><ocp:entry anc="{BLOCKED}"/>'
                                   f'</ocp:external-list>', handling("block"), ""))
    assert sub_handling_of(rules, "sip:carol@EXAMPLE.net", lists=lists) == "allow"
    assert sorted(asked) == sorted([FRIENDS, BLOCKED])     # each list asked once
    assert sub_handling_of(rules, "sip:mallory@example.org", lists=lists) == "block"
    assert sub_handling_of(rules, "sip:dave@example.com", lists=lists) is None
    # Without a resolver, or for an anonymous request, no list matches.
    assert sub_handling_of(rules, "sip:bob@example.com") is None
    assert sub_handling_of(rules, "sip:bob@example.com", anonymous=True, lists=lists) is None


def test_other_identity_applies_when_no_other_rule_names_the_watcher():
    lists = {FRIENDS: {"sip:carol@example.com"}}.get
    rules = rules_of(
        ("wp_prs_allow_own", f'<cr:identity><cr:one id="{ALICE}"/></cr:identity>',
         handling("allow"), ""),
        # Bob is named only at work: elsewhere he is still not an "other" identity.
        ("bob-at-work", '<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>'
                        '<cr:sphere value="work"/>', handling("allow"), ""),
        ("wp_prs_grantedcontacts", f'<ocp:external-list><ocp:entry anc="{FRIENDS}"/>'
                                   f'</ocp:external-list>', handling("allow"), ""),
        ("wp_prs_block_anonymous", "<ocp:anonymous-request/>", handling("block"), ""),
        ("wp_prs_unlisted", "<ocp:other-identity/>", handling("confirm"), ""))
    assert sub_handling_of(rules, "sip:dave@example.com", lists=lists) == "confirm"
    assert sub_handling_of(rules, ALICE, lists=lists) == "allow"
    assert sub_handling_of(rules, "sip:carol@example.com", lists=lists) == "allow"
    assert sub_handling_of(rules, "sip:bob@example.com", lists=lists, sphere="home") is None
    assert sub_handling_of(rules, "sip:x@y.z", anonymous=True, lists=lists) == "block"
    # Without the resolver Carol is nobody the rules name.
    assert sub_handling_of(rules, "sip:carol@example.com") == "confirm"


# Combining (RFC 4745 §10).

@pytest.mark.parametrize("values, expected", [
    (("block",), "block"),
    (("confirm",), "confirm"),
    (("polite-block",), "polite-block"),
    (("allow",), "allow"),
    (("block", "confirm"), "confirm"),
    (("allow", "polite-block", "confirm"), "allow"),
    (("confirm", "polite-block", "block"), "polite-block"),
    ((None,), "block"),          # matching rules without sub-handling: the lowest
    ((None, "confirm"), "confirm"),
])
def test_sub_handling_of_matching_rules_combine_to_the_highest(values, expected):
    rules = rules_of(*((f"r{index}", "", handling(value) if value else "", "")
                       for index, value in enumerate(values)))
    decision = rules.evaluate(ALICE, NOW)
    assert decision.sub_handling == expected and decision.sub_handling is SubHandling(expected)


def test_transformations_of_matching_rules_are_united():
    rules = rules_of(
        ("friends", "<cr:identity><cr:many/></cr:identity>", handling("confirm"),
         "<pr:provide-services><pr:service-uri-scheme>SIP</pr:service-uri-scheme>"
         "</pr:provide-services><pr:provide-activities>true</pr:provide-activities>"
         "<pr:provide-mood>false</pr:provide-mood>"
         "<pr:provide-user-input>thresholds</pr:provide-user-input>"),
        ("bob", '<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>',
         handling("allow"),
         "<pr:provide-services><pr:class>work</pr:class><pr:occurrence-id>mail</pr:occurrence-id>"
         "</pr:provide-services><pr:provide-persons><pr:all-persons/></pr:provide-persons>"
         "<pr:provide-user-input>bare</pr:provide-user-input>"
         '<pr:provide-unknown-attribute ns="urn:example:x" name="foo">true'
         "</pr:provide-unknown-attribute>"),
        ("never", "<cr:validity><cr:from>2000-01-01T00:00:00Z</cr:from>"
                  "<cr:until>2000-01-02T00:00:00Z</cr:until></cr:validity>", handling("allow"),
         "<pr:provide-all-attributes/>"))
    assert rules.evaluate("sip:bob@example.com", NOW) == Decision(
        SubHandling.ALLOW, Transformations(
            services=Selection(schemes=frozenset({"sip"}), classes=frozenset({"work"}),
                               ids=frozenset({"mail"})),
            persons=Selection(all=True), attributes=frozenset({"activities"}),
            user_input="thresholds", unknown_attributes=frozenset({"{urn:example:x}foo"})))
    assert rules.evaluate("sip:carol@example.com", NOW).transformations.persons == Selection()


def test_a_ruleset_is_a_picklable_value():
    rules = IDENTITIES
    copied = pickle.loads(pickle.dumps(rules))
    assert copied == rules
    decision = copied.evaluate("sip:bob@example.com", NOW)
    assert pickle.loads(pickle.dumps(decision)) == decision
    with pytest.raises(AttributeError):
        rules.rules = ()
    assert parse_rules(ruleset()).evaluate(ALICE, NOW) is None


def test_default_decisions():
    assert set(DEFAULT_DECISIONS) == {"allow", "confirm", "polite-block", "block"}
    for name, decision in DEFAULT_DECISIONS.items():
        assert decision.sub_handling == name
    assert DEFAULT_DECISIONS["allow"].transformations == EVERYTHING
    assert DEFAULT_DECISIONS["confirm"].transformations == Transformations()


# Transformations applied to a document (RFC 5025 §3.3).

PRESENCE = f"""<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="{PIDF}" xmlns:dm="{DM}" xmlns:rpid="{RPID}" xmlns:c="{CIPID}"
          entity="pres:alice@example.com">
  <tuple id="phone">
    <status><basic>open</basic></status>
    <rpid:class>work</rpid:class>
    <rpid:user-input idle-threshold="600" last-input="2024-06-01T11:50:00Z">idle</rpid:user-input>
    <dm:deviceID>urn:uuid:d27459b7-8213-4395-aa77-ed859a3e5b3a</dm:deviceID>
    <contact priority="0.8">sip:alice@pc33.example.com</contact>
    <note>Call me</note>
    <timestamp>2024-06-01T11:55:00Z</timestamp>
  </tuple>
  <tuple id="mail">
    <status><basic>open</basic></status>
    <rpid:class>home</rpid:class>
    <contact>mailto:alice@example.com</contact>
  </tuple>
  <note>Alice</note>
  <dm:person id="alice">
    <rpid:activities><rpid:meeting/></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood>
    <rpid:place-type><rpid:office/></rpid:place-type>
    <c:homepage>http://alice.example.com/</c:homepage>
    <!-- drafted by hand -->
    <dm:note>In a meeting until noon</dm:note>
    <dm:timestamp>2024-06-01T11:00:00Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc33">
    <rpid:class>work</rpid:class>
    <dm:deviceID>urn:uuid:d27459b7-8213-4395-aa77-ed859a3e5b3a</dm:deviceID>
    <dm:note>Office PC</dm:note>
  </dm:device>
</presence>""".encode()

PIDF_SCHEMA = xml_schema("pidf.xsd")


def sent(transformations, sub_handling=SubHandling.ALLOW, document=PRESENCE):
    """The document sent, checked to be PIDF, as its root element."""
    root = etree.fromstring(transform(document, Decision(sub_handling, transformations)))
    PIDF_SCHEMA.assertValid(root)
    assert root.get("entity") == "pres:alice@example.com"
    return root


def ids(root):
    return [element.get("id") for element in root if element.get("id")]


def names(element):
    return [etree.QName(child).localname for child in element if isinstance(child.tag, str)]


def test_services_are_selected_by_uri_scheme_class_or_occurrence():
    def services(**selection):
        return ids(sent(Transformations(services=Selection(**selection))))

    assert services(all=True) == ["phone", "mail"]
    assert services(uris=frozenset({"sip:alice@pc33.example.com"})) == ["phone"]
    assert services(schemes=frozenset({"mailto"})) == ["mail"]
    assert services(classes=frozenset({"work"})) == ["phone"]
    assert services(ids=frozenset({"mail"})) == ["mail"]
    assert services(ids=frozenset({"pc33"})) == []


def test_persons_and_devices_are_selected():
    device_id = "urn:uuid:d27459b7-8213-4395-aa77-ed859a3e5b3a"
    assert ids(sent(Transformations(persons=Selection(all=True)))) == ["alice"]
    assert ids(sent(Transformations(persons=Selection(classes=frozenset({"work"}))))) == []
    assert ids(sent(Transformations(devices=Selection(device_ids=frozenset({device_id}))))) \
        == ["pc33"]
    assert ids(sent(Transformations(devices=Selection(classes=frozenset({"work"}))))) == ["pc33"]
    assert ids(sent(Transformations(devices=Selection(ids=frozenset({"alice"}))))) == []


ALL_COMPONENTS = Transformations(services=Selection(all=True), persons=Selection(all=True),
                                 devices=Selection(all=True))


def test_components_keep_only_what_is_always_sent_without_attribute_permissions():
    root = sent(ALL_COMPONENTS)
    phone, mail, person, device = root
    assert names(phone) == ["status", "contact", "timestamp"]
    assert names(phone.find("p:status", NS)) == ["basic"]
    assert phone.find("p:contact", NS).get("priority") == "0.8"
    assert names(mail) == ["status", "contact"]
    assert names(person) == ["timestamp"]
    assert names(device) == ["deviceID"]
    assert root.find("p:note", NS) is None                  # the document's note too
    # Unused namespace declarations go with what used them.
    assert set(root.nsmap) == {None, "dm"}


def test_attribute_permissions():
    root = sent(ALL_COMPONENTS | Transformations(
        attributes=frozenset({"activities", "place-type", "note", "class"}),
        unknown_attributes=frozenset({f"{{{CIPID}}}homepage"})))
    phone, mail, note, person, device = root
    assert names(phone) == ["status", "class", "contact", "note", "timestamp"]
    assert names(mail) == ["status", "class", "contact"]
    assert note.text == "Alice"
    assert names(person) == ["activities", "place-type", "homepage", "note", "timestamp"]
    assert names(device) == ["class", "deviceID", "note"]
    assert root.xpath("//comment()") == []


def test_device_id_of_a_tuple_needs_its_permission():
    phone = sent(Transformations(services=Selection(ids=frozenset({"phone"})),
                                 attributes=frozenset({"deviceID"})))[0]
    assert names(phone) == ["status", "deviceID", "contact", "timestamp"]


@pytest.mark.parametrize("level, attributes", [
    ("false", None),
    ("bare", {}),
    ("thresholds", {"idle-threshold": "600"}),
    ("full", {"idle-threshold": "600", "last-input": "2024-06-01T11:50:00Z"}),
])
def test_user_input_levels(level, attributes):
    phone = sent(Transformations(services=Selection(all=True), user_input=level))[0]
    user_input = phone.find("rpid:user-input", NS)
    if attributes is None:
        assert user_input is None
    else:
        assert user_input.text == "idle" and dict(user_input.attrib) == attributes


def test_provide_all_attributes_keeps_every_attribute_of_the_components_provided():
    root = sent(Transformations(services=Selection(classes=frozenset({"work"})),
                                persons=Selection(all=True), all_attributes=True))
    expected = etree.fromstring(PRESENCE)
    for removed in ("p:tuple[@id='mail']", "dm:device"):
        expected.remove(expected.find(removed, NS))
    phone, note, person = root
    assert etree.tostring(phone) == etree.tostring(expected[0])
    assert note.text == "Alice"
    assert [child.tag for child in person] == [
        child.tag for child in expected.find("dm:person", NS) if isinstance(child.tag, str)]


def test_everything_is_the_document_without_its_comments():
    root = sent(EVERYTHING)
    expected = etree.fromstring(PRESENCE)
    for comment in expected.xpath("//comment()"):
        comment.getparent().remove(comment)
    assert etree.tostring(root) == etree.tostring(expected)


@pytest.mark.parametrize("decision", [
    Decision(SubHandling.ALLOW),                        # no transformations: nothing
    Decision(SubHandling.POLITE_BLOCK, EVERYTHING),
    Decision(SubHandling.CONFIRM, EVERYTHING),
    Decision(SubHandling.BLOCK, EVERYTHING),
])
def test_nothing_provided_is_an_empty_presence_document(decision):
    root = sent(decision.transformations, decision.sub_handling)
    assert etree.QName(root).localname == "presence" and len(root) == 0


def test_transform_leaves_a_given_element_unchanged():
    original = etree.fromstring(PRESENCE)
    before = etree.tostring(original)
    transform(original, Decision(SubHandling.ALLOW))
    assert etree.tostring(original) == before


def test_rules_evaluated_then_applied():
    rules = rules_of(("bob", '<cr:identity><cr:one id="sip:bob@example.com"/></cr:identity>',
                      handling("allow"),
                      "<pr:provide-services><pr:service-uri>sip:alice@pc33.example.com"
                      "</pr:service-uri></pr:provide-services>"
                      "<pr:provide-persons><pr:occurrence-id>alice</pr:occurrence-id>"
                      "</pr:provide-persons><pr:provide-mood>true</pr:provide-mood>"
                      # A permission for a known attribute is not an unknown one.
                      f'<pr:provide-unknown-attribute ns="{RPID}" name="activities">true'
                      "</pr:provide-unknown-attribute>"))
    root = sent(rules.evaluate("sip:bob@example.com", NOW).transformations)
    assert ids(root) == ["phone", "alice"]
    assert names(root[1]) == ["mood", "timestamp"]


def test_transform_refuses_what_is_not_pidf():
    with pytest.raises(RulesError) as raised:
        transform(b"<presence/>", DEFAULT_DECISIONS["allow"])
    assert raised.value.reason == "wrong-root"
    with pytest.raises(RulesError) as raised:
        transform(b"<presence", DEFAULT_DECISIONS["allow"])
    assert raised.value.reason == "not-well-formed"


# Bad documents.

def reason_of(document):
    with pytest.raises(RulesError) as raised:
        parse_rules(document)
    assert isinstance(raised.value, ValueError) and str(raised.value)
    return raised.value.reason


@pytest.mark.parametrize("document, reason", [
    (b"", "not-well-formed"),
    (b"<cr:ruleset xmlns:cr='" + CP.encode() + b"'>", "not-well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>', "not-well-formed"),
    ("<ruleset>\u00e9</ruleset>".encode("latin-1"), "not-utf-8"),
    (b"<ruleset/>", "wrong-root"),
    ('<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"/>'.encode(), "wrong-root"),
    (f'<ruleset xmlns="{CP}"><other/></ruleset>'.encode(), "invalid"),
    (f'<ruleset xmlns="{CP}" xmlns:pr="{PR}"><rule id="a"><actions>'
     f'<pr:sub-handling>maybe</pr:sub-handling></actions></rule></ruleset>'.encode(), "invalid"),
    (f'<ruleset xmlns="{CP}" xmlns:pr="{PR}"><rule id="a"><transformations>'
     f'<pr:provide-mood>yes</pr:provide-mood></transformations></rule></ruleset>'.encode(),
     "invalid"),
    (f'<ruleset xmlns="{CP}"><rule id="a"><conditions><validity><from>tomorrow</from>'
     f'<until>2024-01-01T00:00:00Z</until></validity></conditions></rule></ruleset>'.encode(),
     "invalid"),
    (f'<ruleset xmlns="{CP}"><rule id="a"><conditions><validity>'
     f'<from>2024-01-01T00:00:00Z</from></validity></conditions></rule></ruleset>'.encode(),
     "invalid"),
])
def test_bad_documents(document, reason):
    assert reason_of(document) == reason


def test_too_many_rules_or_conditions():
    rules = [(f"r{index}", "", handling("allow"), "") for index in range(MAX_RULES)]
    assert len(rules_of(*rules).rules) == MAX_RULES
    assert reason_of(ruleset(*rules, ("one-more", "", "", ""))) == "too-many-rules"
    ones = "".join(f'<cr:one id="sip:u{index}@example.com"/>' for index in range(MAX_CONDITIONS))
    assert reason_of(ruleset(("many", f"<cr:identity>{ones}</cr:identity>", "", ""))) \
        == "too-many-conditions"
