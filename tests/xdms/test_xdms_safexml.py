"""
What clients send is parsed safely (no entity, no DTD, no network, bounded
depth), and the xcap-error documents that say why it was refused.
"""

import pytest
from lxml import etree

from sbbs.xdms.errors import XCAP_ERROR_NAMESPACE, XcapConflict
from sbbs.xdms.safexml import parse_document, parse_element

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<lolz>&lol3;</lolz>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]><r>&secret;</r>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>"""


def condition_of(parse, body, *args):
    with pytest.raises(XcapConflict) as raised:
        parse(body, *args)
    return raised.value.condition


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_document_type_declarations_are_refused(body):
    assert condition_of(parse_document, body) == "not-well-formed"
    assert condition_of(parse_element, body, {}) == "not-xml-frag"


def test_nesting_beyond_the_parser_limit_is_refused():
    deep = b"<a>" * 5000 + b"</a>" * 5000
    assert condition_of(parse_document, deep) == "not-well-formed"
    assert parse_document(b"<a>" * 100 + b"</a>" * 100).tag == "a"


@pytest.mark.parametrize("body", [b"", b"<a>", b"<a></b>", b"text", b"<a/><b/>"])
def test_documents_that_are_not_well_formed(body):
    assert condition_of(parse_document, body) == "not-well-formed"


def test_bodies_that_are_not_utf8():
    assert condition_of(parse_document, "<a>é</a>".encode("latin-1")) == "not-utf-8"
    assert condition_of(parse_element, b"<a>\xff</a>", {}) == "not-utf-8"


@pytest.mark.parametrize("body", [b"", b"text", b"<a/><b/>", b"<a/>tail", b"lead<a/>",
                                  b"<!-- only a comment -->", b"<a/><!-- c -->",
                                  b"<a/></xcap-fragment-context><b>", b"<x:a/>"])
def test_element_bodies_that_are_not_one_element(body):
    assert condition_of(parse_element, body, {}) == "not-xml-frag"


def test_an_element_is_read_with_the_bindings_where_it_goes():
    element = parse_element(b"<?xml version='1.0'?>\n<entry p:x='1'><p:note/></entry> ",
                            {None: "urn:default", "p": "urn:p"})
    assert element.tag == "{urn:default}entry"
    assert element.get("{urn:p}x") == "1" and element[0].tag == "{urn:p}note"
    assert element.getparent() is None and element.tail is None
    assert parse_element(b'<a xmlns="urn:own"/>', {None: "urn:default"}).tag == "{urn:own}a"


def test_an_xcap_error_document_names_the_condition():
    body = XcapConflict("no-parent", "no list", ancestor="http://x/a/users/b/index").document()
    root = etree.fromstring(body)
    assert root.tag == f"{{{XCAP_ERROR_NAMESPACE}}}xcap-error"
    [condition] = root
    assert condition.tag == f"{{{XCAP_ERROR_NAMESPACE}}}no-parent"
    assert condition.get("phrase") == "no list"
    assert condition[0].text == "http://x/a/users/b/index"
    unique = etree.fromstring(XcapConflict("uniqueness-failure",
                                           exists=[("rls-services/service/@uri",
                                                    ["sip:a1@x", "sip:a2@x"])]).document())
    exists = unique[0][0]
    assert exists.get("field") == "rls-services/service/@uri"
    assert [alt.text for alt in exists] == ["sip:a1@x", "sip:a2@x"]
    with pytest.raises(ValueError):
        XcapConflict("made-up")
