"""
RLMI documents and the multipart/related bodies of list NOTIFYs are
written exactly (CRLF, escaping, the root named by start) and read back;
what a peer sends is bounded, and anything malformed is an RlmiError.
"""

import time

import pytest
from lxml import etree

from resource_adaptors.sip.core.headers import ContentType
from sbbs.rls.rlmi import (
    MAX_BODY, MAX_INSTANCES, MAX_PART_HEADERS, MAX_PARTS, MAX_RESOURCES, MULTIPART_RELATED,
    RLMI_NAMESPACE, RLMI_TYPE, Instance, Part, Resource, RlmiError, RlmiList, multipart_related,
    new_boundary, new_content_id, parse_multipart, parse_rlmi, rlmi_document)

PIDF_TYPE = "application/pidf+xml"
LIST_URI = "sip:friends@example.com"

RESOURCES = (
    Resource("sip:bob@example.com", "Bob <B> & \"co\"",
             (Instance("b1", "active", cid="b1@rls.example.com"),)),
    Resource("sip:carol@example.com;pres-list=a&b", None,
             (Instance("c1", "pending"), Instance("c2", "terminated", reason="rejected"))),
    Resource("sip:dave@example.com", "Dave", ()),
)


def pidf(entity):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\r\n<presence xmlns="urn:ietf:params:xml:'
            f'ns:pidf" entity="{entity}"/>').encode("utf-8")


def related(parts=(), boundary="b0und4ry", root_body=None):
    """@return: a multipart/related of an RLMI root (with C{root_body}) and C{parts}."""
    root = Part("root@rls.example.com", f'{RLMI_TYPE};charset="UTF-8"',
                root_body or rlmi_document(LIST_URI, 1, True, "Friends", RESOURCES))
    return multipart_related(boundary, root, parts)


def error_of(function, *args):
    with pytest.raises(RlmiError) as raised:
        function(*args)
    return raised.value.reason


# rlmi_document


def test_an_rlmi_document_is_written_and_read_back():
    document = rlmi_document(LIST_URI, 7, True, "Friends & Co", RESOURCES)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<list xmlns="'
                               + RLMI_NAMESPACE.encode() + b'"')
    assert parse_rlmi(document) == RlmiList(LIST_URI, 7, True, "Friends & Co", RESOURCES)


def test_the_rlmi_document_has_the_elements_and_attributes_of_rfc_4662():
    root = etree.fromstring(rlmi_document(LIST_URI, 0, False, None, RESOURCES))
    namespace = f"{{{RLMI_NAMESPACE}}}"
    assert (root.tag, root.get("uri"), root.get("version"), root.get("fullState")) \
        == (f"{namespace}list", LIST_URI, "0", "false")
    assert root.find(f"{namespace}name") is None
    bob, carol, dave = root
    assert bob.find(f"{namespace}name").text == 'Bob <B> & "co"'
    assert dict(bob.find(f"{namespace}instance").attrib) \
        == {"id": "b1", "state": "active", "cid": "b1@rls.example.com"}
    assert carol.get("uri") == "sip:carol@example.com;pres-list=a&b"
    assert carol.find(f"{namespace}name") is None
    assert [dict(instance.attrib) for instance in carol] == [
        {"id": "c1", "state": "pending"}, {"id": "c2", "state": "terminated", "reason": "rejected"}]
    assert len(dave) == 1


def test_attribute_values_keep_their_white_space():
    document = rlmi_document("sip:a\tb\n@example.com", 1, True, None, ())
    assert etree.fromstring(document).get("uri") == "sip:a\tb\n@example.com"


def test_text_xml_cannot_hold_is_refused():
    with pytest.raises(ValueError):
        rlmi_document(LIST_URI, 1, True, "bell\x07", ())


@pytest.mark.parametrize("state, reason", [("active", "rejected"), ("pending", "timeout"),
                                           ("gone", None)])
def test_only_terminated_instances_have_a_reason(state, reason):
    with pytest.raises(ValueError):
        Instance("i", state, reason)


def test_a_list_of_a_thousand_resources_is_written_in_milliseconds():
    resources = [Resource(f"sip:user{number}@example.com", f"User {number}",
                          (Instance(f"i{number}", "active", cid=f"c{number}@rls.example.com"),))
                 for number in range(1000)]
    started = time.perf_counter()
    for _ in range(10):
        document = rlmi_document(LIST_URI, 1, True, "Everyone", resources)
    assert (time.perf_counter() - started) / 10 < 0.02
    assert len(parse_rlmi(document).resources) == 1000


# multipart_related


def test_the_content_type_names_the_rlmi_root_and_the_boundary():
    content_type, _ = related()
    parsed = ContentType.parse(content_type)
    assert parsed.mime == MULTIPART_RELATED
    assert dict(parsed.params.items()) == {
        "type": RLMI_TYPE, "start": "<root@rls.example.com>", "boundary": "b0und4ry"}


def test_the_body_is_framed_with_crlf_exactly():
    bob = Part("b1@rls.example.com", PIDF_TYPE, b"state\nwith a bare LF")
    _, body = related([bob], root_body=b"<list/>")
    assert body == (
        b"--b0und4ry\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root@rls.example.com>\r\n"
        b'Content-Type: application/rlmi+xml;charset="UTF-8"\r\n'
        b"\r\n"
        b"<list/>\r\n"
        b"--b0und4ry\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <b1@rls.example.com>\r\n"
        b"Content-Type: application/pidf+xml\r\n"
        b"\r\n"
        b"state\nwith a bare LF\r\n"
        b"--b0und4ry--\r\n")


def test_a_multipart_body_is_read_back_nested_lists_included():
    nested_type, nested_body = multipart_related(
        "inner", Part("n@rls.example.com", RLMI_TYPE,
                      rlmi_document("sip:nested@example.com", 3, True, None, ())),
        [Part("x1@rls.example.com", PIDF_TYPE, pidf("sip:x@example.com"))])
    parts = [Part("b1@rls.example.com", PIDF_TYPE, pidf("sip:bob@example.com")),
             Part("n1@rls.example.com", nested_type, nested_body)]
    content_type, body = related(parts, boundary=new_boundary())
    root, others = parse_multipart(content_type, body)
    assert root.content_id == "root@rls.example.com"
    assert parse_rlmi(root.body) == RlmiList(LIST_URI, 1, True, "Friends", RESOURCES)
    assert others == parts
    nested_root, nested_parts = parse_multipart(others[1].content_type, others[1].body)
    assert parse_rlmi(nested_root.body).uri == "sip:nested@example.com"
    assert [part.body for part in nested_parts] == [pidf("sip:x@example.com")]


def test_a_body_holding_the_boundary_or_headers_with_line_breaks_are_refused():
    with pytest.raises(ValueError):
        related([Part("b@rls.example.com", PIDF_TYPE, b"x\r\n--b0und4ry\r\n")])
    with pytest.raises(ValueError):
        related([Part("b@rls.example.com", "text/plain\r\nX-Injected: 1", b"")])


def test_boundaries_and_content_ids_are_random():
    assert new_boundary() != new_boundary()
    first, second = new_content_id("rls.example.com"), new_content_id("rls.example.com")
    assert first != second and first.endswith("@rls.example.com")


# parse_multipart


def test_the_root_is_the_start_part_wherever_it_is_and_a_preamble_is_skipped():
    rlmi_part = f"--b\r\nContent-ID: <r>\r\nContent-Type: {RLMI_TYPE}\r\n\r\n<list/>\r\n"
    pidf_part = f"--b\r\ncontent-id:<p>\r\nCONTENT-TYPE: {PIDF_TYPE}\r\n\r\n\r\n"
    body = f"a preamble\r\n{pidf_part}{rlmi_part}--b--\r\nan epilogue".encode()
    root, others = parse_multipart('multipart/related; start="<r>"; boundary="b"', body)
    assert root == Part("r", RLMI_TYPE, b"<list/>")
    assert others == [Part("p", PIDF_TYPE, b"")]
    root, others = parse_multipart("Multipart/Related;boundary=b",
                                   f"{rlmi_part}{pidf_part}--b--".encode())
    assert root.content_id == "r" and len(others) == 1


@pytest.mark.parametrize("content_type, reason", [
    ("multipart/mixed;boundary=b", "not multipart/related"),
    ("multipart/related", "no boundary"),
    ("multipart/related;boundary=", "bad Content-Type"),
    ("not a type", "bad Content-Type"),
    ('multipart/related;boundary=b;start="<nowhere>"', "no part is the start"),
    ('multipart/related;boundary=b;start="<p>"', "the root is not application/rlmi+xml"),
    ("multipart/related;boundary=other", "no boundary in the body"),
])
def test_content_types_that_cannot_be_read(content_type, reason):
    body = f"--b\r\nContent-ID: <p>\r\nContent-Type: {PIDF_TYPE}\r\n\r\nx\r\n--b--\r\n".encode()
    assert error_of(parse_multipart, content_type, body) == reason


@pytest.mark.parametrize("body", [
    b"",
    b"--b\r\nContent-ID: <r>\r\n\r\n<list/>",
    b"--b\r\n\r\n<list/>\r\n--b--",
    b"--b\r\nContent-ID <r>\r\n\r\n<list/>\r\n--b--",
    b"--b\r\nContent-ID: <r>\r\nContent-Transfer-Encoding: base64\r\n\r\nPGxpc3QvPg==\r\n--b--",
    b"--b\r\nContent-Type: application/rlmi+xml\r\n\r\n<list/>\r\n--b--",
    b"--bX\r\nContent-ID: <r>\r\n\r\n<list/>\r\n--b--",
    b"--b\r\nContent-ID: <\xff>\r\n\r\n<list/>\r\n--b--",
    b"--b\r\nContent-ID: <r>\r\nno blank line\r\n--b--",
])
def test_malformed_bodies_are_refused(body):
    error_of(parse_multipart, "multipart/related;boundary=b", body)


def test_every_truncation_of_a_body_is_refused_or_read_never_a_crash():
    content_type, body = related([Part("b1@rls.example.com", PIDF_TYPE, pidf("sip:b@x"))])
    for end in range(len(body)):
        try:
            parse_multipart(content_type, body[:end])
        except RlmiError:
            pass


def test_limits_on_parts_headers_and_size():
    parts = [Part(f"{number}@x", PIDF_TYPE, b"") for number in range(MAX_PARTS)]
    content_type, body = related(parts[:-1])
    assert len(parse_multipart(content_type, body)[1]) == MAX_PARTS - 1
    content_type, body = related(parts)
    assert error_of(parse_multipart, content_type, body) == f"more than {MAX_PARTS} parts"
    headers = "".join(f"X-{number}: y\r\n" for number in range(MAX_PART_HEADERS))
    body = f"--b\r\nContent-ID: <r>\r\n{headers}\r\n<list/>\r\n--b--".encode()
    assert "header lines" in error_of(parse_multipart, "multipart/related;boundary=b", body)
    content_type, body = related([Part("big@x", PIDF_TYPE, b"x" * MAX_BODY)])
    assert "larger" in error_of(parse_multipart, content_type, body)


# parse_rlmi


def test_a_reason_is_kept_only_on_a_terminated_instance():
    document = (f'<list xmlns="{RLMI_NAMESPACE}" uri="{LIST_URI}" version="2" fullState="0">'
                f'<resource uri="sip:b@x"><instance id="1" state="active" reason="timeout"/>'
                f'<instance id="2" state="terminated" reason="timeout"/></resource></list>')
    parsed = parse_rlmi(document.encode())
    assert parsed.full_state is False
    assert parsed.resources[0].instances == (Instance("1", "active"),
                                             Instance("2", "terminated", "timeout"))


def rlmi_body(list_attributes='uri="sip:l@x" version="1" fullState="true"', content=""):
    return f'<list xmlns="{RLMI_NAMESPACE}" {list_attributes}>{content}</list>'.encode()


@pytest.mark.parametrize("document", [
    b"", b"<list", b"<list/>", b'<!DOCTYPE list [<!ENTITY e "e">]><list/>',
    rlmi_body('version="1" fullState="true"'),
    rlmi_body('uri="sip:l@x" fullState="true"'),
    rlmi_body('uri="sip:l@x" version="one" fullState="true"'),
    rlmi_body('uri="sip:l@x" version="-1" fullState="true"'),
    rlmi_body('uri="sip:l@x" version="99999999999" fullState="true"'),
    rlmi_body('uri="sip:l@x" version="1" fullState="yes"'),
    rlmi_body(content="<resource/>"),
    rlmi_body(content='<resource uri="sip:b@x"><instance state="active"/></resource>'),
    rlmi_body(content='<resource uri="sip:b@x"><instance id="1"/></resource>'),
    rlmi_body(content='<resource uri="sip:b@x"><instance id="1" state="sleeping"/></resource>'),
])
def test_malformed_rlmi_is_refused(document):
    error_of(parse_rlmi, document)


def test_limits_on_resources_and_instances():
    resource = '<resource uri="sip:b@x"/>'
    assert len(parse_rlmi(rlmi_body(content=resource * MAX_RESOURCES)).resources) == MAX_RESOURCES
    assert "resources" in error_of(parse_rlmi, rlmi_body(content=resource * (MAX_RESOURCES + 1)))
    instances = '<instance id="i" state="active"/>' * (MAX_INSTANCES // 2 + 1)
    crowded = f'<resource uri="sip:b@x">{instances}</resource>' * 2
    assert "instances" in error_of(parse_rlmi, rlmi_body(content=crowded))
    assert "larger" in error_of(parse_rlmi, b" " * (MAX_BODY + 1))



# full_state: a nested list's whole state, kept across its partial notifications


def _list(version, full, resources, boundary="b0", cid="root@x"):
    """(Content-Type, body) of a list notification of (uri, state, note or None) resources."""
    from sbbs.rls.rlmi import Instance, Part, Resource, multipart_related, rlmi_document
    listed, parts = [], []
    for number, (uri, state, note) in enumerate(resources):
        part_id = f"{uri}.{version}@x" if note else None
        listed.append(Resource(uri, None, (Instance(str(number), state, cid=part_id),)))
        if note:
            parts.append(Part(part_id, "application/pidf+xml", note.encode()))
    document = rlmi_document("sip:l@x", version, full, "L", listed)
    return multipart_related(boundary, Part(cid, "application/rlmi+xml", document), parts)


def test_full_state_of_a_full_notification_is_itself():
    from sbbs.rls.rlmi import full_state
    update = _list(3, True, [("sip:a@x", "active", "a1")])
    assert full_state(_list(2, True, []), update) == update
    assert full_state(None, _list(3, False, [])) == _list(3, False, [])


def test_full_state_merges_a_partial_notification_into_the_whole():
    from sbbs.rls.rlmi import full_state, parse_multipart, parse_rlmi
    before = _list(0, True, [("sip:a@x", "active", "a0"), ("sip:b@x", "pending", None)])
    update = _list(1, False, [("sip:b@x", "active", "b1")], boundary="b1", cid="r1@x")
    content_type, body = full_state(before, update)
    root, parts = parse_multipart(content_type, body)
    merged = parse_rlmi(root.body)
    assert (merged.version, merged.full_state, root.content_id) == (1, True, "r1@x")
    assert [(r.uri, r.instances[0].state) for r in merged.resources] == [
        ("sip:a@x", "active"), ("sip:b@x", "active")]
    assert sorted(part.body for part in parts) == [b"a0", b"b1"]
    assert 'boundary="b1"' in content_type
