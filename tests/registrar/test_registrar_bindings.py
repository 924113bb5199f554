"""
The registrar's rules (sbbs/registrar/bindings.py), sans I/O: REGISTER
requests read and applied to bindings at a given time.
"""

import pytest

from resource_adaptors.sip.core.parser import parse_message
from sbbs.registrar.bindings import (
    Limits, Refusal, contact_fields, contact_key, live, next_expiry, read_register,
    register)
from resource_adaptors.sip.core.uri import parse_uri

LIMITS = Limits()
NOW = 1000.0


def request(*contacts, expires=None, call_id="c1", cseq=1, path=()):
    lines = ["REGISTER sip:example.com SIP/2.0",
             "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK1",
             "From: <sip:alice@example.com>;tag=1", "To: <sip:alice@example.com>",
             f"Call-ID: {call_id}", f"CSeq: {cseq} REGISTER"]
    lines += [f"Contact: {contact}" for contact in contacts]
    lines += [f"Path: {entry}" for entry in path]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    return parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


def apply(bindings, *contacts, now=NOW, limits=LIMITS, **fields):
    return register(bindings, read_register(request(*contacts, **fields), limits), now, limits)


def test_a_contact_is_bound_for_the_default_or_asked_expiry():
    outcome = apply((), "<sip:alice@10.0.0.1:5060>", "<sip:alice@10.0.0.2>;expires=120")
    assert outcome.status == 200
    assert {(b.uri, b.expires_at) for b in outcome.bindings} == {
        ("sip:alice@10.0.0.1:5060", NOW + 3600), ("sip:alice@10.0.0.2", NOW + 120)}
    assert [value for _, value in contact_fields(outcome.bindings, NOW + 20)] == [
        "<sip:alice@10.0.0.1:5060>;expires=3580", "<sip:alice@10.0.0.2>;expires=100"]


def test_the_expires_parameter_wins_over_the_header_and_the_maximum_cuts_down():
    outcome = apply((), "<sip:a@h1>;expires=600", "<sip:a@h2>", expires=999999)
    assert sorted(b.expires_at - NOW for b in outcome.bindings) == [600, 86400]


def test_too_brief_is_423_with_min_expires_and_changes_nothing():
    outcome = apply((), "<sip:a@h1>", "<sip:a@h2>;expires=30")
    assert (outcome.status, outcome.min_expires, outcome.bindings) == (423, 60, None)


def test_q_values_order_the_bindings_and_are_answered():
    outcome = apply((), "<sip:a@h1>;q=0.1", "<sip:a@h2>;q=0.9", "<sip:a@h3>")
    assert [b.uri for b in outcome.bindings] == ["sip:a@h3", "sip:a@h2", "sip:a@h1"]
    assert contact_fields(outcome.bindings, NOW)[1] == ("Contact",
                                                        "<sip:a@h2>;q=0.9;expires=3600")


def test_a_refresh_replaces_the_binding_of_the_same_contact():
    first = apply((), "<sip:alice@Host:5060;transport=udp>").bindings
    again = apply(first, "<sip:alice@host:5060;Transport=UDP>;expires=300", cseq=2)
    assert len(again.bindings) == 1 and again.bindings[0].expires_at == NOW + 300


def test_expires_0_removes_one_binding_and_star_removes_all():
    both = apply((), "<sip:a@h1>", "<sip:a@h2>").bindings
    assert [b.uri for b in apply(both, "<sip:a@h1>;expires=0", cseq=2).bindings] == ["sip:a@h2"]
    assert apply(both, "*", expires=0, cseq=2).bindings == ()


@pytest.mark.parametrize("contacts, expires", [(("*",), None), (("*",), 60),
                                               (("*", "<sip:a@h1>"), 0)])
def test_star_needs_expires_0_and_no_other_contact(contacts, expires):
    with pytest.raises(Refusal) as refused:
        read_register(request(*contacts, expires=expires), LIMITS)
    assert refused.value.status == 400


def test_a_query_changes_nothing():
    both = apply((), "<sip:a@h1>", "<sip:a@h2>").bindings
    assert apply(both, cseq=2).bindings == both


@pytest.mark.parametrize("call_id, cseq, status", [("c1", 1, 500), ("c1", 0, 500),
                                                   ("c1", 2, 200), ("other", 1, 200)])
def test_the_cseq_must_grow_within_a_call_id(call_id, cseq, status):
    bound = apply((), "<sip:a@h1>", cseq=1).bindings
    assert apply(bound, "<sip:a@h1>;expires=0", call_id=call_id, cseq=cseq).status == status
    assert apply(bound, "*", expires=0, call_id=call_id, cseq=cseq).status == status


def test_the_contacts_of_an_address_are_bounded():
    limits = Limits(max_contacts=2)
    two = apply((), "<sip:a@h1>", "<sip:a@h2>", limits=limits).bindings
    assert apply(two, "<sip:a@h3>", cseq=2, limits=limits).status == 403
    assert apply(two, "<sip:a@h1>;expires=0", "<sip:a@h3>", cseq=2, limits=limits).status == 200
    with pytest.raises(Refusal) as refused:
        read_register(request("<sip:a@h1>", "<sip:a@h2>", "<sip:a@h3>"), limits)
    assert refused.value.status == 403


def test_long_uris_and_bad_contacts_are_400():
    for contact in (f"<sip:a@{'h' * 1100}>", "<sip:a@h1>;q=2", "<sip:a@h1>;expires=x"):
        with pytest.raises(Refusal) as refused:
            read_register(request(contact), LIMITS)
        assert refused.value.status == 400


def test_path_is_kept_with_the_binding():
    path = ("<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr>")
    outcome = apply((), "<sip:a@h1>", path=path)
    assert outcome.bindings[0].path == path
    with pytest.raises(Refusal):
        read_register(request("<sip:a@h1>", path=path * 6), LIMITS)


def test_bindings_expire_at_their_time():
    bound = apply((), "<sip:a@h1>;expires=60", "<sip:a@h2>;expires=120").bindings
    assert next_expiry(bound) == NOW + 60
    assert [b.uri for b in live(bound, NOW + 60)] == ["sip:a@h2"]
    assert live(bound, NOW + 120) == ()
    assert next_expiry(()) is None


def test_contact_keys_compare_as_uris_do():
    assert contact_key(parse_uri("sip:%61lice@EXAMPLE.com;Transport=TCP")) == \
        contact_key(parse_uri("sip:alice@example.com;transport=tcp"))
    assert contact_key(parse_uri("sip:alice@example.com:5060")) != \
        contact_key(parse_uri("sip:alice@example.com"))
