"""
The transaction layer on a fake clock and fake transports that record what
is sent: the table, the timers (and that none is left behind), what the
user is told, retransmissions, CANCEL, ACK, RFC 2543 matching,
transport errors and requests too large for UDP (RFC 3261 §18.1.1).
"""

import gc

import pytest
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from resource_adaptors.sip.core.headers import Params, Via
from resource_adaptors.sip.core.message import Request, make_response
from resource_adaptors.sip.core.transaction import State, TransactionStateError, make_ack
from resource_adaptors.sip.transaction_layer import (
    MAX_UDP_REQUEST, ClientTransaction, ServerTransaction, TransactionLayer)
from resource_adaptors.sip.core.routing import ListeningPoint, Peer, TransportError
from resource_adaptors.sip.interfaces import ITransactionUser

from test_sip_transaction import answer, request
from transport_harness import warnings  # noqa: F401 (a fixture)

UDP = Peer("udp", "192.0.2.1", 5060)
TCP = Peer("tcp", "192.0.2.1", 5060)
SERVER = Peer("udp", "198.51.100.7", 5060)


class FakeTransports:
    """
    Records what is sent; raises TransportError for the peers in C{broken}.
    Listens on the transports in C{listening}.
    """

    def __init__(self):
        self.receiver = None
        self.sent = []
        self.broken = set()
        self.listening = {"udp", "tcp"}

    def via_for(self, transport, branch):
        return Via(transport.upper(), "203.0.113.5", 5060, Params([("branch", branch)]))

    def listening_point(self, transport):
        if transport not in self.listening:
            raise TransportError(f"no {transport} listening point")
        return ListeningPoint(transport, "203.0.113.5", 5060)

    def prepare_request(self, request, destination):
        return request, destination

    def prepare_response(self, response, peer=None):
        return response, peer

    def send(self, outgoing):
        self._send(*outgoing)

    def send_request(self, request, destination):
        self._send(request, destination)

    def send_response(self, response, peer=None):
        self._send(response, peer)

    def _send(self, message, peer):
        if peer in self.broken:
            raise TransportError(f"cannot send to {peer.host}")
        self.sent.append((message, peer))

    def statuses(self):
        return [message.status for message, _ in self.sent if not isinstance(message, Request)]

    def methods(self):
        return [message.method for message, _ in self.sent if isinstance(message, Request)]


@implementer(ITransactionUser)
class RecordingUser:
    """Records every callback; C{answer} (a status) answers requests at once."""

    def __init__(self):
        self.calls = []
        self.answer = None

    def names(self):
        return [call[0] for call in self.calls]

    def request_received(self, transaction, request):
        self.calls.append(("request_received", transaction, request))
        if self.answer is not None:
            transaction.respond(answer(request, self.answer))

    def cancel_received(self, transaction, cancel):
        self.calls.append(("cancel_received", transaction, cancel))

    def response_received(self, transaction, response):
        self.calls.append(("response_received", transaction, response))

    def stray_ack(self, ack, peer):
        self.calls.append(("stray_ack", ack, peer))

    def stray_response(self, response, peer):
        self.calls.append(("stray_response", response, peer))

    def transaction_timeout(self, transaction):
        self.calls.append(("transaction_timeout", transaction))

    def transaction_error(self, transaction, reason):
        self.calls.append(("transaction_error", transaction, reason))

    def transaction_terminated(self, transaction):
        self.calls.append(("transaction_terminated", transaction))


class Stack:
    """A layer on a fake clock, fake transports and a recording user."""

    def __init__(self):
        self.clock = Clock()
        self.transports = FakeTransports()
        self.user = RecordingUser()
        self.layer = TransactionLayer(self.clock, self.transports, self.user)

    def receive(self, message, peer=UDP):
        self.layer.message_received(message, peer)

    def pending(self):
        return [call for call in self.clock.getDelayedCalls() if call.active()]

    def settle(self):
        """Run the clock well past every timer; nothing may be left after."""
        self.clock.advance(100)
        assert self.pending() == []
        assert len(self.layer) == 0


@pytest.fixture
def stack():
    return Stack()


def outgoing(method="OPTIONS"):
    """A request of ours, without Via: the layer adds it."""
    req = request(method)
    req.headers.remove("Via")
    return req


def test_the_layer_is_the_transports_receiver_and_the_user_interface_fits(stack):
    assert stack.transports.receiver is stack.layer
    verifyObject(ITransactionUser, stack.user)


# -- server transactions -------------------------------------------------------


def test_options_answered_at_once_over_udp_lingers_32_seconds(stack):
    stack.user.answer = 200
    options = request()
    stack.receive(options)
    (name, transaction, delivered), terminated = stack.user.calls
    assert (name, delivered) == ("request_received", options)
    assert terminated == ("transaction_terminated", transaction)
    assert isinstance(transaction, ServerTransaction) and transaction.peer == UDP
    assert transaction.state is State.COMPLETED and transaction.request is options
    assert stack.transports.statuses() == [200]
    assert len(stack.layer) == 1
    [timer] = stack.pending()
    assert timer.getTime() == 32.0
    stack.clock.advance(31.9)
    stack.receive(request())   # a retransmission: the 200 again, the user not bothered
    assert stack.transports.sent[1] == (stack.transports.sent[0][0], UDP)
    assert len(stack.user.calls) == 2
    stack.clock.advance(0.1)
    assert len(stack.layer) == 0 and stack.pending() == []
    stack.receive(request())   # the transaction is gone: a new one
    assert stack.user.names()[-2:] == ["request_received", "transaction_terminated"]
    stack.settle()


def test_lingering_records_cost_the_garbage_collector_nothing(stack):
    # Transports whose prepared messages are plain bytes, as SipTransports'
    # are over UDP: then a lingering record is untracked too.
    stack.transports.prepare_response = lambda response, peer=None: bytes(response)
    stack.transports.send = stack.transports.sent.append
    stack.user.answer = 200
    stack.receive(request())
    [record] = stack.layer._servers.values()
    gc.collect()
    assert not gc.is_tracked(record)


def test_lingering_transactions_expire_in_order_with_one_timer(stack):
    stack.user.answer = 200
    for number in range(3):
        stack.receive(request(branch=f"z9hG4bK{number}"))
        stack.clock.advance(10)
    assert len(stack.layer) == 3 and len(stack.pending()) == 1
    stack.clock.advance(2)   # the first answered at 0 ends at 32
    assert len(stack.layer) == 2
    stack.receive(request(branch="z9hG4bK0"))
    assert stack.user.names().count("request_received") == 4   # a new one
    stack.receive(request(branch="z9hG4bK2"))   # still lingering
    assert stack.transports.statuses() == [200] * 5
    stack.clock.advance(10)
    assert len(stack.layer) == 2
    stack.settle()


def test_options_answered_over_tcp_ends_with_its_answer(stack):
    stack.user.answer = 200
    stack.receive(request(), TCP)
    assert stack.user.names() == ["request_received", "transaction_terminated"]
    assert stack.transports.sent[0][1] == TCP
    assert stack.pending() == [] and len(stack.layer) == 0


def test_transaction_ids_are_distinct_strings(stack):
    for number in range(3):
        stack.receive(request(branch=f"z9hG4bK{number}"))
    ids = [call[1].id for call in stack.user.calls]
    assert len(set(ids)) == 3 and all(isinstance(i, str) for i in ids)
    other_layer = TransactionLayer(Clock(), FakeTransports(), RecordingUser())
    assert ids[0].split("-")[0] != other_layer._new_id().split("-")[0]


def test_a_slow_answer_is_resent_to_retransmissions_and_provisional_first(stack):
    options = request()
    stack.receive(options)
    stack.receive(options)
    assert stack.transports.sent == []
    transaction = stack.user.calls[0][1]
    transaction.respond(answer(options, 100))
    stack.receive(options)
    assert stack.transports.statuses() == [100, 100]
    transaction.respond(answer(options, 200))
    with pytest.raises(TransactionStateError):
        transaction.respond(answer(options, 500))
    stack.settle()


def test_invite_gets_100_trying_after_200_ms_of_silence(stack):
    invite = request("INVITE")
    stack.receive(invite)
    stack.clock.advance(0.19)
    assert stack.transports.sent == []
    stack.clock.advance(0.01)
    [(trying, peer)] = stack.transports.sent
    assert trying.status == 100 and peer == UDP
    stack.user.calls[0][1].respond(answer(invite, 404))
    stack.receive(make_ack(invite, answer(invite, 404)))
    stack.settle()


def test_a_prompt_answer_leaves_no_100_trying(stack):
    stack.user.answer = 180
    stack.receive(request("INVITE"))
    stack.clock.advance(1)
    assert stack.transports.statuses() == [180]


def test_a_rejected_invite_is_retransmitted_until_the_ack_which_is_absorbed(stack):
    invite = request("INVITE")
    stack.user.answer = 486
    stack.receive(invite)
    for _ in range(3):   # timer G at 0.5, 1.5, 3.5
        stack.clock.advance(stack.pending()[0].getTime() - stack.clock.seconds())
    assert stack.transports.statuses() == [486] * 4
    stack.receive(make_ack(invite, answer(invite, 486)))
    transaction = stack.user.calls[0][1]
    assert transaction.state is State.CONFIRMED
    stack.receive(make_ack(invite, answer(invite, 486)))   # absorbed while lingering (timer I)
    stack.receive(invite)
    stack.clock.advance(10)
    assert stack.transports.statuses() == [486] * 4
    assert stack.user.names() == ["request_received", "transaction_terminated"]
    stack.settle()


def test_a_late_cancel_gets_200_with_the_invite_s_tag(stack):
    invite = request("INVITE")
    stack.user.answer = 486
    stack.receive(invite)
    stack.receive(make_ack(invite, answer(invite, 486)))
    stack.receive(request("CANCEL", cseq="1 CANCEL"))
    ok = stack.transports.sent[-1][0]
    assert (ok.status, ok.cseq.method, ok.to.tag) == (200, "CANCEL", "totag")
    assert "cancel_received" not in stack.user.names()


def test_timer_h_reports_the_missing_ack(stack):
    stack.user.answer = 486
    stack.receive(request("INVITE"), TCP)
    stack.clock.advance(32)
    assert stack.user.names() == ["request_received", "transaction_timeout",
                                  "transaction_terminated"]
    assert stack.transports.statuses() == [486]   # no G over TCP
    stack.settle()


def test_the_ack_of_a_2xx_goes_to_the_user_even_when_it_matches(stack):
    invite = request("INVITE")
    stack.user.answer = 200
    stack.receive(invite)
    ok = answer(invite, 200)
    own_branch = make_ack(invite, ok)   # RFC 2543-ish clients reuse the branch
    new_branch = request("ACK", branch="z9hG4bKack", to_tag="totag", cseq="1 ACK")
    stack.receive(own_branch)
    stack.receive(new_branch, TCP)
    assert stack.user.calls[1:] == [("stray_ack", own_branch, UDP), ("stray_ack", new_branch, TCP)]
    stack.receive(invite)   # absorbed in Accepted
    assert stack.transports.statuses() == [200]
    stack.clock.advance(32)   # timer L
    assert stack.user.names()[-1] == "transaction_terminated"
    stack.settle()


def test_cancel_of_a_pending_invite(stack):
    invite = request("INVITE")
    stack.receive(invite)
    invite_transaction = stack.user.calls[0][1]
    invite_transaction.respond(answer(invite, 180, to_tag="early"))
    cancel = request("CANCEL", cseq="1 CANCEL")
    stack.receive(cancel)
    statuses = [(m.status, m.cseq.method, m.to.tag) for m, _ in stack.transports.sent]
    assert statuses == [(180, "INVITE", "early"), (200, "CANCEL", "early"),
                        (487, "INVITE", "early")]
    assert stack.user.calls[1] == ("cancel_received", invite_transaction, cancel)
    assert invite_transaction.state is State.COMPLETED
    stack.receive(cancel)   # retransmitted: the 200 again, the user not told twice
    assert stack.transports.statuses()[-1] == 200 and len(stack.user.calls) == 2
    stack.receive(make_ack(invite, stack.transports.sent[2][0]))
    assert invite_transaction.state is State.CONFIRMED
    stack.settle()
    # The CANCEL's own transaction was never shown to the user.
    assert stack.user.names() == ["request_received", "cancel_received",
                                  "transaction_terminated"]


def test_cancel_without_any_answer_yet_makes_up_a_tag(stack):
    stack.receive(request("INVITE"))
    stack.receive(request("CANCEL", cseq="1 CANCEL"))
    ok, terminated = (message for message, _ in stack.transports.sent)
    assert (ok.status, terminated.status) == (200, 487)
    assert ok.to.tag and ok.to.tag == terminated.to.tag


def test_cancel_after_the_final_answer_changes_nothing(stack):
    stack.user.answer = 200
    stack.receive(request("INVITE"))
    stack.receive(request("CANCEL", cseq="1 CANCEL"))
    assert stack.transports.statuses() == [200, 200]
    assert "cancel_received" not in stack.user.names()


def test_cancel_matching_nothing_gets_481(stack):
    stack.receive(request("CANCEL", cseq="1 CANCEL"))
    assert stack.transports.statuses() == [481]
    assert stack.user.calls == []
    stack.settle()


def test_a_cseq_method_that_is_not_the_request_s_gets_400_without_a_transaction(stack):
    stack.receive(request("OPTIONS", cseq="1 INVITE"))
    [(response, peer)] = stack.transports.sent
    assert response.status == 400 and peer == UDP and response.to.tag
    stack.receive(request("ACK", cseq="1 INVITE"))   # an ACK gets no answer
    assert len(stack.transports.sent) == 1
    assert stack.user.calls == [] and len(stack.layer) == 0


def test_rfc_2543_requests_get_transactions_and_their_acks_match_by_to_tag(stack):
    invite = request("INVITE", branch=None)
    stack.user.answer = 486
    stack.receive(invite)
    stack.receive(request("INVITE", branch=None))   # retransmission
    assert stack.transports.statuses() == [486, 486]
    transaction = stack.user.calls[0][1]
    foreign = make_ack(invite, answer(invite, 486, to_tag="not-ours"))
    stack.receive(foreign)
    assert stack.user.calls[-1] == ("stray_ack", foreign, UDP)
    stack.receive(make_ack(invite, answer(invite, 486)))   # To tag "totag", as answered
    assert transaction.state is State.CONFIRMED
    stack.receive(make_ack(invite, answer(invite, 486)))   # matches the lingering record
    stack.receive(foreign)
    assert stack.user.names().count("stray_ack") == 2
    stack.settle()


def test_rfc_2543_cancel_matches_its_invite(stack):
    stack.receive(request("INVITE", branch=None))
    stack.receive(request("CANCEL", branch=None, cseq="1 CANCEL"))
    assert stack.transports.statuses() == [200, 487]
    assert stack.user.names() == ["request_received", "cancel_received"]


def test_a_response_that_fails_to_go_out_ends_the_transaction(stack):
    stack.transports.broken.add(UDP)
    stack.user.answer = 200
    stack.receive(request())
    name, transaction, reason = stack.user.calls[1]
    assert (name, transaction) == ("transaction_error", stack.user.calls[0][1])
    assert isinstance(reason, TransportError)
    assert stack.user.names()[2:] == ["transaction_terminated"]
    assert stack.pending() == [] and len(stack.layer) == 0


# -- client transactions -------------------------------------------------------


def test_send_request_adds_our_via_and_retransmits_until_timer_f(stack):
    options = outgoing()
    transaction = stack.layer.send_request(options, SERVER)
    assert isinstance(transaction, ClientTransaction) and transaction.peer == SERVER
    [via] = options.via
    assert via.host == "203.0.113.5" and via.branch.startswith("z9hG4bK")
    times = []
    for _ in range(20):
        if not stack.pending():
            break
        stack.clock.advance(min(c.getTime() for c in stack.pending()) - stack.clock.seconds())
        times.append(stack.clock.seconds())
    # E at 0.5, 1.5, 3.5, 7.5, then every 4 s (T2); F at 32.
    assert times[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5] and times[-1] == 32.0
    assert stack.transports.methods() == ["OPTIONS"] * 11
    assert [c[0] for c in stack.user.calls] == ["transaction_timeout", "transaction_terminated"]
    stack.settle()


def test_responses_reach_the_user_once_and_timer_k_ends_it(stack):
    options = outgoing()
    transaction = stack.layer.send_request(options, SERVER)
    trying, ok = answer(options, 100), answer(options, 200)
    for response in (trying, ok, ok, trying):
        stack.receive(response, SERVER)
    assert stack.user.calls == [("response_received", transaction, trying),
                                ("response_received", transaction, ok),
                                ("transaction_terminated", transaction)]
    assert transaction.state is State.COMPLETED
    assert stack.transports.methods() == ["OPTIONS"]
    stack.clock.advance(4.9)
    assert len(stack.layer) == 1
    stack.clock.advance(0.1)
    assert len(stack.layer) == 0
    stack.receive(ok, SERVER)
    assert stack.user.calls[-1] == ("stray_response", ok, SERVER)
    stack.settle()


def test_a_response_matching_nothing_is_stray(stack):
    stray = answer(request(), 200)
    stack.receive(stray, SERVER)
    assert stack.user.calls == [("stray_response", stray, SERVER)]


def test_our_own_branch_is_kept_and_bad_requests_refused(stack):
    options = request(branch="z9hG4bKmine")
    stack.layer.send_request(options, SERVER)
    assert options.via[0].branch == "z9hG4bKmine"
    with pytest.raises(ValueError, match="in use"):
        stack.layer.send_request(request(branch="z9hG4bKmine"), SERVER)
    with pytest.raises(ValueError, match="branch"):
        stack.layer.send_request(request(branch="old"), SERVER)
    with pytest.raises(ValueError, match="ACK"):
        stack.layer.send_request(request("ACK"), SERVER)
    stack.layer.stop()


def test_a_rejected_invite_is_acknowledged_to_the_same_destination(stack):
    invite = outgoing("INVITE")
    transaction = stack.layer.send_request(invite, SERVER)
    busy = answer(invite, 486)
    stack.receive(busy, SERVER)
    stack.receive(busy, SERVER)
    assert stack.transports.methods() == ["INVITE", "ACK", "ACK"]
    ack, destination = stack.transports.sent[1]
    assert destination == SERVER and ack.to.tag == "totag"
    assert stack.transports.sent[2] == (ack, SERVER)
    assert stack.user.calls == [("response_received", transaction, busy),
                                ("transaction_terminated", transaction)]
    stack.clock.advance(32)   # timer D
    assert len(stack.layer) == 0
    stack.settle()


def test_every_2xx_to_an_invite_reaches_the_user_until_timer_m(stack):
    invite = outgoing("INVITE")
    transaction = stack.layer.send_request(invite, SERVER)
    ok, forked = answer(invite, 200), answer(invite, 200, to_tag="fork")
    for response in (ok, ok, forked):
        stack.receive(response, SERVER)
    assert [c[2] for c in stack.user.calls] == [ok, ok, forked]
    assert transaction.state is State.ACCEPTED
    assert stack.transports.methods() == ["INVITE"]   # the user acknowledges 2xx
    stack.settle()


def test_cancel_goes_after_the_first_provisional_response(stack):
    invite = outgoing("INVITE")
    transaction = stack.layer.send_request(invite, SERVER)
    transaction.cancel()
    assert stack.transports.methods() == ["INVITE"]
    stack.receive(answer(invite, 180), SERVER)
    cancel, destination = stack.transports.sent[-1]
    assert cancel.method == "CANCEL" and destination == SERVER
    stack.receive(answer(cancel, 200), SERVER)
    stack.receive(answer(invite, 487), SERVER)
    assert stack.transports.methods() == ["INVITE", "CANCEL", "ACK"]
    statuses = [c[2].status for c in stack.user.calls if c[0] == "response_received"]
    assert statuses == [180, 487]   # the CANCEL's own 200 is the layer's business
    stack.settle()
    assert stack.user.names().count("transaction_terminated") == 1


def test_a_response_is_delivered_before_its_ack_fails_to_go_out(stack):
    invite = outgoing("INVITE")
    transaction = stack.layer.send_request(invite, SERVER)
    stack.transports.broken.add(SERVER)
    busy = answer(invite, 486)
    stack.receive(busy, SERVER)
    assert [call[0] for call in stack.user.calls] == [
        "response_received", "transaction_error", "transaction_terminated"]
    assert stack.user.calls[0] == ("response_received", transaction, busy)
    assert stack.pending() == [] and len(stack.layer) == 0


def test_an_unanswered_cancel_times_the_invite_out(stack):
    invite = outgoing("INVITE")
    transaction = stack.layer.send_request(invite, TCP)
    stack.receive(answer(invite, 180), TCP)
    stack.clock.advance(20)
    transaction.cancel()
    stack.clock.advance(31.9)
    assert "transaction_timeout" not in stack.user.names()
    stack.clock.advance(0.1)
    assert stack.user.calls[-2:] == [("transaction_timeout", transaction),
                                     ("transaction_terminated", transaction)]
    stack.settle()


def test_only_an_invite_can_be_cancelled(stack):
    transaction = stack.layer.send_request(outgoing(), SERVER)
    with pytest.raises(TransactionStateError):
        transaction.cancel()
    stack.layer.stop()


def test_a_request_that_cannot_be_sent_fails_at_once(stack):
    stack.transports.broken.add(SERVER)
    transaction = stack.layer.send_request(outgoing(), SERVER)
    assert stack.user.names() == ["transaction_error", "transaction_terminated"]
    assert transaction.state is State.TERMINATED
    assert stack.pending() == [] and len(stack.layer) == 0


def test_a_later_transport_error_fails_the_transactions_still_waiting_there(stack):
    waiting = stack.layer.send_request(outgoing(), TCP)
    answered = stack.layer.send_request(request(branch="z9hG4bKanswered"), TCP)
    elsewhere = stack.layer.send_request(request(branch="z9hG4bKelsewhere"), SERVER)
    stack.receive(answer(answered.request, 100), TCP)
    stack.layer.transport_error(Peer("tcp", "192.0.2.1", 5060), TransportError("refused"))
    failed = [c[1] for c in stack.user.calls if c[0] == "transaction_error"]
    assert failed == [waiting]
    assert answered.state is State.PROCEEDING and elsewhere.state is State.TRYING
    stack.layer.transport_error(Peer("tcp", "192.0.2.99", 5060), TransportError("refused"))
    assert len(stack.layer) == 2
    stack.layer.stop()


# -- requests too large for UDP (RFC 3261 §18.1.1) ------------------------------

SERVER_TCP = Peer("tcp", SERVER.host, SERVER.port)


def of_size(size, method="NOTIFY"):
    """A request of ours (with our UDP Via) of exactly C{size} bytes."""
    req = outgoing(method)
    req.via = [FakeTransports().via_for("udp", "z9hG4bK" + method)]
    req.body = b"x" * (size - len(bytes(req)))
    req.body = req.body[:len(req.body) - (len(bytes(req)) - size)]  # Content-Length grew
    assert len(bytes(req)) == size
    return req


@pytest.mark.parametrize("size, destination", [
    (MAX_UDP_REQUEST, SERVER), (MAX_UDP_REQUEST + 1, SERVER_TCP)])
def test_transport_for_size_moves_what_exceeds_1300_bytes_from_udp_to_tcp(
        stack, size, destination):
    assert stack.layer.transport_for_size(of_size(size), SERVER) == destination
    assert stack.layer.transport_for_size(of_size(size), TCP) is TCP


def test_a_large_request_goes_over_tcp_with_no_retransmission_and_no_timer_k(stack):
    notify = of_size(MAX_UDP_REQUEST + 1)
    transaction = stack.layer.send_request(notify, SERVER)
    assert transaction.peer == SERVER_TCP
    assert stack.transports.sent == [(notify, SERVER_TCP)]
    stack.clock.advance(31.9)
    assert stack.transports.methods() == ["NOTIFY"], "no timer E over TCP"
    ok = answer(notify, 200)
    stack.receive(ok, SERVER_TCP)
    assert stack.user.calls == [("response_received", transaction, ok),
                                ("transaction_terminated", transaction)]
    assert len(stack.layer) == 0, "timer K is zero over TCP"
    small = stack.layer.send_request(outgoing(), SERVER)
    assert small.peer == SERVER
    stack.layer.stop()


def test_without_a_tcp_listening_point_large_requests_stay_on_udp_with_one_warning(
        stack, warnings):
    stack.transports.listening.discard("tcp")
    first = stack.layer.send_request(of_size(2000), SERVER)
    second = stack.layer.send_request(of_size(2000, "MESSAGE"), SERVER)
    assert first.peer == second.peer == SERVER
    stack.clock.advance(0.5)
    assert stack.transports.methods() == ["NOTIFY", "MESSAGE"] * 2, "retransmitted over UDP"
    [warning] = warnings
    assert "1300" in warning and "TCP" in warning
    stack.layer.stop()


def test_a_large_request_goes_over_udp_when_tcp_fails_later(stack):
    notify = of_size(2000)
    transaction = stack.layer.send_request(notify, SERVER)
    stack.clock.advance(10)     # the connect timeout
    stack.layer.transport_error(SERVER_TCP, TransportError("connection refused"))
    assert transaction.peer == SERVER and transaction.state is State.TRYING
    assert stack.transports.sent == [(notify, SERVER_TCP), (notify, SERVER)]
    stack.clock.advance(0.5)
    assert stack.transports.sent[-1] == (notify, SERVER), "retransmitted over UDP (timer E)"
    ok = answer(notify, 200)
    stack.receive(ok, SERVER)
    assert stack.user.names() == ["response_received", "transaction_terminated"]
    stack.clock.advance(4.9)
    assert len(stack.layer) == 1, "timer K runs over UDP"
    stack.settle()


def test_a_large_request_goes_over_udp_when_tcp_fails_at_once_and_fails_with_udp(stack):
    stack.transports.broken.add(SERVER_TCP)
    transaction = stack.layer.send_request(of_size(2000), SERVER)
    assert transaction.peer == SERVER and stack.transports.sent == [(transaction.request, SERVER)]
    assert stack.user.calls == []
    stack.layer.transport_error(SERVER, TransportError("unreachable"))
    assert stack.user.names() == ["transaction_error", "transaction_terminated"]
    stack.settle()


def test_an_invite_cancelled_before_tcp_failed_is_cancelled_over_udp(stack):
    invite = of_size(2000, "INVITE")
    transaction = stack.layer.send_request(invite, SERVER)
    transaction.cancel()
    stack.layer.transport_error(SERVER_TCP, TransportError("connection refused"))
    stack.receive(answer(invite, 180), SERVER)
    assert [(m.method, peer) for m, peer in stack.transports.sent] == [
        ("INVITE", SERVER_TCP), ("INVITE", SERVER), ("CANCEL", SERVER)]
    stack.layer.stop()


# -- the layer as a whole ------------------------------------------------------


def test_stop_cancels_every_timer_silently(stack):
    stack.receive(request("INVITE"))
    stack.layer.send_request(outgoing("INVITE"), SERVER)
    stack.layer.send_request(outgoing(), SERVER)
    calls = len(stack.user.calls)
    stack.layer.stop()
    assert stack.pending() == [] and len(stack.layer) == 0
    assert len(stack.user.calls) == calls


def test_a_user_stopping_the_layer_from_a_callback_leaves_nothing_armed(stack):
    options = outgoing()
    stack.layer.send_request(options, SERVER)
    stack.user.response_received = lambda transaction, response: stack.layer.stop()
    stack.receive(answer(options, 200), SERVER)
    assert stack.pending() == []


def test_a_2xx_the_user_sends_again_in_accepted_goes_out(stack):
    invite = request("INVITE")
    stack.receive(invite)
    transaction = stack.user.calls[0][1]
    ok = make_response(invite, 200, to_tag="t")
    transaction.respond(ok)
    transaction.respond(ok)
    assert stack.transports.statuses() == [200, 200]
    stack.settle()


def test_a_full_table_answers_new_requests_503_without_a_transaction():
    stack = Stack()
    stack.layer = TransactionLayer(stack.clock, stack.transports, stack.user,
                                   max_server_transactions=2)
    stack.user.answer = 200
    for number in range(2):
        stack.receive(request(branch=f"z9hG4bK{number}"))
    assert len(stack.layer) == 2        # both linger
    stack.receive(request(branch="z9hG4bK2"))
    assert stack.transports.statuses() == [200, 200, 503]
    refusal, _ = stack.transports.sent[-1]
    assert refusal.headers.get("Retry-After") == "5" and refusal.to.tag
    assert stack.user.names().count("request_received") == 2 and len(stack.layer) == 2
    stack.receive(request(branch="z9hG4bK0"))       # a retransmission still gets its answer
    assert stack.transports.statuses()[-1] == 200
    stack.clock.advance(32)                         # the lingering ones end
    stack.receive(request(branch="z9hG4bK2"))
    assert stack.transports.statuses()[-1] == 200
    assert stack.user.names().count("request_received") == 3
