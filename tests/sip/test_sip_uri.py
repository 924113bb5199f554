"""SIP and SIPS URIs, other URIs, and URI equivalence (RFC 3261 §19.1)."""

import pytest

from resource_adaptors.sip.core.parser import ParseError
from resource_adaptors.sip.core.headers import NameAddr, Params
from resource_adaptors.sip.core.uri import AbsoluteURI, SipURI, parse_uri


def test_every_component_of_a_sip_uri():
    uri = parse_uri("sip:alice:secret@atlanta.example.com:5061;transport=TCP;lr"
                    "?subject=project&priority=urgent")
    assert isinstance(uri, SipURI)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sip", "alice", "secret", "atlanta.example.com", 5061)
    assert list(uri.params.items()) == [("transport", "TCP"), ("lr", None)]
    assert uri.headers == [("subject", "project"), ("priority", "urgent")]
    assert uri.transport == "tcp"


def test_a_bare_host():
    uri = parse_uri("sip:example.com")
    assert (uri.user, uri.password, uri.host, uri.port, uri.transport) == (
        None, None, "example.com", None, None)
    assert not uri.params and uri.headers == []


def test_sips_and_the_scheme_in_any_case():
    assert parse_uri("sips:bob@example.com").scheme == "sips"
    uri = parse_uri("SIP:bob@example.com")
    assert uri.scheme == "sip"
    assert str(uri) == "sip:bob@example.com"


@pytest.mark.parametrize("text, host, port", [
    ("sip:[2001:db8::1]", "[2001:db8::1]", None),
    ("sip:alice@[2001:db8::1]:5060;transport=tcp", "[2001:db8::1]", 5060),
    ("sip:[::ffff:192.0.2.1]:5070", "[::ffff:192.0.2.1]", 5070),
    ("sip:192.0.2.4:5080", "192.0.2.4", 5080),
])
def test_hosts_keep_ipv6_brackets(text, host, port):
    uri = parse_uri(text)
    assert (uri.host, uri.port) == (host, port)
    assert str(uri) == text


def test_escapes_are_kept_as_received():
    text = "sip:sips%3Auser%40example.com@example.net;n%61me=v%61lue%25%34%31"
    uri = parse_uri(text)
    assert uri.user == "sips%3Auser%40example.com"
    assert uri.params["n%61me"] == "v%61lue%25%34%31"
    assert str(uri) == text


def test_the_user_part_may_hold_semicolons_and_question_marks():
    uri = parse_uri("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u%40example.net"
    assert uri.host == "example.com" and not uri.params


def test_telephone_subscriber_user_and_user_param():
    uri = parse_uri("sip:+1-212-555-1212:1234@gateway.com;user=phone")
    assert (uri.user, uri.password, uri.params["user"]) == ("+1-212-555-1212", "1234", "phone")


def test_param_lookup_ignores_case_but_serialization_keeps_it():
    uri = parse_uri("sip:a@b;Transport=UDP;MAddr=239.255.255.1")
    assert uri.params["transport"] == "UDP"
    assert uri.params["maddr"] == "239.255.255.1"
    assert uri.transport == "udp"
    assert str(uri) == "sip:a@b;Transport=UDP;MAddr=239.255.255.1"


@pytest.mark.parametrize("text", [
    "tel:+1-201-555-0123;phone-context=example.com",
    "http://www.example.com/a?b=c",
    "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    "isbn:2983792873",
    "soap.beep://192.0.2.103:3002",
])
def test_other_schemes_are_opaque(text):
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteURI)
    assert str(uri) == text
    assert uri.scheme == text.split(":")[0]


def test_an_opaque_uri_scheme_is_lower_case():
    assert parse_uri("TEL:+1234").scheme == "tel"


@pytest.mark.parametrize("text", [
    "", "sip:", "sip:user@", "sip:@host", "sip:host:port", "sip:host:99999",
    "sip:user@host name", "<sip:user@example.com>", "sip:a@b;;c", "sip:a@b?",
    "sip:a@b;c=d e", "sip:us er@host", "sip:a@b%zz", "noscheme", ":opaque",
    "1tel:+1234", "tel:", "tel:+1 234", "mailto:<a@b>",
])
def test_malformed_uris(text):
    with pytest.raises(ParseError):
        parse_uri(text)


def test_a_uri_built_in_code_serializes_canonically():
    uri = SipURI("sips", "bob", None, "biloxi.example.com", 5061,
                 Params([("transport", "tcp"), ("lr", None)]), [("Subject", "hi")])
    assert str(uri) == "sips:bob@biloxi.example.com:5061;transport=tcp;lr?Subject=hi"
    assert SipURI(host="example.com").scheme == "sip"
    assert str(SipURI(host="example.com")) == "sip:example.com"


# RFC 3261 §19.1.4: pairs of equivalent URIs, and pairs that are not.
@pytest.mark.parametrize("one, other", [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
     "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
    ("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
     "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ("sip:a@[2001:db8::1]", "sip:a@[2001:DB8:0::1]"),
])
def test_equivalent_uris(one, other):
    assert parse_uri(one).equivalent(parse_uri(other))
    assert parse_uri(other).equivalent(parse_uri(one))


@pytest.mark.parametrize("one, other", [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp;user=phone"),
    ("sip:bob@biloxi.com", "sips:bob@biloxi.com"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;maddr=192.0.2.1"),
    ("sip:bob@biloxi.com;ttl=1", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;method=INVITE", "sip:bob@biloxi.com"),
    ("sip:bob@biloxi.com;transport=tcp", "sip:bob@biloxi.com;transport=udp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    ("sip:bob:pw@biloxi.com", "sip:bob@biloxi.com"),
    ("sip:name=v%61lue%2541@a", "sip:name=valueA@a"),
])
def test_uris_that_are_not_equivalent(one, other):
    assert not parse_uri(one).equivalent(parse_uri(other))
    assert not parse_uri(other).equivalent(parse_uri(one))


def test_escaped_param_values_compare_unescaped_once_only():
    # RFC 4475 esc01: "value%41" is not "valueA": unescaping is not recursive.
    escaped = parse_uri("sip:a@b;name=v%61lue%25%34%31")
    assert escaped.equivalent(parse_uri("sip:a@b;name=value%2541"))
    assert not escaped.equivalent(parse_uri("sip:a@b;name=valueA"))


def test_escaped_nulls_are_distinct_users():
    # RFC 4475 escnull: unescaping must not shorten the user part.
    one, two = parse_uri("sip:%00@host5.example.com"), parse_uri("sip:%00%00@host5.example.com")
    assert not one.equivalent(two)
    assert one.equivalent(parse_uri("sip:%00@HOST5.example.com"))


def test_absolute_uris_compare_by_text_but_for_the_scheme_case():
    assert parse_uri("tel:+1234").equivalent(parse_uri("TEL:+1234"))
    assert not parse_uri("tel:+1234").equivalent(parse_uri("tel:+1235"))
    assert not parse_uri("tel:+1234").equivalent(parse_uri("sip:+1234@a"))
    assert not parse_uri("sip:+1234@a").equivalent(parse_uri("tel:+1234"))


@pytest.mark.parametrize("text", [
    "sip:a@b..c", "sip:a@.b", "sip:a@" + "h" * 64, "sip:a@" + "h." * 127 + "com",
    "tel:+1\x00", "x:\x1b", "tel:+1\udcff", "urn:caf\u00e9",
])
def test_what_no_resolver_nor_document_takes_is_no_uri(text):
    # Found by the fuzz test: a NOTIFY to a host that no DNS holds failed in
    # the resolver (a traceback); a From that no watcher information
    # document can carry failed the SUBSCRIBE (another).
    with pytest.raises(ParseError):
        parse_uri(text)
    assert not NameAddr.is_usual(f"<{text}>")      # the fast path agrees


@pytest.mark.parametrize("host", ["h" * 63, "example.com.", "a." * 100 + "com", "1.2.3.4.5"])
def test_a_host_that_dns_holds(host):
    assert parse_uri(f"sip:a@{host}").host == host
    assert NameAddr.parse(f"<sip:a@{host}>").uri.host == host
