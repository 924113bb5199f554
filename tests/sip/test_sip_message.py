"""Headers, typed header values, messages, serialization and make_response."""

import pytest

from resource_adaptors.sip.core.headers import (
    Challenge, ContentType, CSeq, Event, NameAddr, Params, SubscriptionState, Via)
from resource_adaptors.sip.core.message import (
    Headers, PreparedFields, Request, Response, answerable, make_response, validate_request)
from resource_adaptors.sip.core.parser import ParseError, parse_message
from resource_adaptors.sip.core.uri import AbsoluteURI, SipURI, parse_uri

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/TCP proxy.example.com:5070;branch=z9hG4bKnashds8;received=192.0.2.3\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Timestamp: 54\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>;expires=3600;q=0.7,"
    b" sip:a2@h;+sip.instance=\"<urn:x>\"\r\n"
    b"X-Unknown:  odd ;; value,, kept  \r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n")


def invite():
    return parse_message(INVITE)


# --- Headers ---------------------------------------------------------------

def test_header_names_in_any_case_and_form():
    headers = invite().headers
    top = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport"
    for name in ("v", "V", "via", "VIA", "Via"):
        assert headers.get(name) == top
        assert name in headers
    assert headers.get("i") == headers.get("call-id") == "a84b4c76e66710@pc33.atlanta.example.com"
    assert "Subject" not in headers and headers.get("s") is None


@pytest.mark.parametrize("compact, long", [
    ("i", "Call-ID"), ("m", "Contact"), ("e", "Content-Encoding"), ("l", "Content-Length"),
    ("c", "Content-Type"), ("f", "From"), ("s", "Subject"), ("k", "Supported"), ("t", "To"),
    ("v", "Via"), ("o", "Event"), ("u", "Allow-Events"), ("r", "Refer-To"),
    ("b", "Referred-By"), ("x", "Session-Expires"), ("y", "Identity"),
])
def test_every_compact_form(compact, long):
    headers = Headers([(compact, "value")])
    assert headers.get(long) == "value"
    assert list(headers) == [(long, "value")]     # written in the long form


def test_get_all_splits_list_headers_at_top_level_commas_only():
    headers = Headers([
        ("Contact", '"Doe, John" <sip:j@a;x=1,2>;q=0.5, <sip:k@b>'),
        ("Contact", "sip:l@c"),
        ("Allow", "INVITE, ACK ,BYE"),
    ])
    assert headers.get_all("m") == ['"Doe, John" <sip:j@a;x=1,2>;q=0.5', "<sip:k@b>", "sip:l@c"]
    assert headers.get("Contact") == '"Doe, John" <sip:j@a;x=1,2>;q=0.5'
    assert headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert headers.field_values("Allow") == ["INVITE, ACK ,BYE"]


@pytest.mark.parametrize("name, value", [
    ("WWW-Authenticate", 'Digest realm="a", nonce="b", qop="auth,auth-int"'),
    ("Authorization", 'Digest username="u", realm="a", response="c"'),
    ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
    ("Call-ID", "a,b"),
    ("Subject", "Hello, world"),
    ("User-Agent", "Softphone/1.0 (build 7, beta)"),
    ("Server", "Proxy/2 (comment with \"quotes, commas\")"),
    ("X-Unknown", "a, b"),
])
def test_headers_that_are_not_lists_are_never_split(name, value):
    headers = Headers([(name, value), (name, value)])
    assert headers.get_all(name) == [value, value]
    assert headers.get(name) == value


def test_an_empty_list_header_has_no_values_and_an_empty_element_is_an_error():
    assert Headers([("Supported", "")]).get_all("Supported") == []
    with pytest.raises(ParseError):
        Headers([("Allow", "INVITE,,BYE")]).get_all("Allow")


def test_add_set_remove_keep_order():
    headers = Headers([("Via", "a"), ("To", "t"), ("Via", "b"), ("From", "f")])
    headers.add("v", "c")
    assert headers.get_all("Via") == ["a", "b", "c"]
    headers.set("VIA", "d")
    assert list(headers) == [("Via", "d"), ("To", "t"), ("From", "f")]
    headers.set("Route", ["<sip:p1;lr>", "<sip:p2;lr>"])
    assert list(headers)[-2:] == [("Route", "<sip:p1;lr>"), ("Route", "<sip:p2;lr>")]
    headers.remove("via")
    headers.remove("Subject")       # absent: nothing happens
    assert [name for name, value in headers] == ["To", "From", "Route", "Route"]
    assert len(headers) == 4


def test_extend_appends_in_order_and_forgets_typed_values():
    headers = Headers([("Expires", "10"), ("Via", "a")])
    request = Request("OPTIONS", "sip:a@example.com", headers)
    assert request.expires == 10
    headers.extend([("v", "b"), ("Subject", "s"), ("Expires", "20")])
    headers.extend([])
    assert list(headers) == [("Expires", "10"), ("Via", "a"), ("Via", "b"), ("Subject", "s"),
                             ("Expires", "20")]
    assert headers.get_all("Via") == ["a", "b"]
    with pytest.raises(ParseError):
        request.expires     # noqa: B018 -- two fields now: the cached 10 is gone
    with pytest.raises(ValueError):
        headers.extend([("Subject", "ok"), ("Subject", "a\r\nVia: forged")])
    assert len(headers) == 5    # nothing added


def test_prepared_fields_are_added_as_pairs_are():
    prepared = PreparedFields([("Allow", "OPTIONS, INVITE"), ("k", "x"), ("Supported", "")])
    assert list(prepared) == [("Allow", "OPTIONS, INVITE"), ("Supported", "x"), ("Supported", "")]
    assert len(prepared) == 3
    headers = Headers([("Supported", "100rel")])
    request = Request("OPTIONS", "sip:a@example.com", headers)
    assert request.supported == ["100rel"]
    headers.extend(prepared)
    headers.extend(prepared)
    assert request.supported == ["100rel", "x", "x"]      # the typed value was made again
    assert headers.get_all("Allow") == ["OPTIONS", "INVITE", "OPTIONS", "INVITE"]
    with pytest.raises(ValueError):
        PreparedFields([("Subject", "a\r\nVia: forged")])


def test_values_set_in_code_cannot_break_the_framing():
    headers = Headers()
    for bad in ("a\r\nVia: forged", "a\nb", "a\rb"):
        with pytest.raises(ValueError):
            headers.add("Subject", bad)
        with pytest.raises(ValueError):
            headers.set("Subject", [bad])
    with pytest.raises(ValueError):
        Headers([("Subject", "a\r\n")])
    assert len(headers) == 0


def test_copy_from_copies_received_fields_byte_for_byte():
    received = invite().headers
    copy = Headers()
    copy.copy_from(received, "Via")
    assert bytes(Response(200, headers=copy)).startswith(
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
        b"Via: SIP/2.0/TCP proxy.example.com:5070;branch=z9hG4bKnashds8;received=192.0.2.3\r\n")


# --- Params ------------------------------------------------------------------

def test_params_are_an_ordered_mapping_ignoring_case():
    params = Params([("Tag", "x"), ("lr", None)], branch="z9hG4bK1")
    assert params["tag"] == params.get("TAG") == "x"
    assert "LR" in params and params["lr"] is None
    assert params.get("absent", "default") == "default"
    assert list(params) == ["Tag", "lr", "branch"]
    params["TAG"] = "y"
    del params["LR"]
    assert str(params) == ";Tag=y;branch=z9hG4bK1"
    assert len(params) == 2
    with pytest.raises(KeyError):
        params["lr"]


def test_param_values_needing_quotes_get_them():
    params = Params(text="two words", empty="", token="abc")
    assert str(params) == ';text="two words";empty="";token=abc'
    params.set("token", "abc", quoted=True)
    assert params.is_quoted("token") and str(params).endswith(';token="abc"')


# --- typed values ------------------------------------------------------------

def test_typed_values_of_a_parsed_request():
    request = invite()
    top, second = request.via
    assert (top.protocol, top.transport, top.host, top.port) == (
        "SIP/2.0", "UDP", "pc33.atlanta.example.com", None)
    assert (top.branch, top.rport, top.received) == ("z9hG4bK776asdhds", True, None)
    assert second.sent_by == ("proxy.example.com", 5070)
    assert second.received == "192.0.2.3" and second.rport is None
    assert request.from_.display_name == "Alice A."
    assert request.from_.tag == "1928301774"
    assert request.to.display_name == "Bob" and request.to.tag is None
    assert str(request.to.uri) == "sip:bob@biloxi.example.com"
    assert request.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (request.cseq.number, request.cseq.method) == (314159, "INVITE")
    assert request.max_forwards == 70
    first, second_contact = request.contact
    assert (first.expires, first.q) == (3600, 0.7)
    assert second_contact.params["+sip.instance"] == "<urn:x>"
    assert request.content_type.mime == "application/sdp"
    assert request.content_length == 4
    assert request.expires is None and request.event is None
    assert request.route == [] and request.allow == []


def test_typed_values_are_cached():
    request = invite()
    assert request.via is request.via
    assert request.to is request.to


def test_a_malformed_header_raises_on_access_only():
    request = parse_message(INVITE.replace(b"Content-Type: application/sdp", b"Content-Type: sdp"))
    with pytest.raises(ParseError) as caught:
        request.content_type
    assert caught.value.reason == "Bad Content-Type header"
    assert caught.value.status == 400


def test_a_single_value_header_repeated_is_an_error():
    request = Request("OPTIONS", "sip:a@b", Headers([("Expires", "1"), ("Expires", "2")]))
    with pytest.raises(ParseError, match="Multiple Expires"):
        request.expires


def test_assigning_a_typed_value_rewrites_the_header_and_changing_headers_drops_the_cache():
    request = invite()
    vias = request.via
    vias[0].received = "192.0.2.9"
    vias[0].rport = 40000
    request.via = vias
    assert request.headers.get_all("Via")[0] == (
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport=40000"
        ";received=192.0.2.9")
    assert request.via[0].rport == 40000
    request.headers.set("Max-Forwards", "69")
    assert request.max_forwards == 69
    request.max_forwards = 10
    assert request.headers.get("Max-Forwards") == "10"
    request.expires = None
    request.event = None
    assert "Expires" not in request.headers and request.event is None
    request.allow = ["INVITE", "ACK"]
    assert request.headers.get("Allow") == "INVITE"
    assert request.headers.field_values("Allow") == ["INVITE, ACK"]


def test_rport_as_the_server_fills_it_in():
    via = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bKa")
    assert via.rport is True
    via.received = "198.51.100.7"
    via.rport = 61000
    assert str(via) == ("SIP/2.0/UDP 192.0.2.1:5060;rport=61000;branch=z9hG4bKa"
                        ";received=198.51.100.7")
    assert Via.parse(str(via)).rport == 61000


@pytest.mark.parametrize("text, transport, host, port", [
    ("SIP/2.0/UDP [2001:db8::9]:5060;branch=z9hG4bK1", "UDP", "[2001:db8::9]", 5060),
    ("SIP / 2.0 / TCP host.example.com : 5070 ; branch = z9hG4bK2", "TCP", "host.example.com",
     5070),
    ("SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK3", "WSS", "df7jal23ls0d.invalid", None),
])
def test_via_forms(text, transport, host, port):
    via = Via.parse(text)
    assert (via.transport, via.host, via.port) == (transport, host, port)
    assert via.branch.startswith("z9hG4bK")


@pytest.mark.parametrize("text", [
    "SIP/2.0/UDP", "SIP/2.0 host", "SIP/2.0/UDP host;;branch=x", "SIP/2.0/UDP host:99999",
    "SIP/2.0/UDP host extra", "SIP/2.0/UDP host;branch", "garbage",
])
def test_malformed_vias(text):
    if text == "SIP/2.0/UDP host;branch":
        assert Via.parse(text).branch is None      # a flag parameter is legal
        return
    with pytest.raises(ParseError):
        Via.parse(text)


def test_a_via_built_in_code():
    via = Via("TCP", "192.0.2.1", 5061, Params(branch="z9hG4bKabc"))
    assert str(via) == "SIP/2.0/TCP 192.0.2.1:5061;branch=z9hG4bKabc"
    assert via.sent_by == ("192.0.2.1", 5061)


def test_name_addr_forms():
    spec = NameAddr.parse("sip:bob@example.com;tag=a6c85cf")
    assert str(spec.uri) == "sip:bob@example.com" and spec.tag == "a6c85cf"
    assert not spec.uri.params     # RFC 3261 §20.10: the param is the header's
    quoted = NameAddr.parse('"Bob \\"the\\" Builder" <sip:bob@example.com;transport=tcp>;tag=1')
    assert quoted.display_name == 'Bob "the" Builder'
    assert quoted.uri.transport == "tcp" and quoted.tag == "1"
    tokens = NameAddr.parse("Bob  Smith<sip:bob@example.com>")
    assert tokens.display_name == "Bob  Smith"
    opaque = NameAddr.parse("<tel:+1-201-555-0123>")
    assert isinstance(opaque.uri, AbsoluteURI)


def test_name_addr_serializes_canonically():
    name_addr = NameAddr(parse_uri("sip:bob@example.com"), 'Bob "B"', Params(tag="x"))
    assert str(name_addr) == '"Bob \\"B\\"" <sip:bob@example.com>;tag=x'
    assert NameAddr.parse(str(name_addr)).display_name == 'Bob "B"'
    bare = NameAddr(parse_uri("sip:bob@example.com"))
    bare.tag = "t1"
    assert str(bare) == "<sip:bob@example.com>;tag=t1"


@pytest.mark.parametrize("text", [
    '"unterminated <sip:a@b>', "Bell, Alexander <sip:a@b>", '"x" < sip:a@b >', "<sip:a@b",
    "sip:a@b?Route=x", "sip:a@b c", '"x" sip:a@b', "*", "<sip:a@b>;;",
])
def test_malformed_name_addrs(text):
    with pytest.raises(ParseError):
        NameAddr.parse(text)


def test_the_star_contact():
    request = Request("REGISTER", "sip:example.com", Headers([("Contact", "*"), ("Expires", "0")]))
    (star,) = request.contact
    assert star.star and star.uri is None and str(star) == "*"
    assert request.expires == 0


def test_contact_expires_and_q_out_of_range():
    with pytest.raises(ParseError):
        NameAddr.parse("<sip:a@b>;expires=4294967296").expires
    with pytest.raises(ParseError):
        NameAddr.parse("<sip:a@b>;q=1.5").q


def test_cseq():
    assert str(CSeq.parse(" 0009 \t INVITE ")) == "9 INVITE"
    assert CSeq.parse("2147483647 ACK").number == 2 ** 31 - 1
    for text in ("2147483648 INVITE", "1", "1 INVITE x", "-1 INVITE", "one INVITE", "1 IN VITE"):
        with pytest.raises(ParseError):
            CSeq.parse(text)


def test_event_and_subscription_state():
    event = Event.parse("presence;id=1234")
    assert (event.package, event.id, str(event)) == ("presence", "1234", "presence;id=1234")
    state = SubscriptionState.parse("terminated;reason=timeout;retry-after=30")
    assert (state.state, state.reason, state.retry_after, state.expires) == (
        "terminated", "timeout", 30, None)
    assert SubscriptionState.parse("active;expires=600").expires == 600
    built = SubscriptionState(state="pending", params=Params(expires="60"))
    assert (str(built), built.state, built.expires) == ("pending;expires=60", "pending", 60)
    assert str(Event(package="dialog", params=Params(id="7"))) == "dialog;id=7"
    with pytest.raises(ParseError):
        Event.parse("pres ence")


def test_content_type_and_accept():
    content_type = ContentType.parse('Multipart/Mixed ; boundary="a b"')
    assert content_type.mime == "multipart/mixed"
    assert content_type.params["boundary"] == "a b"
    assert str(content_type) == 'Multipart/Mixed;boundary="a b"'
    request = Request("OPTIONS", "sip:a@b", Headers([("Accept", "application/sdp;level=1, */*")]))
    assert [accept.mime for accept in request.accept] == ["application/sdp", "*/*"]
    with pytest.raises(ParseError):
        ContentType.parse("application")


def test_challenges_and_credentials():
    challenge = Challenge.parse('Digest realm="atlanta.example.com", qop="auth,auth-int", '
                                'nonce="ea9c8e88df84f1cec4341ae6cbe5a359", stale=FALSE, '
                                'algorithm=MD5')
    assert challenge.scheme == "Digest"
    assert challenge.params["qop"] == "auth,auth-int" and challenge.params["stale"] == "FALSE"
    assert Challenge.parse(str(challenge)).params == challenge.params
    unknown = Challenge.parse("NoOneKnowsThisScheme opaque-data=here")
    assert (unknown.scheme, unknown.params["opaque-data"]) == ("NoOneKnowsThisScheme", "here")
    built = Challenge("Digest", Params(realm="example.com", nonce="abc", algorithm="MD5",
                                       qop="auth"))
    assert str(built) == 'Digest realm="example.com", nonce="abc", algorithm=MD5, qop=auth'
    request = Request("REGISTER", "sip:example.com", Headers(
        [("WWW-Authenticate", str(built)), ("WWW-Authenticate", "Other x=1")]))
    assert [c.scheme for c in request.www_authenticate] == ["Digest", "Other"]


# --- messages and serialization ----------------------------------------------

def test_a_parsed_message_serializes_byte_for_byte():
    assert bytes(invite()) == INVITE


def test_folded_and_unknown_fields_are_kept_raw():
    data = (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\n"
            b"From: <sip:c@d>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n"
            b"Subject: first line\r\n\t second line\r\nX-Y  :  ;;,,\r\nl: 0\r\n\r\n")
    request = parse_message(data)
    assert request.headers.get("Subject") == "first line second line"
    assert request.headers.get("X-Y") == ";;,,"
    assert bytes(request) == data


def test_content_length_is_always_the_body_length():
    request = invite()
    request.body = b"v=0\r\no=x\r\n"
    assert b"\r\nContent-Length: 10\r\n" in bytes(request)
    assert bytes(request).endswith(b"\r\n\r\nv=0\r\no=x\r\n")
    built = Request("OPTIONS", "sip:a@b", Headers([("Via", "SIP/2.0/UDP h;branch=z9hG4bK1")]))
    assert bytes(built) == (b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
                            b"Content-Length: 0\r\n\r\n")


def test_a_request_built_in_code():
    request = Request("SUBSCRIBE", SipURI(user="bob", host="example.com"))
    request.via = [Via("UDP", "192.0.2.1", 5060, Params(branch="z9hG4bK77"))]
    request.max_forwards = 70
    request.to = NameAddr(parse_uri("sip:bob@example.com"))
    request.from_ = NameAddr(parse_uri("sip:alice@example.com"), params=Params(tag="f1"))
    request.call_id = "c1@192.0.2.1"
    request.cseq = CSeq(1, "SUBSCRIBE")
    request.event = Event("presence")
    request.expires = 3600
    request.supported = ["eventlist"]
    assert bytes(request) == (
        b"SUBSCRIBE sip:bob@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK77\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: <sip:bob@example.com>\r\n"
        b"From: <sip:alice@example.com>;tag=f1\r\n"
        b"Call-ID: c1@192.0.2.1\r\n"
        b"CSeq: 1 SUBSCRIBE\r\n"
        b"Event: presence\r\n"
        b"Expires: 3600\r\n"
        b"Supported: eventlist\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert parse_message(bytes(request)).event.package == "presence"


def test_responses():
    assert Response(200).reason == "OK"
    assert Response(481).reason == "Call/Transaction Does Not Exist"
    assert Response(299).reason == ""
    assert Response(200, "Fine").reason == "Fine"
    assert (Response(180).is_final, Response(180).status_class) == (False, 1)
    assert (Response(603).is_final, Response(603).status_class) == (True, 6)
    assert bytes(Response(100, "Trying")) == b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n"


def test_a_request_uri_given_as_text_is_parsed():
    assert isinstance(Request("OPTIONS", "sip:a@b").uri, SipURI)
    assert isinstance(Request("OPTIONS", "tel:+1234").uri, AbsoluteURI)


# --- make_response -----------------------------------------------------------

def test_make_response_copies_what_rfc_3261_says():
    request = invite()
    response = make_response(request, 180, to_tag="as6151ad25")
    assert bytes(response) == (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport\r\n"
        b"Via: SIP/2.0/TCP proxy.example.com:5070;branch=z9hG4bKnashds8;received=192.0.2.3\r\n"
        b"To: Bob <sip:bob@biloxi.example.com>;tag=as6151ad25\r\n"
        b"From: \"Alice A.\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n")
    assert response.to.tag == "as6151ad25"
    assert [via.branch for via in response.via] == ["z9hG4bK776asdhds", "z9hG4bKnashds8"]


def test_make_response_keeps_an_existing_to_tag_and_copies_timestamp_for_100():
    request = parse_message(INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>",
                                           b"t: sip:bob@biloxi.example.com;tag=existing"))
    response = make_response(request, 100, to_tag="new")
    assert response.to.tag == "existing"
    assert response.headers.get("Timestamp") == "54"
    assert response.reason == "Trying"
    assert "Timestamp" not in make_response(request, 200).headers


def test_make_response_to_an_addr_spec_to_adds_a_header_parameter():
    request = parse_message(INVITE.replace(b"To: Bob <sip:bob@biloxi.example.com>",
                                           b"To: sip:bob@biloxi.example.com"))
    response = make_response(request, 486, "Busy", to_tag="b1")
    assert response.headers.get("To") == "sip:bob@biloxi.example.com;tag=b1"
    assert response.to.tag == "b1" and not response.to.uri.params
    assert response.reason == "Busy"


# --- answerable and validate_request -----------------------------------------

def test_answerable_needs_a_readable_via_and_the_copied_headers():
    assert answerable(invite())
    assert not answerable(Request("OPTIONS", "sip:a@b", Headers([("Via", "SIP/2.0/UDP h")])))
    broken = parse_message(INVITE)
    broken.headers.set("Via", "SIP/2.0/UDP h;;")
    assert not answerable(broken)


def test_validate_request_accepts_a_good_request():
    validate_request(invite(), methods={"INVITE", "ACK"}, content_types={"application/sdp"})


@pytest.mark.parametrize("change, kwargs, status, reason", [
    ((b"CSeq: 314159 INVITE", b"CSeq: 314159 OPTIONS"), {}, 400,
     "CSeq method does not match the request"),
    ((b"INVITE sip:bob@biloxi.example.com", b"INVITE tel:+1234"), {}, 416,
     "Unsupported URI Scheme"),
    ((b"", b""), {"methods": {"OPTIONS"}}, 501, "Not Implemented"),
    ((b"", b""), {"content_types": {"text/plain"}}, 415, "Unsupported Media Type"),
    ((b"Timestamp: 54", b"Expires: soon"), {}, 400, "Bad Expires header"),
    ((b"Max-Forwards: 70", b"Max-Forwards: 256"), {}, 400, "Bad Max-Forwards header"),
    ((b"To: Bob <sip", b"To: Bob, Jr <sip"), {}, 400, "Bad To header"),
    # Found by the fuzz test: a second tag without a value is a second tag.
    ((b";tag=1928301774", b";tag=1928301774;tag"), {}, 400, "Bad From header"),
])
def test_validate_request_refusals(change, kwargs, status, reason):
    request = parse_message(INVITE.replace(*change))
    with pytest.raises(ParseError) as caught:
        validate_request(request, **kwargs)
    assert (caught.value.status, caught.value.reason) == (status, reason)
    assert caught.value.request is request
    answer = make_response(caught.value.request, caught.value.status, caught.value.reason)
    assert bytes(answer).startswith(f"SIP/2.0 {status} {reason}\r\n".encode())


def test_validate_request_of_a_request_that_cannot_be_answered():
    request = parse_message(INVITE)
    request.headers.set("Via", "SIP/2.0/UDP h;;")
    with pytest.raises(ParseError) as caught:
        validate_request(request)
    assert caught.value.reason == "Bad Via header" and caught.value.request is None


@pytest.mark.parametrize("value, expires", [
    ("3600", 3600), ("4294967295", 4294967295), ("4294967296", None),
    ("1099511627776", None), ("000000000000000000000000042", 42)])
def test_an_expires_out_of_range_reads_as_absent(value, expires):
    request = Request("SUBSCRIBE", "sip:a@b", Headers([("Expires", value)]))
    assert request.expires == expires


def test_other_numbers_over_their_limit_are_refused():
    request = Request("OPTIONS", "sip:a@b", Headers([("Max-Forwards", "256"),
                                                    ("Min-Expires", "4294967296")]))
    for name in ("max_forwards", "min_expires"):
        with pytest.raises(ParseError):
            getattr(request, name)
