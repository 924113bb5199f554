"""
A seeded mutation fuzzer against a container running the integrated
profile's SIP services (presence server, registrar, resource list server,
OPTIONS), over real UDP and TCP sockets on 127.0.0.1 (issue 16).

It mutates a corpus of valid requests (PUBLISH with PIDF, SUBSCRIBE to
presence and presence.winfo, REGISTER, OPTIONS, MESSAGE, NOTIFY, INVITE,
in-dialog requests) in bytes, header values, line ends, parameters, URIs,
numbers, sizes and cuts, sends them, and checks that:

- every request that an oracle of its own (L{awaited_branch}, independent
  of the parser) deems answerable gets a final response: its request line
  is readable, each Via matches a plain regular expression and routes the
  answer back to the sender, From, To, Call-ID and CSeq are there, and
  nothing an answer would copy is broken;
- nothing is logged at level error or critical, and no traceback;
- once the container's clock has let everything the valid requests made
  expire, its activities and SBB entities are what they were before.

By default 2,000 requests over each transport, seed 16 (some seconds);
set C{SLEE_FUZZ_COUNT} (requests per transport, say 20000) and
C{SLEE_FUZZ_SEED} for longer or other manual runs: a failure names the
seed and shows the requests that went unanswered.
"""

import os
import random
import re
import uuid

import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from sipclient import TIMEOUT, options
from slee.settings import shipped_profiles, shipped_units
from test_sip_malformed import failures, settled  # noqa: F401 -- failures is a fixture
from units import LOCAL_RAS, SteppedClock, started_container

COUNT = int(os.environ.get("SLEE_FUZZ_COUNT", "2000"))
SEED = int(os.environ.get("SLEE_FUZZ_SEED", "16"))
#: Requests sent before waiting for the answers awaited.
WINDOW = 50
#: Connections of requests that a stream cannot frame kept open at most: a
#: subscription made on one gets its NOTIFYs there.
MAX_UNFRAMED = 300
#: Short RFC 3261 timers: a NOTIFY to a Contact the fuzz broke times out in
#: 64 * T1 = 1.28 s, not 32 s.
TIMERS = {"t1": 0.02, "t2": 0.08, "t4": 0.1}
#: Longer than any expiry a request may ask for (the services cap them).
AFTERWARDS = 2 * 86400


# -- the corpus ---------------------------------------------------------------

PIDF = ('<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{user}">'
        '<tuple id="t1"><status><basic>open</basic></status></tuple>'
        '<note xml:lang="en">fuzz</note></presence>')
SDP = ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0\r\n")


def corpus(user):
    """
    @return: the valid requests (keyword arguments of L{sipclient.options},
        and C{to}) a user C{user} sends: each makes state that expires
        (Expires: 60) or none at all.
    """
    other = "sip:alice@example.com"
    return [
        dict(method="PUBLISH", uri=user, to=user,
             headers="Event: presence\r\nExpires: 60\r\nContent-Type: application/pidf+xml\r\n",
             body=PIDF.format(user=user)),
        dict(method="PUBLISH", uri=user, to=user,
             headers="Event: presence\r\nExpires: 60\r\nSIP-If-Match: e1\r\n"),
        dict(method="SUBSCRIBE", uri=other, to=other,
             headers="Event: presence\r\nExpires: 60\r\nAccept: application/pidf+xml\r\n"),
        dict(method="SUBSCRIBE", uri=other, to=other,
             headers="Event: presence\r\nExpires: 0\r\n"),
        dict(method="SUBSCRIBE", uri=user, to=user,
             headers="Event: presence.winfo\r\nExpires: 60\r\n"
                     "Accept: application/watcherinfo+xml\r\n"),
        dict(method="SUBSCRIBE", uri=other, to=other, to_tag="t99",
             headers="Event: presence\r\nExpires: 60\r\n"),
        dict(method="REGISTER", uri="sip:example.com", to=user, headers="Expires: 60\r\n"),
        dict(method="OPTIONS", uri="sip:127.0.0.1", to="sip:127.0.0.1",
             headers="Accept: application/sdp\r\n"),
        dict(method="MESSAGE", uri=other, to=other, headers="Content-Type: text/plain\r\n",
             body="hello"),
        dict(method="NOTIFY", uri=other, to=other, to_tag="t98",
             headers="Event: presence\r\nSubscription-State: active;expires=60\r\n"
                     "Content-Type: application/pidf+xml\r\n",
             body=PIDF.format(user=other)),
        dict(method="INVITE", uri=other, to=other,
             headers="Content-Type: application/sdp\r\n", body=SDP),
        dict(method="BYE", uri=other, to=other, to_tag="t97"),
    ]


def valid_request(rng, transport, contact_port, server_port):
    """@return: the bytes of a request of the corpus, with a new Call-ID and branch."""
    user = f"sip:fuzz{rng.randrange(20)}@example.com"
    template = dict(rng.choice(corpus(user)))
    to = template.pop("to")
    data = options(server_port, transport=transport, local_port=contact_port, from_uri=user,
                   call_id=uuid.uuid4().hex, cseq=rng.randrange(1, 1000), **template)
    return data.replace(b"<sip:service@127.0.0.1>", f"<{to}>".encode(), 1)


# -- the mutations ------------------------------------------------------------

NUMBERS = ["", "-1", "0", "+5", "1.5", "0x10", "1e3", "abc", " 7 ", "00000000000000000001",
           "4294967295", "4294967296", "2147483648", "99999999999999999999999999",
           "9" * 5000, "\u0663", "\uff11\uff12", "1 2"]
URIS = ["mailto:bob@example.com", "tel:+15551234", "tel:", "http://example.com/x", "sip:",
        "sip:@", "sip:a@", "sip:a@b:", "sip:a@b:99999", "sip:a@b:-1", "sip:[::1",
        "sip:a@[zz]", "sip:a@b;transport=", "sip:a@b;;", "sip:a@b?", "sip:a@b?x=y",
        "sip:a@b;lr;lr", "sip:%zz@b", "sip:a%00b@c", "sip:a b@c", "*", "<sip:a@b>", "x:", ":",
        "sip:a@" + "h" * 300, "sip:" + "u" * 2000 + "@b", "SIP:A@B", "sip:a@1.2.3.4.5",
        "sip:a@-b-", "sip:a@b;ttl=999", "sip:a@b;user=phone", "urn:service:sos",
        "sips:a@b;transport=udp", "sip:a@b;transport=tcp;transport=udp", "sip:a@\u00e9.com",
        "sip:a@b:5060:5060", "sip:a:b:c@d", "sip:;@b", "sip:a@b;=x"]
ADDRESSES = ([f"<{uri}>" for uri in URIS] + URIS
             + ['"unterminated <sip:a@b>', '"a" sip:a@b', "<sip:a@b", "sip:a@b>", "<>", "*",
                "<sip:a@b>;tag", "<sip:a@b>;tag=", "<sip:a@b>;tag=x;tag=y", "<sip:a@b>;=",
                "<sip:a@b>;expires=-1", "<sip:a@b>;q=2", "<sip:a@b>;q=abc", ",", ",,",
                "a <sip:a@b>, b <sip:c@d>", "<sip:a@b>,", '"\\" <sip:a@b>',
                '"\\\x00" <sip:a@b>', "<sip:a@b>;expires=99999999999999999999",
                "<sip:a@b>;+sip.instance=\"<urn:uuid:x>\"", "<sip:a@b;lr>;tag=a;;",
                "<sip:127.0.0.1:1>"])
VIAS = ["", ",", "SIP/2.0/UDP", "SIP/2.0/UDP 127.0.0.1;branch={branch};rport=abc",
        "SIP/2.0/UDP 127.0.0.1:99999;branch={branch}", "SIP/3.0/UDP 127.0.0.1;branch={branch}",
        "SIP/2.0/FOO 127.0.0.1;rport;branch={branch}", "SIP/2.0/UDP [::1;branch={branch}",
        "SIP/2.0/UDP 127.0.0.1;rport;branch", "SIP/2.0/UDP 127.0.0.1;rport;branch=",
        "SIP/2.0/UDP 127.0.0.1;received=not-an-ip;rport;branch={branch}",
        "SIP/2.0/UDP 127.0.0.1;rport;branch={branch};branch=z9hG4bKother",
        "SIP/2.0/UDP 127.0.0.1;rport;branch={branch}, SIP/2.0/UDP",
        "SIP/2.0/TLS 127.0.0.1;rport;branch={branch}", "SIP/2.0/WS x.invalid;branch={branch}",
        "SIP / 2.0 / UDP 127.0.0.1 ; rport ; branch={branch}"]
CSEQS = ["", "1", "{method}", "1 {method} x", "-1 {method}", "4294967296 {method}",
         "2147483648 {method}", "1  {method}", "1\t{method}", "a {method}", "1 options", "1 @",
         "99999999999999999999 {method}", "1 {method};x", "0 {method}"]
VALUES = {
    "To": ADDRESSES, "From": ADDRESSES, "Contact": ADDRESSES, "Route": ADDRESSES,
    "Record-Route": ADDRESSES, "Via": VIAS, "CSeq": CSEQS,
    "Expires": NUMBERS, "Min-Expires": NUMBERS, "Max-Forwards": NUMBERS + ["256", "0"],
    "Content-Length": NUMBERS,
    "Call-ID": ["", "a b", "@", "x@y@z", '"quoted"', "\u00e9", "a\tb"],
    "Event": ["", "presence;id", "presence;id=", "presence.winfo.winfo", "foo", ";",
              "presence;;", "pres ence", "presence,presence", '"presence"', "presence;id=\""],
    "Content-Type": ["", "application", "application/", "/pidf+xml", "text/plain", "a/b/c",
                     "application/pidf+xml;charset", 'application/pidf+xml;charset="',
                     "multipart/related", "application/xml", "application/pidf+xml, text/x"],
    "Accept": ["", ",", "*/*", "application/pidf+xml;q=2", "a/b, , c/d", "a", "/"],
    "Subscription-State": ["", "active;expires=-1", "terminated;reason", "bogus", ";",
                           "pending;expires=99999999999999999999", "active;retry-after=x"],
    "Require": ["", "foo", "100rel", ",", "eventlist", "a b"],
    "Supported": ["", ",", "path, , gruu", "a b"],
    "Allow-Events": ["", ",", "presence,", "a b"],
    "Authorization": ["", "Digest", "Digest username=", 'Digest realm="x', "Basic abc",
                      "Digest a=b,,c=d", 'Digest username="fuzz0", realm="slee", nonce="x", '
                      'uri="sip:a", response="00"'],
    "SIP-If-Match": ["", "a b", "nonexistent", "\u00e9"],
    "P-Asserted-Identity": ADDRESSES[:20],
}
PARAMS = [";", ";;", ";=", ";tag", ";tag=", ";tag=a;tag=b", ";branch=", ";rport=x",
          ";received=", ";expires=-1", ";q=9", ";lr=", ';x="', ";x=\x7f", ";" + "p" * 9000,
          ";transport=\u00e9", ";maddr=", ";a=b=c", ";id=1;id=2"]
#: Header names and their compact forms (RFC 3261 §7.3.3).
COMPACT = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m",
           "Content-Length": "l", "Content-Type": "c", "Event": "o", "Supported": "k"}
SNIPPETS = [b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b" ", b"\t", b":", b";", b",", b"<",
            b">", b'"', b"\\", b"%", b"%00", b"=", b"@", b"\xff", b"\x80", b"\xc3", b"\xed\xa0\x80",
            b"\x7f", b"\x1b", b"sip:", b"?", b"[", b"]"]
BODIES = [b"", b"<", b"<?xml version='1.0'?><presence/>", b"\xff\xfe\x00<",
          b"<!DOCTYPE p [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
          b"<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]><presence>&c;</presence>",
          b"<!DOCTYPE p SYSTEM 'file:///etc/passwd'><presence/>",
          b"<a>" * 3000 + b"</a>" * 3000,
          b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:x@y"><tuple id="">'
          b"<status><basic>open</basic></status></tuple></presence>",
          b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="mailto:x"><tuple id="t">'
          b"<status><basic>maybe</basic></status></tuple></presence>",
          b'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:fuzz0@example.com">'
          + b'<tuple id="t"><status><basic>open</basic></status></tuple>' * 200
          + b"</presence>",
          b"x" * 70000]


def _split(data):
    """@return: the lines of the header section of C{data}, and its body."""
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), body


def _join(lines, body):
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _header_index(rng, lines, name=None):
    """@return: the index of a header line (named C{name}, if any there), or None."""
    indexes = [index for index, line in enumerate(lines[1:], 1)
               if name is None or line.split(b":")[0].strip().lower() == name.lower().encode()]
    return rng.choice(indexes) if indexes else None


#: The lines that say where the stack sends requests (a dialog's remote
#: target and route set): bytes changed there could make it send to an
#: address off this host (127.0.0.1 into 1.0.0.1).  Their values change
#: only to those of L{ADDRESSES}.
_ROUTING_LINE = re.compile(rb"^(?:contact|m|record-route)[ \t]*:[^\r\n]*",
                           re.IGNORECASE | re.MULTILINE)


def _position(rng, data):
    """@return: a random offset in C{data} (its end included), outside its routing lines."""
    routing = [(line.start(), line.end()) for line in _ROUTING_LINE.finditer(data)]
    while True:
        index = rng.randrange(len(data) + 1)
        if not any(start <= index <= end for start, end in routing):
            return index


def flip_byte(rng, data):
    index = _position(rng, data)
    new = bytes([rng.randrange(256)]) if rng.random() < 0.3 else rng.choice(SNIPPETS)[:1]
    return data[:index] + new + data[index + 1:]


def insert_snippet(rng, data):
    index = _position(rng, data)
    return data[:index] + rng.choice(SNIPPETS) + data[index:]


def delete_bytes(rng, data):
    index = _position(rng, data)
    return data[:index] + data[index + rng.randrange(1, 30):]


def truncate(rng, data):
    return data[:_position(rng, data)]


def line_end(rng, data):
    """Turn a CRLF into a bare CR or LF, an empty line, a fold..."""
    routing = [line.end() for line in _ROUTING_LINE.finditer(data)]
    ends = [match.start() for match in re.finditer(b"\r\n", data) if match.start() not in routing]
    if not ends:
        return data
    index = rng.choice(ends)
    new = rng.choice([b"\n", b"\r", b"\r\n\r\n", b"\r\n ", b"\r\n\t", b"\n\r", b"\r\r\n",
                      b"\r\n\r\n\r\n", b""])
    return data[:index] + new + data[index + 2:]


def duplicate_header(rng, data):
    lines, body = _split(data)
    index = _header_index(rng, lines)
    if index is not None:
        lines.insert(rng.randrange(1, len(lines) + 1), lines[index])
    return _join(lines, body)


def drop_header(rng, data):
    lines, body = _split(data)
    index = _header_index(rng, lines)
    if index is not None:
        del lines[index]
    return _join(lines, body)


def oversize_header(rng, data):
    lines, body = _split(data)
    index = _header_index(rng, lines)
    if index is not None:
        lines[index] += rng.choice([b"x", b"a,", b";p=v", b" "]) * rng.choice([300, 2100, 8200])
    return _join(lines, body)


def many_headers(rng, data):
    lines, body = _split(data)
    extra = [b"X-Fuzz-%d: %d" % (n, n) for n in range(rng.choice([50, 127, 130, 400]))]
    return _join(lines[:1] + extra + lines[1:], body)


def bad_value(rng, data):
    """Give a header (added if absent) a value from its list of bad ones."""
    lines, body = _split(data)
    name = rng.choice(sorted(VALUES))
    method = lines[0].split(b" ")[0].decode("ascii", "replace")
    branch = uuid.uuid4().hex
    value = rng.choice(VALUES[name]).format(method=method, branch="z9hG4bK" + branch)
    line = f"{name}: {value}".encode("utf-8", "surrogateescape")
    index = _header_index(rng, lines, name)
    if index is None:
        lines.insert(rng.randrange(1, len(lines) + 1), line)
    else:
        lines[index] = line
    return _join(lines, body)


def bad_param(rng, data):
    lines, body = _split(data)
    param = rng.choice(PARAMS).encode("utf-8")
    index = rng.choice([0, _header_index(rng, lines) or 0])
    if index == 0:
        parts = lines[0].split(b" ")
        if len(parts) == 3:
            lines[0] = b" ".join([parts[0], parts[1] + param, parts[2]])
    else:
        lines[index] += param
    return _join(lines, body)


def bad_request_line(rng, data):
    lines, body = _split(data)
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        return data
    choice = rng.randrange(4)
    if choice == 0:
        parts[1] = rng.choice(URIS).encode("utf-8")
    elif choice == 1:
        parts[0] = rng.choice([b"", b"options", b"FOO", b"INV ITE", b"ACK", b"CANCEL", b"PRACK",
                               b"UPDATE", b"REFER", b"INFO", b"SUBSCRIBE", b"\xc3\xa9"])
    elif choice == 2:
        parts[2] = rng.choice([b"SIP/2.1", b"SIP/3.0", b"sip/2.0", b"SIP/2", b"HTTP/1.1",
                               b"SIP/2.0 ", b"SIP/02.00"])
    else:
        parts.insert(rng.randrange(4), rng.choice([b"", b"x"]))
    lines[0] = b" ".join(parts)
    return _join(lines, body)


def rename_header(rng, data):
    """Change a header name's case, use its compact form, or put white space before the colon."""
    lines, body = _split(data)
    index = _header_index(rng, lines)
    if index is None:
        return data
    name, colon, value = lines[index].partition(b":")
    text = name.decode("ascii", "replace")
    text = rng.choice([text.upper(), text.lower(), COMPACT.get(text, text) + " ", text + "\t",
                       " " + text, text.replace("-", "_")])
    lines[index] = text.encode("ascii", "replace") + colon + value
    return _join(lines, body)


def bad_body(rng, data):
    """Replace the body, fixing the Content-Length (or not)."""
    lines, _ = _split(data)
    body = rng.choice(BODIES)
    if rng.random() < 0.8:
        lines = [b"Content-Length: %d" % len(body) if line.lower().startswith(b"content-length:")
                 else line for line in lines]
    return _join(lines, body)


MUTATIONS = [flip_byte, insert_snippet, delete_bytes, truncate, line_end, duplicate_header,
             drop_header, oversize_header, many_headers, bad_value, bad_value, bad_value,
             bad_param, bad_request_line, rename_header, bad_body]


def mutated(rng, data):
    """@return: C{data} after one to three mutations."""
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


# -- the oracle ---------------------------------------------------------------

_REQUEST_LINE = re.compile(r"[A-Za-z][A-Za-z0-9._!%*+`'~-]* [^ ]+ SIP/2\.0")
_TOKEN = re.compile(r"[A-Za-z0-9._!%*+`'~-]+")
#: A Via to 127.0.0.1 with plain parameters, a branch among them.
_VIA = re.compile(r"SIP/2\.0/(?P<transport>UDP|TCP) 127\.0\.0\.1(?::(?P<port>[0-9]{1,5}))?"
                  r"(?P<params>(?:;[A-Za-z0-9-]+(?:=[A-Za-z0-9.!%*_+`'~-]+)?)*)")
_BRANCH = re.compile(r";branch=(?P<branch>[^;]+)")
#: Parameters that route an answer elsewhere (or nowhere) when they have a value.
_ROUTING = re.compile(r";(?:rport|received|maddr)=", re.IGNORECASE)
_RPORT = re.compile(r";rport(?:;|$)", re.IGNORECASE)
#: The headers an answer copies, by each spelling of their names.
_COPIED = {"via": "via", "v": "via", "from": "from", "f": "from", "to": "to", "t": "to",
           "call-id": "call-id", "i": "call-id", "cseq": "cseq"}


def _head(data):
    """
    @return: the offsets of the header section of the first message of
        C{data} (after the CRLFs that may come before it), or None when it
        does not end.
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    head_end = data.find(b"\r\n\r\n", start)
    return None if head_end < 0 else (start, head_end)


def awaited_branch(data, transport, source_port):
    """
    The oracle: the branch of the top Via of C{data}, a request that came
    over C{transport} from C{source_port}, when the stack must answer it;
    else None.  It must when its request line reads, the header section
    holds no NUL, at most 128 fields, each line a field or the continuation
    of one, the headers an answer copies are there and readable enough
    (L{_copied_fields}), and the top Via routes the answer back (L{_branch}).
    """
    head = _head(data)
    if head is None or len(data) > 65536 or b"\0" in data[slice(*head)]:
        return None
    lines = data[slice(*head)].decode("utf-8", "surrogateescape").split("\r\n")
    if not _REQUEST_LINE.fullmatch(lines[0]) or lines[0].startswith("ACK ") \
            or len(lines) > 129:
        return None
    fields = _copied_fields(lines[1:])
    return None if fields is None else _branch(fields["via"], transport, source_port)


def _copied_fields(lines):
    """
    @return: header key -> the unfolded values of the headers an answer
        copies (Via, From, To, Call-ID, CSeq), from header lines C{lines};
        None when one is missing, a line of one is broken (a bare CR or LF,
        over 8 KiB), or a line is neither a field nor a continuation.
    """
    fields = {}
    values = None       # those of the header of the line before, if copied
    for index, line in enumerate(lines):
        if line[:1] in (" ", "\t"):
            if index == 0:
                return None     # no field to continue
            if values is not None:
                values[-1] += " " + line.strip(" \t")
        else:
            name, colon, value = line.partition(":")
            name = name.rstrip(" \t")
            if not colon or not _TOKEN.fullmatch(name):
                return None
            key = _COPIED.get(name.lower())
            values = None if key is None else fields.setdefault(key, [])
            if values is not None:
                values.append(value.strip(" \t"))
        if values is not None and ("\r" in line or "\n" in line or len(line) > 8192):
            return None
    return fields if len(fields) == len(set(_COPIED.values())) else None


def _branch(vias, transport, source_port):
    """
    @return: the branch of the top Via of C{vias} (field values) when each
        is C{SIP/2.0/UDP 127.0.0.1} or TCP with plain parameters and a
        branch, and the top one routes the answer back: over UDP to the
        source port (by C{rport}, or its port), over TCP on the connection.
    """
    vias = [_VIA.fullmatch(value) for field in vias for value in field.split(",")]
    if not all(vias) or not all(_BRANCH.search(via["params"]) for via in vias) \
            or any(int(via["port"] or 0) > 65535 for via in vias):
        return None
    top = vias[0]
    if _ROUTING.search(top["params"]):
        return None
    if transport == "UDP" and (top["transport"] != "UDP" or not (
            _RPORT.search(top["params"]) or top["port"] == str(source_port))):
        return None
    return _BRANCH.search(top["params"])["branch"]


_CONTENT_LENGTH = re.compile(rb"(?:content-length|l)[ \t]*", re.IGNORECASE)


def stream_end(data):
    """
    @return: where the first message of C{data} ends on a stream, framed by
        its Content-Length as RFC 3261 §18.3 says; or None when it cannot
        be framed (no end of the header section, no or a bad Content-Length,
        over 64 KiB).
    """
    head = _head(data)
    if head is None:
        return None
    lengths = {value.strip(b" \t") for name, colon, value in
               (line.partition(b":") for line in data[slice(*head)].split(b"\r\n")[1:])
               if colon and _CONTENT_LENGTH.fullmatch(name)}
    if len(lengths) != 1 or not all(value.isdigit() and len(value) < 7 for value in lengths):
        return None
    end = head[1] + 4 + int(lengths.pop())
    return end if end <= 65536 else None


# -- the peers ----------------------------------------------------------------

_TOP_BRANCH = re.compile(rb"(?im)^(?:via|v)[ \t]*:[^\r\n]*?;branch=([^;,\s]+)")
_BARE_LINE_BREAK = re.compile(rb"\r(?!\n)|(?<!\r)\n")


class Answers:
    """
    What the stack sends back: final answers, matched to the requests that
    await them by the branch of their top Via; answers whose header section
    is broken (a bare CR or LF); and requests of its own (NOTIFYs), answered
    with a 200.
    """

    def __init__(self, reactor):
        self.reactor = reactor
        self.awaited = {}
        self.broken = []

    def expect(self, branch):
        """@return: a Deferred firing with the final answer to the request of C{branch}."""
        d = self.awaited[branch] = defer.Deferred()
        return d.addTimeout(TIMEOUT, self.reactor)

    def received(self, data, send):
        head = data.partition(b"\r\n\r\n")[0]
        if _BARE_LINE_BREAK.search(head):
            self.broken.append(data)
        if not data.startswith(b"SIP/2.0 "):
            send(_ok(head))
            return
        branch = _TOP_BRANCH.search(head)
        if data[8:11] >= b"200" and branch is not None:
            d = self.awaited.pop(branch[1].decode("utf-8", "surrogateescape"), None)
            if d is not None and not d.called:
                d.callback(data)


def _ok(head):
    """
    @return: a 200 to the request of header section C{head}: its Via, From,
        To, Call-ID and CSeq lines copied as they are (bytes that are not
        UTF-8 included: they may come from the fuzz).
    """
    lines = [line for line in head.split(b"\r\n")[1:]
             if line.partition(b":")[0].strip(b" \t").decode("ascii", "replace").lower() in _COPIED]
    return b"\r\n".join([b"SIP/2.0 200 OK", *lines, b"Content-Length: 0", b"", b""])


class RawDatagramPeer(protocol.DatagramProtocol):
    """
    A UDP socket handing what arrives to L{Answers} as bytes: not
    L{sipclient.UdpPeer}, which parses it, and an answer to a fuzzed request
    may copy a header that does not parse.
    """

    def __init__(self, answers):
        self.answers = answers

    def datagramReceived(self, data, address):
        self.answers.received(data, lambda answer: self.transport.write(answer, address))


class RawStreamPeer(protocol.Protocol):
    """
    A TCP connection whose input is cut into messages by their
    Content-Length and handed to L{Answers} as bytes (see L{RawDatagramPeer}).
    """

    def __init__(self, answers):
        self.answers = answers
        self.buffer = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.buffer += data
        while (end := stream_end(self.buffer.lstrip(b"\r\n"))) is not None:
            self.buffer = self.buffer.lstrip(b"\r\n")
            message, self.buffer = self.buffer[:end], self.buffer[end:]
            self.answers.received(message, self.transport.write)

    def connectionLost(self, reason):
        self.closed.callback(None)


# -- the run ------------------------------------------------------------------

class Fuzzer:
    """Sends mutated requests to a container over UDP and TCP."""

    def __init__(self, reactor, container, rng):
        self.reactor = reactor
        self.rng = rng
        self.answers = Answers(reactor)
        points = container.registry.ra_entities["sip"].adaptor.transports.listening
        self.server = {point.transport: point.port for point in points}
        self.udp_port = reactor.listenUDP(0, RawDatagramPeer(self.answers),
                                          interface="127.0.0.1")
        self.stream = None
        #: the connections of requests that a stream cannot frame: one each.
        self.unframed = []

    async def connect(self):
        peer = RawStreamPeer(self.answers)
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.server["tcp"])
        return await connectProtocol(endpoint, peer)

    async def send(self, data, transport):
        """Send C{data}; @return: the branch whose answer is awaited, or None."""
        if transport == "UDP":
            if len(data) > 65000:
                return None     # not a datagram
            self.udp_port.write(data, ("127.0.0.1", self.server["udp"]))
        elif stream_end(data) == len(data):
            self.stream = self.stream or await self.connect()
            self.stream.transport.write(data)
        else:
            peer = await self.connect()
            peer.transport.write(data)
            self.unframed.append(peer)
            return None
        branch = awaited_branch(data, transport, self.udp_port.getHost().port)
        return None if branch in self.answers.awaited else branch

    async def run(self, count, transport):
        """@return: the requests of C{count} sent over C{transport} that got no answer."""
        contact_port = self.udp_port.getHost().port
        for _ in range(0, count, WINDOW):
            awaited = []
            for _ in range(WINDOW):
                data = mutated(self.rng, valid_request(self.rng, transport, contact_port,
                                                       self.server[transport.lower()]))
                branch = await self.send(data, transport)
                if branch is not None:
                    awaited.append((data, self.answers.expect(branch)))
            results = await defer.DeferredList([d for _, d in awaited], consumeErrors=True)
            unanswered = [data for (data, _), (ok, _) in zip(awaited, results) if not ok]
            if unanswered:
                return unanswered
            if len(self.unframed) > MAX_UNFRAMED:
                await self.close_unframed()
        return []

    async def close_unframed(self):
        for peer in self.unframed:
            peer.transport.loseConnection()
        await defer.gatherResults([peer.closed for peer in self.unframed])
        self.unframed = []

    async def close(self):
        await self.close_unframed()
        if self.stream is not None:
            self.stream.transport.loseConnection()
            await self.stream.closed
        await defer.maybeDeferred(self.udp_port.stopListening)


#: Real seconds the container may take to let everything expire.
SETTLE_WITHIN = 60


async def back_to(container, clock, counts):
    """
    @return: the container's activities and SBB entities once their counts
        are C{counts} again, the clock going on a minute each turn (what
        expired may set timers of its own), or after L{SETTLE_WITHIN} real
        seconds: what expires sends NOTIFYs, whose transactions run on the
        reactor's time, and a loaded machine takes longer.
    """
    import time
    from twisted.internet import reactor
    from twisted.internet.task import deferLater
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        now = (container.activities(), container.sbb_entities())
        if tuple(map(len, now)) == counts or time.monotonic() > deadline:
            return now
        clock.advance(60)
        await deferLater(reactor, 0.05, lambda: None)


def shown(requests):
    """The first few of C{requests}, for a failure's message."""
    return "\n\n".join(repr(data[:2000]) for data in requests[:5])


@pytest_twisted.ensureDeferred
async def test_fuzzed_requests_are_answered_and_leave_nothing_behind(tmp_path, failures):
    from twisted.internet import reactor
    clock = SteppedClock()
    ras = {**LOCAL_RAS, "sip": {"endpoints": ["udp:0:interface=127.0.0.1",
                                              "tcp:0:interface=127.0.0.1"], **TIMERS}}
    units = [shipped_units() / name for name in shipped_profiles()["integrated"]]
    container = await started_container(tmp_path, units, ras, clock=clock)
    fuzzer = None
    try:
        before = tuple(map(len, await settled(container)))
        fuzzer = Fuzzer(reactor, container, random.Random(SEED))
        unanswered = await fuzzer.run(COUNT, "UDP") + await fuzzer.run(COUNT, "TCP")
        assert unanswered == [], f"seed {SEED}: unanswered:\n{shown(unanswered)}"
        assert fuzzer.answers.broken == [], f"seed {SEED}: broken answers:\n" \
            + shown(fuzzer.answers.broken)
        assert failures == []
        clock.advance(AFTERWARDS)
        activities, entities = await back_to(container, clock, before)
        assert (len(activities), len(entities)) == before, (activities, entities)
    finally:
        if fuzzer is not None:
            await fuzzer.close()
        await container.stop()
