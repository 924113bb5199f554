"""
The xcap-diff formats: what a SUBSCRIBE asks to watch (RFC 5875), and the
documents that report changes (RFC 5874), built and read back, and hostile
or broken bodies refused.
"""

import pytest
from lxml import etree

from sbbs.xdms.xcapdiff import (
    MAX_URI_LENGTH, XCAP_DIFF_NAMESPACE, AttributeChange, DocumentChange, ElementChange,
    XcapDiff, XcapDiffBuilder, XcapDiffError, parse_subscription, parse_xcap_diff)

ROOT = "http://xcap.example.com/xcap-root/"
RL = "urn:ietf:params:xml:ns:resource-lists"
JOE = "resource-lists/users/sip:joe@example.com/index"
L1 = JOE + "/~~/resource-lists/list%5b@name=%22L1%22%5d"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list><entry uri="resource-lists/&lol3;"/></list></resource-lists>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">
  <list><entry uri="&secret;"/></list></resource-lists>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE resource-lists SYSTEM "http://127.0.0.1:1/evil.dtd">
<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists"><list/></resource-lists>"""
HOSTILE = [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD]


def lists(*entries, max_entries=1000):
    """Parse a subscription whose one list has these entries (the XML of each)."""
    return parse_subscription(
        f'<resource-lists xmlns="{RL}"><list>{"".join(entries)}</list></resource-lists>'
        .encode("utf-8"), max_entries=max_entries)


def entry(uri):
    return f'<entry uri="{uri}"/>'


def reason_of(parse, body, **options):
    with pytest.raises(XcapDiffError) as raised:
        parse(body, **options)
    return raised.value.reason


def canonical(xml):
    """The exclusive canonical form: the same for one element, whatever it declares unused."""
    return etree.tostring(etree.fromstring(xml), method="c14n", exclusive=True)


# -- subscriptions (RFC 5875) --------------------------------------------------------

def test_a_subscription_names_documents_collections_and_nodes_in_document_order():
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<resource-lists xmlns="{RL}" xmlns:x="urn:example:ext">
  <list>
    <display-name>what joe's client watches</display-name>
    <entry uri="{JOE}"/>
    <entry uri="rls-services/users/sip:joe@example.com/"/>
    <list name="nested">
      <entry uri="{L1}"><display-name>list L1</display-name></entry>
      <entry uri="{L1}/@name"/>
      <entry uri="{JOE}"/>
    </list>
    <entry-ref ref="resource-lists/users/sip:joe@example.com/index/~~/x"/>
    <x:extension><entry uri="not/in/a/list"/></x:extension>
  </list>
  <list><entry uri="pres-rules/"/></list>
</resource-lists>""".encode("utf-8")
    assert parse_subscription(body) == (
        JOE, "rls-services/users/sip:joe@example.com/", L1, L1 + "/@name", "pres-rules/")


def test_limits_are_inclusive():
    longest = "resource-lists/users/" + "a" * (MAX_URI_LENGTH - len("resource-lists/users/"))
    assert lists(entry(longest)) == (longest,)
    assert lists(entry("a/"), entry("b/"), entry("c/"), max_entries=3) == ("a/", "b/", "c/")


def test_percent_encoding_is_left_as_sent():
    assert lists(entry("resource-lists/users/sip:a%2Fb@x/index")) \
        == ("resource-lists/users/sip:a%2Fb@x/index",)


@pytest.mark.parametrize("body", HOSTILE + [
    b"", b"<resource-lists", b"not xml",
    f'<resource-lists xmlns="{RL}"><list><entry uri="\xe9"/></list></resource-lists>'
    .encode("latin-1")])
def test_hostile_or_broken_xml_is_refused(body):
    reason_of(parse_subscription, body)


def test_not_utf8_and_dtds_say_why():
    latin = f'<resource-lists xmlns="{RL}"><list><entry uri="r/\xe9"/></list></resource-lists>'
    assert "UTF-8" in reason_of(parse_subscription, latin.encode("latin-1"))
    assert "document type" in reason_of(parse_subscription, BILLION_LAUGHS)


@pytest.mark.parametrize("body", [
    b'<resource-lists><list><entry uri="a/"/></list></resource-lists>',
    b'<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"/>',
    f'<list xmlns="{RL}"><entry uri="a/"/></list>'.encode(),
])
def test_the_root_must_be_resource_lists(body):
    assert "resource-lists" in reason_of(parse_subscription, body)


@pytest.mark.parametrize("body", [
    f'<resource-lists xmlns="{RL}"/>',
    f'<resource-lists xmlns="{RL}"><list/><list><list/></list></resource-lists>',
    f'<resource-lists xmlns="{RL}"><list><entry-ref ref="a/b"/></list></resource-lists>',
    f'<resource-lists xmlns="{RL}"><entry uri="not/in/a/list"/></resource-lists>',
])
def test_lists_without_entries_are_refused(body):
    assert "no entry" in reason_of(parse_subscription, body.encode())


def test_too_many_entries_are_refused_duplicates_included():
    with pytest.raises(XcapDiffError, match="more than 3 entries"):
        lists(*[entry("a/")] * 4, max_entries=3)


def test_an_entry_needs_a_uri():
    with pytest.raises(XcapDiffError, match="no uri"):
        lists(entry("a/"), "<entry/>")


@pytest.mark.parametrize("uri, reason", [
    ("", "empty"),
    ("http://xcap.example.com/xcap-root/" + JOE, "absolute"),
    ("HTTPS://xcap.example.com/" + JOE, "absolute"),
    ("sip:joe@example.com", "absolute"),
    ("/xcap-root/" + JOE, "relative to the XCAP root"),
    ("//evil.example.com/" + JOE, "relative to the XCAP root"),
    ("resource-lists/users/" + "a" * MAX_URI_LENGTH, "longer than 2048"),
    ("resource-lists/users/sip:joe@example.com/../sip:ann@example.com/index", "'..'"),
    ("resource-lists/users/sip:joe@example.com/%2e%2E/sip:ann@example.com/index", "'..'"),
    ("resource-lists/users/..", "'..'"),
    ("../resource-lists/", "'..'"),
    ("resource-lists/./users/sip:joe@example.com/index", "'.'"),
    (JOE + "/~~/resource-lists/../x", "'..'"),
    ("resource-lists/users/sip:joe@example.com/my index", "whitespace"),
    ("resource-lists/users/sip:joe@example.com/index&#9;", "whitespace"),
])
def test_uris_that_are_not_relative_xcap_uris_are_refused(uri, reason):
    with pytest.raises(XcapDiffError, match=reason):
        lists(entry(uri), entry("resource-lists/"))


def test_an_error_is_a_value_error_that_does_not_quote_the_uri():
    error = reason_of(parse_subscription, f'<resource-lists xmlns="{RL}"><list>'
                      f'<entry uri="http://evil.example.com/x"/></list></resource-lists>'.encode())
    assert "evil" not in error
    assert issubclass(XcapDiffError, ValueError)


# -- xcap-diff documents (RFC 5874): built, then read back ---------------------------

INDEX = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- joe's lists -->
<resource-lists xmlns="{RL}" xmlns:x="urn:example:ext">
  <list name="L1"><entry uri="sip:ann@example.com" x:note="a &lt;b&gt; &amp; &quot;c&quot;"/></list>
</resource-lists>""".encode("utf-8")
PREFIXED = f'<rl:resource-lists xmlns:rl="{RL}"><rl:list name="L2"/></rl:resource-lists>'.encode()
NO_NAMESPACE = b"<foo><bar baz='1'>text</bar></foo>"


def test_every_kind_of_change_reads_back_as_built():
    builder = XcapDiffBuilder(ROOT)
    builder.document(JOE, new_etag="e1")
    builder.document(JOE, previous_etag="e1", new_etag="e2", content=INDEX)
    builder.document(JOE, previous_etag="e2", new_etag="e3", body_not_changed=True)
    builder.document(JOE, previous_etag="e3")
    builder.element(L1, b'<rl:list xmlns:rl="%s" name="L1"/>' % RL.encode(),
                    namespaces={"rl": RL})
    builder.element(JOE + "/~~/resource-lists/list%5b@name=%22gone%22%5d")
    builder.attribute(L1 + "/@name", 'L1 <&> "quoted"')
    builder.attribute(L1 + "/@empty", "")
    builder.attribute(L1 + "/@gone")
    diff = parse_xcap_diff(builder.to_bytes())

    assert diff.xcap_root == ROOT
    created, patched, touched, removed = diff.documents
    assert created == DocumentChange(JOE, None, "e1")
    assert (patched.previous_etag, patched.new_etag, patched.patched) == ("e1", "e2", True)
    assert patched.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert canonical(patched.content) == canonical(INDEX)
    assert XCAP_DIFF_NAMESPACE.encode() not in patched.content
    assert touched == DocumentChange(JOE, "e2", "e3", body_not_changed=True)
    assert removed == DocumentChange(JOE, "e3", None)

    present, absent = diff.elements
    assert (present.sel, present.exists, present.namespaces) == (L1, True, {"rl": RL})
    assert canonical(present.content) == canonical(b'<rl:list xmlns:rl="%s" name="L1"/>'
                                                   % RL.encode())
    assert absent == ElementChange(JOE + "/~~/resource-lists/list%5b@name=%22gone%22%5d",
                                   False, None)
    assert diff.attributes == (AttributeChange(L1 + "/@name", True, 'L1 <&> "quoted"'),
                               AttributeChange(L1 + "/@empty", True, ""),
                               AttributeChange(L1 + "/@gone", False, None))


def test_an_empty_diff_reads_back_empty():
    assert parse_xcap_diff(XcapDiffBuilder(ROOT).to_bytes()) == XcapDiff(ROOT)


@pytest.mark.parametrize("content", [INDEX, PREFIXED, NO_NAMESPACE])
def test_a_new_document_is_one_replacement_of_the_root_element(content):
    builder = XcapDiffBuilder(ROOT)
    builder.document(JOE, previous_etag="a", new_etag="b", content=content)
    body = builder.to_bytes()
    root = etree.fromstring(body)
    [document] = root
    [replace] = document
    assert replace.tag == f"{{{XCAP_DIFF_NAMESPACE}}}replace"
    assert replace.get("sel") == "/*"
    assert canonical(etree.tostring(replace[0])) == canonical(content)
    [change] = parse_xcap_diff(body).documents
    assert canonical(change.content) == canonical(content)


def test_content_in_no_namespace_stays_in_no_namespace():
    builder = XcapDiffBuilder(ROOT)
    builder.document(JOE, previous_etag="a", new_etag="b", content=NO_NAMESPACE)
    builder.element(L1, b"<foo/>")
    body = builder.to_bytes()
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<d:xcap-diff ")
    diff = parse_xcap_diff(body)
    assert etree.fromstring(diff.documents[0].content).tag == "foo"
    assert etree.fromstring(diff.elements[0].content).tag == "foo"


def test_selector_prefixes_are_declared_even_the_one_the_builder_uses():
    builder = XcapDiffBuilder(ROOT)
    sel = JOE + "/~~/d:resource-lists/d:list%5b@name=%22L1%22%5d"
    builder.element(sel, b"<d:list xmlns:d='%s' name='L1'/>" % RL.encode(),
                    namespaces={"d": RL})
    [element] = parse_xcap_diff(builder.to_bytes()).elements
    assert element.sel == sel and element.namespaces == {"d": RL}
    assert etree.fromstring(element.content).tag == f"{{{RL}}}list"


@pytest.mark.parametrize("xcap_root", ["/xcap-root", "xcap.example.com/xcap-root",
                                       "ftp://xcap.example.com/", "http:///xcap-root"])
def test_the_builder_needs_an_absolute_http_root(xcap_root):
    with pytest.raises(ValueError):
        XcapDiffBuilder(xcap_root)


@pytest.mark.parametrize("options", [
    {"previous_etag": "a", "new_etag": "b", "body_not_changed": True, "content": INDEX},
    {"new_etag": "b", "content": INDEX},
    {"previous_etag": "a", "content": INDEX},
    {"new_etag": "b", "body_not_changed": True},
    {},
])
def test_the_builder_refuses_contradictions(options):
    with pytest.raises(ValueError):
        XcapDiffBuilder(ROOT).document(JOE, **options)


def test_the_builder_refuses_what_it_cannot_write():
    builder = XcapDiffBuilder(ROOT)
    with pytest.raises(XcapDiffError, match="absolute"):
        builder.document("http://elsewhere.example.com/" + JOE, new_etag="a")
    with pytest.raises(XcapDiffError, match="'..'"):
        builder.attribute("resource-lists/users/../x/~~/a/@b", "v")
    with pytest.raises(XcapDiffError):
        builder.document(JOE, previous_etag="a", new_etag="b", content=b"<unclosed>")
    with pytest.raises(XcapDiffError):
        builder.element(L1, BILLION_LAUGHS)
    with pytest.raises(ValueError):
        builder.element(L1, b"<list/>", namespaces={None: RL})
    assert parse_xcap_diff(builder.to_bytes()) == XcapDiff(ROOT)


# -- xcap-diff documents written by others ---------------------------------------------

RFC_STYLE = f"""<?xml version="1.0" encoding="UTF-8"?>
<xcap-diff xmlns="urn:ietf:params:xml:ns:xcap-diff" xmlns:x="urn:example:ext"
           xcap-root="http://xcap.example.com/root/">
  <document previous-etag="7ahggs" sel="tests/users/sip:joe@example.com/index"
            new-etag="fgherhryt3">
    <add sel="*"><foo xmlns="">this is a new element</foo></add>
  </document>
  <document previous-etag="fgherhryt3" sel="tests/users/sip:joe@example.com/index"
            new-etag="dgdgdfgrrr">
    <body-not-changed/>
  </document>
  <document sel="rls-services/users/sip:joe@example.com/index" new-etag="ffds66a"/>
  <document sel="resource-lists/users/sip:joe@example.com/index"
            previous-etag="ffds66a" new-etag="ertgg44">
    <replace sel="rl:resource-lists" xmlns:rl="{RL}">
      <rl:resource-lists><rl:list name="L1"/></rl:resource-lists>
    </replace>
  </document>
  <document sel="resource-lists/users/sip:joe@example.com/index"
            previous-etag="ertgg44" new-etag="rrr5">
    <remove sel="*/rl:list[@name='L1']" xmlns:rl="{RL}"/>
    <x:note>an extension, skipped</x:note>
  </document>
  <element sel="{L1}" xmlns:rl="{RL}"><rl:list name="L1"/></element>
  <element sel="{L1}/rl:entry%5b@uri=%22sip:bob@example.com%22%5d" exists="false"/>
  <attribute sel="{L1}/@name">L1</attribute>
  <attribute sel="{L1}/@gone" exists="0"/>
  <x:trailer/>
</xcap-diff>""".encode("utf-8")


def test_an_rfc_style_document_with_a_default_namespace():
    diff = parse_xcap_diff(RFC_STYLE)
    assert diff.xcap_root == "http://xcap.example.com/root/"
    added, unchanged, created, replaced, removed = diff.documents
    assert added == DocumentChange("tests/users/sip:joe@example.com/index", "7ahggs",
                                   "fgherhryt3", patched=True)
    assert unchanged == DocumentChange("tests/users/sip:joe@example.com/index", "fgherhryt3",
                                       "dgdgdfgrrr", body_not_changed=True)
    assert created == DocumentChange("rls-services/users/sip:joe@example.com/index", None,
                                     "ffds66a")
    assert replaced.patched and canonical(replaced.content) == canonical(
        f'<rl:resource-lists xmlns:rl="{RL}"><rl:list name="L1"/></rl:resource-lists>'.encode())
    assert removed.patched and removed.content is None
    present, absent = diff.elements
    assert present.exists and present.namespaces == {"rl": RL, "x": "urn:example:ext"}
    assert etree.fromstring(present.content).get("name") == "L1"
    assert (absent.exists, absent.content) == (False, None)
    assert diff.attributes == (AttributeChange(L1 + "/@name", True, "L1"),
                               AttributeChange(L1 + "/@gone", False, None))


def xcap_diff(children, xcap_root=ROOT):
    return (f'<xcap-diff xmlns="{XCAP_DIFF_NAMESPACE}" xcap-root="{xcap_root}">{children}'
            f'</xcap-diff>').encode("utf-8")


def only_document(children):
    [document] = parse_xcap_diff(xcap_diff(
        f'<document sel="{JOE}" previous-etag="a" new-etag="b">{children}</document>')).documents
    return document


@pytest.mark.parametrize("sel", ["/*", "*", "/rl:resource-lists", "resource-lists"])
def test_any_one_step_replacement_is_the_whole_document(sel):
    document = only_document(f'<replace sel="{sel}"> <resource-lists xmlns="{RL}"/> </replace>')
    assert etree.fromstring(document.content).tag == f"{{{RL}}}resource-lists"


def test_a_new_root_keeps_its_own_declarations_and_takes_only_used_ones_from_above():
    [document] = parse_xcap_diff(xcap_diff(
        f'<document sel="{JOE}" previous-etag="a" new-etag="b" xmlns:rl="{RL}" xmlns:q="urn:q">'
        '<replace sel="/*"><rl:resource-lists xmlns:unused="urn:u"/></replace></document>'
    )).documents
    assert document.content.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n")
    assert etree.fromstring(document.content).nsmap == {"rl": RL, "unused": "urn:u"}


def test_a_new_root_in_no_namespace_under_a_default_one():
    document = only_document('<replace sel="/*"><foo xmlns=""><bar/></foo><!-- c --></replace>')
    assert [element.tag for element in etree.fromstring(document.content).iter()] \
        == ["foo", "bar"]


@pytest.mark.parametrize("operations", [
    f'<replace sel="/*[1]"><resource-lists xmlns="{RL}"/></replace>',
    f'<replace sel="/*/*"><list xmlns="{RL}"/></replace>',
    f'<replace sel="/*">text<resource-lists xmlns="{RL}"/></replace>',
    f'<replace sel="/*"><a xmlns="{RL}"/><b xmlns="{RL}"/></replace>',
    '<replace sel="/*/@name">new</replace>',
    f'<add sel="/*"><list xmlns="{RL}"/></add>',
    f'<replace sel="/*"><resource-lists xmlns="{RL}"/></replace><remove sel="/*/*[1]"/>',
])
def test_other_patches_are_reported_without_content(operations):
    document = only_document(operations)
    assert document.patched and document.content is None


@pytest.mark.parametrize("body", HOSTILE + [
    b"", b"<xcap-diff", "<xcap-diff xcap-root='\xe9'/>".encode("latin-1")])
def test_hostile_or_broken_diffs_are_refused(body):
    reason_of(parse_xcap_diff, body)


@pytest.mark.parametrize("body, reason", [
    (b'<xcap-diff xcap-root="http://x/"/>', "not an xcap-diff document"),
    (f'<resource-lists xmlns="{RL}"/>'.encode(), "not an xcap-diff document"),
    (xcap_diff("", xcap_root=""), "no xcap-root"),
    (f'<xcap-diff xmlns="{XCAP_DIFF_NAMESPACE}"/>'.encode(), "no xcap-root"),
    (xcap_diff("<changes/>"), "<changes> is not a change"),
    (xcap_diff('<document new-etag="a"/>'), "<document> has no sel"),
    (xcap_diff("<element/>"), "<element> has no sel"),
    (xcap_diff("<attribute>v</attribute>"), "<attribute> has no sel"),
    (xcap_diff('<document sel="http://evil.example.com/x" new-etag="a"/>'), "absolute"),
    (xcap_diff('<document sel="/etc/passwd" new-etag="a"/>'), "relative to the XCAP root"),
    (xcap_diff(f'<element sel="{JOE}/../x/~~/a"/>'), "'..'"),
    (xcap_diff(f'<document sel="{JOE}"><patch/></document>'), "<patch> is not a change"),
    (xcap_diff(f'<document sel="{JOE}"><body-not-changed/><remove sel="/*/*"/></document>'),
     "goes alone"),
    (xcap_diff(f'<document sel="{JOE}"><body-not-changed/><body-not-changed/></document>'),
     "goes alone"),
    (xcap_diff(f'<element sel="{L1}" exists="0"><list/></element>'), "no content"),
    (xcap_diff(f'<element sel="{L1}"><list/><list/></element>'), "one element at most"),
    (xcap_diff(f'<element sel="{L1}" exists="maybe"/>'), "exists must be"),
    (xcap_diff(f'<attribute sel="{L1}/@a"><b/></attribute>'), "text, not elements"),
    (xcap_diff(f'<attribute sel="{L1}/@a" exists="0">v</attribute>'), "no value"),
])
def test_broken_diffs_say_why(body, reason):
    assert reason in reason_of(parse_xcap_diff, body)


def test_the_number_of_changes_is_bounded():
    three = xcap_diff(f'<document sel="{JOE}" new-etag="a"/>'
                      f'<element sel="{L1}" exists="0"/><attribute sel="{L1}/@n">v</attribute>'
                      '<!-- not counted --><x:e xmlns:x="urn:example:ext"/>')
    assert len(parse_xcap_diff(three, max_changes=3).documents) == 1
    with pytest.raises(XcapDiffError, match="more than 2 changes"):
        parse_xcap_diff(three, max_changes=2)


def test_deep_nesting_in_content_is_refused():
    deep = "<a>" * 5000 + "</a>" * 5000
    reason_of(parse_xcap_diff, xcap_diff(f'<element sel="{L1}">{deep}</element>'))
