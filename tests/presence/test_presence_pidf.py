"""
PIDF bodies from peers are parsed safely and refused precisely (each
refusal with a reason fit for a 400's reason phrase), the deviations of
real clients are repaired, and what is kept is valid PIDF.
"""

import pytest
from lxml import etree

from sbbs.presence.pidf import (
    BASIC, DATA_MODEL, MAX_REASON, PERSON, PIDF, PIDF_TYPE, RPID, STATUS, TUPLE, PidfError,
    instant, neutral_document, parse_pidf, serialize)
from sbbs.xdms.appusage import xml_schema

PIDF_SCHEMA = xml_schema("pidf.xsd")
ENTITY = "sip:alice@example.com"


def presence(*children, entity=ENTITY):
    """A PIDF document with the data model and RPID prefixes declared."""
    entity_attribute = "" if entity is None else f' entity="{entity}"'
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<presence xmlns="{PIDF}" xmlns:dm="{DATA_MODEL}" xmlns:rpid="{RPID}"'
            f'{entity_attribute}>{"".join(children)}</presence>').encode("utf-8")


def tuple_(identifier="t1", basic="open", extra=""):
    return f'<tuple id="{identifier}"><status><basic>{basic}</basic></status>{extra}</tuple>'


def reason_of(body, **limits):
    with pytest.raises(PidfError) as raised:
        parse_pidf(body, **limits)
    return raised.value.reason


def local(element):
    """The local names of the children of C{element}."""
    return [etree.QName(child).localname for child in element]


def valid(root):
    return PIDF_SCHEMA.validate(etree.fromstring(serialize(root)).getroottree())


# Refusals, each with its reason.

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&lol3;</note></presence>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE presence [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"><note>&secret;</note></presence>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE presence SYSTEM "http://127.0.0.1:1/evil.dtd">
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:a@b"/>"""
DTD_REASON = "not well-formed XML: document type declarations are not allowed"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_document_type_declarations_are_refused(body):
    assert reason_of(body) == DTD_REASON


@pytest.mark.parametrize("body, reason", [
    (presence(tuple_())[:-3], "not well-formed XML: "),
    (b"", "not well-formed XML: "),
    (f'<presence xmlns="{PIDF}" entity="{ENTITY}"><note>caf\xe9</note></presence>'
     .encode("latin-1"), "body is not UTF-8"),
    (f'<pidf xmlns="{PIDF}" entity="{ENTITY}"/>'.encode(), "root element is not PIDF presence"),
    (f'<presence entity="{ENTITY}"/>'.encode(), "root element is not PIDF presence"),
    (presence(tuple_(), entity=None), "presence has no entity"),
    (presence(tuple_(), entity=""), "presence has no entity"),
    (presence('<tuple><status/></tuple>'), "tuple without id"),
    (presence(tuple_("t1"), tuple_("t1")), "duplicate id 't1'"),
    (presence(tuple_("t1"), '<dm:person id="t1"/>'), "duplicate id 't1'"),
    (presence('<tuple id="t1"><contact>sip:a@b</contact></tuple>'), "tuple 't1' has no status"),
    (presence(tuple_(), "<dm:person/>"), "person without id"),
    (presence(tuple_(), "<dm:device><dm:deviceID>urn:x</dm:deviceID></dm:device>"),
     "device without id"),
    (presence(tuple_(), '<dm:person id="p1"><dm:timestamp>today</dm:timestamp></dm:person>'),
     "person 'p1' has an invalid timestamp"),
    (presence(tuple_(), '<dm:person id="p1"><dm:note>a<b xmlns="urn:x"/></dm:note></dm:person>'),
     "person 'p1' has a note with elements"),
    (presence(tuple_(), '<dm:device id="d1">hello<dm:deviceID>urn:x</dm:deviceID></dm:device>'),
     "device 'd1' has text outside its elements"),
])
def test_refusals_say_why(body, reason):
    assert reason_of(body).startswith(reason)


@pytest.mark.parametrize("body", [
    presence(tuple_(basic="open</basic><basic>closed")),                  # two basics
    presence('<tuple id="t1"><status/><contact priority="2">sip:a@b</contact></tuple>'),
    presence('<tuple id="t1"><status/><timestamp>yesterday</timestamp></tuple>'),
    presence(tuple_(extra="<unknown/>")),                                 # PIDF has no <unknown>
    presence(tuple_(extra='<contact>sip:a@b</contact><contact>sip:c@d</contact>')),
    presence(tuple_(), '<note>a <b xmlns="urn:x"/></note>'),
    presence(tuple_(identifier="1")),                                     # not an xs:ID
    presence('<tuple id="t1"><status>open</status></tuple>'),
])
def test_what_the_schema_refuses(body):
    reason = reason_of(body)
    assert reason.startswith("not valid PIDF: ")
    assert PIDF not in reason


def test_size_is_bounded_before_parsing():
    body = presence(tuple_(), "<note>" + "x" * (1 << 20) + "</note>")
    assert reason_of(body) == f"body too large: {len(body)} bytes, at most 65536"
    assert reason_of(presence(tuple_()), max_size=100).startswith("body too large: ")


def test_ten_thousand_tuples():
    body = presence(*(tuple_(f"t{number}") for number in range(10000)))
    assert reason_of(body).startswith("body too large: ")
    assert reason_of(body, max_size=len(body)) == "too many elements: more than 2000"
    assert reason_of(body, max_size=len(body), max_elements=100000) == \
        "too many tuples: more than 100"


def test_tuple_and_element_limits():
    assert reason_of(presence(*(tuple_(f"t{n}") for n in range(101)))) == \
        "too many tuples: more than 100"
    assert len(parse_pidf(presence(*(tuple_(f"t{n}") for n in range(100)))).findall(TUPLE)) == 100
    assert reason_of(presence(tuple_()), max_elements=3) == "too many elements: more than 3"


def test_deep_nesting_is_refused():
    deep = "<x:a>" * 5000 + "</x:a>" * 5000
    body = presence(tuple_(extra=f'<x:e xmlns:x="urn:x">{deep}</x:e>'))
    assert reason_of(body, max_size=len(body)).startswith("not well-formed XML: ")


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS, b"<a>\n\r\x0b</b>", presence(tuple_(identifier="\u202e1")),
    presence('<tuple id="' + "t" * 500 + '"/>'), b"\xff" * 10,
])
def test_reasons_fit_a_reason_phrase(body):
    reason = reason_of(body)
    assert 0 < len(reason) <= MAX_REASON and reason.isprintable()


def test_reasons_are_made_printable_and_short():
    error = PidfError("bad\r\nthing\x00\u2028here " + "x" * 200)
    assert error.reason.startswith("bad thing here x")
    assert len(error.reason) == MAX_REASON and error.reason.endswith("...")
    assert str(error) == error.reason and isinstance(error, ValueError)


# What real clients send.

BARESIP_FIRST_PUBLISH = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\r\n'
    b'<presence xmlns="urn:ietf:params:xml:ns:pidf"\r\n'
    b'    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"\r\n'
    b'    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"\r\n'
    b'    entity="sip:alice@example.com">\r\n'
    b'  <dm:person id="p4159"><rpid:activities/></dm:person>\r\n'
    b'  <tuple id="t4109">\r\n'
    b'    <status>\r\n'
    b'      <basic>unknown</basic>\r\n'
    b'    </status>\r\n'
    b'    <contact>sip:alice@example.com</contact>\r\n'
    b'  </tuple>\r\n'
    b'</presence>\r\n')


@pytest.mark.parametrize("value", [b"unknown", b"unkown", b""])
def test_baresip_first_publish_is_accepted_without_its_basic(value):
    root = parse_pidf(BARESIP_FIRST_PUBLISH.replace(b"unknown", value))
    assert [child.tag for child in root] == [TUPLE, PERSON]         # put in the schema's order
    assert root.find(f"{TUPLE}/{STATUS}") is not None
    assert root.find(f"{TUPLE}/{STATUS}/{BASIC}") is None
    assert valid(root)


def test_a_status_without_basic_is_valid():
    root = parse_pidf(presence('<tuple id="t1"><status/></tuple>'))
    assert len(root.find(f"{TUPLE}/{STATUS}")) == 0 and valid(root)


@pytest.mark.parametrize("value", [" open ", "Open", "OPEN\n"])
def test_basic_is_read_without_case_and_spaces(value):
    root = parse_pidf(presence(tuple_(basic=value)))
    assert root.findtext(f"{TUPLE}/{STATUS}/{BASIC}") == "open"


def test_children_are_put_in_the_schema_order():
    root = parse_pidf(presence(
        '<dm:person id="p1"><dm:timestamp>2024-01-01T00:00:00Z</dm:timestamp>'
        '<dm:note>n</dm:note><rpid:activities><rpid:busy/></rpid:activities></dm:person>',
        '<note>root note</note>',
        '<tuple id="t1"><timestamp>2024-01-01T00:00:00Z</timestamp><note>t</note>'
        '<contact>sip:a@b</contact><x:e xmlns:x="urn:x"/><status><x:s xmlns:x="urn:x"/>'
        '<basic>open</basic></status></tuple>'))
    assert local(root) == ["tuple", "note", "person"]
    assert local(root.find(TUPLE)) == ["status", "e", "contact", "note", "timestamp"]
    assert local(root.find(f"{TUPLE}/{STATUS}")) == ["basic", "s"]
    assert local(root.find(PERSON)) == ["activities", "note", "timestamp"]
    assert valid(root)


def test_extensions_are_welcome_where_the_schema_has_other():
    body = presence(
        tuple_(extra='<dm:deviceID>urn:uuid:1</dm:deviceID>'
               '<c:card xmlns:c="urn:ietf:params:xml:ns:pidf:cipid">http://a/b</c:card>'),
        '<dm:person id="p1"><rpid:activities from="2024-01-01T00:00:00Z"><rpid:meeting/>'
        '</rpid:activities><rpid:mood><rpid:happy/></rpid:mood><x:y xmlns:x="urn:x">text</x:y>'
        '</dm:person>',
        '<dm:device id="d1"><x:z xmlns:x="urn:x"/><dm:deviceID>urn:uuid:1</dm:deviceID>'
        '</dm:device>',
        '<x:top xmlns:x="urn:x" x:attribute="1"><x:inner>mixed <x:b/> content</x:inner></x:top>')
    root = parse_pidf(body)
    assert root.find("{urn:x}top/{urn:x}inner").text == "mixed "
    assert root.find(f"{PERSON}/{{{RPID}}}activities").get("from") == "2024-01-01T00:00:00Z"
    assert valid(root)


def test_comments_and_processing_instructions_are_dropped():
    root = parse_pidf(presence(tuple_(extra='<x:e xmlns:x="urn:x">a<!-- c -->b<?pi x?>c</x:e>'),
                               "<!-- root comment -->"))
    assert b"<!--" not in serialize(root) and b"<?pi" not in serialize(root)
    assert root.find(f"{TUPLE}/{{urn:x}}e").text == "abc"


def test_prefixes_survive_reordering_even_when_redeclared():
    """A prefix the root binds to one namespace and a child to another."""
    body = (f'<presence xmlns="{PIDF}" xmlns:dm="{DATA_MODEL}" entity="{ENTITY}">'
            f'<pdm:person xmlns:pdm="{DATA_MODEL}" xmlns:dm="urn:other" id="p1"><dm:thing/>'
            f'</pdm:person>{tuple_()}</presence>').encode()
    again = etree.fromstring(serialize(parse_pidf(body)))
    assert [element.tag for element in again.iter()][-2:] == [PERSON, "{urn:other}thing"]



@pytest.mark.parametrize("body", [
    presence(tuple_()),
    presence(tuple_(extra="<note>n</note>"), "<note>root</note>",
             '<dm:person id="p1"><rpid:activities><rpid:busy/></rpid:activities>'
             "<dm:note>x</dm:note></dm:person>"),
    (f'<presence xmlns="{PIDF}" entity="{ENTITY}">\n  <tuple id="t1">\n    <status>'
     "\n      <basic>open</basic>\n    </status>\n  </tuple>\n</presence>").encode(),
    presence(tuple_(extra='<x:e xmlns:x="urn:x"> keep <x:f/> these </x:e>')),
])
def test_a_document_in_order_reads_as_its_ordered_copy(body):
    """In schema order already, it is used in place: the same as the copy would be."""
    import sbbs.presence.pidf as pidf
    in_place = parse_pidf(body)
    copied = pidf.ordered_copy(pidf.parse_document(body))
    assert serialize(in_place) == serialize(copied)


# Documents this server writes.

def test_the_neutral_document_says_offline_and_nothing_else():
    body = neutral_document(ENTITY)
    root = parse_pidf(body)
    assert root.get("entity") == ENTITY and valid(root)
    assert [element.tag for element in root.iter()] == [root.tag, TUPLE, STATUS, BASIC]
    assert root.findtext(f"{TUPLE}/{STATUS}/{BASIC}") == "closed"
    assert neutral_document(ENTITY) == body                          # stable
    assert root.find(TUPLE).get("id") != parse_pidf(
        neutral_document("sip:bob@example.com")).find(TUPLE).get("id")


def test_serialize_writes_utf8_with_a_declaration():
    body = serialize(parse_pidf(presence(tuple_(), "<note>café</note>")))
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert "café".encode("utf-8") in body
    assert PIDF_TYPE == "application/pidf+xml"


@pytest.mark.parametrize("text, seconds", [
    ("1970-01-01T00:00:00Z", 0.0),
    ("1970-01-01T01:00:00+01:00", 0.0),
    (" 1970-01-01T00:00:10.5 ", 10.5),                          # no zone: UTC
    ("1970-01-01T00:00:01.123456789Z", 1.123456),
    ("1970-01-01", None), ("yesterday", None), ("1970-01-01T24:00:00Z", None),
    ("19700101T000000Z", None), ("", None),
])
def test_instants(text, seconds):
    assert instant(text) == (None if seconds is None else pytest.approx(seconds))
