"""
The SIP torture test messages of RFC 4475, kept byte-exact in
C{tests/sip/torture/<name>.sip}.

Which check answers each invalid message:

  - L{parse_message} (framing, start line, required headers, Via, CSeq):
    badinv01, clerr, ncl, scalar02, scalarlg, ltgtruri, lwsruri, lwsstart,
    trws, escruri, badvers, bigcode, insuf, multi01, mcl01;
  - L{validate_request}, which the transaction user runs on every request it
    handles (method, Request-URI scheme, CSeq method, every typed header,
    body type): quotbal, regbadct, badaspec, baddn, mismatch01, mismatch02,
    unkscm, novelsc, invut;
  - the stream parser, for the framing errors that break a stream: ncl
    (and clerr, which a stream can only wait for).

baddate is accepted on purpose: RFC 4475 §3.1.2.12 says an element should
not reject it unless it uses the Date, and this stack never reads Date.
"""

from pathlib import Path

import pytest

from resource_adaptors.sip.core.message import Request, Response, make_response, validate_request
from resource_adaptors.sip.core.parser import FramingError, ParseError, StreamParser, parse_message
from resource_adaptors.sip.core.uri import AbsoluteURI, SipURI, parse_uri

TORTURE = Path(__file__).parent / "torture"

# What a user agent server of this stack implements, for validate_request.
METHODS = {"INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "SUBSCRIBE", "NOTIFY",
           "PUBLISH", "MESSAGE"}
CONTENT_TYPES = {"application/sdp", "multipart/mixed"}


def load(name):
    return (TORTURE / f"{name}.sip").read_bytes()


def parse(name):
    return parse_message(load(name))


def refusal(request, **checks):
    """@return: the ParseError with which validate_request refuses C{request}."""
    with pytest.raises(ParseError) as caught:
        validate_request(request, **checks)
    return caught.value


def valid(name):
    """Parse, check the message passes validate_request, and round-trips."""
    message = parse(name)
    if isinstance(message, Request):
        validate_request(message)
    assert parse_message(bytes(message)).headers.get_all("Via") == message.headers.get_all("Via")
    return message


# --- RFC 4475 §3.1.1: valid messages -----------------------------------------

def test_wsinv_short_tortuous_invite():
    request = valid("wsinv")
    assert request.method == "INVITE"
    assert (request.uri.user, request.uri.host) == ("vivekg", "chair-dnrc.example.com")
    assert list(request.uri.params.items()) == [("unknownparam", None)]
    assert request.to.tag == "1918181833n" and request.to.uri.host == "chair-dnrc.example.com"
    assert request.from_.display_name == 'J Rosenberg \\"'
    assert request.from_.tag == "98asjd8"
    assert request.max_forwards == 68
    assert request.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (request.cseq.number, request.cseq.method) == (9, "INVITE")
    assert [(via.transport, via.host, via.branch) for via in request.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239")]
    assert request.headers.get("Subject") == ""
    assert request.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert request.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    (route,) = request.route
    assert list(route.uri.params.items()) == [
        ("lr", None), ("unknownwith", "value"), ("unknown-no-value", None)]
    (contact,) = request.contact
    assert contact.display_name == 'Quoted string ""'
    assert (contact.params["newparam"], contact.params["secondparam"], contact.q) == (
        "newvalue", None, 0.33)
    assert request.content_type.mime == "application/sdp" and len(request.body) == 150
    assert bytes(request) == load("wsinv")


def test_intmeth_wide_range_of_valid_characters():
    request = valid("intmeth")
    method = "!interesting-Method0123456789_*+`.%indeed'~"
    assert request.method == method and request.cseq.method == method
    assert request.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert request.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert request.uri.host == "example.com"
    assert request.via[0].branch == "z9hG4bK-.!%66*_+`'~"
    assert request.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert request.to.uri.user == request.uri.user
    assert request.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert request.from_.params["fromParam''~+*_!.-%"] == "работающий"
    assert request.from_.tag == "_token~1'+`*%!-."
    assert request.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert request.max_forwards == 255
    assert request.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert bytes(request) == load("intmeth")
    # A user agent answers an unknown method with 501.
    assert refusal(request, methods=METHODS).status == 501


def test_esc01_valid_use_of_escaping():
    request = valid("esc01")
    assert request.uri.user == "sips%3Auser%40example.com" and request.uri.host == "example.net"
    assert request.to.uri.user == "%75se%72"
    assert request.to.uri.equivalent(SipURI(user="user", host="example.com"))
    assert request.from_.uri.user == "I%20have%20spaces" and request.from_.tag == "938"
    assert request.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    (contact,) = request.contact
    assert contact.uri.user == "cal%6Cer"
    assert list(contact.uri.params.items()) == [("%6C%72", None), ("n%61me", "v%61lue%25%34%31")]
    assert contact.uri.equivalent(parse_uri("sip:caller@host5.example.net;lr;name=value%2541"))
    assert request.content_type.mime == "application/sdp" and len(request.body) == 150


def test_escnull_escaped_nulls_in_uris():
    request = valid("escnull")
    assert request.to.uri.user == "null-%00-null"
    assert request.from_.tag == "839923423"
    first, second = request.contact
    assert (first.uri.user, second.uri.user) == ("%00", "%00%00")
    assert not first.uri.equivalent(second.uri)
    assert request.content_length == 0


def test_esc02_percent_that_is_not_an_escape():
    request = valid("esc02")
    assert request.method == "RE%47IST%45R" and request.cseq.method == "RE%47IST%45R"
    assert request.to.display_name == request.from_.display_name == "%Z%45"
    assert request.via[0].branch == "z9hG4bK209%fzsnel234"
    assert [str(contact.uri) for contact in request.contact] == [
        "sip:alias1@host1.example.com", "sip:alias3@host3.example.com"]
    assert request.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert refusal(request, methods=METHODS).status == 501


def test_lwsdisp_no_space_before_the_bracket():
    request = valid("lwsdisp")
    assert request.from_.display_name == "caller" and request.from_.tag == "323"
    assert str(request.from_.uri) == "sip:caller@example.com"


def test_longreq_long_values():
    request = valid("longreq")
    assert request.to.display_name.startswith("I have a user name of extremeextreme")
    assert request.to.uri.port == 6000
    assert request.to.uri.params["unknownparam1"] == "very" + "long" * 20 + "value"
    assert request.to.uri.params["longparam" + "name" * 25] == "shortvalue"
    assert request.to.uri.params["very" + "long" * 25 + "ParameterNameWithNoValue"] is None
    assert request.from_.tag == "12" + "982" * 50 + "424"
    assert request.from_.params["unknownValueless" + "paramname" * 10] is None
    assert request.call_id == "longreq.one" + "really" * 20 + "longcallid"
    vias = request.via
    assert len(vias) == 34
    assert [via.host for via in vias[:33]] == [
        f"sip{number}.example.com" for number in range(33, 0, -1)]
    assert vias[33].received == "192.0.2.5"
    assert vias[33].branch == "very" + "long" * 50 + "branchvalue"
    assert request.headers.get("Unknown-" + "Long" * 20 + "-Name").endswith("-parameter-value")
    assert request.content_length == 150 and len(request.body) == 150


def test_dblreq_extra_octets_in_a_datagram_are_ignored():
    request = valid("dblreq")
    assert request.method == "REGISTER" and request.body == b""
    assert request.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert b"INVITE" not in bytes(request)


def test_semiuri_semicolon_in_the_user_part():
    request = valid("semiuri")
    assert request.uri.user == "user;par=u%40example.net"
    assert request.uri.host == "example.com" and not request.uri.params
    assert [accept.mime for accept in request.accept] == [
        "application/sdp", "application/pkcs7-mime", "multipart/mixed", "multipart/signed",
        "message/sip", "message/sipfrag"]


def test_transports_unknown_transports():
    request = valid("transports")
    assert [via.transport for via in request.via] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert request.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_multipart_body_with_binary_content():
    request = valid("mpart01")
    assert request.content_type.mime == "multipart/mixed"
    assert request.content_type.params["boundary"] == "7a9cbec02ceef655"
    assert len(request.body) == 553 and b"\x00" in request.body
    assert request.body.endswith(b"--7a9cbec02ceef655--\r\n")
    assert request.via[0].rport is True and request.via[0].port == 5070
    assert request.route[0].uri.port == 5080
    assert request.headers.get("User-Agent") == "SIPimp.org/0.2.5 (curses)"
    assert request.headers.get("y").startswith("r5mwreLuyDRYBi")
    validate_request(request, methods=METHODS, content_types=CONTENT_TYPES)


def test_unreason_unusual_reason_phrase():
    response = valid("unreason")
    assert response.status == 200
    assert response.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert response.to.tag == "2229" and len(response.body) == 154
    assert bytes(response) == load("unreason")


def test_noreason_empty_reason_phrase():
    response = valid("noreason")
    assert (response.status, response.reason, response.is_final) == (100, "", False)
    assert bytes(response) == load("noreason")


# --- RFC 4475 §3.1.2: invalid messages ---------------------------------------

@pytest.mark.parametrize("name, status, reason, answerable", [
    ("badinv01", 400, "Bad Via header", False),
    ("clerr", 400, "Content-Length larger than the message", True),
    ("ncl", 400, "Bad Content-Length", True),
    ("scalar02", 400, "Bad CSeq header", True),
    ("scalarlg", 400, "Bad CSeq header", False),       # a response: dropped
    ("ltgtruri", 400, "Bad Request-URI", True),
    ("lwsruri", 400, "Bad request line", False),
    ("lwsstart", 400, "Bad request line", False),
    ("trws", 400, "Bad request line", False),
    ("escruri", 400, "Headers in the Request-URI", True),
    ("badvers", 505, "Version Not Supported", True),
    ("bigcode", 400, "Bad status code", False),         # a response: dropped
])
def test_invalid_messages_refused_by_the_parser(name, status, reason, answerable):
    with pytest.raises(ParseError) as caught:
        parse(name)
    error = caught.value
    assert (error.status, error.reason) == (status, reason)
    assert (error.request is not None) == answerable
    if answerable:
        # The transport answers statelessly, copying what it could not parse.
        answer = bytes(make_response(error.request, error.status, error.reason))
        assert answer.startswith(f"SIP/2.0 {status} {reason}\r\n".encode())
        via = error.request.headers.field_values("Via")[0].encode()
        assert answer.count(via) == 1 and load(name).count(via) == 1


@pytest.mark.parametrize("name, status, reason", [
    ("quotbal", 400, "Bad To header"),
    ("regbadct", 400, "Bad Contact header"),
    ("badaspec", 400, "Bad To header"),
    ("baddn", 400, "Bad From header"),
    ("mismatch01", 400, "CSeq method does not match the request"),
    ("mismatch02", 501, "Not Implemented"),
])
def test_invalid_requests_refused_by_validate_request(name, status, reason):
    request = parse(name)
    error = refusal(request, methods=METHODS)
    assert (error.status, error.reason, error.request) == (status, reason, request)


def test_mismatch02_without_a_method_list_is_a_400():
    assert refusal(parse("mismatch02")).status == 400


def test_scalar02_other_scalars_out_of_range():
    request = parse_message(load("scalar02").replace(b"36893488147419103232", b"1"))
    with pytest.raises(ParseError):
        request.max_forwards
    assert request.expires is None      # taken as absent, as RFC 4475 allows
    with pytest.raises(ParseError):
        request.contact[0].expires
    assert refusal(request).reason == "Bad Max-Forwards header"


def test_baddate_is_accepted_and_its_date_kept():
    request = valid("baddate")
    assert request.headers.get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"
    assert b"\r\nDate: Fri, 01 Jan 2010 16:00:00 EST\r\n" in bytes(request)


def test_clerr_on_a_stream_waits_for_the_rest():
    parser = StreamParser()
    assert parser.feed(load("clerr")) == []


def test_ncl_on_a_stream_breaks_it():
    with pytest.raises(FramingError, match="Bad Content-Length"):
        StreamParser().feed(load("ncl"))


# --- RFC 4475 §3.2: transaction layer semantics ------------------------------

def test_badbranch_parses_with_its_empty_transaction_id():
    request = valid("badbranch")
    assert request.via[0].branch == "z9hG4bK"


# --- RFC 4475 §3.3: application layer semantics ------------------------------

def test_insuf_missing_required_headers():
    with pytest.raises(ParseError) as caught:
        parse("insuf")
    assert caught.value.reason == "Missing Call-ID" and caught.value.request is None


@pytest.mark.parametrize("name, uri", [
    ("unkscm", "nobodyKnowsThisScheme:totallyopaquecontent"),
    ("novelsc", "soap.beep://192.0.2.103:3002"),
])
def test_request_uris_of_unknown_schemes_get_416(name, uri):
    request = parse(name)
    assert isinstance(request.uri, AbsoluteURI) and str(request.uri) == uri
    error = refusal(request)
    assert (error.status, error.reason) == (416, "Unsupported URI Scheme")
    assert bytes(request).startswith(b"OPTIONS " + uri.encode() + b" SIP/2.0\r\n")


def test_unksm2_unknown_schemes_in_headers():
    request = valid("unksm2")
    assert str(request.to.uri) == "isbn:2983792873"
    assert str(request.from_.uri) == "http://www.example.com" and request.from_.tag == "3234233"
    assert [str(contact.uri) for contact in request.contact] == ["name:John_Smith"]


def test_bext01_unknown_extensions():
    request = valid("bext01")
    assert request.require == ["nothingSupportsThis", "nothingSupportsThisEither"]
    assert request.proxy_require == ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]


def test_invut_unknown_content_type_gets_415():
    request = parse("invut")
    assert request.content_type.mime == "application/unknownformat" and len(request.body) == 40
    error = refusal(request, methods=METHODS, content_types=CONTENT_TYPES)
    assert (error.status, error.reason) == (415, "Unsupported Media Type")


def test_regaut01_unknown_authorization_scheme():
    request = valid("regaut01")
    (credentials,) = request.authorization
    assert credentials.scheme == "NoOneKnowsThisScheme"
    assert dict(credentials.params) == {"opaque-data": "here"}


def test_multi01_several_values_in_single_value_headers():
    with pytest.raises(ParseError) as caught:
        parse("multi01")
    assert (caught.value.status, caught.value.reason) == (400, "Multiple CSeq headers")
    assert caught.value.request is not None


def test_mcl01_several_content_lengths():
    with pytest.raises(ParseError) as caught:
        parse("mcl01")
    assert (caught.value.status, caught.value.reason) == (400, "Bad Content-Length")
    with pytest.raises(FramingError):
        StreamParser().feed(load("mcl01"))


def test_bcast_response_with_a_broadcast_via():
    response = valid("bcast")
    assert isinstance(response, Response)
    assert [via.host for via in response.via] == ["192.0.2.198", "255.255.255.255"]


def test_zeromf_max_forwards_of_zero():
    assert valid("zeromf").max_forwards == 0


def test_cparam01_a_contact_header_parameter():
    (contact,) = valid("cparam01").contact
    assert str(contact.uri) == "sip:+19725552222@gw1.example.net"
    assert list(contact.params.items()) == [("unknownparam", None)]


def test_cparam02_a_contact_uri_parameter():
    (contact,) = valid("cparam02").contact
    assert list(contact.uri.params.items()) == [("unknownparam", None)] and not contact.params


def test_regescrt_escaped_headers_in_a_contact_uri():
    (contact,) = valid("regescrt").contact
    assert contact.uri.headers == [("Route", "%3Csip:sip.example.com%3E")]
    assert str(contact) == "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>"


def test_sdp01_unacceptable_accept():
    request = valid("sdp01")
    assert [accept.mime for accept in request.accept] == ["text/nobodyknowsthis"]
    assert request.content_type.mime == "application/sdp"


# --- RFC 4475 §3.4: backward compatibility -----------------------------------

def test_inv2543_rfc_2543_syntax():
    request = valid("inv2543")
    assert request.via[0].branch is None and request.max_forwards is None
    assert request.from_.tag is None and request.to.tag is None
    assert request.from_.uri.params["user"] == "phone"
    assert request.to.params["user"] == "phone"          # addr-spec: a header param
    assert request.record_route[0].uri.params["maddr"] == "ss1.example.com"
    assert request.body.startswith(b"v=0\r\n") and len(request.body) == 105


def test_every_torture_file_is_covered():
    names = {path.stem for path in TORTURE.glob("*.sip")}
    assert len(names) == 49
    source = Path(__file__).read_text()
    assert all(f'"{name}"' in source for name in names)
