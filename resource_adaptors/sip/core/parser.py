"""
From bytes to messages: L{parse_message} for a datagram (or any whole
message), L{StreamParser} for a TCP, TLS or WebSocket byte stream.

Parsing is eager only where it must be: the start line, the split into
header fields (one decode per message), the framing (Content-Length), the
presence of the headers every message needs (Via, From, To, Call-ID, CSeq)
and the two that every layer reads at once: Via (the transport stamps
received/rport on it, the transaction layer matches on its branch) and CSeq.
Every other header is parsed when first read; L{message.validate_request}
checks them all for the transaction user.

Every limit of L{Limits} is checked before the work it guards: the size
of a message before looking into it, the number and length of lines before
parsing fields, a Content-Length before waiting for (or slicing) the body.

A server keeps one L{Parser}: its limits, and its memos of what recurs in
the messages it receives (L{recurring.Memos}), which its datagrams and its
streams (L{Parser.stream}) share.  L{parse_message} parses one message with
a parser of its own, for those who parse a message now and then.
"""

import re
from itertools import islice
from dataclasses import dataclass

from resource_adaptors.sip.core.headers import header_key, header_name
from resource_adaptors.sip.core.message import Headers, Request, Response, answerable
from resource_adaptors.sip.core.recurring import MAX_NAMES, NEW_IN_EVERY_REQUEST, Memos
from resource_adaptors.sip.core.syntax import TOKEN_CHARS, ParseError, is_token
from resource_adaptors.sip.core.matching import is_rfc3261_branch
from resource_adaptors.sip.core.uri import AbsoluteURI, SipURI, parse_uri

__all__ = ["Limits", "ParseError", "FramingError", "Parser", "parse_message", "StreamParser",
           "KEEPALIVE"]


@dataclass(frozen=True, slots=True)
class Limits:
    """
    How big a message may be.  A message over C{max_message_size}, with more
    than C{max_headers} fields or a header line longer than
    C{max_line_length} is refused with 513; a body over C{max_body_size}
    with 413; a Request-URI over C{max_uri_length} with 414.  A request
    with a header line too long is answered when the other lines route
    the answer (the reason names the header); the long line is not parsed.
    """

    max_message_size: int = 65536
    max_headers: int = 128
    max_line_length: int = 8192
    max_body_size: int = 65536
    #: A longer Request-URI is refused with 414.  Services name activities
    #: after a Request-URI (C{presence:} and the presentity...): 960 leaves
    #: room for a prefix under the 1024 characters of such a name.
    max_uri_length: int = 960


DEFAULT_LIMITS = Limits()


class FramingError(ParseError):
    """
    A byte stream that cannot be cut into messages any more (missing or bad
    Content-Length, a message over the limits): the connection must close.
    """


class _Keepalive:
    """The type of L{KEEPALIVE}."""

    def __repr__(self):
        return "KEEPALIVE"


#: What L{StreamParser.feed} returns for a CRLFCRLF "ping" between
#: messages (RFC 5626 §4.4.1); the transport answers it with a CRLF "pong".
KEEPALIVE = _Keepalive()

_TOO_LARGE = 513
_BODY_TOO_LARGE = 413


class Parser:
    """
    The parser of one server: its L{Limits}, and the L{recurring.Memos} of
    the messages it parsed.
    """

    __slots__ = ("limits", "memos")

    def __init__(self, limits=DEFAULT_LIMITS):
        self.limits = limits
        self.memos = Memos()

    def parse(self, data):
        """
        Parse one message from C{data}, a datagram: without a Content-Length
        the body is the rest of the datagram; a Content-Length shorter than
        what is there truncates the body (what follows is ignored); a
        longer one is an error.  CRLFs before the start line are ignored
        (RFC 3261 §7.5).

        @return: a L{Request} or L{Response}.
        @raise ParseError: see L{ParseError} for how to answer it.
        """
        limits = self.limits
        if len(data) > limits.max_message_size:
            raise ParseError("Message Too Large", _TOO_LARGE)
        start = 0
        while data.startswith(b"\r\n", start):
            start += 2
        head_end = data.find(b"\r\n\r\n", start)
        if head_end < 0:
            raise ParseError("No empty line after the headers")
        return _parse(data, start, head_end, limits, self.memos)

    def stream(self):
        """@return: a L{StreamParser} for one connection, sharing the memos."""
        return StreamParser(self.limits, self.memos)


def parse_message(data, limits=DEFAULT_LIMITS):
    """L{Parser.parse} with a parser of its own: nothing is remembered."""
    return Parser(limits).parse(data)


def _parse(data, start, head_end, limits, memos):
    """Parse the message whose header section is C{data[start:head_end]}."""
    if data.find(b"\0", start, head_end) >= 0 and not _nuls_are_quoted(data[start:head_end]):
        raise ParseError("NUL byte in the headers")
    # One decode for the whole header section; surrogateescape keeps bytes
    # that are not UTF-8 so that they serialize back unchanged.
    lines = data[start:head_end].decode("utf-8", "surrogateescape").split("\r\n")
    line_error = None
    if len(lines) > limits.max_headers + 1:
        lines = _answer_lines(lines, limits)
        line_error = ParseError("Too many header fields", _TOO_LARGE)
    if head_end - start > limits.max_line_length \
            and max(map(len, lines)) > limits.max_line_length:
        line_error = _long_lines(lines, limits)
    if not _only_crlfs(data, start, head_end):
        line_error = _first(line_error, _bare_line_break(lines))
    headers = Headers.received(*_fields(lines, memos), memos)
    start_line = lines[0]
    if start_line[:4].upper() == "SIP/":
        if line_error is not None:
            raise line_error
        message, start_line_error = _response(start_line, headers), None
    else:
        message, start_line_error = _request(start_line, headers, limits, memos.uris)
    try:
        message.body = _body(data, head_end + 4, headers, limits)
        if start_line_error is not None:
            raise start_line_error
        if line_error is not None:
            raise line_error
        _check_headers(message)
    except ParseError as error:
        # Whatever the error, an answer must not copy a broken line.
        copies_broken = line_error is not None and line_error.unanswerable
        if isinstance(message, Request) and not (error.unanswerable or copies_broken) \
                and answerable(message):
            error.request = message
        raise
    return message


#: The headers a response copies from its request (and their compact
#: forms): a request with a line of one of them too long, or with a bare CR
#: or LF, is not answered.
_COPIED = frozenset(("via", "from", "to", "call-id", "cseq", "v", "f", "t", "i"))


def _line_error(reason, lines, index, status=400):
    """
    @return: the ParseError about header line C{lines[index]}: C{reason}
        with the header's name in place of C{{}}, a continuation line's
        being that of the header it continues.
    """
    while index > 1 and lines[index][:1] in (" ", "\t"):
        index -= 1
    name = lines[index].partition(":")[0].strip(" \t")
    if not is_token(name) or len(name) > 64:
        name = "a"
    error = ParseError(reason.format(name), status)
    error.unanswerable = name.lower() in _COPIED
    return error


def _long_lines(lines, limits):
    """
    Blank the header lines of C{lines} over the limit (they are not parsed)
    and @return: the error for the first one, unanswerable when any is of
    a header an answer copies; for a request line alone, None (L{_request}
    checks its Request-URI).
    """
    error = None
    for index in range(1, len(lines)):
        if len(lines[index]) > limits.max_line_length:
            error = _first(error, _line_error("{} header line too long", lines, index,
                                              _TOO_LARGE))
            lines[index] = "X-Dropped-Line:"
    if error is None and lines[0][:4].upper() == "SIP/":
        error = ParseError("Status line too long", _TOO_LARGE)
    return error


def _answer_lines(lines, limits):
    """
    @return: of the lines of a message with too many header fields, those
        its answer needs: the start line and the lines of the headers an
        answer copies, so that the answer can say what is wrong (RFC 3261
        §21.5.14).
    @raise ParseError: when even those are too many.
    """
    kept = [lines[0]]
    for line in islice(lines, 1, None):
        if line.partition(":")[0].strip(" \t").lower() in _COPIED:
            kept.append(line)
            if len(kept) > limits.max_headers + 1:
                raise ParseError("Too many header fields", _TOO_LARGE)
    return kept


def _only_crlfs(data, start, head_end):
    """Whether every CR and LF of C{data[start:head_end]} is in a CRLF."""
    pairs = data.count(b"\r\n", start, head_end)
    return data.count(b"\r", start, head_end) == pairs == data.count(b"\n", start, head_end)


def _bare_line_break(lines):
    """
    @return: the error for the first line of C{lines} with a CR or LF that
        is not in a CRLF (RFC 3261 §7 ends every line with CRLF), or None;
        unanswerable when any such line is one an answer copies.
    """
    error = None
    for index, line in enumerate(lines):
        if "\r" in line or "\n" in line:
            if index == 0:
                line_error = ParseError("Bare CR or LF in the start line")
            else:
                line_error = _line_error("Bare CR or LF in the {} header", lines, index)
            error = _first(error, line_error)
    return error


def _first(error, later):
    """
    @return: the first of two errors in header lines (either may be None),
        unanswerable when either is: an answer would copy a broken line.
    """
    if error is None or later is None:
        return error or later
    error.unanswerable = error.unanswerable or later.unanswerable
    return error


def _nuls_are_quoted(head):
    """
    Whether every NUL of a header section is a quoted-pair (C{\\} NUL), the
    one place RFC 3261 lets a NUL appear in headers (in a quoted string).
    """
    return head.count(b"\0") == head.count(b"\\\0")


def _fields(lines, memos):
    """
    @return: the (key, name, value, line) tuples of the header lines
        C{lines[1:]}, and the values of each key (the index of
        L{Headers.received}, made in the same pass).  A line starting with
        SP or HT continues the one before (folding): the value gets one
        space for it, line keeps it.
    """
    fields = []
    append = fields.append
    by_key = {}
    recurring = memos.lines.kept
    for line in lines[1:]:
        field = recurring.get(line)
        if field is None:
            field = _field(line, fields, by_key, memos)
            if field is None:
                continue    # a continuation line, added to the field before
        append(field)
        key = field[0]
        if key in by_key:
            by_key[key] += (field[2],)
        else:
            by_key[key] = (field[2],)
    return fields, by_key


def _field(line, fields, by_key, memos):
    """
    @return: the field tuple of header line C{line}, not in the memo of
        recurring lines; or None for a continuation line, which is added to the
        last of C{fields} (see L{_fields}).  The memo (C{memos.lines}) maps
        a header line to its field tuple, for the lines that recur: a field
        tuple is immutable, so messages share it.  C{memos.names} maps the
        spellings of header names before the colon to (key, name without
        the white space before the colon): messages use few spellings, and
        this saves validating and lowering each name of each message.
    """
    spelling, colon, value = line.partition(":")
    try:
        key, name = memos.names[spelling]
    except KeyError:
        if line[:1] in (" ", "\t"):
            _unfold(fields, by_key, line)
            return None
        if not colon or not spelling:
            raise ParseError("Header line without a colon") from None
        key, name = _learn_name(spelling, memos.names)
    else:
        if not colon:
            raise ParseError("Header line without a colon")
    field = (key, name, value.strip(" \t"), line)
    if key not in NEW_IN_EVERY_REQUEST:
        memos.lines.note(line, field)
    return field


def _unfold(fields, by_key, line):
    """Add continuation line C{line} to the last field (see L{_fields})."""
    if not fields:
        raise ParseError("Continuation line before the first header")
    key, name, value, written = fields[-1]
    value = (value + " " + line.strip(" \t")).strip(" \t")
    fields[-1] = (key, name, value, written + "\r\n" + line)
    by_key[key] = by_key[key][:-1] + (value,)


def _learn_name(spelling, names):
    name = spelling.rstrip(" \t")
    if not name or name.strip(TOKEN_CHARS):
        raise ParseError("Bad header name")
    known = (header_key(name), name)
    if len(names) < MAX_NAMES:      # bounded: names come from the network
        names[spelling] = known
    return known


def _request(line, headers, limits, uris):
    """
    @return: the request of request line C{line}, and the error in its
        version or Request-URI if any: it is raised once the headers are
        read, so that the request can be answered.
    @param uris: the parser's memo of the Request-URIs that recur.
    """
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or parts[0].strip(TOKEN_CHARS):
        raise ParseError("Bad request line")
    method, uri_text, version = parts
    error = None
    if len(uri_text) > limits.max_uri_length:
        uri = AbsoluteURI(uri_text)     # not parsed
        error = ParseError("Request-URI Too Long", 414)
    elif len(line) > limits.max_line_length:
        uri = AbsoluteURI(uri_text)
        error = ParseError("Request line too long", _TOO_LARGE)
    else:
        try:
            uri = parse_uri(uri_text, uris)
        except ParseError:
            uri = AbsoluteURI(uri_text)
            error = ParseError("Bad Request-URI")
        else:
            if isinstance(uri, SipURI) and uri.headers:
                # RFC 3261 §19.1.5: headers are for building a request from
                # a URI, never part of a Request-URI.
                error = ParseError("Headers in the Request-URI")
    if version != "SIP/2.0":
        try:
            _check_version(version)
        except ParseError as version_error:
            error = version_error
    return Request(method, uri, headers), error


_VERSION = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)


def _check_version(version):
    """@raise ParseError: unless C{version} is SIP/2.0 (in any case, RFC 3261 §7.1)."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ParseError("Bad SIP version")
    if (int(match.group(1)), int(match.group(2))) != (2, 0):
        raise ParseError("Version Not Supported", 505)


def _response(line, headers):
    parts = line.split(" ", 2)
    if len(parts) < 2:
        raise ParseError("Bad status line")
    if parts[0] != "SIP/2.0":
        _check_version(parts[0])
    code = parts[1]
    if len(code) != 3 or not code.isdigit() or not "100" <= code <= "699":
        raise ParseError("Bad status code")
    return Response(int(code), parts[2] if len(parts) == 3 else "", headers)


def _body(data, body_start, headers, limits):
    """@return: the body of a message whose body starts at C{body_start}."""
    lengths = headers._field_values("content-length")
    available = len(data) - body_start
    if not lengths:
        if available > limits.max_body_size:
            raise ParseError("Body too large", _BODY_TOO_LARGE)
        return data[body_start:]
    length = _content_length(lengths)
    if length > available:
        raise ParseError("Content-Length larger than the message")
    if length > limits.max_body_size:
        raise ParseError("Body too large", _BODY_TOO_LARGE)
    if len(lengths) == 1:
        # What message.content_length would parse: validate_request need not.
        headers._typed["content-length"] = length
    return data[body_start:body_start + length]


def _content_length(values):
    """
    @return: the length that Content-Length values say, as an int.
    @raise ParseError: when they are not all the same number.
    """
    text = values[0]
    if not (text.isascii() and text.isdigit()) or values.count(text) != len(values):
        raise ParseError("Bad Content-Length")
    # Over 18 digits cannot be a length we accept: do not convert it.
    return int(text) if len(text) <= 18 else 1 << 62


# The headers without which no layer can handle a message (RFC 3261 §8.1.1,
# §8.2.6.2).  Max-Forwards is not among them: RFC 2543 requests, which
# RFC 3261 elements accept, have none.
_REQUIRED = frozenset(("via", "from", "to", "call-id", "cseq"))


def _check_headers(message):
    """
    Raise ParseError unless the headers every message needs are there, and
    those the transaction layer reads at once readable: Via and CSeq; and,
    in a request without an RFC 3261 branch, From, To and Call-ID, which
    then make its transaction's key (RFC 3261 §17.2.3).
    """
    missing = _REQUIRED.difference(message.headers._values_by_key())
    if missing:
        raise ParseError("Missing " + header_name(min(missing)))
    vias = message.via
    message.cseq    # noqa: B018 -- read to check it
    if isinstance(message, Request) and vias and not is_rfc3261_branch(vias[0].branch):
        message.from_   # noqa: B018
        message.to      # noqa: B018
        message.call_id     # noqa: B018


class StreamParser:
    """
    Cuts a byte stream into messages by their Content-Length (mandatory on
    streams, RFC 3261 §18.3).

    It keeps where the search for the end of the header section stopped, so
    that a message arriving a byte at a time costs linear time.
    """

    def __init__(self, limits=DEFAULT_LIMITS, memos=None):
        """C{memos}: those of the L{Parser} it belongs to (see L{Parser.stream}),
        else its own."""
        self.limits = limits
        self.memos = Memos() if memos is None else memos
        self._buffer = bytearray()
        #: where to resume the search for CRLFCRLF in the buffer.
        self._searched = 0
        #: the buffer offsets of the end of the header section and of the
        #: message, once the header section is complete.
        self._head_end = None
        self._message_end = None
        #: messages parsed before a malformed one, returned by the next feed.
        self._pending = []

    def feed(self, data):
        """
        Add bytes received.

        @return: the L{Request}s and L{Response}s completed, and L{KEEPALIVE}
            for each CRLFCRLF ping, in order.
        @raise FramingError: the stream is beyond repair; close it (after
            answering its C{request}, when a message too large has one).
        @raise ParseError: a message was framed but is malformed: answer or
            drop it, then call C{feed(b"")} to get what followed it (the
            messages before it are returned by that call too).
        """
        self._buffer += data
        out, self._pending = self._pending, []
        while True:
            if self._head_end is None:
                item = self._next_head()
                if item is None:
                    break
                if item is KEEPALIVE:
                    out.append(KEEPALIVE)
                    continue
            if len(self._buffer) < self._message_end:
                break
            try:
                out.append(self._next_message())
            except ParseError:
                self._pending = out
                raise
        return out

    def _next_head(self):
        """
        Skip CRLFs before a message (a CRLFCRLF is a ping, a lone CRLF a pong
        or mere padding) and look for the end of the header section.

        @return: KEEPALIVE, True when the header section is complete (and its
            Content-Length known), None when more bytes are needed.
        """
        buffer = self._buffer
        while buffer.startswith(b"\r"):
            if buffer.startswith(b"\r\n\r\n"):
                del buffer[:4]
                return KEEPALIVE
            if b"\r\n\r\n".startswith(buffer):
                return None     # maybe a ping still arriving
            if not buffer.startswith(b"\r\n"):
                break
            del buffer[:2]
        head_end = buffer.find(b"\r\n\r\n", max(self._searched - 3, 0))
        if head_end < 0:
            self._searched = len(buffer)
            if len(buffer) > self.limits.max_message_size:
                # Answered when the lines read so far route an answer.
                cut = buffer.rfind(b"\r\n", 0, self.limits.max_message_size)
                raise self._too_large("Message Too Large", _TOO_LARGE, cut)
            return None
        message_end = head_end + 4 + self._framing_length(head_end)
        if message_end > self.limits.max_message_size:
            raise self._too_large("Message Too Large", _TOO_LARGE, head_end)
        self._searched = 0
        self._head_end = head_end
        self._message_end = message_end
        return True

    def _framing_length(self, head_end):
        """@return: the Content-Length of the header section ending at C{head_end}."""
        lengths = []
        for line in bytes(self._buffer[:head_end]).split(b"\r\n")[1:]:
            name, colon, value = line.partition(b":")
            if colon and name.rstrip(b" \t").lower() in (b"content-length", b"l"):
                lengths.append(value.strip(b" \t").decode("ascii", "replace"))
        if not lengths:
            raise FramingError("Missing Content-Length")
        try:
            length = _content_length(lengths)
        except ParseError:
            raise FramingError("Bad Content-Length") from None
        if length > self.limits.max_body_size:
            raise self._too_large("Body too large", _BODY_TOO_LARGE, head_end)
        return length

    def _too_large(self, reason, status, head_end):
        """
        @return: the FramingError refusing a message for its size, with the
            request to answer (L{ParseError.request}) when the header lines
            of the buffer up to C{head_end} make one that can be answered:
            the client then learns why the connection closes.
        """
        error = FramingError(reason, status)
        if head_end > 0:
            head = bytes(self._buffer[:head_end]) + b"\r\n\r\n"
            try:
                message = _parse(head, 0, head_end, self.limits, self.memos)
            except ParseError as parse_error:
                error.request = parse_error.request
            else:
                if isinstance(message, Request) and answerable(message):
                    error.request = message
        return error

    def _next_message(self):
        """Cut the complete message off the buffer and parse it."""
        data = bytes(self._buffer[:self._message_end])
        head_end = self._head_end
        del self._buffer[:self._message_end]
        self._head_end = self._message_end = None
        return _parse(data, 0, head_end, self.limits, self.memos)
