"""
What the SIP stack logs about the messages it carries
(L{resource_adaptors.sip.message_log}): a summary of each at debug, whole
messages only when their own namespace is turned on, and each refusal at
info, over real UDP sockets on 127.0.0.1.
"""

import pytest
import pytest_twisted
from twisted.logger import formatEvent, globalLogPublisher

from resource_adaptors.sip.core.message import make_response
from resource_adaptors.sip.message_log import BODIES, MESSAGES, REFUSALS
from resource_adaptors.sip.transaction_layer import TransactionLayer
from sipclient import options
from slee.trace import LOG_LEVELS
from transport_harness import answered, network  # noqa: F401 (fixtures)

LOCAL = "interface=127.0.0.1"


@pytest.fixture
def logged():
    """namespace -> the texts logged there during the test (the log levels
    are the test's to set, and back to the defaults after it)."""
    texts = {}

    def observe(event):
        texts.setdefault(event.get("log_namespace"), []).append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    yield texts
    globalLogPublisher.removeObserver(observe)
    LOG_LEVELS.replace({})


async def exchange(network, request=None, **request_options):
    """An OPTIONS from a UDP client answered 200 by a stack: (stack port, client port)."""
    stack = network.stack()
    point = await stack.listen(f"udp:0:{LOCAL}")
    client = network.udp_peer(point.port)
    await answered(client, options(point.port, local_port=client.port, call_id="call-1",
                                   cseq=7, body="hello body", **request_options))
    return point.port, client.port


@pytest_twisted.ensureDeferred
async def test_messages_are_not_logged_by_default(network, logged):
    await exchange(network)
    assert MESSAGES not in logged and BODIES not in logged and REFUSALS not in logged


@pytest_twisted.ensureDeferred
async def test_each_message_is_summed_up_at_debug(network, logged):
    LOG_LEVELS.replace({MESSAGES: "debug"})
    port, client = await exchange(network)
    assert logged[MESSAGES] == [
        f"received OPTIONS sip:service@127.0.0.1:{port} SIP/2.0 from udp:127.0.0.1:{client} "
        "(Call-ID: call-1, CSeq: 7 OPTIONS)",
        f"sent SIP/2.0 200 OK to udp:127.0.0.1:{client} (Call-ID: call-1, CSeq: 7 OPTIONS)"]
    assert BODIES not in logged


@pytest_twisted.ensureDeferred
async def test_whole_messages_only_when_their_namespace_is_set_itself(network, logged):
    LOG_LEVELS.replace({"resource_adaptors.sip": "debug"})
    await exchange(network)
    assert len(logged[MESSAGES]) == 2 and BODIES not in logged

    LOG_LEVELS.replace({MESSAGES: "debug", BODIES: "debug"})
    port, client = await exchange(network)
    received, sent = logged[BODIES]
    assert received.startswith(f"received from udp:127.0.0.1:{client}:\nOPTIONS ")
    assert received.endswith("\r\n\r\nhello body")
    assert sent.startswith(f"sent to udp:127.0.0.1:{client}:\nSIP/2.0 200 OK\r\n")


class Refusing:
    """A transaction user that refuses every request with a 403 and a Warning."""

    def request_received(self, transaction, request):
        response = make_response(request, 403, to_tag="x")
        response.headers.add("Warning", '399 127.0.0.1 "list too large"')
        transaction.respond(response)

    def transaction_terminated(self, transaction):
        pass


@pytest_twisted.ensureDeferred
async def test_refusals_are_logged_at_info_with_reason_identity_and_resource(network, logged):
    stack = network.stack()
    layer = TransactionLayer(stack.clock, stack, Refusing())
    point = await stack.listen(f"udp:0:{LOCAL}")
    client = network.udp_peer(point.port)
    response = await answered(client, options(
        point.port, local_port=client.port, method="SUBSCRIBE", uri="sip:list@example.com",
        from_uri="sip:Alice@Example.COM:5070;transport=udp"))
    assert response.status == 403
    assert logged[REFUSALS] == [
        f"refused SUBSCRIBE sip:list@example.com from sip:Alice@example.com "
        f"(udp:127.0.0.1:{client.port}): 403 Forbidden "
        "(Warning: 399 127.0.0.1 \"list too large\")"]
    layer.stop()   # the 403's lingering record


@pytest_twisted.ensureDeferred
async def test_stateless_refusals_are_logged(network, logged):
    stack = network.stack()
    layer = TransactionLayer(stack.clock, stack, Refusing(), max_server_transactions=0)
    point = await stack.listen(f"udp:0:{LOCAL}")
    client = network.udp_peer(point.port)
    assert (await answered(client, options(point.port, local_port=client.port))).status == 503
    unparsable = options(point.port, local_port=client.port, body="hello").replace(
        b"Content-Length: 5", b"Content-Length: 500")
    assert (await answered(client, unparsable)).status == 400
    first, second = logged[REFUSALS]
    assert first.startswith("refused OPTIONS sip:service@127.0.0.1") and ": 503 " in first
    assert second.startswith("refused OPTIONS sip:service@127.0.0.1") and ": 400 " in second
    assert len(layer) == 0
