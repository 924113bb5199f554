"""
Services are read from rls-services documents and keyed as clients
subscribe to them; their lists are flattened as RFC 4826 §4.3 says, each
URI once, following references into resource-lists documents, refusing
loops, references elsewhere and lists beyond the limits.
"""

import time

import pytest
from lxml import etree

from resource_adaptors.sip.core.uri import parse_uri
from sbbs.rls.lists import (
    MAX_DEPTH, MAX_DOCUMENT_SIZE, MAX_URI_LENGTH, DocumentNeeded, Flattened, ListError,
    ListTooBig, Member, flatten, member_key, parse_services)
from sbbs.sipevent.addresses import address_of_record, resource_key

RLS = "urn:ietf:params:xml:ns:rls-services"
RL = "urn:ietf:params:xml:ns:resource-lists"
ROOT = "http://127.0.0.1:8080/xcap-root"
OWNER = "sip:alice@example.com"
BOB_INDEX = "resource-lists/users/sip:bob@example.com/index"
ALICE_INDEX = "resource-lists/users/sip:alice@example.com/index"


def rls_services(*services):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<rls-services xmlns="{RLS}" xmlns:rl="{RL}">{"".join(services)}</rls-services>'
            ).encode("utf-8")


def service(uri, content, packages=""):
    return f'<service uri="{uri}">{content}{packages}</service>'


def entry(uri, name=None):
    if name is None:
        return f'<rl:entry uri="{uri}"/>'
    return f'<rl:entry uri="{uri}"><rl:display-name>{name}</rl:display-name></rl:entry>'


def resource_lists(*lists):
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<resource-lists xmlns="{RL}" '
            f'xmlns:rl="{RL}">{"".join(lists)}</resource-lists>').encode("utf-8")


def rl_list(name, *children):
    """A resource-lists list (in the default namespace of L{resource_lists})."""
    return f'<list name="{name}">{"".join(children)}</list>'


def list_selector(name):
    return f"~~/resource-lists/list%5b@name=%22{name}%22%5d"


def one_service(content):
    """@return: the L{Service} of an rls-services document with one service."""
    return parse_services(rls_services(service("sip:list@example.com", content)), OWNER)[0]


def inline(*entries):
    return f'<list>{"".join(entries)}</list>'


class Documents:
    """The caller's documents, path -> content; it remembers the paths asked for."""

    def __init__(self, documents=()):
        self.documents = dict(documents)
        self.asked = []

    def __call__(self, path):
        self.asked.append(path)
        return self.documents.get(path)


def uris(flattened):
    return [member.uri for member in flattened.members]


def list_error(*args, **kwargs):
    with pytest.raises(ListError) as raised:
        flatten(*args, **kwargs)
    return raised.value


# resource_key


@pytest.mark.parametrize("uri, key", [
    ("sip:alice@example.com", "sip:alice@example.com"),
    ("sip:alice@EXAMPLE.com:5060", "sip:alice@example.com"),
    ("sips:alice@example.com", "sip:alice@example.com"),
    ("SIP:al%69ce@example.com", "sip:alice@example.com"),
    ("sip:alice@example.com;pres-list=buddies", "sip:alice@example.com;pres-list=buddies"),
    ("sip:alice@example.com;Pres-List=buddies;transport=tcp;lr",
     "sip:alice@example.com;pres-list=buddies"),
    ("sip:alice@example.com;z=1;a=2;maddr=10.0.0.1;ttl=3;method=SUBSCRIBE",
     "sip:alice@example.com;a=2;z=1"),
    ("sip:alice@example.com;pres-list=my%6cist;flag",
     "sip:alice@example.com;flag;pres-list=mylist"),
    ("sip:alice@example.com;pres-list=rcs?subject=hi", "sip:alice@example.com;pres-list=rcs"),
    (" sip:alice@example.com ", "sip:alice@example.com"),
    ("tel:+15551234", "tel:+15551234"),
])
def test_resource_keys(uri, key):
    assert resource_key(uri) == key


@pytest.mark.parametrize("uri", ["", "alice", "sip:", "sip:alice@", "sip:a b@example.com",
                                 "sip:alice@example.com:99999",
                                 "sip:alice@example.com;p=" + "x" * MAX_URI_LENGTH])
def test_what_is_no_uri_has_no_key(uri):
    assert resource_key(uri) is None


def test_a_key_without_parameters_is_the_presence_servers_address_of_record():
    for uri in ("sip:Bob@Example.COM:5070;transport=tls", "sip:%62ob@example.com"):
        assert resource_key(uri) == address_of_record(parse_uri(uri))


def test_members_without_a_key_are_told_apart_by_their_text():
    assert member_key(" not a uri ") == "not a uri"
    assert member_key("sip:bob@EXAMPLE.com:5060") == "sip:bob@example.com"


# parse_services


def test_services_are_read_with_their_list_name_and_packages():
    document = rls_services(
        service("sip:alice@example.com;pres-list=rcs",
                f'<list name="rcs"><rl:display-name>Friends</rl:display-name>'
                f'{entry("sip:bob@example.com")}</list>',
                "<packages><package> presence </package><package>dialog</package></packages>"),
        service("sip:alice-list@example.com",
                f"<resource-list>{ROOT}/{BOB_INDEX}/{list_selector('l1')}</resource-list>"))
    first, second = parse_services(document, OWNER)
    assert (first.uri, first.key, first.owner) == (
        "sip:alice@example.com;pres-list=rcs", "sip:alice@example.com;pres-list=rcs", OWNER)
    assert first.name == "Friends"
    assert first.packages == ("presence", "dialog")
    assert first.serves("presence") and not first.serves("message-summary")
    assert second.name is None and second.packages == ()
    assert second.serves("message-summary")


def test_a_services_element_is_compact_and_can_be_read_again():
    document = rls_services(service(
        "sip:list@example.com",
        f'\n  <list>\n    <!-- friends -->\n    {entry("sip:bob@example.com", "Bob B")}\n'
        f'  </list>\n'))
    element = parse_services(document, OWNER)[0].element
    assert b"\n" not in element and b"<!--" not in element and b"  " not in element
    root = etree.fromstring(element)
    assert root.tag == f"{{{RLS}}}service"
    assert root.find(f"{{{RLS}}}list/{{{RL}}}entry/{{{RL}}}display-name").text == "Bob B"


def test_services_without_a_key_and_repeated_keys_are_left_out():
    document = rls_services(service("not a uri", inline()),
                            service("sip:list@example.com", inline()),
                            service("sip:list@EXAMPLE.com:5060", inline()))
    assert [found.uri for found in parse_services(document, OWNER)] == ["sip:list@example.com"]


@pytest.mark.parametrize("document", [b"<rls-services", b"", resource_lists(),
                                      b'<!DOCTYPE r [<!ENTITY e "e">]><rls-services/>'])
def test_documents_that_are_not_rls_services_are_refused(document):
    with pytest.raises(ListError) as raised:
        parse_services(document, OWNER)
    assert raised.value.reference == OWNER


# flatten: inline lists


def test_an_inline_list_is_flattened_in_document_order_each_uri_once():
    found = flatten(one_service(inline(
        entry("sip:bob@example.com", "Bob"),
        f'<rl:list name="work">{entry("sip:carol@example.com")}'
        f'<rl:list>{entry("sip:dave@example.com", "Dave")}</rl:list></rl:list>',
        entry("sip:bob@EXAMPLE.com:5060", "Bob again"),
        entry("tel:+15551234"))), Documents(), ROOT)
    assert found == Flattened((Member("sip:bob@example.com", "Bob"),
                               Member("sip:carol@example.com", None),
                               Member("sip:dave@example.com", "Dave"),
                               Member("tel:+15551234", None)), frozenset())


def test_an_entry_without_uri_is_an_error():
    assert list_error(one_service(inline("<rl:entry/>")), Documents(), ROOT).reason \
        == "an entry has no uri"


def test_lists_nested_beyond_the_depth_limit_are_refused():
    def nested(depth):
        return ("<rl:list>" * depth + entry("sip:bob@example.com") + "</rl:list>" * depth)
    assert uris(flatten(one_service(inline(nested(MAX_DEPTH))), Documents(), ROOT)) \
        == ["sip:bob@example.com"]
    assert "deeper" in list_error(one_service(inline(nested(MAX_DEPTH + 1))), Documents(),
                                  ROOT).reason


def test_more_members_than_allowed_is_too_big():
    entries = [entry(f"sip:user{number}@example.com") for number in range(11)]
    assert len(flatten(one_service(inline(*entries[:10])), Documents(), ROOT,
                       max_members=10).members) == 10
    with pytest.raises(ListTooBig) as raised:
        flatten(one_service(inline(*entries)), Documents(), ROOT, max_members=10)
    assert raised.value.limit == 10


def test_a_huge_list_of_duplicates_is_cut_off_quickly():
    # 100,000 entries, in documents of the largest size a document may have.
    duplicates = resource_lists(rl_list("l", '<entry uri="sip:b@x"/>' * 25_000))
    paths = [f"resource-lists/users/sip:bob@example.com/list{number}" for number in range(4)]
    store = Documents({path: duplicates for path in paths})
    service_ = one_service(inline(*[f'<rl:external anchor="{path}/{list_selector("l")}"/>'
                                    for path in paths]))
    started = time.perf_counter()
    with pytest.raises(ListTooBig):
        flatten(service_, store, ROOT, max_members=100)
    assert time.perf_counter() - started < 0.5
    assert len(store.asked) < len(paths)


# flatten: references


def test_a_resource_list_reference_is_followed_and_its_document_reported():
    store = Documents({BOB_INDEX: resource_lists(
        rl_list("l1", entry("sip:carol@example.com", "Carol")),
        rl_list("l2", entry("sip:dave@example.com")))})
    for reference in (f"{ROOT}/{BOB_INDEX}/{list_selector('l1')}",
                      f"/xcap-root/{BOB_INDEX}/{list_selector('l1')}",
                      f"{BOB_INDEX}/{list_selector('l1')}"):
        found = flatten(one_service(f"<resource-list>{reference}</resource-list>"), store, ROOT)
        assert found == Flattened((Member("sip:carol@example.com", "Carol"),),
                                  frozenset([BOB_INDEX]))


def test_entry_refs_name_entries_of_other_documents():
    store = Documents({BOB_INDEX: resource_lists(rl_list(
        "l1", entry("sip:carol@example.com", "Carol"), entry("sip:dave@example.com", "Dave")))})
    carol = f"{BOB_INDEX}/{list_selector('l1')}/entry%5b@uri=%22sip:carol@example.com%22%5d"
    dave = f"{BOB_INDEX}/{list_selector('l1')}/entry[2]"
    found = flatten(one_service(inline(
        f'<rl:entry-ref ref="{carol}"/>',
        f'<rl:entry-ref ref="{dave}"><rl:display-name>D.</rl:display-name></rl:entry-ref>')),
        store, ROOT)
    assert found.members == (Member("sip:carol@example.com", "Carol"),
                             Member("sip:dave@example.com", "D."))
    assert store.asked == [BOB_INDEX]


def test_node_selectors_may_use_prefixes_bound_in_the_query():
    store = Documents({BOB_INDEX: resource_lists(rl_list("l1", entry("sip:carol@example.com")))})
    anchor = (f"{ROOT}/{BOB_INDEX}/~~/r:resource-lists/r:list%5b@name=%22l1%22%5d"
              f"?xmlns(r={RL})")
    assert uris(flatten(one_service(inline(f'<rl:external anchor="{anchor}"/>')), store, ROOT)) \
        == ["sip:carol@example.com"]


def test_externals_are_followed_and_lists_referenced_twice_walked_once():
    store = Documents({
        BOB_INDEX: resource_lists(
            rl_list("l1", entry("sip:carol@example.com"),
                    f'<external anchor="{ROOT}/{ALICE_INDEX}/{list_selector("shared")}"/>'),
            rl_list("l2", f'<external anchor="{ROOT}/{ALICE_INDEX}/{list_selector("shared")}"/>')),
        ALICE_INDEX: resource_lists(rl_list("shared", entry("sip:erin@example.com")))})
    found = flatten(one_service(inline(
        f'<rl:external anchor="{ROOT}/{BOB_INDEX}/{list_selector("l1")}"/>',
        f'<rl:external anchor="{ROOT}/{BOB_INDEX}/{list_selector("l2")}"/>')), store, ROOT)
    assert uris(found) == ["sip:carol@example.com", "sip:erin@example.com"]
    assert found.documents == {BOB_INDEX, ALICE_INDEX}
    assert sorted(store.asked) == [ALICE_INDEX, BOB_INDEX]


def test_a_missing_document_is_needed_then_used():
    class Fetching(Documents):
        def __call__(self, path):
            if path not in self.documents:
                raise DocumentNeeded(path)
            return super().__call__(path)

    store = Fetching()
    service_ = one_service(f"<resource-list>{BOB_INDEX}/{list_selector('l1')}</resource-list>")
    with pytest.raises(DocumentNeeded) as raised:
        flatten(service_, store, ROOT)
    assert raised.value.uri == BOB_INDEX
    store.documents[BOB_INDEX] = resource_lists(rl_list("l1", entry("sip:carol@example.com")))
    assert uris(flatten(service_, store, ROOT)) == ["sip:carol@example.com"]


@pytest.mark.parametrize("reference, reason", [
    (f"{BOB_INDEX}/{list_selector('l9')}", "selects no element"),
    (f"{ALICE_INDEX}/{list_selector('l1')}", "no such document"),
    (f"{BOB_INDEX}/~~/resource-lists/list%5b@name=%22l1%22%5d/entry", "does not select <list>"),
    (f"{BOB_INDEX}/~~/resource-lists/list%5b@name=%22l1%22%5d/@name",
     "does not select an element"),
    (BOB_INDEX, "does not select an element"),
    ("pres-rules/users/sip:bob@example.com/index/~~/ruleset", "not a resource-lists document"),
    (f"{BOB_INDEX}/~~/resource-lists/list[", None),
    (f"{BOB_INDEX}/~~/x:resource-lists", None),
    (f"resource-lists/users/sip:bob@example.com/../sip:carol@example.com/index/"
     f"{list_selector('l1')}", None),
    (f"http://elsewhere.example.com/xcap-root/{BOB_INDEX}/{list_selector('l1')}",
     "not a document of this XCAP server"),
    (f"/other-root/{BOB_INDEX}/{list_selector('l1')}", "not a document of this XCAP server"),
    ("", None),
])
def test_references_that_do_not_resolve_are_errors_naming_them(reference, reason):
    store = Documents({BOB_INDEX: resource_lists(rl_list("l1", entry("sip:carol@example.com"))),
                       "pres-rules/users/sip:bob@example.com/index": b"<ruleset/>"})
    error = list_error(one_service(inline(f'<rl:external anchor="{reference}"/>')), store, ROOT)
    assert error.reference == reference
    if reason is not None:
        assert error.reason == reason


def test_a_malformed_document_is_an_error_naming_the_reference():
    reference = f"{BOB_INDEX}/{list_selector('l1')}"
    error = list_error(one_service(f"<resource-list>{reference}</resource-list>"),
                       Documents({BOB_INDEX: b"<resource-lists"}), ROOT)
    assert error.reference == reference and "well-formed" in error.reason


def test_documents_and_references_beyond_their_limits_are_errors():
    reference = f"{BOB_INDEX}/{list_selector('l1')}"
    huge = resource_lists(rl_list("l1", entry("sip:carol@example.com")), " " * MAX_DOCUMENT_SIZE)
    error = list_error(one_service(f"<resource-list>{reference}</resource-list>"),
                       Documents({BOB_INDEX: huge}), ROOT)
    assert error.reference == reference and "larger" in error.reason
    long_reference = f"{reference}/{'x' * MAX_URI_LENGTH}"
    error = list_error(one_service(inline(f'<rl:external anchor="{long_reference}"/>')),
                       Documents(), ROOT)
    assert error.reference == long_reference[:MAX_URI_LENGTH]
    long_uri = f"sip:{'x' * MAX_URI_LENGTH}@example.com"
    assert list_error(one_service(inline(entry(long_uri))), Documents(), ROOT).reason \
        == "URI too long"


def test_a_list_that_refers_to_a_list_containing_it_is_a_loop():
    inner = f"{ROOT}/{BOB_INDEX}/{list_selector('outer')}/list%5b@name=%22inner%22%5d"
    store = Documents({BOB_INDEX: resource_lists(
        rl_list("outer", entry("sip:carol@example.com"),
                rl_list("inner",
                        f'<external anchor="{ROOT}/{BOB_INDEX}/{list_selector("outer")}"/>')),
        rl_list("self", f'<external anchor="{ROOT}/{BOB_INDEX}/{list_selector("self")}"/>'))})
    error = list_error(one_service(f"<resource-list>{inner}</resource-list>"), store, ROOT)
    assert error.reference == f"{ROOT}/{BOB_INDEX}/{list_selector('outer')}"
    assert "loop" in error.reason
    reference = f"{ROOT}/{BOB_INDEX}/{list_selector('self')}"
    assert list_error(one_service(f"<resource-list>{reference}</resource-list>"), store,
                      ROOT).reference == reference


def test_lists_referenced_in_a_diamond_are_not_a_loop_and_stay_cheap():
    # Each list refers twice to the next: 2**40 walks if each were walked each time.
    lists = [rl_list(f"l{level}", entry(f"sip:user{level}@example.com"),
                     *[f'<external anchor="{BOB_INDEX}/{list_selector(f"l{level + 1}")}"/>'] * 2)
             for level in range(MAX_DEPTH - 1)]
    store = Documents({BOB_INDEX: resource_lists(*lists, rl_list(f"l{MAX_DEPTH - 1}"))})
    reference = f"{BOB_INDEX}/{list_selector('l0')}"
    found = flatten(one_service(f"<resource-list>{reference}</resource-list>"), store, ROOT)
    assert len(found.members) == MAX_DEPTH - 1


def test_a_service_without_a_list_is_an_error():
    error = list_error(one_service("<resource-list> </resource-list>"), Documents(), ROOT)
    assert error.reference == "sip:list@example.com"


# flatten: services in lists


def services_of(*documents):
    """@return: the C{services} callable of the services of rls-services documents."""
    found = {found.key: found for document in documents
             for found in parse_services(document, OWNER)}
    return found.get


def test_a_member_that_is_a_service_stays_one_member():
    document = rls_services(
        service("sip:all@example.com", inline(entry("sip:bob@example.com"),
                                              entry("sip:friends@example.com;transport=tcp"))),
        service("sip:friends@example.com", inline(entry("sip:carol@example.com"),
                                                  entry("sip:dave@example.com"))))
    services = services_of(document)
    found = flatten(services("sip:all@example.com"), Documents(), ROOT, services=services)
    assert uris(found) == ["sip:bob@example.com", "sip:friends@example.com;transport=tcp"]


@pytest.mark.parametrize("members, offending", [
    ({"sip:a@example.com": ["sip:a@example.com"]}, "sip:a@example.com"),
    ({"sip:a@example.com": ["sip:b@example.com"], "sip:b@example.com": ["sip:a@EXAMPLE.com"]},
     "sip:a@EXAMPLE.com"),
    ({"sip:a@example.com": ["sip:x@example.com", "sip:b@example.com"],
      "sip:b@example.com": ["sip:c@example.com;pres-list=x"],
      "sip:c@example.com;pres-list=x": ["sip:b@example.com:5060"]}, "sip:b@example.com:5060"),
])
def test_loops_of_services_are_refused_naming_the_member(members, offending):
    document = rls_services(*[service(uri, inline(*map(entry, entries)))
                              for uri, entries in members.items()])
    services = services_of(document)
    error = list_error(services("sip:a@example.com"), Documents(), ROOT, services=services)
    assert error.reference == offending and "loop" in error.reason


def test_services_nested_in_a_diamond_or_broken_are_no_loop():
    document = rls_services(
        service("sip:a@example.com",
                inline(entry("sip:b@example.com"), entry("sip:c@example.com"))),
        service("sip:b@example.com", inline(entry("sip:d@example.com"))),
        service("sip:c@example.com", inline(entry("sip:d@example.com"),
                                            entry("sip:broken@example.com"))),
        service("sip:d@example.com", inline(entry("sip:bob@example.com"))),
        service("sip:broken@example.com",
                f"<resource-list>{BOB_INDEX}/{list_selector('gone')}</resource-list>"))
    services = services_of(document)
    found = flatten(services("sip:a@example.com"), Documents(), ROOT, services=services)
    assert uris(found) == ["sip:b@example.com", "sip:c@example.com"]
    assert found.documents == {BOB_INDEX}


def test_services_nested_beyond_the_depth_limit_are_refused():
    chain = [f"sip:s{level}@example.com" for level in range(MAX_DEPTH + 2)]
    document = rls_services(*[service(uri, inline(entry(nested)))
                              for uri, nested in zip(chain, chain[1:])])
    services = services_of(document)
    assert "deeper" in list_error(services(chain[0]), Documents(), ROOT,
                                  services=services).reason


def test_the_name_of_a_list_a_resource_list_names_is_its_display_name():
    service = parse_services(
        b'<rls-services xmlns="urn:ietf:params:xml:ns:rls-services">'
        b'<service uri="sip:a@example.com;pres-list=x"><resource-list>'
        b'resource-lists/users/sip:a@example.com/index/~~/resource-lists/list%5b@name=%22f%22%5d'
        b'</resource-list></service></rls-services>', "sip:a@example.com")[0]
    document = (b'<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">'
                b'<list name="f"><display-name>Friends</display-name>'
                b'<entry uri="sip:b@example.com"/></list></resource-lists>')
    flattened = flatten(service, lambda path: document, "http://127.0.0.1:8080/xcap-root")
    assert flattened.name == "Friends"
    assert [member.uri for member in flattened.members] == ["sip:b@example.com"]
