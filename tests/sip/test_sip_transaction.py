"""
The pure transaction machines (RFC 3261 §17, RFC 6026): every state
transition and timer of the four machines, the ACK and CANCEL they build,
and the matching keys.  No clock, no transport: inputs in, effects out.
"""

import pytest

from resource_adaptors.sip.core.message import make_response
from resource_adaptors.sip.core.parser import parse_message
from resource_adaptors.sip.core.matching import (
    MAGIC_COOKIE, client_key, new_branch, rfc2543_key, server_key)
from resource_adaptors.sip.core.transaction import (
    TERMINATED, TIMEOUT, DeliverToUser, InviteClient, InviteServer, Linger, NonInviteClient,
    NonInviteServer, Send, SendCancel, StartTimer, State, StopTimer, TimerSettings,
    TransactionStateError, TransportFailed, make_ack, make_cancel)

TIMERS = TimerSettings()


def request(method="OPTIONS", branch="z9hG4bKone", sent_by="client.example.com:5060",
            uri="sip:bob@example.com", to_tag=None, from_tag="ftag", call_id="call-1",
            cseq=None, routes=()):
    """A parsed request; C{branch=None} leaves the Via without one (RFC 2543)."""
    via = f"SIP/2.0/UDP {sent_by}" + (f";branch={branch}" if branch else "")
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}",
             "Via: SIP/2.0/TCP proxy:5070;branch=z9hG4bKp", "Max-Forwards: 70", f"From: Alice <sip:alice@example.com>;tag={from_tag}",
             f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq or '1 ' + method}"]
    lines += [f"Route: {route}" for route in routes]
    return parse_message(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())


def answer(req, status, to_tag="totag"):
    return make_response(req, status, to_tag=None if status == 100 else to_tag)


def started(machine_class, reliable=False, timers=TIMERS, **request_fields):
    """
    A machine of that class for a new INVITE (or OPTIONS for the non-INVITE
    ones), started.

    @return: (the request, the machine).
    """
    method = "INVITE" if machine_class in (InviteClient, InviteServer) else "OPTIONS"
    req = request(method, **request_fields)
    machine = machine_class(req, reliable, timers)
    machine.start()
    return req, machine


# -- settings and branches -----------------------------------------------------


def test_timer_settings_default_to_rfc_values():
    assert (TIMERS.t1, TIMERS.t2, TIMERS.t4) == (0.5, 4.0, 5.0)


@pytest.mark.parametrize("t1, t2, t4, word", [
    (0, 4.0, 5.0, "T1"), (-1, 4.0, 5.0, "T1"), (0.5, 0.4, 5.0, "T2"), (0.5, 4.0, 0, "T4")])
def test_timer_settings_refuse_impossible_values(t1, t2, t4, word):
    with pytest.raises(ValueError, match=word):
        TimerSettings(t1, t2, t4)


def test_new_branches_carry_the_cookie_and_are_unguessable():
    branches = {new_branch() for _ in range(1000)}
    assert len(branches) == 1000
    assert all(b.startswith(MAGIC_COOKIE) and len(b) >= len(MAGIC_COOKIE) + 16 for b in branches)


# -- INVITE client -------------------------------------------------------------


def test_invite_client_starts_calling_with_a_and_b_over_udp():
    invite = request("INVITE")
    machine = InviteClient(invite, False, TIMERS)
    assert machine.state is State.CALLING
    assert machine.start() == [Send(invite), StartTimer("A", 0.5), StartTimer("B", 32.0)]


def test_invite_client_over_a_reliable_transport_does_not_retransmit():
    invite = request("INVITE")
    assert InviteClient(invite, True, TIMERS).start() == [Send(invite), StartTimer("B", 32.0)]


def test_timer_a_doubles_without_a_cap():
    invite, machine = started(InviteClient)
    intervals = []
    for _ in range(6):
        effects = machine.timer_fired("A")
        assert effects[0] == Send(invite)
        intervals.append(effects[1].delay)
    assert intervals == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]


def test_timer_b_times_the_invite_out():
    _, machine = started(InviteClient)
    assert machine.timer_fired("B") == [TIMEOUT, TERMINATED]
    assert machine.state is State.TERMINATED


def test_provisional_responses_move_to_proceeding_and_stop_the_timers():
    invite, machine = started(InviteClient)
    ringing, progress = answer(invite, 180), answer(invite, 183)
    assert machine.receive_response(ringing) == [
        StopTimer("A"), StopTimer("B"), DeliverToUser(ringing)]
    assert machine.state is State.PROCEEDING
    assert machine.receive_response(progress) == [DeliverToUser(progress)]
    assert machine.timer_fired("A") == []


def test_a_2xx_moves_to_accepted_where_more_2xx_reach_the_user():
    invite, machine = started(InviteClient, True)
    ok, other_fork = answer(invite, 200), answer(invite, 200, to_tag="fork2")
    assert machine.receive_response(ok) == [
        StopTimer("B"), StartTimer("M", 32.0), DeliverToUser(ok)]
    assert machine.state is State.ACCEPTED
    assert machine.receive_response(other_fork) == [DeliverToUser(other_fork)]
    assert machine.receive_response(answer(invite, 486)) == []
    assert machine.timer_fired("M") == [TERMINATED]
    assert machine.state is State.TERMINATED


def test_a_2xx_after_a_provisional_one_moves_from_proceeding_to_accepted():
    invite, machine = started(InviteClient)
    machine.receive_response(answer(invite, 180))
    ok = answer(invite, 200)
    assert machine.receive_response(ok) == [StartTimer("M", 32.0), DeliverToUser(ok)]
    assert machine.state is State.ACCEPTED


def test_a_non_2xx_is_acknowledged_and_absorbed_until_timer_d():
    invite, machine = started(InviteClient)
    machine.receive_response(answer(invite, 100))
    busy = answer(invite, 486)
    effects = machine.receive_response(busy)
    ack = effects[0].message
    assert effects == [Send(ack), DeliverToUser(busy), Linger("D", 32.0, ack)]
    assert ack.method == "ACK" and machine.state is State.COMPLETED
    assert machine.receive_response(busy) == [Send(ack)]   # the same ACK again
    assert machine.receive_response(answer(invite, 200)) == []
    assert machine.timer_fired("D") == [TERMINATED]


def test_timer_d_covers_64_t1_when_t1_is_large():
    invite, machine = started(InviteClient, timers=TimerSettings(t1=1.0, t2=4.0))
    assert machine.receive_response(answer(invite, 404))[-1].delay == 64.0


def test_a_non_2xx_over_a_reliable_transport_ends_at_once():
    invite, machine = started(InviteClient, True)
    busy = answer(invite, 486)
    effects = machine.receive_response(busy)
    assert effects == [StopTimer("B"), Send(effects[1].message), DeliverToUser(busy),
                       TERMINATED]
    assert machine.state is State.TERMINATED


def test_the_ack_of_a_non_2xx_follows_section_17_1_1_3():
    invite = request("INVITE", cseq="7 INVITE", routes=["<sip:p1.example.com;lr>",
                                                        "<sip:p2.example.com;lr>"])
    ack = make_ack(invite, answer(invite, 486, to_tag="their-tag"))
    assert ack.method == "ACK"
    assert str(ack.uri) == "sip:bob@example.com"
    assert ack.headers.get_all("Via") == [invite.headers.get("Via")]
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.to.tag == "their-tag"
    assert ack.call_id == "call-1"
    assert (ack.cseq.number, ack.cseq.method) == (7, "ACK")
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.body == b""


def test_cancel_waits_for_a_provisional_response():
    invite, machine = started(InviteClient)
    assert machine.cancel() == []
    ringing = answer(invite, 180)
    effects = machine.receive_response(ringing)
    cancel = effects[2].cancel
    assert effects == [StopTimer("A"), StopTimer("B"), SendCancel(cancel),
                       StartTimer("B", 32.0), DeliverToUser(ringing)]
    assert cancel.method == "CANCEL"
    assert machine.cancel() == []   # once is enough


def test_cancel_in_proceeding_goes_at_once_and_timer_b_bounds_the_wait():
    invite, machine = started(InviteClient)
    machine.receive_response(answer(invite, 180))
    effects = machine.cancel()
    assert effects == [SendCancel(effects[0].cancel), StartTimer("B", 32.0)]
    assert machine.timer_fired("B") == [TIMEOUT, TERMINATED]


def test_the_final_response_after_a_cancel_stops_timer_b():
    invite, machine = started(InviteClient, True)
    machine.receive_response(answer(invite, 180))
    machine.cancel()
    terminated = answer(invite, 487)
    effects = machine.receive_response(terminated)
    assert effects[0] == StopTimer("B") and effects[-1] is TERMINATED


def test_cancel_after_a_final_response_sends_nothing():
    invite, machine = started(InviteClient)
    machine.receive_response(answer(invite, 200))
    assert machine.cancel() == []


def test_the_cancel_follows_section_9_1():
    invite = request("INVITE", cseq="9 INVITE", routes=["<sip:p1.example.com;lr>"])
    cancel = make_cancel(invite)
    assert str(cancel.uri) == str(invite.uri)
    assert cancel.headers.get_all("Via") == [invite.headers.get("Via")]
    for name in ("From", "To", "Call-ID"):
        assert cancel.headers.get(name) == invite.headers.get(name)
    assert (cancel.cseq.number, cancel.cseq.method) == (9, "CANCEL")
    assert cancel.headers.get_all("Route") == ["<sip:p1.example.com;lr>"]
    assert client_key(cancel) == (client_key(invite)[0], "CANCEL")


def test_client_transport_failure_ends_the_transaction_once():
    _, machine = started(InviteClient)
    assert machine.transport_failed("refused") == [TransportFailed("refused"), TERMINATED]
    assert machine.transport_failed("refused") == []
    assert machine.receive_response(answer(machine.request, 200)) == []


# -- non-INVITE client ---------------------------------------------------------


def test_non_invite_client_starts_trying_with_e_and_f():
    options = request()
    machine = NonInviteClient(options, False, TIMERS)
    assert machine.state is State.TRYING
    assert machine.start() == [Send(options), StartTimer("E", 0.5), StartTimer("F", 32.0)]
    assert NonInviteClient(options, True, TIMERS).start() == [Send(options),
                                                              StartTimer("F", 32.0)]


def test_timer_e_doubles_up_to_t2_then_stays_at_t2_in_proceeding():
    options, machine = started(NonInviteClient)
    intervals = [machine.timer_fired("E")[1].delay for _ in range(5)]
    assert intervals == [1.0, 2.0, 4.0, 4.0, 4.0]
    options, machine = started(NonInviteClient)
    trying = answer(options, 100)
    assert machine.receive_response(trying) == [DeliverToUser(trying)]
    assert machine.state is State.PROCEEDING
    assert machine.timer_fired("E") == [Send(options), StartTimer("E", 4.0)]


def test_timer_f_times_the_request_out_in_trying_and_proceeding():
    _, machine = started(NonInviteClient)
    assert machine.timer_fired("F") == [TIMEOUT, TERMINATED]
    _, machine = started(NonInviteClient)
    machine.receive_response(answer(machine.request, 100))
    assert machine.timer_fired("F") == [TIMEOUT, TERMINATED]


def test_a_final_response_completes_and_later_ones_are_absorbed_until_k():
    options, machine = started(NonInviteClient)
    ok = answer(options, 200)
    assert machine.receive_response(ok) == [StopTimer("E"), StopTimer("F"), DeliverToUser(ok),
                                            Linger("K", 5.0, None)]
    assert machine.state is State.COMPLETED
    assert machine.receive_response(ok) == []
    assert machine.receive_response(answer(options, 100)) == []
    assert machine.timer_fired("E") == []
    assert machine.timer_fired("K") == [TERMINATED]


def test_a_final_response_in_proceeding_completes_too():
    options, machine = started(NonInviteClient)
    machine.receive_response(answer(options, 100))
    ok = answer(options, 202)
    assert machine.receive_response(ok) == [StopTimer("E"), StopTimer("F"), DeliverToUser(ok),
                                            Linger("K", 5.0, None)]
    assert machine.state is State.COMPLETED


def test_a_final_response_over_a_reliable_transport_ends_at_once():
    options, machine = started(NonInviteClient, True)
    ok = answer(options, 404)
    assert machine.receive_response(ok) == [StopTimer("F"), DeliverToUser(ok), TERMINATED]


# -- INVITE server -------------------------------------------------------------


def test_invite_server_delivers_and_arms_the_100_trying_timer():
    invite = request("INVITE")
    machine = InviteServer(invite, False, TIMERS)
    assert machine.state is State.PROCEEDING
    assert machine.start() == [StartTimer("100", 0.2), DeliverToUser(invite)]


def test_100_trying_when_the_user_is_slow_and_it_answers_retransmissions():
    invite, machine = started(InviteServer)
    assert machine.receive_request(invite) == []   # nothing to resend yet
    effects = machine.timer_fired("100")
    trying = effects[0].message
    assert effects == [Send(trying)]
    assert trying.status == 100 and trying.to.tag is None
    assert machine.receive_request(invite) == [Send(trying)]
    ringing = answer(invite, 180)
    assert machine.respond(ringing) == [Send(ringing)]   # the 100 timer is gone already
    assert machine.receive_request(invite) == [Send(ringing)]


def test_a_prompt_answer_stops_the_100_trying_timer():
    invite, machine = started(InviteServer)
    ringing = answer(invite, 180)
    assert machine.respond(ringing) == [StopTimer("100"), Send(ringing)]
    assert machine.timer_fired("100") == []


def test_a_non_2xx_is_retransmitted_by_timer_g_until_the_ack():
    invite, machine = started(InviteServer)
    busy = answer(invite, 486)
    assert machine.respond(busy) == [StopTimer("100"), Send(busy), StartTimer("G", 0.5),
                                     StartTimer("H", 32.0)]
    assert machine.state is State.COMPLETED
    intervals = []
    for _ in range(5):
        effects = machine.timer_fired("G")
        assert effects[0] == Send(busy)
        intervals.append(effects[1].delay)
    assert intervals == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert machine.receive_request(invite) == [Send(busy)]
    ack = make_ack(invite, busy)
    assert machine.receive_request(ack) == [StopTimer("G"), StopTimer("H"), Linger("I", 5.0, None)]
    assert machine.state is State.CONFIRMED
    assert machine.receive_request(ack) == []
    assert machine.receive_request(invite) == []
    assert machine.timer_fired("I") == [TERMINATED]


def test_timer_h_gives_up_on_the_ack():
    invite, machine = started(InviteServer)
    machine.respond(answer(invite, 603))
    assert machine.timer_fired("H") == [TIMEOUT, TERMINATED]


def test_invite_server_over_a_reliable_transport():
    invite, machine = started(InviteServer, True)
    busy = answer(invite, 486)
    assert machine.respond(busy) == [StopTimer("100"), Send(busy), StartTimer("H", 32.0)]
    assert machine.receive_request(make_ack(invite, busy)) == [StopTimer("H"), TERMINATED]


def test_a_2xx_moves_to_accepted_where_the_invite_is_absorbed():
    invite, machine = started(InviteServer)
    ok = answer(invite, 200)
    assert machine.respond(ok) == [StopTimer("100"), Send(ok), StartTimer("L", 32.0)]
    assert machine.state is State.ACCEPTED
    assert machine.receive_request(invite) == []
    assert machine.receive_request(make_ack(invite, ok)) == []   # the user's, not ours
    assert machine.respond(ok) == [Send(ok)]   # the user retransmits its 2xx
    with pytest.raises(TransactionStateError):
        machine.respond(answer(invite, 486))
    assert machine.timer_fired("L") == [TERMINATED]


def test_no_second_final_response():
    invite, machine = started(InviteServer)
    machine.respond(answer(invite, 486))
    with pytest.raises(TransactionStateError, match="Completed"):
        machine.respond(answer(invite, 200))


def test_the_to_tag_comes_from_the_last_response():
    invite = request("INVITE")
    machine = InviteServer(invite, False, TIMERS)
    assert machine.to_tag is None
    machine.respond(answer(invite, 180, to_tag="early"))
    assert machine.to_tag == "early"


# -- non-INVITE server ---------------------------------------------------------


def test_non_invite_server_absorbs_then_resends_the_last_response():
    options = request()
    machine = NonInviteServer(options, False, TIMERS)
    assert machine.state is State.TRYING
    assert machine.start() == [DeliverToUser(options)]
    assert machine.receive_request(options) == []
    trying = answer(options, 100)
    assert machine.respond(trying) == [Send(trying)]
    assert machine.state is State.PROCEEDING
    assert machine.receive_request(options) == [Send(trying)]
    ok = answer(options, 200)
    assert machine.respond(ok) == [Send(ok), Linger("J", 32.0, ok)]
    assert machine.state is State.COMPLETED
    assert machine.receive_request(options) == [Send(ok)]
    with pytest.raises(TransactionStateError):
        machine.respond(ok)
    assert machine.timer_fired("J") == [TERMINATED]
    assert machine.state is State.TERMINATED


def test_non_invite_server_over_a_reliable_transport_ends_with_its_answer():
    options = request()
    machine = NonInviteServer(options, True, TIMERS)
    ok = answer(options, 200)
    assert machine.respond(ok) == [Send(ok), TERMINATED]


def test_server_transport_failure_and_no_answer_after_it():
    options = request()
    machine = NonInviteServer(options, False, TIMERS)
    assert machine.transport_failed("gone") == [TransportFailed("gone"), TERMINATED]
    with pytest.raises(TransactionStateError, match="Terminated"):
        machine.respond(answer(options, 200))


# -- matching ------------------------------------------------------------------


def test_client_key_is_branch_and_cseq_method():
    invite = request("INVITE")
    assert client_key(invite) == ("z9hG4bKone", "INVITE")
    assert client_key(answer(invite, 180)) == client_key(invite)
    assert client_key(answer(make_cancel(invite), 200)) == ("z9hG4bKone", "CANCEL")


def test_server_key_with_the_cookie_is_branch_sent_by_and_method():
    invite = request("INVITE")
    assert server_key(invite, "INVITE") == ("z9hG4bKone", "client.example.com", 5060, "INVITE")
    assert server_key(request("INVITE", sent_by="CLIENT.example.com:5060"), "INVITE") == \
        server_key(invite, "INVITE")
    ack = make_ack(invite, answer(invite, 486))
    assert server_key(ack, "INVITE") == server_key(invite, "INVITE")
    assert server_key(request("INVITE", sent_by="other:5060"), "INVITE") != \
        server_key(invite, "INVITE")
    assert server_key(request("INVITE", branch="z9hG4bKtwo"), "INVITE") != \
        server_key(invite, "INVITE")
    assert server_key(make_cancel(invite), "CANCEL") != server_key(invite, "INVITE")
    assert server_key(make_cancel(invite), "INVITE") == server_key(invite, "INVITE")


@pytest.mark.parametrize("branch", [None, "old-style-branch"])
def test_server_key_without_the_cookie_falls_back_to_rfc_2543(branch):
    invite = request("INVITE", branch=branch)
    key = server_key(invite, "INVITE")
    assert key == rfc2543_key(invite, "INVITE", None)
    assert server_key(request("INVITE", branch=branch), "INVITE") == key
    for change in ({"uri": "sip:carol@example.com"}, {"to_tag": "t"}, {"from_tag": "f2"},
                   {"call_id": "call-2"}, {"cseq": "2 INVITE"}, {"sent_by": "other:5060"}):
        assert server_key(request("INVITE", branch=branch, **change), "INVITE") != key, change
    ack = make_ack(invite, answer(invite, 486, to_tag="given"))
    assert server_key(ack, "INVITE") != key   # it carries the response's To tag
    assert rfc2543_key(ack, "INVITE", None) == key
    assert server_key(make_cancel(invite), "INVITE") == key
