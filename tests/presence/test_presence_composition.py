"""
The publications of a presentity and its pidf-manipulation document are
composed into one valid PIDF document, by the policy of
L{sbbs.presence.composition}.
"""

import pytest
import pytest_twisted
from lxml import etree

from sbbs.presence.composition import compose, presentity_state_etag
from sbbs.presence.pidf import (
    BASIC, CONTACT, DATA_MODEL, DEVICE, DEVICE_ID, MAX_SIZE, MAX_TUPLES, NOTE, PERSON, PIDF, RPID,
    STATUS, TUPLE, XML_LANG, PidfError, parse_pidf, serialize)
from sbbs.xdms.appusage import xml_schema
from test_presence_live import ALICE, RULES_TYPE, RULES_URI, rules, server  # noqa: F401

PIDF_SCHEMA = xml_schema("pidf.xsd")
ENTITY = "sip:alice@example.com"
ACTIVITIES = f"{{{RPID}}}activities"
MOOD = f"{{{RPID}}}mood"
PLACE_TYPE = f"{{{RPID}}}place-type"
DM_NOTE = f"{{{DATA_MODEL}}}note"


def presence(*children, entity=ENTITY):
    return (f'<presence xmlns="{PIDF}" xmlns:dm="{DATA_MODEL}" xmlns:rpid="{RPID}" '
            f'entity="{entity}">{"".join(children)}</presence>').encode("utf-8")


def tuple_(identifier, basic="open", contact=None, timestamp=None):
    contact = "" if contact is None else f"<contact>{contact}</contact>"
    timestamp = "" if timestamp is None else f"<timestamp>{timestamp}</timestamp>"
    return (f'<tuple id="{identifier}"><status><basic>{basic}</basic></status>'
            f'{contact}{timestamp}</tuple>')


def person(identifier, *children, timestamp=None):
    timestamp = "" if timestamp is None else f"<dm:timestamp>{timestamp}</dm:timestamp>"
    return f'<dm:person id="{identifier}">{"".join(children)}{timestamp}</dm:person>'


def activity(name):
    return f"<rpid:activities><rpid:{name}/></rpid:activities>"


def mood(name):
    return f"<rpid:mood><rpid:{name}/></rpid:mood>"


def device(identifier, device_id, *children):
    return (f'<dm:device id="{identifier}">{"".join(children)}'
            f'<dm:deviceID>{device_id}</dm:deviceID></dm:device>')


def composed(publications, manipulation=None, entity=ENTITY):
    """The composed document's root; it must be valid and acceptable PIDF."""
    body = compose(entity, publications, manipulation)
    assert PIDF_SCHEMA.validate(etree.fromstring(body).getroottree()), PIDF_SCHEMA.error_log
    return parse_pidf(body)


def ids(root, tag=TUPLE):
    return [element.get("id") for element in root.iterfind(tag)]


def basics(root):
    return {tuple_.get("id"): tuple_.findtext(f"{STATUS}/{BASIC}")
            for tuple_ in root.iterfind(TUPLE)}


def names(element):
    return [child.tag for child in element]


def test_no_publication_and_no_manipulation_is_no_state():
    assert compose(ENTITY, []) is None


def test_two_devices_publishing_different_tuples():
    phone = presence(tuple_("phone", "open", "sip:alice@10.0.0.1"))
    laptop = presence(tuple_("laptop", "closed", "sip:alice@10.0.0.2"))
    root = composed([(phone, 100.0), (laptop, 200.0)])
    assert ids(root) == ["laptop", "phone"]                      # newest first
    assert basics(root) == {"laptop": "closed", "phone": "open"}
    assert root.find(TUPLE).findtext(CONTACT) == "sip:alice@10.0.0.2"


def test_the_newer_publication_of_a_tuple_id_wins():
    older = presence(tuple_("t1", "open", "sip:old@h"))
    newer = presence(tuple_("t1", "closed", "sip:new@h"))
    for publications in ([(older, 100.0), (newer, 200.0)], [(newer, 200.0), (older, 100.0)]):
        root = composed(publications)
        assert ids(root) == ["t1"] and basics(root) == {"t1": "closed"}
        assert root.find(TUPLE).findtext(CONTACT) == "sip:new@h"


def test_tuples_are_ordered_by_timestamp_newest_first():
    first = presence(tuple_("a", timestamp="2024-01-01T10:00:00Z"),
                     tuple_("b", timestamp="2024-01-01T12:00:00Z"))
    second = presence(tuple_("c", timestamp="2024-01-01T11:00:00Z"))
    late = 1.8e9                                                 # after all the timestamps
    assert ids(composed([(first, late), (second, late)])) == ["b", "c", "a"]


def test_a_timestamp_after_its_publication_counts_as_the_publication_time():
    future = presence(tuple_("future", timestamp="2999-01-01T00:00:00Z"))
    recent = presence(tuple_("recent"))
    assert ids(composed([(future, 100.0), (recent, 200.0)])) == ["recent", "future"]


def test_the_person_is_the_newest_by_its_timestamp():
    # Published last, but says it was true earlier than the other.
    stale = presence(tuple_("t1"), person("p1", activity("away"), timestamp="2024-01-01T09:00:00Z"))
    fresh = presence(tuple_("t2"), person("p2", activity("busy"), timestamp="2024-01-01T10:00:00Z"))
    root = composed([(fresh, 1.8e9), (stale, 1.9e9)])
    assert len(root.findall(PERSON)) == 1
    assert root.find(PERSON).get("id") == "p2"
    assert names(root.find(f"{PERSON}/{ACTIVITIES}")) == [f"{{{RPID}}}busy"]


def test_without_timestamps_the_person_last_published_wins():
    one = presence(person("p1", activity("away")))
    two = presence(person("p2", activity("busy")))
    assert composed([(one, 100.0), (two, 200.0)]).find(PERSON).get("id") == "p2"
    assert composed([(two, 200.0), (one, 100.0)]).find(PERSON).get("id") == "p2"
    assert composed([(one, 100.0), (two, 100.0)]).find(PERSON).get("id") == "p2"   # tie: later


def person_notes(root):
    return [(note.get(XML_LANG), note.text) for note in root.find(PERSON).iterfind(DM_NOTE)]


def test_each_kind_of_person_element_comes_from_the_most_recent_person_that_has_it():
    """Two devices: one sets the note, the other the activities (RFC 4479, RFC 4480)."""
    a_note = presence(tuple_("a"), person("pa", "<dm:note>on the train</dm:note>"))
    b_busy = presence(tuple_("b"), person("pb", activity("busy")))
    found = composed([(a_note, 100.0), (b_busy, 200.0)]).find(PERSON)
    assert names(found) == [ACTIVITIES, DM_NOTE]                 # both, in the schema's order
    assert names(found.find(ACTIVITIES)) == [f"{{{RPID}}}busy"]
    assert found.findtext(DM_NOTE) == "on the train"
    assert found.get("id") == "pb"                               # the most recent person's

    # A says something newer: its note replaces its old one, B's activities stay.
    a_newer = presence(tuple_("a"), person("pa", "<dm:note>in the office</dm:note>"))
    root = composed([(a_newer, 300.0), (b_busy, 200.0)])
    assert names(root.find(PERSON)) == [ACTIVITIES, DM_NOTE]
    assert person_notes(root) == [(None, "in the office")]
    assert names(root.find(f"{PERSON}/{ACTIVITIES}")) == [f"{{{RPID}}}busy"]

    # Newer activities from A replace B's.
    a_away = presence(tuple_("a"), person("pa", activity("away"),
                                          "<dm:note>in the office</dm:note>"))
    root = composed([(a_away, 400.0), (b_busy, 200.0)])
    assert names(root.find(f"{PERSON}/{ACTIVITIES}")) == [f"{{{RPID}}}away"]
    assert person_notes(root) == [(None, "in the office")]
    assert root.find(PERSON).get("id") == "pa"


def test_the_kinds_follow_the_persons_timestamps():
    # B published last, but its person says it was true before A's note and mood.
    a = presence(person("pa", mood("happy"), "<dm:note>a</dm:note>",
                        timestamp="2024-01-01T10:00:00Z"))
    b = presence(person("pb", mood("sad"), activity("busy"), "<dm:note>b</dm:note>",
                        timestamp="2024-01-01T09:00:00Z"))
    found = composed([(a, 1.8e9), (b, 1.9e9)]).find(PERSON)
    assert found.get("id") == "pa"
    assert names(found.find(MOOD)) == [f"{{{RPID}}}happy"]
    assert names(found.find(ACTIVITIES)) == [f"{{{RPID}}}busy"]  # only b has activities
    assert found.findtext(DM_NOTE) == "a"
    assert found.findtext(f"{{{DATA_MODEL}}}timestamp") == "2024-01-01T10:00:00Z"


def test_a_person_s_notes_are_one_kind_whatever_their_language():
    bilingual = presence(person("p1", '<dm:note xml:lang="en">at work</dm:note>',
                                '<dm:note xml:lang="fr">au travail</dm:note>'))
    english = presence(person("p2", '<dm:note xml:lang="en">at home</dm:note>'))
    assert person_notes(composed([(bilingual, 100.0), (english, 200.0)])) == [("en", "at home")]
    assert person_notes(composed([(english, 100.0), (bilingual, 200.0)])) == [
        ("en", "at work"), ("fr", "au travail")]


def test_the_timestamp_is_the_most_recent_person_s_only():
    stamped = presence(person("p1", mood("happy"), timestamp="2024-01-01T10:00:00Z"))
    unstamped = presence(person("p2", activity("busy")))
    found = composed([(stamped, 1.8e9), (unstamped, 1.9e9)]).find(PERSON)
    assert names(found) == [MOOD, ACTIVITIES]                    # no timestamp


def test_the_composed_person_keeps_the_most_recent_kinds_that_fit():
    # 20 devices, each with its own large extension in the person: all of them
    # would not fit in one document; the person stays, with the newest.
    filler = "x" * 6000
    publications = [(presence(tuple_(f"t{number}"),
                              person(f"p{number}", f'<x:e{number} xmlns:x="urn:x">{filler}'
                                                   f'</x:e{number}>', activity("busy"))),
                     float(number)) for number in range(20)]
    body = compose(ENTITY, publications)
    assert len(body) <= MAX_SIZE
    found = composed(publications).find(PERSON)
    kinds = [child.tag for child in found if child.tag.startswith("{urn:x}")]
    assert 5 <= len(kinds) < 20
    assert kinds == [f"{{urn:x}}e{number}" for number in range(20 - len(kinds), 20)]
    assert found.get("id") == "p19" and found.find(ACTIVITIES) is not None


def test_rpid_elements_are_kept_untouched():
    rich = person(
        "p1", '<rpid:activities from="2024-01-01T10:00:00Z" until="2024-01-01T11:00:00Z">'
              '<rpid:meeting/><rpid:note xml:lang="en">standup</rpid:note></rpid:activities>',
        mood("happy"), '<rpid:place-type><rpid:office/></rpid:place-type>',
        '<rpid:privacy><rpid:quiet/></rpid:privacy>', '<rpid:sphere>work</rpid:sphere>',
        '<rpid:status-icon>http://example.com/i.png</rpid:status-icon>',
        '<rpid:time-offset>60</rpid:time-offset>', '<rpid:user-input>active</rpid:user-input>',
        '<dm:note>in a meeting</dm:note>', timestamp="2024-01-01T10:00:00Z")
    source = parse_pidf(presence(tuple_("t1"), rich)).find(PERSON)
    result = composed([(presence(tuple_("t1"), rich), 1.8e9)]).find(PERSON)
    assert etree.tostring(result, method="c14n", exclusive=True) == \
        etree.tostring(source, method="c14n", exclusive=True)


def test_unknown_extensions_are_carried_through():
    extension = '<x:e xmlns:x="urn:example:x" x:a="1">mixed <x:b>content</x:b> kept</x:e>'
    body = presence(
        f'<tuple id="t1"><status><basic>open</basic>{extension}</status>{extension}</tuple>',
        person("p1", extension), extension)
    root = composed([(body, 100.0)])
    expected = etree.tostring(etree.fromstring(extension), method="c14n", exclusive=True)
    found = [etree.tostring(element, method="c14n", exclusive=True)
             for element in root.iter("{urn:example:x}e")]
    assert found == [expected] * 4
    assert [element.getparent().tag for element in root.iter("{urn:example:x}e")] == \
        [STATUS, TUPLE, PERSON, root.tag]


def test_root_extensions_are_not_repeated():
    extension = '<x:e xmlns:x="urn:example:x">same</x:e>'
    one = presence(tuple_("t1"), extension)
    two = (f'<p:presence xmlns:p="{PIDF}" xmlns:y="urn:example:x" entity="{ENTITY}">'
           f'<p:tuple id="t2"><p:status/></p:tuple><y:e>same</y:e><y:e>other</y:e>'
           f'</p:presence>').encode()
    root = composed([(one, 100.0), (two, 200.0)])
    assert [element.text for element in root.iter("{urn:example:x}e")] == ["same", "other"]


def test_notes_are_merged_without_repeats():
    one = presence(tuple_("t1"), '<note xml:lang="en">at work</note>', '<note>plain</note>')
    two = presence(tuple_("t2"), '<note xml:lang="en"> at work </note>',
                   '<note xml:lang="fr">au travail</note>')
    root = composed([(one, 100.0), (two, 200.0)])
    assert [(note.get(XML_LANG), note.text) for note in root.iterfind(NOTE)] == [
        ("en", " at work "), ("fr", "au travail"), (None, "plain")]
    assert names(root) == [TUPLE, TUPLE, NOTE, NOTE, NOTE]


MANIPULATION = presence(
    tuple_("voicemail", "open", "sip:alice-vm@example.com"), tuple_("t1", "closed"),
    '<note>from the XDMS</note>',
    person("base", mood("sad"), '<rpid:place-type><rpid:home/></rpid:place-type>',
           '<dm:note>base note</dm:note>', timestamp="2020-01-01T00:00:00Z"),
    entity="sip:someone-else@example.com")


def test_the_manipulation_document_alone():
    root = composed([], MANIPULATION)
    assert root.get("entity") == ENTITY
    assert ids(root) == ["voicemail", "t1"]
    assert ids(root, PERSON) == ["base"]
    assert names(root.find(PERSON)) == [MOOD, PLACE_TYPE, f"{{{DATA_MODEL}}}note",
                                        f"{{{DATA_MODEL}}}timestamp"]


def test_publications_override_the_manipulation_document():
    published = presence(tuple_("t1", "open", "sip:alice@10.0.0.1"), tuple_("t2"),
                         person("p1", mood("happy"), activity("busy")))
    root = composed([(published, 100.0)], MANIPULATION)
    assert ids(root) == ["t1", "t2", "voicemail"]            # published first, then the base's
    assert basics(root)["t1"] == "open"
    found = root.find(PERSON)
    assert found.get("id") == "p1"
    # The base's place-type and note stay; its mood is replaced; its timestamp goes.
    assert names(found) == [PLACE_TYPE, MOOD, ACTIVITIES, f"{{{DATA_MODEL}}}note"]
    assert names(found.find(MOOD)) == [f"{{{RPID}}}happy"]
    assert [note.text for note in root.iterfind(NOTE)] == ["from the XDMS"]


def test_the_entity_is_the_presentity_s():
    body = presence(tuple_("t1"), entity="sip:impostor@example.com")
    assert composed([(body, 1.0)], entity="sip:bob@example.com").get("entity") == \
        "sip:bob@example.com"


def test_devices_are_merged_by_device_id():
    one = presence(tuple_("t1"), device("d1", "urn:uuid:1", "<x:v xmlns:x='urn:x'>old</x:v>"),
                   device("d2", "urn:uuid:2"))
    two = presence(tuple_("t2"), device("d9", "urn:uuid:1", "<x:v xmlns:x='urn:x'>new</x:v>"))
    root = composed([(one, 100.0), (two, 200.0)])
    assert [found.findtext(DEVICE_ID) for found in root.iterfind(DEVICE)] == \
        ["urn:uuid:1", "urn:uuid:2"]
    assert root.find(DEVICE).findtext("{urn:x}v") == "new"


def test_ids_stay_unique():
    # Two clients: one's tuple id is the other's person id, their device ids are the same.
    one = presence(tuple_("t1"), person("p1"), device("d", "urn:uuid:1"))
    two = presence(tuple_("t2"), person("t1"), device("d", "urn:uuid:2"))
    root = composed([(one, 100.0), (two, 200.0)])
    assert ids(root) == ["t2", "t1"]
    assert ids(root, PERSON) == ["t1-2"]
    assert ids(root, DEVICE) == ["d", "d-2"]


def test_prefixes_are_kept_or_declared_again():
    odd = (f'<presence xmlns="{PIDF}" xmlns:pdm="{DATA_MODEL}" xmlns:r="{RPID}" '
           f'xmlns:dm="urn:other" entity="{ENTITY}">{tuple_("t1")}'
           f'<pdm:person id="p1"><r:activities><r:busy/></r:activities><dm:thing/></pdm:person>'
           f'</presence>').encode()
    plain = presence(tuple_("t2"), device("d1", "urn:uuid:1"))
    body = compose(ENTITY, [(plain, 100.0), (odd, 200.0)])
    assert b"<r:activities><r:busy/></r:activities>" in body
    assert b"<dm:device" in body and b'<basic>open</basic>' in body
    root = etree.fromstring(body)
    assert [element.tag for element in root.find(PERSON).iter()] == [
        PERSON, ACTIVITIES, f"{{{RPID}}}busy", "{urn:other}thing"]


def test_publications_given_as_elements_are_left_unchanged():
    root = parse_pidf(presence(tuple_("t1"), person("p1", activity("busy")), '<note>n</note>'))
    before = serialize(root)
    assert compose(ENTITY, [(root, 1.0)]) == compose(ENTITY, [(before, 1.0)])
    assert serialize(root) == before


def test_a_bad_body_is_refused():
    with pytest.raises(PidfError):
        compose(ENTITY, [(b"<presence", 1.0)])
    with pytest.raises(PidfError):
        compose(ENTITY, [], b"<not-pidf/>")


@pytest.mark.parametrize("padding, tuples", [
    (10, range(MAX_TUPLES, MAX_TUPLES + 1)),     # 800 small tuples: bounded by their number
    (1000, range(40, MAX_TUPLES)),               # 800 tuples of 1 kB: bounded by the size
])
def test_the_document_is_bounded(padding, tuples):
    filler = "x" * padding
    publications = [(presence(*(tuple_(f"d{number}t{index}", contact=f"sip:{filler}@h")
                                for index in range(40)),
                              person(f"p{number}", activity("busy")),
                              f'<note>{number} {filler}</note>'),
                     float(number))
                    for number in range(20)]
    body = compose(ENTITY, publications)
    assert len(body) <= MAX_SIZE
    root = composed(publications)
    assert len(root.findall(TUPLE)) in tuples
    assert ids(root)[0].startswith("d19t")                       # the newest are kept
    assert root.find(PERSON).get("id") == "p19"                  # the person first


def test_the_state_etag_follows_the_document():
    one = compose(ENTITY, [(presence(tuple_("t1")), 1.0)])
    same = compose(ENTITY, [(presence(tuple_("t1")), 1.0)])
    other = compose(ENTITY, [(presence(tuple_("t1", "closed")), 1.0)])
    assert one == same
    assert presentity_state_etag(one) == presentity_state_etag(same)
    assert presentity_state_etag(one) != presentity_state_etag(other)
    assert len(presentity_state_etag(one)) == 16


@pytest_twisted.ensureDeferred
async def test_live_two_devices_one_sets_the_note_the_other_the_activities(server):
    xdms, clock, alice, bob = server
    await xdms.request("PUT", RULES_URI, rules("allow"), RULES_TYPE)

    async def publish(*children, etag=None):
        match = f"SIP-If-Match: {etag}\r\n" if etag else ""
        alice.send("PUBLISH", headers=f"Event: presence\r\nExpires: 600\r\n{match}",
                   body=presence(*children, entity=ALICE).decode())
        answer = await alice.answer()
        assert answer.status == 200, answer.reason
        return answer.headers.get("SIP-ETag")

    phone = await publish(tuple_("phone"), person("pa", "<dm:note>on the train</dm:note>"))
    clock.advance(1)
    await publish(tuple_("laptop"), person("pb", activity("busy")))     # another device
    bob.send("SUBSCRIBE", headers="Event: presence\r\n")
    assert (await bob.answer()).status == 200
    found = parse_pidf((await bob.notified()).body).find(PERSON)
    assert names(found) == [ACTIVITIES, DM_NOTE]
    assert found.findtext(DM_NOTE) == "on the train"

    clock.advance(1)
    await publish(tuple_("phone"), person("pa", "<dm:note>in the office</dm:note>"), etag=phone)
    root = parse_pidf((await bob.notified()).body)
    assert person_notes(root) == [(None, "in the office")]
    assert names(root.find(f"{PERSON}/{ACTIVITIES}")) == [f"{{{RPID}}}busy"]
