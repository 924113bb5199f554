"""
The memo of what recurs in received messages, and the parser and validation
reading recurring lines and values as they read new ones.
"""

import pickle

import pytest

from resource_adaptors.sip.core import parser as parser_module
from resource_adaptors.sip.core.message import validate_request
from resource_adaptors.sip.core.parser import ParseError, Parser
from resource_adaptors.sip.core.recurring import RecurringMemo


def test_a_key_is_kept_once_it_recurs():
    memo = RecurringMemo(4)
    memo.note("a", 1)
    assert "a" not in memo.kept
    memo.note("a", 1)
    assert memo.kept == {"a": 1}


def test_new_keys_do_not_push_out_the_recurring_ones():
    memo = RecurringMemo(4)
    memo.note("contact", 1)
    memo.note("contact", 1)
    for number in range(100):       # a new From tag in every request
        memo.note(f"from {number}", number)
    assert memo.kept == {"contact": 1}
    assert len(memo._once) <= 4


def test_both_tables_are_bounded():
    memo = RecurringMemo(4)
    for number in range(10):
        memo.note(number, number)
        memo.note(number, number)
    assert len(memo.kept) <= 4 and len(memo._once) <= 4


REQUEST = (
    "OPTIONS sip:service@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:sipp@127.0.0.1:5061>;tag={n}\r\n"
    "To: <sip:service@127.0.0.1>\r\n"
    "Call-ID: {n}@127.0.0.1\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Subject: first\r\n"
    " folded\r\n"
    "Contact: {contact}\r\n"
    "Content-Length: 0\r\n\r\n")


@pytest.fixture
def parser():
    return Parser()


@pytest.fixture
def memo(parser):
    return parser.memos.lines


def parse(parser, n, contact="<sip:sipp@127.0.0.1:5061>"):
    request = parser.parse(REQUEST.format(n=n, contact=contact).encode())
    validate_request(request)
    return request


def test_recurring_lines_give_the_same_fields_as_new_ones(parser, memo):
    first, second, third = parse(parser, 1), parse(parser, 2), parse(parser, 3)
    assert "Max-Forwards: 70" in memo.kept and "Contact: <sip:sipp@127.0.0.1:5061>" in memo.kept
    assert not any("folded" in line for line in memo.kept)      # continuation lines are not kept
    assert not any(line.startswith(("Via", "From", "Call-ID")) for line in memo._once)
    for request in (first, second, third):
        assert request.headers.get("Subject") == "first folded"
        assert request.max_forwards == 70
        assert str(request.contact[0].uri) == "sip:sipp@127.0.0.1:5061"
    assert bytes(third) == REQUEST.format(n=3, contact="<sip:sipp@127.0.0.1:5061>").encode()
    assert third.headers._fields[1] is second.headers._fields[1]  # Max-Forwards: one tuple


def test_a_change_to_a_shared_field_is_not_seen_by_the_other_messages(parser):
    parse(parser, 1)
    first, second = parse(parser, 2), parse(parser, 3)
    first.headers.set("Max-Forwards", "69")
    assert (first.max_forwards, second.max_forwards) == (69, 70)


def test_a_bad_value_is_refused_however_often_it_comes(parser):
    for n in range(3):
        with pytest.raises(ParseError, match="Bad Contact header"):
            parse(parser, n, contact="<sip:sipp@127.0.0.1:5061")


def test_a_value_of_the_usual_shape_is_checked_once_it_recurs(parser):
    value = "<sip:recurring@127.0.0.1:5062>"
    for n in range(3):
        parse(parser, n, contact=value)
    assert value in parser.memos.usual_values["contact"].kept
    assert parser.memos.usual_values["from"] is None        # new in every request


def test_each_parser_remembers_for_itself(parser, memo):
    other = Parser()
    for n in range(3):
        parse(parser, n)
    assert "Max-Forwards: 70" in memo.kept
    assert not other.memos.lines.kept and not other.memos.names
    assert other.memos.usual_values["contact"].kept == {}
    stream = parser.stream()
    assert stream.memos is parser.memos and stream.limits is parser.limits


def test_names_are_remembered_within_bounds(parser, monkeypatch):
    monkeypatch.setattr(parser_module, "MAX_NAMES", 2)
    parse(parser, 1)
    assert len(parser.memos.names) == 2


def test_a_pickled_message_leaves_the_parsers_memos_behind(parser):
    for n in range(3):
        request = parse(parser, n)
    assert request.headers._memos is parser.memos
    copy = pickle.loads(pickle.dumps(request))
    assert copy.headers._memos is None and bytes(copy) == bytes(request)
    validate_request(copy)
