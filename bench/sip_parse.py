"""
SIP messages per second through the hot path of a UAS answering OPTIONS
over UDP, step by step as the transport, the transaction layer and the
resource adaptor take it:

 1. parse the datagram (a Parser with limits, and its memos, as the transports keep one);
 2. stamp received/rport on the top Via (RFC 3581, as core.routing.stamp_via);
 3. read the server transaction key (CSeq method, top Via branch and sent-by);
 4. validate_request (every typed header present is checked);
 5. read To tag, method, and Contact for a dialog-creating method;
 6. make_response with a To tag, add Allow, Accept, Supported and
    Allow-Events, serialize it;
 7. read the response's top Via to route it (transport, host, port,
    received, rport, maddr).

Usage: python bench/sip_parse.py [--messages N]

Target (2 cores): > 50,000/s.  Figures vary with the machine's load: the
rate per CPU second is the one to compare between runs on a busy machine.
"""

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from resource_adaptors.sip.core.message import make_response, validate_request  # noqa: E402
from resource_adaptors.sip.core.parser import DEFAULT_LIMITS, Parser  # noqa: E402

#: What SIPp's OPTIONS scenario (and most softphones' keep-alive) sends;
#: %(call)d stands for what changes from one call to the next (see L{calls}).
SIPP_OPTIONS = (
    b"OPTIONS sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-%(call)d-0;rport\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag00%(call)d\r\n"
    b"To: sut <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: %(call)d-1234@127.0.0.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Contact: sip:sipp@127.0.0.1:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n")

#: A richer OPTIONS, in the style of RFC 3261's examples.
RICH_OPTIONS = (
    b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKhjhs8ass%(call)d;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:carol@chicago.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=19283%(call)d\r\n"
    b"Call-ID: a84b4c76e%(call)d@pc33.atlanta.example.com\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Accept: application/sdp\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n")

#: The source address of the datagrams, stamped on the top Via.
PEER_HOST, PEER_PORT = "127.0.0.1", 5061
URI_SCHEMES = ("sip", "sips", "tel")
DIALOG_CREATING = frozenset(("INVITE", "SUBSCRIBE", "REFER", "NOTIFY"))
PARSER = Parser(DEFAULT_LIMITS)


def answer(data):
    """
    Take one datagram through steps 1 to 7.

    @return: the response's bytes, and the key of the server transaction.
    """
    request = PARSER.parse(data)                                        # 1
    vias = request.via                                                  # 2
    top = vias[0]
    if top.rport is True:
        top.received = PEER_HOST
        top.rport = PEER_PORT
    request.via = vias
    via = request.via[0]                                                # 3
    key = (via.branch, via.host.lower(), via.port, request.cseq.method)
    validate_request(request, uri_schemes=URI_SCHEMES)                  # 4
    if request.to.tag is None and request.method in DIALOG_CREATING:   # 5
        request.contact     # noqa: B018 -- read as the RA does
    response = make_response(request, 200, to_tag="abc123")            # 6
    headers = response.headers
    headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS")
    headers.add("Accept", "application/sdp")
    headers.add("Supported", "replaces, timer")
    headers.add("Allow-Events", "presence, dialog")
    data = bytes(response)
    via = response.via[0]                                               # 7
    (via.transport, via.host, via.port, via.received, via.rport, via.params.get("maddr"))
    return data, key


def calls(template, count=1000):
    """
    @return: C{count} datagrams of C{template}, each with the branch, From
        tag and Call-ID of another call, as a load generator sends them:
        what changes from one call to the next is parsed anew every time.
    """
    return [template % {b"call": number} for number in range(1, count + 1)]


def run(datagrams, messages):
    """@return: messages per second of wall-clock time, and of CPU time."""
    count = len(datagrams)
    wall, cpu = time.perf_counter(), time.process_time()
    for number in range(messages):
        answer(datagrams[number % count])
    return messages / (time.perf_counter() - wall), messages / (time.process_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    options = parser.parse_args()
    for label, template in (("SIPp OPTIONS", SIPP_OPTIONS), ("rich OPTIONS", RICH_OPTIONS)):
        datagrams = calls(template)
        run(datagrams, min(options.messages, 1000))     # warm up
        wall, cpu = run(datagrams, options.messages)
        print(f"{label}: parse, stamp, key, validate, make_response, serialize, route: "
              f"{wall:,.0f}/s ({cpu:,.0f} per CPU second)")


if __name__ == "__main__":
    main()
