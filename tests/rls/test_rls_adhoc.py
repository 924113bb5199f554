"""
A SUBSCRIBE's own list (RFC 5367) is read from its resource-lists body,
deflated or not, each URI once; a deflate bomb is refused after inflating
no more than the limit, and each refusal carries the status to answer.
"""

import time
import tracemalloc
import zlib

import pytest

from sbbs.rls.adhoc import MAX_INFLATED, AdhocError, request_list
from sbbs.rls.lists import Member

RL = "urn:ietf:params:xml:ns:resource-lists"


def resource_lists(*children):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<resource-lists xmlns="{RL}">{"".join(children)}</resource-lists>').encode("utf-8")


def entry(uri, name=None):
    if name is None:
        return f'<entry uri="{uri}"/>'
    return f'<entry uri="{uri}"><display-name>{name}</display-name></entry>'


BODY = resource_lists(
    "<list>", entry("sip:bob@example.com", "Bob"),
    "<list>", entry("sip:carol@example.com"), entry("sip:bob@EXAMPLE.com:5060", "Bob again"),
    "</list>", "</list>",
    "<list>", entry("tel:+15551234", "Phone"), "</list>")
MEMBERS = [Member("sip:bob@example.com", "Bob"), Member("sip:carol@example.com", None),
           Member("tel:+15551234", "Phone")]


def raw_deflate(data):
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def refusal(body, encoding=None, **limits):
    with pytest.raises(AdhocError) as raised:
        request_list(body, encoding, **limits)
    return raised.value.status, raised.value.reason


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity "])
def test_a_list_in_the_body_is_flattened_each_uri_once(encoding):
    assert request_list(BODY, encoding) == MEMBERS


@pytest.mark.parametrize("compress", [zlib.compress, raw_deflate], ids=["zlib", "raw"])
def test_deflated_bodies_of_both_kinds_are_inflated(compress):
    assert request_list(compress(BODY), "Deflate") == MEMBERS


def test_a_deflate_bomb_is_refused_quickly_without_inflating_it():
    bomb = zlib.compress(b"\0" * 100_000_000, 9)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        assert refusal(bomb, "deflate") == (413, "list too large once inflated")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 0.1
    assert peak < 4 * MAX_INFLATED


@pytest.mark.parametrize("body", [zlib.compress(BODY)[:-10], zlib.compress(BODY) + b"junk",
                                  b"not deflate at all"])
def test_deflate_data_that_is_truncated_or_followed_by_more_is_refused(body):
    assert refusal(body, "deflate")[0] == 400


@pytest.mark.parametrize("encoding", ["gzip", "br", "deflate, gzip"])
def test_other_encodings_are_unsupported(encoding):
    assert refusal(zlib.compress(BODY), encoding)[0] == 415


def test_a_body_over_the_limit_is_too_large():
    assert refusal(b" " * (MAX_INFLATED + 1))[0] == 413


@pytest.mark.parametrize("body", [
    b"", b"<resource-lists", b'<!DOCTYPE r [<!ENTITY e "e">]><resource-lists/>',
    b'<rls-services xmlns="urn:ietf:params:xml:ns:rls-services"/>',
    resource_lists("<list><entry/></list>"),
    resource_lists(f'<list><entry uri="sip:{"x" * 3000}@example.com"/></list>'),
])
def test_malformed_lists_are_refused_as_bad_requests(body):
    assert refusal(body)[0] == 400


@pytest.mark.parametrize("reference", [
    '<entry-ref ref="resource-lists/users/sip:bob@example.com/index/~~/resource-lists/list"/>',
    '<external anchor="http://xcap.example.com/xcap-root/resource-lists/users/sip:bob@'
    'example.com/index/~~/resource-lists/list"/>',
])
def test_references_are_refused(reference):
    assert refusal(resource_lists("<list>", entry("sip:bob@example.com"), reference,
                                  "</list>"))[0] == 403


def test_more_members_than_allowed_is_forbidden_duplicates_not_counted():
    entries = [entry(f"sip:user{number}@example.com") for number in range(4)]
    body = resource_lists("<list>", *entries[:3], *entries[:3], "</list>")
    assert len(request_list(body, None, max_members=3)) == 3
    assert refusal(resource_lists("<list>", *entries, "</list>"), max_members=3) \
        == (403, "list too big")
