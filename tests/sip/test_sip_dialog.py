"""
Dialog state (resource_adaptors.sip.core.dialog): pure units on parsed messages.

The messages follow one cast: Alice (the UAC, at 192.0.2.1) and Bob (the
UAS, at 192.0.2.2), with proxy p1 next to Alice and p2 next to Bob.  A
request from Alice to Bob is record-routed by p1 first, then p2, so it
carries Record-Route p2 then p1 (the proxy nearest the receiver on top).
"""

import pytest

from resource_adaptors.sip.core.dialog import (
    FIRST_LOCAL_SEQ, OUT_OF_ORDER, Dialog, DialogState, DialogTable, dialog_id, new_tag)
from resource_adaptors.sip.core.parser import ParseError, parse_message
from resource_adaptors.sip.core.syntax import TOKEN_CHARS
from resource_adaptors.sip.core.uri import parse_uri

ALICE = "sip:alice@example.com"
BOB = "sip:bob@example.com"
ALICE_CONTACT = "sip:alice@192.0.2.1:5070"
BOB_CONTACT = "sip:bob@192.0.2.2:5080"
P1 = "<sip:p1.example.com;lr>"
P2 = "<sip:p2.example.com;lr>"
CALL_ID = "call-1@192.0.2.1"


def parse(start_line, fields):
    """A message parsed from its start line and (name, value) fields; None values are left out."""
    text = start_line + "\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in fields if value is not None) + "\r\n"
    return parse_message(text.encode())


def request(method, uri=BOB, cseq=1, from_tag="alice-tag", to_tag=None,
            contact=ALICE_CONTACT, record_route=(), event=None, call_id=CALL_ID,
            from_uri=ALICE, to_uri=BOB, extra=()):
    """A request, by default from Alice to Bob outside any dialog."""
    return parse(f"{method} {uri} SIP/2.0", [
        ("Via", "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK" + new_tag()),
        *[("Record-Route", route) for route in record_route],
        ("Max-Forwards", "70"),
        ("From", f"<{from_uri}>;tag={from_tag}" if from_tag else f"<{from_uri}>"),
        ("To", f"<{to_uri}>;tag={to_tag}" if to_tag else f"<{to_uri}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
        ("Contact", contact and f"<{contact}>"),
        ("Event", event),
        *extra,
    ])


def response(req, status, to_tag="bob-tag", contact=BOB_CONTACT, record_route=()):
    """A response to C{req}, by default Bob's, with his tag and Contact."""
    to = req.headers.get("To")
    return parse(f"SIP/2.0 {status} Whatever", [
        ("Via", req.headers.get("Via")),
        *[("Record-Route", route) for route in record_route],
        ("From", req.headers.get("From")),
        ("To", f"{to};tag={to_tag}" if to_tag and req.to.tag is None else to),
        ("Call-ID", req.call_id),
        ("CSeq", req.headers.get("CSeq")),
        ("Contact", contact and f"<{contact}>"),
    ])


def in_dialog_from_bob(dialog, method, **options):
    """A request Bob sends in a dialog Alice (our side) started."""
    return request(method, uri=ALICE_CONTACT, from_uri=BOB, to_uri=ALICE,
                   from_tag=dialog.remote_tag, to_tag=dialog.local_tag,
                   call_id=dialog.call_id, **options)


def in_dialog_from_alice(dialog, method, **options):
    """A request Alice sends in a dialog Bob (our side) answered."""
    return request(method, uri=BOB_CONTACT, from_tag=dialog.remote_tag,
                   to_tag=dialog.local_tag, call_id=dialog.call_id, **options)


def sent(outgoing):
    """C{outgoing} with the Via the transaction layer adds when it sends it."""
    outgoing.headers.add("Via", "SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK" + new_tag())
    return outgoing


def described(dialog):
    """A dialog's state as plain values, to compare with one assert."""
    return {"id": dialog.id, "local_uri": str(dialog.local_uri),
            "remote_uri": str(dialog.remote_uri), "remote_target": str(dialog.remote_target),
            "local_contact": str(dialog.local_contact),
            "route_set": [str(route) for route in dialog.route_set],
            "local_seq": dialog.local_seq, "remote_seq": dialog.remote_seq,
            "secure": dialog.secure, "state": dialog.state}


def routes(message):
    return [str(route) for route in message.route]


def uas_dialog(method="SUBSCRIBE", record_route=(P2, P1), **options):
    """Bob's dialog for Alice's C{method}, with local tag bob-tag."""
    return Dialog.from_uas(request(method, cseq=7, record_route=record_route,
                                   event="presence", **options),
                           "bob-tag", local_contact=parse_uri(BOB_CONTACT))


# -- tags and ids ---------------------------------------------------------------


def test_new_tags_are_unique_tokens():
    tags = {new_tag() for _ in range(1000)}
    assert len(tags) == 1000
    assert all(len(tag) >= 8 and not tag.strip(TOKEN_CHARS) for tag in tags)


def test_dialog_id_is_call_id_local_tag_remote_tag():
    assert dialog_id("c@h", "mine", "theirs") == "c@h;mine;theirs"
    assert dialog_id("c@h", "mine", None) == "c@h;mine;"


# -- as UAS (§12.1.1) -------------------------------------------------------------


def test_uas_dialog_from_request():
    dialog = uas_dialog()
    assert (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (CALL_ID, "bob-tag",
                                                                     "alice-tag")
    assert described(dialog) == {
        "id": f"{CALL_ID};bob-tag;alice-tag", "local_uri": BOB, "remote_uri": ALICE,
        "remote_target": ALICE_CONTACT, "local_contact": BOB_CONTACT, "route_set": [P2, P1],
        "local_seq": None, "remote_seq": 7, "secure": False, "state": DialogState.EARLY}


def test_uas_dialog_confirmed_by_the_2xx_we_send():
    subscribe = request("SUBSCRIBE", cseq=7, event="presence")
    dialog = Dialog.from_uas(subscribe, "bob-tag", parse_uri(BOB_CONTACT))
    dialog.response_sent(response(subscribe, 202))
    assert dialog.state is DialogState.CONFIRMED


def test_uas_early_dialog_stays_early_on_1xx_and_ends_on_failure():
    invite = request("INVITE", cseq=7)
    dialog = Dialog.from_uas(invite, "bob-tag", parse_uri(BOB_CONTACT))
    dialog.response_sent(response(invite, 180))
    assert dialog.state is DialogState.EARLY
    dialog.response_sent(response(invite, 486))
    assert dialog.state is DialogState.TERMINATED


def test_uas_response_to_another_request_does_not_confirm():
    dialog = uas_dialog("INVITE")
    update = in_dialog_from_alice(dialog, "UPDATE", cseq=8)
    dialog.response_sent(response(update, 200, to_tag=None))
    assert dialog.state is DialogState.EARLY


@pytest.mark.parametrize("uri, over_tls, secure", [
    ("sips:bob@example.com", True, True),
    ("sips:bob@example.com", False, False),
    (BOB, True, False),
])
def test_uas_secure_flag_needs_sips_over_tls(uri, over_tls, secure):
    dialog = Dialog.from_uas(request("INVITE", uri=uri), "bob-tag", parse_uri(BOB_CONTACT),
                             over_tls=over_tls)
    assert dialog.secure is secure


@pytest.mark.parametrize("contact", [None, "*"])
def test_uas_dialog_needs_a_contact(contact):
    subscribe = request("SUBSCRIBE", contact=None, extra=[("Contact", contact)])
    with pytest.raises(ParseError) as caught:
        Dialog.from_uas(subscribe, "bob-tag", parse_uri(BOB_CONTACT))
    assert caught.value.status == 400
    assert caught.value.reason == "Missing Contact"


def test_uas_dialog_without_remote_tag_from_rfc2543_peer():
    dialog = uas_dialog(from_tag=None)
    assert dialog.remote_tag is None
    assert dialog.id == f"{CALL_ID};bob-tag;"
    table = DialogTable()
    table.add(dialog)
    assert table.match(in_dialog_from_alice(dialog, "BYE", cseq=8)) is dialog
    bye = dialog.create_request("BYE")
    assert bye.to.tag is None
    assert str(bye.to.uri) == ALICE


# -- the remote CSeq (§12.2.2) --------------------------------------------------


def test_requests_in_order_move_the_remote_seq():
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog_from_alice(dialog, "SUBSCRIBE", cseq=8)) is None
    assert dialog.remote_seq == 8
    assert dialog.receive_request(in_dialog_from_alice(dialog, "SUBSCRIBE", cseq=20)) is None
    assert dialog.remote_seq == 20


def test_a_request_older_than_the_last_is_out_of_order():
    dialog = uas_dialog()
    late = in_dialog_from_alice(dialog, "SUBSCRIBE", cseq=6,
                                contact="sip:alice@198.51.100.9")
    assert dialog.receive_request(late) == OUT_OF_ORDER == 500
    assert dialog.remote_seq == 7
    assert str(dialog.remote_target) == ALICE_CONTACT


def test_a_request_as_old_as_the_last_is_in_order():
    dialog = uas_dialog()
    assert dialog.receive_request(in_dialog_from_alice(dialog, "INFO", cseq=7)) is None
    assert dialog.remote_seq == 7


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_ack_and_cancel_are_not_checked(method):
    dialog = uas_dialog("INVITE")
    dialog.receive_request(in_dialog_from_alice(dialog, "INFO", cseq=9))
    assert dialog.receive_request(in_dialog_from_alice(dialog, method, cseq=7)) is None
    assert dialog.remote_seq == 9


def test_first_request_of_the_peer_sets_the_remote_seq():
    alice_side = DialogTable()
    invite = request("INVITE", cseq=1)
    dialog = alice_side.handle_response(invite, response(invite, 200))
    assert dialog.remote_seq is None
    assert dialog.receive_request(in_dialog_from_bob(dialog, "BYE", cseq=5000)) is None
    assert dialog.remote_seq == 5000
    assert dialog.receive_request(in_dialog_from_bob(dialog, "INFO", cseq=4999)) == OUT_OF_ORDER


# -- remote target refresh --------------------------------------------------------


@pytest.mark.parametrize("method", ["INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"])
def test_target_refresh_requests_replace_the_remote_target(method):
    dialog = uas_dialog()
    dialog.receive_request(in_dialog_from_alice(dialog, method, cseq=8,
                                                contact="sip:alice@198.51.100.9:5999"))
    assert str(dialog.remote_target) == "sip:alice@198.51.100.9:5999"


@pytest.mark.parametrize("method", ["BYE", "INFO", "MESSAGE", "PRACK"])
def test_other_requests_do_not_refresh_the_target(method):
    dialog = uas_dialog()
    dialog.receive_request(in_dialog_from_alice(dialog, method, cseq=8,
                                                contact="sip:alice@198.51.100.9:5999"))
    assert str(dialog.remote_target) == ALICE_CONTACT


def test_target_refresh_without_contact_keeps_the_target():
    dialog = uas_dialog()
    dialog.receive_request(in_dialog_from_alice(dialog, "SUBSCRIBE", cseq=8, contact=None))
    assert str(dialog.remote_target) == ALICE_CONTACT
    assert dialog.remote_seq == 8


# -- as UAC (§12.1.2) ---------------------------------------------------------------


def test_uac_dialog_from_2xx():
    table = DialogTable()
    invite = request("INVITE", cseq=3)
    dialog = table.handle_response(invite, response(invite, 200, record_route=(P2, P1)))
    assert dialog is table.get(f"{CALL_ID};alice-tag;bob-tag")
    assert (dialog.local_tag, dialog.remote_tag) == ("alice-tag", "bob-tag")
    assert described(dialog) == {
        "id": f"{CALL_ID};alice-tag;bob-tag", "local_uri": ALICE, "remote_uri": BOB,
        "remote_target": BOB_CONTACT, "local_contact": ALICE_CONTACT, "route_set": [P1, P2],
        "local_seq": 3, "remote_seq": None, "secure": False, "state": DialogState.CONFIRMED}
    assert len(table) == 1


def test_uac_secure_flag():
    table = DialogTable()
    invite = request("INVITE", uri="sips:bob@example.com")
    assert table.handle_response(invite, response(invite, 200), over_tls=True).secure is True


def test_forked_provisional_responses_make_separate_early_dialogs():
    table = DialogTable()
    invite = request("INVITE", cseq=1)
    first = table.handle_response(invite, response(invite, 180, to_tag="fork-1",
                                                   record_route=(P2, P1)))
    second = table.handle_response(invite, response(invite, 183, to_tag="fork-2",
                                                    contact="sip:bob@192.0.2.3"))
    assert first is not second
    assert first.state is second.state is DialogState.EARLY
    assert len(table) == 2
    assert table.handle_response(invite, response(invite, 180, to_tag="fork-1")) is first
    assert len(table) == 2

    confirmed = table.handle_response(invite, response(
        invite, 200, to_tag="fork-2", contact="sip:bob@192.0.2.3:7000", record_route=(P2,)))
    assert confirmed is second
    assert second.state is DialogState.CONFIRMED
    assert [str(route) for route in second.route_set] == [P2]
    assert str(second.remote_target) == "sip:bob@192.0.2.3:7000"
    assert first.state is DialogState.EARLY


def test_2xx_confirming_an_early_dialog_recomputes_the_route_set():
    table = DialogTable()
    invite = request("INVITE")
    early = table.handle_response(invite, response(invite, 180, record_route=(P2,)))
    table.handle_response(invite, response(invite, 200, record_route=(P2, P1)))
    assert early.state is DialogState.CONFIRMED
    assert [str(route) for route in early.route_set] == [P1, P2]


def test_failure_ends_an_early_dialog():
    table = DialogTable()
    invite = request("INVITE")
    early = table.handle_response(invite, response(invite, 180))
    assert table.handle_response(invite, response(invite, 486)) is early
    assert early.state is DialogState.TERMINATED


@pytest.mark.parametrize("method, status, to_tag", [
    ("INVITE", 100, "bob-tag"),     # 100 Trying never makes a dialog
    ("INVITE", 180, None),          # no To tag
    ("SUBSCRIBE", 180, "bob-tag"),  # only INVITE has early dialogs
    ("SUBSCRIBE", 404, "bob-tag"),
    ("MESSAGE", 200, "bob-tag"),    # MESSAGE makes none
    ("OPTIONS", 200, "bob-tag"),
])
def test_responses_that_create_no_dialog(method, status, to_tag):
    table = DialogTable()
    req = request(method)
    assert table.handle_response(req, response(req, status, to_tag=to_tag)) is None
    assert len(table) == 0


def test_2xx_to_subscribe_creates_a_confirmed_dialog():
    table = DialogTable()
    subscribe = request("SUBSCRIBE", event="presence")
    dialog = table.handle_response(subscribe, response(subscribe, 202))
    assert dialog.state is DialogState.CONFIRMED


def test_2xx_without_contact_creates_no_dialog():
    table = DialogTable()
    invite = request("INVITE")
    assert table.handle_response(invite, response(invite, 200, contact=None)) is None
    assert len(table) == 0


def test_2xx_to_an_in_dialog_request_of_an_unknown_dialog_creates_none():
    table = DialogTable()
    invite = request("INVITE", to_tag="gone")
    assert table.handle_response(invite, response(invite, 200)) is None


@pytest.mark.parametrize("status", [408, 481])
def test_481_or_408_ends_the_dialog(status):
    table = DialogTable()
    invite = request("INVITE")
    dialog = table.handle_response(invite, response(invite, 200))
    bye = sent(dialog.create_request("BYE"))
    assert table.handle_response(bye, response(bye, status)) is dialog
    assert dialog.state is DialogState.TERMINATED


@pytest.mark.parametrize("method, refreshed", [
    ("INVITE", True), ("UPDATE", True), ("SUBSCRIBE", True), ("NOTIFY", True),
    ("INFO", False), ("BYE", False)])
def test_2xx_to_a_target_refresh_request_replaces_the_target(method, refreshed):
    table = DialogTable()
    invite = request("INVITE")
    dialog = table.handle_response(invite, response(invite, 200))
    refresh = sent(dialog.create_request(method))
    table.handle_response(refresh, response(refresh, 200, contact="sip:bob@203.0.113.5"))
    assert (str(dialog.remote_target) == "sip:bob@203.0.113.5") is refreshed


def test_failure_to_a_target_refresh_request_keeps_the_target():
    table = DialogTable()
    invite = request("INVITE")
    dialog = table.handle_response(invite, response(invite, 200))
    reinvite = sent(dialog.create_request("INVITE"))
    table.handle_response(reinvite, response(reinvite, 491, contact="sip:bob@203.0.113.5"))
    assert str(dialog.remote_target) == BOB_CONTACT
    assert dialog.state is DialogState.CONFIRMED


# -- our requests (§12.2.1.1) -----------------------------------------------------


def test_in_dialog_request_as_uas_with_loose_routes():
    dialog = uas_dialog()
    notify = dialog.create_request("NOTIFY")
    assert notify.method == "NOTIFY"
    assert str(notify.uri) == ALICE_CONTACT
    assert routes(notify) == [P2, P1]
    assert str(notify.from_.uri) == BOB and notify.from_.tag == "bob-tag"
    assert str(notify.to.uri) == ALICE and notify.to.tag == "alice-tag"
    assert notify.call_id == CALL_ID
    assert (notify.cseq.number, notify.cseq.method) == (FIRST_LOCAL_SEQ, "NOTIFY")
    assert [str(contact.uri) for contact in notify.contact] == [BOB_CONTACT]
    assert notify.max_forwards == 70
    assert "Via" not in notify.headers


def test_local_cseq_increments_for_each_new_request():
    dialog = uas_dialog()
    numbers = [dialog.create_request(method).cseq.number
               for method in ("NOTIFY", "NOTIFY", "BYE")]
    assert numbers == [1, 2, 3]
    assert dialog.local_seq == 3


def test_local_cseq_continues_from_the_creating_request():
    table = DialogTable()
    invite = request("INVITE", cseq=41)
    dialog = table.handle_response(invite, response(invite, 200))
    assert dialog.create_request("BYE").cseq.number == 42


def test_only_target_refresh_requests_carry_our_contact():
    dialog = uas_dialog()
    assert "Contact" not in dialog.create_request("BYE").headers
    assert "Contact" not in dialog.create_request("INFO").headers
    assert "Contact" in dialog.create_request("UPDATE").headers


def test_no_route_set_sends_to_the_remote_target():
    dialog = uas_dialog(record_route=())
    notify = dialog.create_request("NOTIFY")
    assert str(notify.uri) == ALICE_CONTACT
    assert "Route" not in notify.headers


def test_strict_first_hop_takes_the_request_uri():
    strict = "<sip:strict.example.com;method=INVITE;transport=tcp?subject=x>"
    dialog = uas_dialog(record_route=(strict, P1))
    notify = dialog.create_request("NOTIFY")
    # The strict router's URI, without what a Request-URI must not have.
    assert str(notify.uri) == "sip:strict.example.com;transport=tcp"
    # The rest of the route set, then the remote target.
    assert routes(notify) == [P1, f"<{ALICE_CONTACT}>"]


def test_strict_hop_later_in_the_route_set_changes_nothing():
    dialog = uas_dialog(record_route=(P2, "<sip:strict.example.com>"))
    notify = dialog.create_request("NOTIFY")
    assert str(notify.uri) == ALICE_CONTACT
    assert routes(notify) == [P2, "<sip:strict.example.com>"]


def test_requests_round_trip_between_the_two_sides():
    """What one side builds, the other side's table matches and accepts."""
    alice_side, bob_side = DialogTable(), DialogTable()
    invite = request("INVITE", cseq=10, record_route=(P2, P1))
    bob = Dialog.from_uas(invite, "bob-tag", parse_uri(BOB_CONTACT))
    bob_side.add(bob)
    alice = alice_side.handle_response(invite, response(invite, 200, record_route=(P2, P1)))

    reinvite = parse_message(bytes(sent(alice.create_request("INVITE"))))
    assert bob_side.match(reinvite) is bob
    assert bob.receive_request(reinvite) is None
    assert bob.remote_seq == 11
    assert routes(reinvite) == [P1, P2]

    bye = parse_message(bytes(sent(bob.create_request("BYE"))))
    assert alice_side.match(bye) is alice
    assert alice.receive_request(bye) is None
    assert bob_side.match(bye) is None


def test_ack_for_2xx_repeats_the_invite_cseq_number_and_credentials():
    table = DialogTable()
    credentials = 'Digest username="alice", realm="example.com", nonce="n", response="r"'
    invite = request("INVITE", cseq=5, extra=[("Authorization", credentials)])
    dialog = table.handle_response(invite, response(invite, 200, record_route=(P2, P1)))
    ack = dialog.create_ack(invite)
    assert (ack.cseq.number, ack.cseq.method) == (5, "ACK")
    assert str(ack.uri) == BOB_CONTACT
    assert routes(ack) == [P1, P2]
    assert ack.headers.get("Authorization") == credentials
    assert "Contact" not in ack.headers
    assert dialog.local_seq == 5


@pytest.mark.parametrize("method", ["ACK", "CANCEL"])
def test_create_request_refuses_ack_and_cancel(method):
    with pytest.raises(ValueError):
        uas_dialog().create_request(method)


# -- RFC 6665: a NOTIFY creates the subscriber's dialog ---------------------------


def subscribed():
    """Alice's table after she sent an out-of-dialog SUBSCRIBE."""
    table = DialogTable()
    subscribe = request("SUBSCRIBE", cseq=3, event="presence;id=42")
    table.subscription_sent(subscribe)
    return table, subscribe


def notify_for(subscribe, from_tag="bob-tag", cseq=1, event="presence;id=42",
               contact=BOB_CONTACT, record_route=(P1, P2)):
    """Bob's NOTIFY for Alice's SUBSCRIBE: record-routed by p2, then p1."""
    return request("NOTIFY", uri=ALICE_CONTACT, from_uri=BOB, to_uri=ALICE,
                   from_tag=from_tag, to_tag=subscribe.from_.tag, call_id=subscribe.call_id,
                   cseq=cseq, event=event, contact=contact, record_route=record_route)


def test_notify_before_the_2xx_creates_the_dialog():
    table, subscribe = subscribed()
    notify = notify_for(subscribe)
    assert table.match(notify) is None
    assert not table.needs_481(notify)
    dialog = table.dialog_from_notify(notify)
    assert dialog is table.match(notify)
    assert described(dialog) == {
        "id": f"{CALL_ID};alice-tag;bob-tag", "local_uri": ALICE, "remote_uri": BOB,
        "remote_target": BOB_CONTACT, "local_contact": ALICE_CONTACT, "route_set": [P1, P2],
        "local_seq": 3, "remote_seq": 1, "secure": False, "state": DialogState.CONFIRMED}
    # A second NOTIFY goes to that dialog; it creates nothing more.
    assert table.dialog_from_notify(notify_for(subscribe, cseq=2)) is None
    assert len(table) == 1


def test_the_later_2xx_joins_the_dialog_the_notify_made():
    table, subscribe = subscribed()
    dialog = table.dialog_from_notify(notify_for(subscribe))
    ok = response(subscribe, 200, contact="sip:bob@203.0.113.5", record_route=(P2,))
    assert table.handle_response(subscribe, ok) is dialog
    assert len(table) == 1
    assert str(dialog.remote_target) == "sip:bob@203.0.113.5"
    assert [str(route) for route in dialog.route_set] == [P1, P2]


def test_forked_subscribe_gets_one_dialog_per_notifier():
    table, subscribe = subscribed()
    first = table.dialog_from_notify(notify_for(subscribe, from_tag="notifier-1"))
    second = table.dialog_from_notify(notify_for(subscribe, from_tag="notifier-2"))
    assert first is not second
    assert {first.remote_tag, second.remote_tag} == {"notifier-1", "notifier-2"}
    assert len(table) == 2


@pytest.mark.parametrize("event", ["presence", "presence;id=43", "dialog;id=42",
                                   "Presence;id=42", None])
def test_notify_for_another_event_creates_nothing_and_gets_481(event):
    table, subscribe = subscribed()
    notify = notify_for(subscribe, event=event)
    assert table.dialog_from_notify(notify) is None
    assert table.needs_481(notify)


def test_notify_with_other_call_id_gets_481():
    table, subscribe = subscribed()
    notify = request("NOTIFY", uri=ALICE_CONTACT, from_tag="bob-tag",
                     to_tag=subscribe.from_.tag, call_id="other@192.0.2.2",
                     event="presence;id=42")
    assert table.needs_481(notify)


def test_notify_without_contact_is_refused():
    table, subscribe = subscribed()
    with pytest.raises(ParseError):
        table.dialog_from_notify(notify_for(subscribe, contact=None))
    assert len(table) == 0


def test_failed_subscribe_is_forgotten():
    table, subscribe = subscribed()
    table.handle_response(subscribe, response(subscribe, 489))
    assert table.needs_481(notify_for(subscribe))
    assert table.dialog_from_notify(notify_for(subscribe)) is None


def test_subscription_kept_after_2xx_for_forked_notifies_until_forgotten():
    table, subscribe = subscribed()
    table.handle_response(subscribe, response(subscribe, 202, to_tag="notifier-1"))
    late = notify_for(subscribe, from_tag="notifier-2")
    assert not table.needs_481(late)
    table.forget_subscription(subscribe)
    assert table.needs_481(late)


# -- the table: matching and 481 ------------------------------------------------------


def table_with_uas_dialog():
    table = DialogTable()
    dialog = uas_dialog()
    table.add(dialog)
    return table, dialog


def test_match_uses_to_tag_as_local_and_from_tag_as_remote():
    table, dialog = table_with_uas_dialog()
    assert table.match(in_dialog_from_alice(dialog, "SUBSCRIBE", cseq=8)) is dialog
    swapped = request("SUBSCRIBE", from_tag="bob-tag", to_tag="alice-tag")
    assert table.match(swapped) is None
    assert table.match(request("SUBSCRIBE", call_id="other")) is None
    assert table.match(request("SUBSCRIBE")) is None


def test_needs_481_for_a_to_tag_matching_no_dialog():
    table, dialog = table_with_uas_dialog()
    assert table.needs_481(request("BYE", to_tag="unknown"))
    assert table.needs_481(request("NOTIFY", to_tag="bob-tag", from_tag="stranger"))
    assert not table.needs_481(request("ACK", to_tag="unknown"))
    assert not table.needs_481(request("INVITE"))
    assert not table.needs_481(in_dialog_from_alice(dialog, "BYE", cseq=8))


def test_remove():
    table, dialog = table_with_uas_dialog()
    assert table.get(dialog.id) is dialog
    assert table.remove(dialog.id) is dialog
    assert table.remove(dialog.id) is None
    assert table.get(dialog.id) is None
    assert len(table) == 0
    assert table.needs_481(in_dialog_from_alice(dialog, "BYE", cseq=8))


def test_a_dialog_is_made_again_from_its_snapshot():
    import json
    from resource_adaptors.sip.core.dialog import Dialog
    from resource_adaptors.sip.core.parser import parse_message
    subscribe = parse_message(
        b"SUBSCRIBE sip:alice@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bKabc\r\n"
        b"Record-Route: <sip:proxy.example.com;lr>\r\n"
        b"From: <sip:bob@example.com>;tag=bt\r\nTo: <sip:alice@example.com>\r\n"
        b"Call-ID: c1\r\nCSeq: 7 SUBSCRIBE\r\nContact: <sip:bob@10.0.0.2:5062>\r\n"
        b"Event: presence\r\nContent-Length: 0\r\n\r\n")
    from resource_adaptors.sip.core.uri import parse_uri
    dialog = Dialog.from_uas(subscribe, "at", parse_uri("sip:ps@10.0.0.1"))
    dialog.create_request("NOTIFY")
    again = Dialog.from_snapshot(json.loads(json.dumps(dialog.snapshot())))   # plain data
    assert again.snapshot() == dialog.snapshot() and again.id == dialog.id
    notify = again.create_request("NOTIFY")
    assert notify.cseq.number == 2                              # numbering goes on
    assert [str(route) for route in notify.route] == ["<sip:proxy.example.com;lr>"]
