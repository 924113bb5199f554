"""
The door's fast lane (L{resource_adaptors.sip.shedding}): what it reads of
a datagram, the refusal it makes from the bytes (the same as the usual
path's), what it leaves to the usual path, and its budget.
"""

import pytest
from twisted.internet import task

from resource_adaptors.sip.admission import Door
from resource_adaptors.sip.core.message import make_response
from resource_adaptors.sip.core.parser import parse_message
from resource_adaptors.sip.shedding import RefusalBudget, Shedder, plain_request
from resource_adaptors.sip.core.routing import Peer

PUBLISH = (
    "PUBLISH sip:alice@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.7:5070;branch=z9hG4bK-1;rport\r\n"
    "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p\r\n"
    "Max-Forwards: 70\r\n"
    "f: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:alice@example.com>\r\n"
    "Call-ID: c1@192.0.2.7\r\n"
    "CSeq: 7 PUBLISH\r\n"
    "Event: presence\r\n"
    "Content-Length: 3\r\n\r\nabc")
SOURCE = Peer("udp", "198.51.100.1", 40000)


def datagram(text=PUBLISH, old=None, new=""):
    return (text if old is None else text.replace(old, new, 1)).encode()


def test_the_refusal_from_bytes_is_the_usual_paths():
    request = plain_request(datagram())
    request.top_via.received = SOURCE.host
    request.top_via.rport = SOURCE.port
    fast = parse_message(request.answer(503, "Overloaded", [("Retry-After", "2")], "t9"))

    parsed = parse_message(datagram())
    parsed.via[0].received = SOURCE.host
    parsed.via[0].rport = SOURCE.port
    usual = make_response(parsed, 503, "Overloaded", to_tag="t9")
    usual.headers.add("Retry-After", "2")

    assert (fast.status, fast.reason) == (503, "Overloaded")
    assert list(map(str, fast.via)) == list(map(str, usual.via))
    for name in ("From", "To", "Call-ID", "CSeq", "Retry-After"):
        assert fast.headers.get(name) == usual.headers.get(name), name
    assert fast.to.tag == "t9"
    assert fast.body == b""


def test_the_key_is_the_server_transactions():
    from resource_adaptors.sip.core.matching import server_key
    assert plain_request(datagram()).key() == server_key(parse_message(datagram()), "PUBLISH")


@pytest.mark.parametrize("old, new", [
    ("PUBLISH sip:alice@example.com SIP/2.0", "ACK sip:alice@example.com SIP/2.0"),
    ("PUBLISH sip:alice@example.com SIP/2.0", "CANCEL sip:alice@example.com SIP/2.0"),
    ("PUBLISH sip:alice@example.com SIP/2.0", "SIP/2.0 200 OK"),
    ("PUBLISH sip:alice@example.com SIP/2.0", "PUBLISH sip:alice@example.com SIP/3.0"),
    ("To: <sip:alice@example.com>", "To: <sip:alice@example.com>;tag=b2"),
    ("Event: presence", "SIP-If-Match: e1"),
    ("Event: presence", "Event:\r\n presence"),
    ("branch=z9hG4bK-1;rport\r\n", "branch=z9hG4bK-1;rport, SIP/2.0/UDP a.example.com\r\n"),
    ("branch=z9hG4bK-1", "branch=1"),
    ("Call-ID: c1@192.0.2.7\r\n", "Subject: no Call-ID\r\n"),
    ("CSeq: 7 PUBLISH", "CSeq: 7 SUBSCRIBE"),
    ("Max-Forwards: 70", "To: <sip:bob@example.com>"),
    ("Via: SIP/2.0/UDP 192.0.2.7", "Via: SIP/2.0/UDP 192.0.2.7 ?"),
    ("\r\n\r\nabc", "\r\nabc"),
    ("CSeq: 7 PUBLISH\r\n", "CSeq: 7 PUBLISH\r\r\n"),        # bad line ends (RFC 4475 3.1.2.x)
    ("Call-ID: c1@192.0.2.7\r\n", "Call-ID: c1@192.0.2.7\n"),
    ("Max-Forwards: 70\r\n", "Max-Forwards: 70\rSubject: x\r\n"),
])
def test_what_is_not_plain_goes_the_usual_way(old, new):
    assert plain_request(datagram(old=old, new=new)) is None


def test_one_via_and_compact_names_are_plain():
    text = PUBLISH.replace("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p\r\n", "")
    text = text.replace("To:", "t:").replace("Call-ID:", "i:").replace("Via:", "v:")
    request = plain_request(text.encode())
    assert request is not None
    assert parse_message(request.answer(503, "x", [], "t1")).call_id == "c1@192.0.2.7"


class Timer:
    """A clock for the budget, which the test moves."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Lane:
    """A shedder whose door and transaction table the test sets; sending an
    answer takes C{send_time} seconds of its budget's clock."""

    def __init__(self, queue_delay, held=(), send_time=0.0):
        self.door = Door(lambda: queue_delay, 0.25, task.Clock(), share=lambda: 0.0)
        self.sent = []
        self.timer = Timer()

        def send(data, host, port, peer):
            self.sent.append((data, host, port))
            self.timer.now += send_time
        self.shedder = Shedder(self.door, set(held).__contains__, send,
                               RefusalBudget(0.25, self.timer))


def test_while_the_door_is_open_nothing_is_answered_here():
    lane = Lane(queue_delay=0.1)
    assert lane.shedder(datagram(), SOURCE, waited=0.1) is False
    assert lane.sent == []


def test_while_it_is_shut_a_plain_new_request_is_refused_where_rport_says():
    lane = Lane(queue_delay=0.5)
    assert lane.shedder(datagram(), SOURCE, waited=0.0) is True
    [(data, host, port)] = lane.sent
    assert (host, port) == (SOURCE.host, SOURCE.port)
    response = parse_message(data)
    assert response.status == 503
    assert response.headers.get("Retry-After") == "1"
    assert (response.via[0].received, response.via[0].rport) == (SOURCE.host, SOURCE.port)
    assert lane.door.shed == 1


def test_a_retransmission_of_a_request_taken_in_goes_the_usual_way():
    key = plain_request(datagram()).key()
    lane = Lane(queue_delay=0.5, held=[key])
    assert lane.shedder(datagram(), SOURCE, waited=0.0) is False
    assert lane.sent == [] and lane.door.shed == 0


def test_the_budget_fills_with_its_share_of_time_up_to_that_share():
    timer = Timer()
    budget = RefusalBudget(0.25, timer)
    assert budget.allows()
    budget.spent_since(timer.now - 0.3)        # a refusal took 0.3 s: 0.05 s owed
    assert not budget.allows()
    timer.now += 0.1                             # 0.025 s back: still owed
    assert not budget.allows()
    timer.now += 0.2                             # 0.05 more: 0.025 s left
    assert budget.allows()
    timer.now += 1000
    budget.allows()
    budget.spent_since(timer.now - 0.25)         # never more than the share in hand
    assert not budget.allows()


def test_past_its_budget_a_plain_new_request_is_dropped_unanswered():
    # A refusal takes 0.1 s, of which a quarter comes back: the 0.25 s
    # share pays for four (the fourth overdraws), then the lane drops (which
    # takes no time here, so none comes back).
    lane = Lane(queue_delay=0.5, send_time=0.1)
    answered = [lane.shedder(datagram(), SOURCE, waited=0.0) for _ in range(6)]
    assert answered == [True] * 6
    assert (len(lane.sent), lane.door.shed, lane.door.dropped) == (4, 4, 2)
    lane.timer.now += 1.0
    assert lane.shedder(datagram(), SOURCE, waited=0.0) is True
    assert (len(lane.sent), lane.door.shed, lane.door.dropped) == (5, 5, 2)


def test_past_its_budget_what_goes_on_still_goes_the_usual_way():
    key = plain_request(datagram()).key()
    lane = Lane(queue_delay=0.5, held=[key], send_time=1.0)
    lane.shedder(datagram(old="branch=z9hG4bK-1", new="branch=z9hG4bK-2"), SOURCE, 0.0)
    assert lane.door.shed == 1
    assert lane.shedder(datagram(), SOURCE, waited=0.0) is False
    assert lane.shedder(datagram(old="To: <sip:alice@example.com>",
                                 new="To: <sip:alice@example.com>;tag=b1"),
                        SOURCE, waited=0.0) is False
    assert lane.door.dropped == 0
