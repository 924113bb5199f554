"""
Elements and attributes as XCAP reads and writes them (RFC 4825 §6.3, §8):
selection, where new elements go, the idempotency checks, and white space
kept so that a DELETE undoes a PUT byte for byte.
"""

import pytest
from lxml import etree

from resource_adaptors.xcap.uri import parse_node_selector
from sbbs.xdms import nodes
from sbbs.xdms.errors import XcapConflict
from sbbs.xdms.nodes import NoParent, NotFound
from sbbs.xdms.safexml import parse_document

NS = "test-app"
START = (b"<?xml version='1.0' encoding='UTF-8'?>\n"
         b'<root xmlns="test-app">\n'
         b'<el1 att="first"/>\n'
         b'<el1 att="second"/>\n'
         b"<!-- comment -->\n"
         b'<el2 att="first"/>\n'
         b"</root>")


def steps(selector, bindings=None, default_namespace=NS):
    resolved, _ = parse_node_selector(selector).resolve(bindings or {}, default_namespace)
    return resolved


def serialized(root):
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def body_of(root):
    """The document's text from the root element on (the declaration aside)."""
    return serialized(root).split(b"\n", 1)[1]


START_BODY = START.split(b"\n", 1)[1]


@pytest.fixture
def root():
    return parse_document(START)


# -- reading -------------------------------------------------------------------

def test_selection_by_name_position_and_attribute(root):
    assert nodes.select_one(root, steps("root")) is root
    assert nodes.select_one(root, steps("root/el1[2]")).get("att") == "second"
    assert nodes.select_one(root, steps('root/el1[@att="first"]')).get("att") == "first"
    assert nodes.select_one(root, steps("root/*[3]")).tag == f"{{{NS}}}el2"
    assert nodes.select_one(root, steps('root/*[2][@att="second"]')).tag == f"{{{NS}}}el1"
    for missing in ("root/el1", "root/el1[3]", "root/el1[0]", 'root/el1[2][@att="first"]',
                    "other", "root/el3", "root/*"):
        with pytest.raises(NotFound):
            nodes.select_one(root, steps(missing))


def test_get_an_element_an_attribute_and_the_namespace_bindings(root):
    assert nodes.element_body(root, steps("root/el1[2]")) == b'<el1 att="second"/>'
    assert nodes.element_xml(root, steps("root/el1[2]")) == \
        b'<el1 xmlns="test-app" att="second"/>'
    assert serialized(root) == START                    # the marks are gone
    assert nodes.attribute_body(root, steps("root/el2"), "att") == b"first"
    root[0].set("att", 'a<b & "c"')
    assert nodes.attribute_body(root, steps("root/el1[1]"), "att") == b"a&lt;b &amp; &quot;c&quot;"
    with pytest.raises(NotFound):
        nodes.attribute_body(root, steps("root/el2"), "missing")
    assert nodes.namespaces_body(root, steps("root/el2")) == b'<el2 xmlns="test-app"/>'


def test_a_prefixed_step_needs_its_binding():
    doc = parse_document(b'<r xmlns="urn:d" xmlns:x="urn:x"><x:a/><a/></r>')
    found = nodes.select_one(doc, steps("r/p:a", {"p": "urn:x"}, "urn:d"))
    assert found.tag == "{urn:x}a"
    assert nodes.select_one(doc, steps("r/a", {}, "urn:d")).tag == "{urn:d}a"


# -- creating and replacing elements ------------------------------------------

AFTER_SECOND_EL1 = START_BODY.replace(b'<el1 att="second"/>',
                                      b'<el1 att="second"/><el1 att="third"/>')


@pytest.mark.parametrize("selector", ['root/el1[@att="third"]', 'root/el1[3][@att="third"]',
                                      'root/*[3][@att="third"]', 'root/*[@att="third"]'])
def test_insertion_after_the_last_namesake_and_delete_undoes_it(root, selector):
    assert nodes.put_element(root, steps(selector), b'<el1 att="third"/>')
    assert body_of(root) == AFTER_SECOND_EL1
    nodes.delete_element(root, steps(selector))
    assert serialized(root) == START


@pytest.mark.parametrize("selector, body, expected", [
    ("root/el3", b'<el3 att="first"/>',
     START_BODY.replace(b"</root>", b'<el3 att="first"/></root>')),
    ('root/el2[1][@att="2"]', b'<el2 att="2"/>',
     START_BODY.replace(b'<el2 att="first"/>', b'<el2 att="2"/><el2 att="first"/>')),
    ('root/*[2][@att="2"]', b'<el2 att="2"/>',
     START_BODY.replace(b'<el1 att="first"/>', b'<el1 att="first"/><el2 att="2"/>')),
    ('root/el2[2][@att="2"]', b'<el2 att="2"/>',
     START_BODY.replace(b'<el2 att="first"/>', b'<el2 att="first"/><el2 att="2"/>')),
])
def test_where_new_elements_go(root, selector, body, expected):
    assert nodes.put_element(root, steps(selector), (body))
    assert body_of(root) == expected
    nodes.delete_element(root, steps(selector))
    assert serialized(root) == START


@pytest.mark.parametrize("selector, body", [
    ('root/el1[4][@att="third"]', b'<el1 att="third"/>'),     # no third to follow
    ('root/el1[0][@att="third"]', b'<el1 att="third"/>'),
    ('root/el1[@att="third"]', b'<el1 att="fourth"/>'),       # GET would not find it
    ('root/el1[3][@att="third"]', b'<el1 att="fourth"/>'),
    ("root/el3", b"<el4/>"),
    ("root/el3", b'<el3 xmlns="urn:other"/>'),
])
def test_a_put_the_selector_would_not_find_again_is_refused(root, selector, body):
    with pytest.raises(XcapConflict) as raised:
        nodes.put_element(root, steps(selector), (body))
    assert raised.value.condition == "cannot-insert"
    assert serialized(root) == START


def test_replacement_must_still_match_the_selector(root):
    for selector in ('root/el1[@att="first"]', 'root/el1[1][@att="first"]'):
        with pytest.raises(XcapConflict, match="would not select"):
            nodes.put_element(root, steps(selector), b'<el1 att="third"/>')
        assert serialized(root) == START
    assert not nodes.put_element(root, steps("root/el1[1]"), b'<el1 att="third"/>')
    assert body_of(root) == START_BODY.replace(b'att="first"/>\n<el1', b'att="third"/>\n<el1')


def test_no_parent_says_how_deep_the_existing_ancestor_is(root):
    with pytest.raises(NoParent) as raised:
        nodes.put_element(root, steps("root/el3/el4"), (b"<el4/>"))
    assert raised.value.condition == "no-parent" and raised.value.depth == 1
    with pytest.raises(NoParent) as raised:
        nodes.put_element(root, steps("other/el4"), (b"<el4/>"))
    assert raised.value.depth == 0
    with pytest.raises(XcapConflict, match="one root element"):
        nodes.put_element(root, steps("other"), (b"<other/>"))


# -- deleting --------------------------------------------------------------------

def test_a_delete_that_would_leave_the_selector_selecting_is_refused(root):
    with pytest.raises(XcapConflict) as raised:
        nodes.delete_element(root, steps("root/el1[1]"))    # the second would become the first
    assert raised.value.condition == "cannot-delete"
    assert serialized(root) == START
    with pytest.raises(XcapConflict, match="root element"):
        nodes.delete_element(root, steps("root"))
    with pytest.raises(NotFound):
        nodes.delete_element(root, steps("root/el3"))
    nodes.delete_element(root, steps("root/el1[2]"))
    assert body_of(root) == START_BODY.replace(b'<el1 att="second"/>', b"")


# -- attributes ----------------------------------------------------------------

def test_attributes_put_and_deleted(root):
    assert nodes.put_attribute(root, steps("root/el2"), "new", b"a &amp; b&#x41;")
    assert root[3].get("new") == "a & bA"
    assert not nodes.put_attribute(root, steps("root/el2"), "new", b"c")
    nodes.delete_attribute(root, steps("root/el2"), "new")
    assert serialized(root) == START
    with pytest.raises(NotFound):
        nodes.delete_attribute(root, steps("root/el2"), "new")
    with pytest.raises(NoParent):
        nodes.put_attribute(root, steps("root/el3"), "a", b"x")


def test_an_attribute_change_the_selector_would_not_find_again_is_refused(root):
    selector = steps('root/el1[@att="first"]')
    with pytest.raises(XcapConflict) as raised:
        nodes.put_attribute(root, selector, "att", b"other")
    assert raised.value.condition == "cannot-insert"
    assert serialized(root) == START


def test_an_attribute_the_selector_selects_by_can_be_deleted(root):
    # RFC 4825 §8.4: a GET of the URI is then a 404, which is what a delete wants.
    nodes.delete_attribute(root, steps('root/el1[@att="first"]'), "att")
    assert root[0].get("att") is None


@pytest.mark.parametrize("body, condition", [
    (b"a<b", "not-xml-att-value"), (b"a & b", "not-xml-att-value"),
    (b"&nbsp;", "not-xml-att-value"), (b"&#0;", "not-xml-att-value"),
    (b"\xff", "not-utf-8")])
def test_bodies_that_are_no_attribute_value(root, body, condition):
    with pytest.raises(XcapConflict) as raised:
        nodes.put_attribute(root, steps("root/el2"), "new", body)
    assert raised.value.condition == condition
    assert serialized(root) == START
