"""
XCAP URIs (RFC 4825 §6): document selectors, node selectors, namespace
bindings, the order of percent-decoding, and every malformed shape refused
with the status to answer.
"""

import pytest

from resource_adaptors.xcap.uri import (
    ANY, DocumentSelector, Name, ResolvedStep, Step, XcapUriError, parse_bindings,
    parse_node_selector, parse_xcap_uri)

ROOT = "/xcap-root"
RL = "urn:ietf:params:xml:ns:resource-lists"


def parse(path, query=""):
    return parse_xcap_uri(ROOT + path, ROOT, query)


def refusal(path, query=""):
    with pytest.raises(XcapUriError) as raised:
        parse(path, query)
    return raised.value.status


# -- document selectors ------------------------------------------------------

@pytest.mark.parametrize("path, auid, xui, document", [
    ("/resource-lists/users/sip:joe@example.com/index",
     "resource-lists", "sip:joe@example.com", ("index",)),
    ("/resource-lists/users/sip%3Ajoe%40example.com/index",
     "resource-lists", "sip:joe@example.com", ("index",)),
    ("/pres-rules/users/joe/friends/work/index",
     "pres-rules", "joe", ("friends", "work", "index")),
    ("/xcap-caps/global/index", "xcap-caps", None, ("index",)),
    ("/rls-services/global/a/b", "rls-services", None, ("a", "b")),
    # a slash escaped in a XUI stays in it: segments are decoded one by one
    ("/resource-lists/users/odd%2Fname/index", "resource-lists", "odd/name", ("index",)),
    ("/resource-lists/users/%E2%82%AC/index", "resource-lists", "\u20ac", ("index",)),
])
def test_document_selectors(path, auid, xui, document):
    uri = parse(path)
    assert uri.document == DocumentSelector(auid, xui, document)
    assert uri.document.is_global is (xui is None)
    assert uri.node is None and uri.bindings == {}


def test_a_document_selector_serializes_back_to_what_parses_to_it():
    for xui in ("sip:joe@example.com", "odd/name", "a b", "\u20ac", "100%"):
        document = DocumentSelector("resource-lists", xui, ("dir", "index"))
        assert parse("/" + str(document)).document == document
    assert str(DocumentSelector("xcap-caps", None, ("index",))) == "xcap-caps/global/index"


@pytest.mark.parametrize("path", [
    "/resource-lists",                          # no tree
    "/resource-lists/users",                    # no user
    "/resource-lists/users/joe",                # no document
    "/resource-lists/users/joe/",               # an empty document name
    "/resource-lists/global",
    "/resource-lists/friends/joe/index",        # neither global nor users
    "/resource-lists/users//index",
    "/resource-lists/users/joe/../bob/index",   # path traversal
    "/resource-lists/users/joe/./index",
    "/resource-lists/users/joe/%2E%2E/index",
    "/resource-lists/users/joe/a%00b",
    "/resource-lists/users/joe/%FF",            # not UTF-8
    "/resource-lists/users/joe/" + "/".join(["d"] * 40),
])
def test_paths_that_name_no_document_are_404(path):
    assert refusal(path) == 404


def test_a_path_outside_the_root_is_404():
    with pytest.raises(XcapUriError) as raised:
        parse_xcap_uri("/elsewhere/resource-lists/users/joe/index", ROOT)
    assert raised.value.status == 404
    with pytest.raises(XcapUriError):
        parse_xcap_uri("/xcap-rootx/resource-lists/users/joe/index", ROOT)
    assert parse_xcap_uri("/xcap-root/a/global/b", ROOT + "/").document.auid == "a"


# -- node selectors ----------------------------------------------------------

DOC = "/resource-lists/users/sip:joe@example.com/index/~~/"


@pytest.mark.parametrize("selector, steps, attribute, namespaces", [
    ("resource-lists", [Step(Name(None, "resource-lists"))], None, False),
    ("rl:resource-lists/rl:list", [Step(Name("rl", "resource-lists")), Step(Name("rl", "list"))],
     None, False),
    ("*/*[3]", [Step(ANY), Step(ANY, 3)], None, False),
    ("a[0]", [Step(Name(None, "a"), 0)], None, False),     # well-formed; selects nothing
    ('resource-lists/list[@name="friends"]',
     [Step(Name(None, "resource-lists")), Step(Name(None, "list"), None, Name(None, "name"),
                                                 "friends")], None, False),
    ("resource-lists/list[2][@name='a b']",
     [Step(Name(None, "resource-lists")), Step(Name(None, "list"), 2, Name(None, "name"), "a b")],
     None, False),
    ('resource-lists/list/entry[@uri="sip:a@b.com/x;y"]/@uri',   # a slash inside quotes
     [Step(Name(None, "resource-lists")), Step(Name(None, "list")),
      Step(Name(None, "entry"), None, Name(None, "uri"), "sip:a@b.com/x;y")],
     Name(None, "uri"), False),
    ("resource-lists/list/@x:name",
     [Step(Name(None, "resource-lists")), Step(Name(None, "list"))], Name("x", "name"), False),
    ("resource-lists/namespace::*", [Step(Name(None, "resource-lists"))], None, True),
    ('a[@v="&lt;&amp;&#65;&#x42;&quot;"]', [Step(Name(None, "a"), None, Name(None, "v"),
                                                   '<&AB"')], None, False),
    ("\u00e9l\u00e9ment", [Step(Name(None, "\u00e9l\u00e9ment"))], None, False),
])
def test_node_selectors(selector, steps, attribute, namespaces):
    node = parse_node_selector(selector)
    assert list(node.steps) == steps
    assert (node.attribute, node.namespaces) == (attribute, namespaces)


def test_the_node_selector_is_decoded_after_it_is_cut_from_the_document_selector():
    uri = parse(DOC.replace("/~~/", "/%7E%7E/")
                + "resource-lists/list%5B@name=%22a%2Fb%22%5D/entry%5B1%5D")
    assert uri.document.path == ("index",)
    assert uri.node.steps[1] == Step(Name(None, "list"), None, Name(None, "name"), "a/b")
    assert uri.node.steps[2].position == 1


@pytest.mark.parametrize("selector", [
    "",
    "a//b",
    "a/",
    "@uri",                         # a terminal selector alone
    "namespace::*",
    "a/@",
    "a/@1x",
    "a[1234567890]",
    "a[-1]",
    "a[@x=unquoted]",
    'a[@x="unclosed]',
    'a[@x="v"][2]',                 # the position comes first
    "a[2",
    "1a",
    "a:b:c",
    "a/b()",                        # extension selectors are not supported
    'a[@x="<"]',
    'a[@x="&nbsp;"]',
    'a[@x="a & b"]',
    'a[@x="&#0;"]',
    'a[@x="&#x110000;"]',
    "/".join(["a"] * 70),
])
def test_malformed_node_selectors_are_400(selector):
    assert refusal(DOC + selector) == 400


def test_a_node_selector_that_is_not_utf8_is_400():
    assert refusal(DOC + "a%FF") == 400


# -- namespace bindings --------------------------------------------------------

def test_xmlns_bindings_in_the_query():
    assert parse_bindings("") == {}
    assert parse_bindings(f"xmlns(rl={RL})xmlns(p=urn:x)") == {"rl": RL, "p": "urn:x"}
    assert parse_bindings("xmlns( a = urn:a ) xmlns(b=urn:b)") == {"a": "urn:a", "b": "urn:b"}
    assert parse_bindings("xmlns(a=urn:%5E(x%5E)%5E%5E)") == {"a": "urn:(x)^"}
    assert parse_bindings("xmlns%28a%3Durn%3Aa%29") == {"a": "urn:a"}


@pytest.mark.parametrize("query", ["a=b", "xmlns(a=urn:(x))", "xmlns(1=urn:x)", "xmlns(a=urn:x",
                                   "xpointer(/a)", "xmlns(a=urn:x)junk", "%FF"])
def test_other_queries_are_400(query):
    assert refusal(DOC + "a", query) == 400


def test_names_resolve_with_the_bindings_and_the_default_namespace():
    uri = parse(DOC + 'rl:resource-lists/list[@x:name="f"]/*/@x:uri',
                f"xmlns(rl={RL})xmlns(x=urn:x)")
    steps, attribute = uri.node.resolve(uri.bindings, "urn:default")
    assert steps == (ResolvedStep(f"{{{RL}}}resource-lists", None, None, None),
                     ResolvedStep("{urn:default}list", None, "{urn:x}name", "f"),
                     ResolvedStep(None, None, None, None))
    assert attribute == "{urn:x}uri"
    unprefixed = parse_node_selector("a[@b='c']/@d")
    assert unprefixed.resolve({}, None) == ((ResolvedStep("a", None, "b", "c"),), "d")


def test_an_unbound_prefix_is_400():
    node = parse_node_selector("rl:resource-lists")
    with pytest.raises(XcapUriError) as raised:
        node.resolve({}, RL)
    assert raised.value.status == 400 and "rl" in raised.value.reason


def test_steps_written_back_parse_to_the_same_steps():
    from resource_adaptors.xcap.uri import node_selector_text
    text = 'rl:list[2][@name="a&quot;b/c&lt;"]/*[@x=\'1\']/entry'
    steps = parse_node_selector(text).steps
    written = node_selector_text(steps)
    assert "[" not in written and '"' not in written      # percent-encoded for a URI
    assert parse(DOC + written).node.steps == steps


def test_a_parsed_uri_is_shared_and_read_only():
    query = f"xmlns(rl={RL})"
    first = parse(DOC + "rl:resource-lists", query)
    assert parse(DOC + "rl:resource-lists", query) is first
    with pytest.raises(TypeError):
        first.bindings["rl"] = "urn:changed"
