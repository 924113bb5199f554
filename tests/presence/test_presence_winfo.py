"""
Watcher information documents (RFC 3857, RFC 3858): built, read back, and
hostile or broken ones refused.
"""

import dataclasses

import pytest
from lxml import etree

from sbbs.presence.winfo import (
    EVENTS, MAX_WATCHERS, STATUSES, WATCHERINFO_NAMESPACE, WINFO_TYPE, Watcher, WatcherInfoError,
    parse_watcherinfo, watcher_id, watcherinfo_document)

ALICE = "sip:alice@example.com"
BOB = Watcher(watcher_id("bob-dialog"), "sip:bob@example.org", "active", "approved",
              display_name="Bob", expiration=3540, duration_subscribed=60)
CAROL = Watcher(watcher_id("carol-dialog"), "sip:carol@example.net", "pending", "subscribe")
DAVE = Watcher(watcher_id("dave-dialog"), "sips:dave@example.com", "terminated", "rejected",
               duration_subscribed=0)

BILLION_LAUGHS = f"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" version="0" state="full">
  <watcher-list resource="{ALICE}" package="presence">
    <watcher id="a" status="active" event="approved">sip:&lol3;@example.com</watcher>
  </watcher-list></watcherinfo>""".encode("utf-8")
EXTERNAL_ENTITY = f"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" version="0" state="full">
  <watcher-list resource="{ALICE}" package="presence">
    <watcher id="a" status="active" event="approved">&secret;</watcher>
  </watcher-list></watcherinfo>""".encode("utf-8")
EXTERNAL_DTD = f"""<?xml version="1.0"?>
<!DOCTYPE watcherinfo SYSTEM "http://127.0.0.1:1/evil.dtd">
<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" version="0" state="full"/>""".encode("utf-8")


def document(*lists, version="0", state="full", namespace=WATCHERINFO_NAMESPACE):
    """A watcherinfo document whose watcher lists are these (the XML of each)."""
    return (f'<watcherinfo xmlns="{namespace}" version="{version}" state="{state}">'
            f'{"".join(lists)}</watcherinfo>').encode("utf-8")


def watcher_list(*watchers, resource=ALICE, package="presence"):
    return (f'<watcher-list resource="{resource}" package="{package}">'
            f'{"".join(watchers)}</watcher-list>')


def watcher(uri="sip:bob@example.org", **attributes):
    attributes = {"id": "w1", "status": "active", "event": "approved", **attributes}
    written = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in attributes.items())
    return f"<watcher{written}>{uri}</watcher>"


def reason_of(body, **options):
    with pytest.raises(WatcherInfoError) as raised:
        parse_watcherinfo(body, **options)
    return str(raised.value)


# -- building and reading back -------------------------------------------------------

def test_a_full_document_round_trips():
    body = watcherinfo_document(ALICE, "presence", [BOB, CAROL, DAVE], version=0)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert parse_watcherinfo(body) == (0, "full", [(ALICE, "presence", [BOB, CAROL, DAVE])])
    assert etree.fromstring(body).tag == f"{{{WATCHERINFO_NAMESPACE}}}watcherinfo"


def test_the_format_is_rfc_3858s():
    assert WINFO_TYPE == "application/watcherinfo+xml"
    assert WATCHERINFO_NAMESPACE == "urn:ietf:params:xml:ns:watcherinfo"


def test_a_partial_document_carries_only_what_changed():
    approved = dataclasses.replace(CAROL, status="active", event="approved", expiration=3600)
    body = watcherinfo_document(ALICE, "presence", [approved], version=1, full=False)
    assert parse_watcherinfo(body) == (1, "partial", [(ALICE, "presence", [approved])])


def test_a_document_may_report_no_watcher():
    body = watcherinfo_document(ALICE, "presence", [], version=0)
    assert parse_watcherinfo(body) == (0, "full", [(ALICE, "presence", [])])


def test_optional_attributes_are_left_out_when_absent():
    body = watcherinfo_document(ALICE, "presence", [CAROL], version=0)
    [element] = etree.fromstring(body).iter(f"{{{WATCHERINFO_NAMESPACE}}}watcher")
    assert sorted(element.attrib) == ["event", "id", "status"]


def test_watchers_keep_their_order():
    body = watcherinfo_document(ALICE, "presence", [DAVE, BOB, CAROL], version=0)
    assert parse_watcherinfo(body)[2][0][2] == [DAVE, BOB, CAROL]


@pytest.mark.parametrize("version", [0, 1, 41, 2 ** 64 - 1])
def test_versions_round_trip(version):
    body = watcherinfo_document(ALICE, "presence", [BOB], version=version)
    assert parse_watcherinfo(body)[0] == version


@pytest.mark.parametrize("version", [-1, 2 ** 64, True, 1.0, "1", None])
def test_a_version_that_is_not_an_unsigned_long_is_refused(version):
    with pytest.raises(ValueError):
        watcherinfo_document(ALICE, "presence", [BOB], version=version)


def test_every_status_and_event_round_trips():
    watchers = [Watcher(f"{status}-{event}", "sip:w@example.com", status, event)
                for status in STATUSES for event in EVENTS]
    body = watcherinfo_document(ALICE, "presence", watchers, version=3)
    assert parse_watcherinfo(body)[2][0][2] == watchers


def test_a_full_document_of_as_many_watchers_as_a_parser_accepts_round_trips():
    watchers = [Watcher(watcher_id(f"dialog {n}"), f"sip:w{n}@example.com", "active", "approved",
                        expiration=n) for n in range(MAX_WATCHERS)]
    body = watcherinfo_document(ALICE, "presence", watchers, version=7)
    assert parse_watcherinfo(body) == (7, "full", [(ALICE, "presence", watchers)])


# -- escaping ------------------------------------------------------------------------

HOSTILE = '"/><watcher id="x" status="active" event="approved">sip:evil</watcher><x a="&amp;\'<>]]>'


def test_hostile_uris_and_display_names_are_escaped_and_round_trip():
    hostile = Watcher("id " + HOSTILE, "sip:" + HOSTILE + "@example.com", "pending", "subscribe",
                      display_name=HOSTILE + ' "Mallory" <m@x> & co')
    resource = "sip:al&ice@example.com;x=\"<y>\""
    body = watcherinfo_document(resource, "presence&<\"", [hostile, BOB], version=0)
    assert parse_watcherinfo(body) == (0, "full", [(resource, "presence&<\"", [hostile, BOB])])
    root = etree.fromstring(body)
    assert len(list(root.iter(f"{{{WATCHERINFO_NAMESPACE}}}watcher"))) == 2
    assert len(root) == 1


def test_whitespace_in_attributes_and_carriage_returns_survive():
    spaced = Watcher("a\tb", "sip:c@example.com;x=a\rb", "active", "approved",
                     display_name="line one\nline two\r\n\tend")
    body = watcherinfo_document(ALICE, "presence", [spaced], version=0)
    assert parse_watcherinfo(body)[2][0][2] == [spaced]


def test_text_is_utf_8():
    named = Watcher("é", "sip:zoë@example.com", "active", "approved", display_name="Zoë 🦊")
    body = watcherinfo_document(ALICE, "presence", [named], version=0)
    assert "Zoë 🦊".encode("utf-8") in body
    assert parse_watcherinfo(body)[2][0][2] == [named]


# -- watchers ------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [
    {"status": "approved"}, {"status": "Active"}, {"status": None},
    {"event": "active"}, {"event": "refresh"}, {"event": None},
])
def test_a_status_or_event_the_rfc_does_not_define_is_refused(changes):
    with pytest.raises(ValueError):
        dataclasses.replace(BOB, **changes)


@pytest.mark.parametrize("changes", [
    {"id": ""}, {"id": None}, {"uri": ""}, {"uri": b"sip:bob@example.org"},
    {"uri": " sip:bob@example.org"}, {"uri": "sip:bob@example.org\r\n"},
    {"display_name": 7},
    {"expiration": -1}, {"expiration": 2 ** 64}, {"expiration": True}, {"expiration": "60"},
    {"duration_subscribed": -1}, {"duration_subscribed": 1.5},
])
def test_a_malformed_watcher_is_refused(changes):
    with pytest.raises(ValueError):
        dataclasses.replace(BOB, **changes)


@pytest.mark.parametrize("text", ["a\x00b", "a\x1bb", "\udcff", "\ufffe"])
@pytest.mark.parametrize("field", ["id", "uri", "display_name"])
def test_text_xml_cannot_carry_is_refused(field, text):
    with pytest.raises(ValueError):
        dataclasses.replace(BOB, **{field: text})


@pytest.mark.parametrize("resource, package", [("", "presence"), (ALICE, ""),
                                               ("sip:a\x00@b", "presence"), (None, "presence")])
def test_a_malformed_resource_or_package_is_refused(resource, package):
    with pytest.raises(ValueError):
        watcherinfo_document(resource, package, [BOB], version=0)


def test_two_watchers_with_one_id_are_refused():
    twin = dataclasses.replace(CAROL, id=BOB.id)
    with pytest.raises(ValueError):
        watcherinfo_document(ALICE, "presence", [BOB, twin], version=0)


def test_only_watchers_are_written():
    with pytest.raises(TypeError):
        watcherinfo_document(ALICE, "presence", [dataclasses.asdict(BOB)], version=0)


def test_a_watcher_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        BOB.status = "terminated"


def test_watcher_ids_are_stable_short_opaque_and_distinct():
    key = "call-id-4711@host.example.com;from-tag=abc;to-tag=def"
    assert watcher_id(key) == watcher_id(key)
    assert len(watcher_id(key)) == 16
    assert "4711" not in watcher_id(key) and "host" not in watcher_id(key)
    ids = {watcher_id(f"{key}{n}") for n in range(10_000)}
    assert len(ids) == 10_000
    assert all(identifier.replace("-", "").replace("_", "").isalnum() for identifier in ids)


def test_a_key_with_bytes_that_were_not_utf_8_hashes_as_those_bytes():
    key = b"call-\xff".decode("utf-8", "surrogateescape")
    assert watcher_id(key) == watcher_id(key) != watcher_id("call-\xff")


# -- reading what peers send ---------------------------------------------------------

def test_a_document_written_by_another_implementation_is_read():
    body = f"""<?xml version="1.0" encoding="UTF-8"?>
<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" xmlns:x="urn:example:ext"
             version=" +12 " state="partial">
  <x:note>skipped</x:note>
  <watcher-list resource="sip:carol@example.net" package="presence">
    <!-- a comment -->
    <watcher status="waiting" id="q7" event="timeout" expiration="0"
             display-name="Ed" xml:lang="en" x:flag="1">
      sip:ed@example.org
    </watcher>
    <x:extension><watcher id="not-one">sip:no@example.org</watcher></x:extension>
  </watcher-list>
  <watcher-list resource="sip:carol@example.net" package="presence.winfo"/>
</watcherinfo>""".encode("utf-8")
    assert parse_watcherinfo(body) == (12, "partial", [
        ("sip:carol@example.net", "presence",
         [Watcher("q7", "sip:ed@example.org", "waiting", "timeout", "Ed", expiration=0)]),
        ("sip:carol@example.net", "presence.winfo", []),
    ])


def test_limits_are_inclusive_and_count_every_list():
    two = watcher_list(watcher(id="a"), watcher(id="b"))
    one = watcher_list(watcher(id="a"), resource="sip:other@example.com")
    assert len(parse_watcherinfo(document(two, one), max_watchers=3)[2]) == 2
    assert reason_of(document(two, one), max_watchers=2) == "more than 2 watchers"
    assert reason_of(document(watcher_list(), watcher_list(), watcher_list()),
                     max_watchers=2) == "more than 2 watcher lists"


def test_more_than_ten_thousand_watchers_are_refused():
    watchers = "".join(watcher(id=f"w{n}") for n in range(MAX_WATCHERS + 1))
    assert MAX_WATCHERS == 10_000
    assert reason_of(document(watcher_list(watchers))) == "more than 10000 watchers"


@pytest.mark.parametrize("body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_document_type_declarations_are_refused(body):
    assert "document type declarations are not allowed" in reason_of(body)


@pytest.mark.parametrize("body", [b"", b"<watcherinfo", b"text", b"<a></b>",
                                  document(watcher_list())[:-5]])
def test_what_is_not_well_formed_is_refused(body):
    reason_of(body)


def test_what_is_not_utf_8_is_refused():
    body = document(watcher_list(watcher(display_name="Zoë"))).replace("Zoë".encode("utf-8"),
                                                                        b"Zo\xeb")
    assert reason_of(body) == "the body is not UTF-8"


@pytest.mark.parametrize("body", [
    document(namespace="urn:ietf:params:xml:ns:pidf"),
    b'<watcherinfo version="0" state="full"/>',
    f'<watcher-list xmlns="{WATCHERINFO_NAMESPACE}" resource="{ALICE}" package="presence"/>'
    .encode("utf-8"),
])
def test_a_document_that_is_not_watcherinfo_is_refused(body):
    assert reason_of(body) == "the body is not a watcherinfo document"


@pytest.mark.parametrize("body", [
    document(version=""), document(version="-1"), document(version="one"),
    document(version="1" * 21), document(version=str(2 ** 64)),
    f'<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" state="full"/>'.encode("utf-8"),
])
def test_a_version_that_is_not_an_unsigned_long_is_not_read(body):
    reason_of(body)


@pytest.mark.parametrize("state", ["", "Full", "delta"])
def test_a_state_other_than_full_or_partial_is_refused(state):
    assert reason_of(document(state=state)) == "a watcherinfo document's state is full or partial"


@pytest.mark.parametrize("element", [
    '<watcher-list package="presence"/>',
    '<watcher-list resource="" package="presence"/>',
    f'<watcher-list resource="{ALICE}"/>',
])
def test_a_watcher_list_needs_its_resource_and_package(element):
    assert reason_of(document(element)).startswith("a watcher-list has no ")


@pytest.mark.parametrize("element", [
    watcher(status="approved"), watcher(event="refresh"), watcher(id=""),
    watcher(uri="   "), watcher(expiration="-5"), watcher(duration_subscribed="soon"),
    '<watcher status="active" event="approved">sip:bob@example.org</watcher>',
    watcher(uri="sip:a@b<extra>x</extra>"),
])
def test_a_watcher_that_does_not_follow_the_rfc_is_refused(element):
    reason_of(document(watcher_list(element)))


def test_two_watchers_of_one_list_with_one_id_are_refused():
    twins = watcher_list(watcher(id="same"), watcher(uri="sip:other@example.org", id="same"))
    assert reason_of(document(twins)) == "two watchers of one list have the same id"
    apart = [watcher_list(watcher(id="same")),
             watcher_list(watcher(id="same"), resource="sip:other@example.com")]
    assert len(parse_watcherinfo(document(*apart))[2]) == 2


@pytest.mark.parametrize("body", [
    document(f'<watcher xmlns="{WATCHERINFO_NAMESPACE}" id="a" status="active" '
             'event="approved">sip:a@b</watcher>'),
    document(watcher_list(watcher(), "<watcher-list/>")),
    document("<unknown/>"),
])
def test_watcherinfo_elements_out_of_place_are_refused(body):
    assert reason_of(body).endswith("has no place there")


def test_refusals_are_value_errors_that_do_not_quote_the_document():
    reason = reason_of(document(watcher_list(watcher(status="secret-state"))))
    assert issubclass(WatcherInfoError, ValueError)
    assert "secret" not in reason
