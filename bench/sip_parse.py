"""
SIP messages per second through the hot path of a UAS answering OPTIONS:
parse the request, build the 200 with make_response, serialize it.

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

from resource_adaptors.sip.message import make_response  # noqa: E402
from resource_adaptors.sip.parser import parse_message  # noqa: E402

OPTIONS = (
    b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bKhjhs8ass877;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:carol@chicago.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Accept: application/sdp\r\n"
    b"User-Agent: bench/1.0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n")


def run(messages):
    """@return: messages per second of wall-clock time, and of CPU time."""
    wall, cpu = time.perf_counter(), time.process_time()
    for number in range(messages):
        request = parse_message(OPTIONS)
        bytes(make_response(request, 200, to_tag="as6151ad25"))
    return messages / (time.perf_counter() - wall), messages / (time.process_time() - cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    options = parser.parse_args()
    run(min(options.messages, 1000))    # warm up
    wall, cpu = run(options.messages)
    print(f"parse + make_response + serialize of OPTIONS: {wall:,.0f}/s "
          f"({cpu:,.0f} per CPU second)")


if __name__ == "__main__":
    main()
