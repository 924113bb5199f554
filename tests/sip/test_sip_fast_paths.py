"""
The fast paths of the SIP parsers agree with their general paths.

Each fast path matches a usual shape with one expression and must accept
only what the general path accepts, reading it the same way.  These tests
run tricky values through both (the fast path switched off by monkeypatch)
and compare everything the parsed values expose.
"""

import random
import re
from pathlib import Path

import pytest

from resource_adaptors.sip.core import headers as headers_module
from resource_adaptors.sip.core import uri as uri_module
from resource_adaptors.sip.core.headers import ContentType, NameAddr, Via
from resource_adaptors.sip.core.message import (
    _TYPED_HEADERS, Headers, Message, Request, validate_request)
from resource_adaptors.sip.core.parser import ParseError, Parser, parse_message
from resource_adaptors.sip.core.recurring import RecurringMemo
from resource_adaptors.sip.core.syntax import Params, split_list
from resource_adaptors.sip.core.uri import PORT_NUMBER, SipURI, parse_uri

NEVER = re.compile(r"(?!)")

NAME_ADDRS = [
    "sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001",
    "sut <sip:service@127.0.0.1:5060>",
    "<sip:carol@chicago.example.com>",
    "sip:sipp@127.0.0.1:5061",
    "sip:a@b;tag=1;lr",
    "sip:x@Y:5060;TAG=A",
    # IPv6 hosts
    "<sip:[2001:db8::1]:5060;transport=tcp;lr>",
    "Bob <sips:bob@[::1]>;TAG=x;Expires=60;q=0.5",
    "sip:[2001:db8::1];tag=v6",
    "sip:[2001:db8::1]:5060",
    # quoted display names, with and without escapes
    '"Alice Smith" <sip:alice@atlanta.example.com>;tag=1928301774',
    '"" <sip:empty@example.com>',
    '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8',
    '"quoted, name" <sip:a:pw@h;maddr=1.2.3.4?subject=hi>;p="q v"',
    '"a<b>;c" <sip:x@y>',
    '"unterminated <sip:x@y>',
    # escaped characters
    "<sip:us%40er@host;param=%41>;x=y",
    "sip:%61lice@host",
    "<sip:a%2@host>",
    # parameters without values, in upper case, repeated
    "<sip:a@b>;lr;TAG=x;Tag=y",
    "a <sip:a@b>;tag=x;tag=y",
    "<sip:a@b>;=x",
    "<sip:a@b>;tag=",
    # white space around separators
    "  A  B   <sip:a@b>  ;  tag = x ",
    "Name<sip:x@y>;tag",
    "A\t<sip:a@b>;tag=x",
    "<sip:a@b> ;tag=x",
    "<sip:a@b>;tag=x ",
    "A <sip:a@b> , <sip:c@d>",
    # ports
    "A <sip:a@b:65535>",
    "A <sip:a@b:65536>",
    "A <sip:a@b:99999>",
    "A <sip:a@b:00065>",
    "sip:a@b:0",
    "sip:a@b:123456",
    # other shapes
    "<SIP:user@HOST>",
    "<tel:+1-555>;tag=x",
    "<urn:uuid:f81d4fae>;+sip.instance=\"<urn:x>\"",
    "sip:a:pw@h;tag=x",
    "sip:a,b@h",
    "sip:a?b@h",
    "sip:a@b,c@d",
    "*",
    "",
    "<>",
    "<sip:>",
    "sip:@h",
]

VIAS = [
    "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0;rport",
    "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKhjhs8ass877;rport",
    "SIP/2.0/TCP [2001:db8::1]:5060;branch=z9hG4bK1;received=1.2.3.4;rport=5060",
    "SIP/2.0/TLS [::1];branch=z9hG4bK1",
    "SIP / 2.0 / UDP host ; branch = x",
    "SIP/2.0/UDP\thost;branch=x",
    "SIP/2.0/UDP  host:5060;branch=x",
    "SIP/2.0/UDP host : 5060;branch=x",
    "sip/2.0/udp host;branch=z9;RPORT",
    "SIP/2.0/UDP h;Branch=Z9HG4BK;received=[::1];LR",
    "SIP/2.0/UDP h;branch=\"quoted\"",
    "SIP/2.0/UDP h;branch=a\\b",
    "SIP/2.0/UDP h:65535",
    "SIP/2.0/UDP h:65536;branch=x",
    "SIP/2.0/UDP h:123456;branch=x",
    "SIP/2.0/UDP h:05060",
    "SIP/2.0/UDP h;;branch=x",
    "SIP/2.0/UDP h;branch=",
    "SIP/2.0/UDP h;branch=x ",
    "SIP/3.0/UDP h:5060",
    "SIP/2.0/UDP",
]

URIS = [
    "sip:service@127.0.0.1:5060",
    "sip:carol@chicago.example.com",
    "sips:a@b",
    "SIP:a@b",
    "Sips:a@b",
    "sip:[::1]:5060;lr",
    "sip:[2001:db8::1];transport=TCP",
    "sip:a:b@c:1;x=y?h=v&i=j",
    "sip:a@b;TRANSPORT=TCP;Lr",
    "sip:%61@b;p=%20",
    "sip:a%zz@b",
    "sip:a@b:65535",
    "sip:a@b:65536",
    "sip:a@b:00001",
    "sip:b",
    "sip:@b",
    "sip:a@",
    "sip:a@b;",
    "sip:a@b;=x",
    "tel:+15551234",
    "mailto:a@b",
]


def describe_params(params):
    return ([(name, value, params.is_quoted(name)) for name, value in params.items()],
            params.get("tag"), params.get("TAG"), params.get("branch"), "lr" in params,
            str(params))


def describe_uri(uri):
    if isinstance(uri, SipURI):
        return (uri.scheme, uri.user, uri.password, uri.host, uri.port,
                describe_params(uri.params), uri.headers, str(uri))
    return repr(uri)


def describe(value):
    if isinstance(value, NameAddr):
        return (describe_uri(value.uri), value.display_name, describe_params(value.params),
                value.star, str(value))
    if isinstance(value, Via):
        return (value.protocol, value.transport, value.host, value.port,
                describe_params(value.params), str(value))
    return describe_uri(value)


def outcome(parse, text):
    """@return: a description of what C{parse(text)} gives, or of its error."""
    try:
        return describe(parse(text))
    except ParseError as error:
        return ("error", error.reason, error.status)


def general_outcome(monkeypatch, parse, text):
    """@return: L{outcome} with every fast path switched off."""
    with monkeypatch.context() as patch:
        switch_fast_paths_off(patch)
        return outcome(parse, text)


def switch_fast_paths_off(patch):
    """Make every expression of a usual shape match nothing, for C{patch}'s span."""
    patch.setattr(headers_module, "_USUAL_NAME_ADDR", NEVER)
    patch.setattr(headers_module, "_USUAL_ADDR_SPEC", NEVER)
    patch.setattr(headers_module, "_USUAL_VIA", NEVER)
    patch.setattr(headers_module, "_USUAL_MEDIA_TYPES", NEVER)
    patch.setattr(uri_module, "_USUAL_SIP_URI", NEVER)


def mutations(texts, count, seed=4475):
    """@return: C{count} variants of C{texts}, with characters that matter added or removed."""
    rnd = random.Random(seed)
    alphabet = ' \t;=",\\<>:@[]?&%.ABCtag0123456789zZ*/'
    variants = []
    for _ in range(count):
        chars = list(rnd.choice(texts))
        for _ in range(rnd.randint(1, 3)):
            at = rnd.randrange(len(chars) + 1)
            action = rnd.random()
            if action < 0.4 or not chars:
                chars.insert(at, rnd.choice(alphabet))
            elif action < 0.7:
                del chars[min(at, len(chars) - 1)]
            else:
                chars[min(at, len(chars) - 1)] = rnd.choice(alphabet)
        variants.append("".join(chars))
    return variants


def contact(text, memo=None):
    return NameAddr.parse(text, allow_star=True, memo=memo)


@pytest.mark.parametrize("text", NAME_ADDRS)
@pytest.mark.parametrize("parse", [NameAddr.parse, contact])
def test_name_addr_fast_path_agrees(monkeypatch, parse, text):
    assert outcome(parse, text) == general_outcome(monkeypatch, parse, text)


@pytest.mark.parametrize("text", VIAS)
def test_via_fast_path_agrees(monkeypatch, text):
    assert outcome(Via.parse, text) == general_outcome(monkeypatch, Via.parse, text)


@pytest.mark.parametrize("text", URIS)
def test_uri_fast_path_agrees(monkeypatch, text):
    assert outcome(parse_uri, text) == general_outcome(monkeypatch, parse_uri, text)


@pytest.mark.parametrize("parse, texts", [
    (contact, NAME_ADDRS), (Via.parse, VIAS), (parse_uri, URIS)])
def test_fast_paths_agree_on_mutated_values(monkeypatch, parse, texts):
    for text in mutations(texts, 1500):
        assert outcome(parse, text) == general_outcome(monkeypatch, parse, text), text


@pytest.mark.parametrize("parse, texts", [
    (NameAddr.parse, NAME_ADDRS), (contact, NAME_ADDRS), (parse_uri, URIS)])
def test_remembered_groups_read_as_the_expression_does(parse, texts):
    """
    A parser's memo of the usual groups (the Request-URIs and addresses a
    client sends again and again) gives what matching gives, on the first
    reading, the second (noted), and the ones after (from the memo).
    """
    memo = RecurringMemo(4)
    for text in texts + mutations(texts, 300):
        expected = outcome(parse, text)
        for _ in range(3):
            assert outcome(lambda value: parse(value, memo=memo), text) == expected, text


TORTURE = Path(__file__).parent / "torture"


def read_everything(data):
    """
    @return: a description of all a reader can get from the message
        C{data}: the error that refuses it, or its Request-URI, every typed
        header (value or error) and what validate_request says of it.
    """
    try:
        message = Parser().parse(data)
    except ParseError as error:
        return ("error", error.reason, error.status)
    read = {}
    if isinstance(message, Request):
        read["uri"] = describe_uri(message.uri)
        try:
            validate_request(message)
            read["validate"] = "valid"
        except ParseError as error:
            read["validate"] = (error.reason, error.status)
    for key, header in _TYPED_HEADERS.items():
        try:
            value = header.__get__(message)
        except ParseError as error:
            value = ("error", error.reason, error.status)
        if isinstance(value, list):
            value = [describe(item) for item in value]
        elif isinstance(value, (NameAddr, Via, SipURI)):
            value = describe(value)
        else:
            value = str(value)
        read[key] = value
    return read


@pytest.mark.parametrize("path", sorted(TORTURE.glob("*.sip")), ids=lambda path: path.stem)
def test_rfc4475_messages_read_the_same_without_the_fast_paths(monkeypatch, path):
    """
    Every RFC 4475 torture message, each header of it, reads the same
    through the fast paths as through the general parser alone: the
    expressions of the usual shapes are a shortcut, never a second grammar.
    """
    data = path.read_bytes()
    with monkeypatch.context() as patch:
        switch_fast_paths_off(patch)
        general = read_everything(data)
    assert read_everything(data) == general


def test_the_usual_shapes_are_taken_by_the_fast_paths(monkeypatch):
    """The values of a SIPp OPTIONS do not fall back to the general paths."""
    def general(*args, **kwargs):
        raise AssertionError("general path taken")
    monkeypatch.setattr(headers_module, "parse_uri", general)
    monkeypatch.setattr(headers_module, "parse_params", general)
    monkeypatch.setattr(uri_module, "_parse_sip_uri", general)
    for text in ("sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001",
                 '"Alice" <sips:alice@[2001:db8::1]:5061;transport=tls>;tag=a;lr',
                 "sip:sipp@127.0.0.1:5061;expires=60"):
        NameAddr.parse(text)
    Via.parse("SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0;rport")
    parse_uri("sip:service@127.0.0.1:5060")


def test_a_usual_name_addr_parses_as_one_value():
    """What validate_request lets through on is_usual alone parses, in a list too."""
    for text in NAME_ADDRS + mutations(NAME_ADDRS, 1500):
        if NameAddr.is_usual(text):
            NameAddr.parse(text)
            NameAddr.parse(text, allow_star=True)
            assert split_list(text) == [text.strip(" \t")], text


def test_port_number_matches_only_ports():
    port = re.compile(PORT_NUMBER)
    for number in range(100000):
        for text in (str(number), str(number).zfill(5)):
            if port.fullmatch(text):
                assert int(text) <= 65535, text
        assert bool(port.fullmatch(str(number))) == (number <= 65535)


def test_escapable_runs_match_what_the_plain_alternation_matches():
    chars = "a-z;"
    unrolled = re.compile(uri_module._escapable(chars))
    plain = re.compile(rf"(?:[{chars}]|%[0-9A-Fa-f]{{2}})+")
    rnd = random.Random(3261)
    for _ in range(3000):
        text = "".join(rnd.choice("ab;%4F:") for _ in range(rnd.randint(0, 8)))
        assert bool(unrolled.fullmatch(text)) == bool(plain.fullmatch(text)), text


# --- validate_request checks usual values without building them --------------

REQUEST = (
    "OPTIONS sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0;rport\r\n"
    "From: {from_}\r\n"
    "To: sut <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: 1-1234@127.0.0.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Contact: {contact}\r\n"
    "Content-Length: 0\r\n"
    "\r\n")


def request(from_="sipp <sip:sipp@127.0.0.1:5061>;tag=1", contact="sip:sipp@127.0.0.1:5061"):
    return parse_message(REQUEST.format(from_=from_, contact=contact).encode())


@pytest.mark.parametrize("from_, contact, reason", [
    ("sipp <sip:sipp@127.0.0.1:5061>;tag=1", "sip:sipp@127.0.0.1:5061", None),
    ('"A" <sip:a@b>;tag=1', "<sip:a@b>, <sip:c@d>;expires=60", None),
    ("sipp <sip:sipp@127.0.0.1:99999>;tag=1", "sip:a@b", "Bad From header"),
    ("sipp <sip:sipp@127.0.0.1>;tag=1", "sip:a@b:99999", "Bad Contact header"),
    ("sipp <sip:sipp@127.0.0.1>;tag=1", "<sip:a@b>,,<sip:c@d>", "Bad Contact header"),
    ("sipp sip:sipp@127.0.0.1;tag=1", "sip:a@b", "Bad From header"),
])
def test_validate_request_answers_as_when_it_built_every_header(from_, contact, reason):
    message = request(from_, contact)
    if reason is None:
        validate_request(message)
        assert message.from_ is not None and message.contact
    else:
        with pytest.raises(ParseError) as caught:
            validate_request(message)
        assert caught.value.reason == reason and caught.value.status == 400


def test_validate_request_reports_the_first_bad_header_in_message_order():
    message = request("sipp <sip:sipp@h:70000>", "sip:a@b:70000")
    with pytest.raises(ParseError, match="Bad From header"):
        validate_request(message)
    message.headers.remove("From")
    message.headers.add("From", "<sip:a@b>;tag=x")
    with pytest.raises(ParseError, match="Bad Contact header"):
        validate_request(message)


def test_a_repeated_single_header_is_refused_even_when_usual():
    message = request()
    message.headers.add("From", "<sip:a@b>;tag=2")
    with pytest.raises(ParseError, match="Multiple From headers"):
        validate_request(message)


# --- the index of fields by key and Params' lower-case names ------------------

def scanned(headers, name):
    key = headers_module.header_key(name)
    return [field[2] for field in headers._fields if field[0] == key]


def test_the_index_of_fields_follows_every_change():
    headers = request().headers
    headers.get("Via")      # builds the index
    other = Headers([("Route", "<sip:p1>"), ("Route", "<sip:p2>")])
    changes = [
        lambda: headers.add("Route", "<sip:r1>"),
        lambda: headers.add("v", "SIP/2.0/TCP h;branch=z9hG4bK2"),
        lambda: headers.set("Via", ["SIP/2.0/UDP a;branch=z9hG4bK3", "SIP/2.0/UDP b"]),
        lambda: headers.set("X-New", "1"),
        lambda: headers.remove("Contact"),
        lambda: headers.remove("Absent"),
        lambda: headers.copy_from(other, "Route"),
        lambda: headers.set("Route", "<sip:only>"),
    ]
    names = ("Via", "Route", "X-New", "Contact", "From", "Absent")
    for change in changes:
        change()
        for name in names:
            assert headers.field_values(name) == scanned(headers, name)
            assert (name in headers) == bool(scanned(headers, name))
        first_seen = list(dict.fromkeys(field[0] for field in headers._fields))
        assert list(headers._values_by_key()) == first_seen


def test_params_lookups_ignore_case_after_every_change():
    params = Params.from_validated(";Tag=a;lr;BRANCH=z9hG4bK1")
    assert params["tag"] == "a" and params.get("Branch") == "z9hG4bK1" and "LR" in params
    params["TAG"] = "b"
    assert list(params.items()) == [("Tag", "b"), ("lr", None), ("BRANCH", "z9hG4bK1")]
    params["Received"] = "192.0.2.1"
    del params["LR"]
    assert params.get("received") == "192.0.2.1" and "lr" not in params
    copy = params.copy()
    del copy["tag"]
    assert params["tag"] == "b" and "tag" not in copy and copy["branch"] == "z9hG4bK1"
    first = Params.from_validated(";Tag=1;tag=2")
    assert first.get("tag") == first["TAG"] == "1"
    assert Params.from_validated("") == Params() and not Params.from_validated("")


# --- the usual shapes of numbers and Accept lists -----------------------------

NUMBERS = ["0", "70", "99", "255", "256", "070", "0070", "", " ", "7 0", "-1", "+1", "٧٠",
           "4294967295", "4294967296", "000000000", "999999999", "1" * 11]


@pytest.mark.parametrize("header, limit", [
    (Message.max_forwards, 255), (Message.expires, 2 ** 32 - 1)])
def test_a_number_of_the_usual_shape_parses(header, limit):
    for text in NUMBERS + [str(number) for number in range(1000)]:
        if header.is_usual(text):
            assert header.parse(header.key, (text,)) == int(text) <= limit, text


ACCEPTS = ["application/sdp", "application/sdp, text/plain;charset=utf-8",
           "application/sdp,text/plain", "*/*", "text/*;q=0.5, */*;q=0.1",
           "application/sdp,", ",application/sdp", "application/sdp,,text/plain",
           "application", "application/", "/sdp", "a/b;c", "a/b;=c", 'a/b;c="d"',
           "a/b ; c=d", "a/b;c=d e", ""]


def test_an_accept_list_of_the_usual_shape_parses_as_the_general_path_reads_it():
    header = Message.accept
    for text in ACCEPTS + mutations(ACCEPTS, 1500):
        if ContentType.is_usual_list(text):
            values = header.parse(header.key, (text,))
            assert [str(value) for value in values] == \
                [value.strip(" \t") for value in text.split(",")], text


# --- what the parser files, and changes to it ---------------------------------

FOLDED = (
    b"OPTIONS sip:service@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n"
    b"v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-2\r\n"
    b"From: <sip:a@b>;tag=1\r\n"
    b"To: <sip:c@d>\r\n"
    b"Subject: a\r\n"
    b"  folded\r\n"
    b"\tagain\r\n"
    b"Call-ID: x\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n")


def test_the_index_the_parser_makes_is_the_index_of_its_fields():
    headers = parse_message(FOLDED).headers
    for name in ("Via", "From", "Subject", "Content-Length", "Absent"):
        assert headers.field_values(name) == scanned(headers, name)
    assert headers.field_values("Subject") == ["a folded again"]
    first_seen = list(dict.fromkeys(field[0] for field in headers._fields))
    assert list(headers._values_by_key()) == first_seen


def test_setting_a_header_of_one_field_puts_the_new_ones_where_it_was():
    message = request()
    message.headers.set("To", ["<sip:a@b>", "<sip:c@d>"])
    message.headers.set("Call-ID", "y")
    assert [name for name, _ in message.headers] == [
        "Via", "From", "To", "To", "Call-ID", "CSeq", "Contact", "Content-Length"]
    assert message.headers.field_values("To") == ["<sip:a@b>", "<sip:c@d>"]
    assert b"\r\nCall-ID: y\r\n" in bytes(message)


def test_params_copies_share_nothing_that_changes():
    parsed = Params.from_validated(";branch=z9hG4bK1;rport")
    copy = parsed.copy()
    copy["rport"] = "5060"
    copy["received"] = "192.0.2.1"
    assert str(parsed) == ";branch=z9hG4bK1;rport"
    assert str(copy) == ";branch=z9hG4bK1;rport=5060;received=192.0.2.1"
    again = copy.copy()
    del again["branch"]
    again.set("rport", "1", True)
    assert str(copy) == ";branch=z9hG4bK1;rport=5060;received=192.0.2.1"
    assert str(again) == ';rport="1";received=192.0.2.1'


def test_a_usual_name_addr_makes_its_uri_when_read_unless_one_is_set():
    value = NameAddr.parse("sipp <sip:sipp@127.0.0.1:5061;lr>;tag=1")
    assert str(value.uri) == "sip:sipp@127.0.0.1:5061;lr" and value.uri is value.uri
    value = NameAddr.parse("sipp <sip:sipp@127.0.0.1:5061>;tag=1")
    value.uri = parse_uri("sip:other@example.com")
    assert str(value) == '"sipp" <sip:other@example.com>;tag=1'
