"""
SIP messages (RFC 3261 §7): L{Headers}, L{Request}, L{Response}, their
serialization, L{make_response}, and the checks a transaction user makes
on a request before acting on it (L{validate_request}).

A received message keeps every header field as it came (its raw line, with
any folding) and writes it back byte-for-byte unless it was changed, so a
proxy forwards unknown headers and parameters untouched.  Typed values
(C{message.via}, C{message.cseq}...) are parsed on first access and cached
in the L{Headers}; any change to a header drops its cached value.  A
malformed header raises L{ParseError} when it is read, not before.

Typed values are mutable objects, but changing one in place does not
change the message: assign it back (C{vias = msg.via; vias[0].received =
host; msg.via = vias}), which rewrites the header from the value.

Why one module of about 750 lines: it is one concept.  The typed header
table of L{Message} and the checks of L{validate_request} read the same
per-header descriptors, which would only be split apart from each other.
"""

from operator import itemgetter

from resource_adaptors.sip.core.headers import (
    CSeq, Challenge, ContentType, Event, NameAddr, SubscriptionState, Via, header_key,
    header_key_and_name, header_name, is_list_header, parse_tokens)
from resource_adaptors.sip.core.syntax import ParseError, parse_int, split_list
from resource_adaptors.sip.core.uri import parse_uri

__all__ = ["Headers", "Message", "Request", "Response", "make_response", "answerable",
           "validate_request", "REASON_PHRASES"]

REASON_PHRASES = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted",
}


class Headers:
    """
    The header fields of a message: an ordered multi-map from header name to
    value.  Names may be given in any case and in long or compact form
    (C{"v"}, C{"Via"} and C{"VIA"} are one header).  Values are the unfolded
    text of each field.

    Fields of list headers (Via, Contact, Allow...) may hold several
    comma-separated values: L{get_all} splits them at top-level commas;
    other headers (WWW-Authenticate, Date, unknown ones) are never split.
    """

    __slots__ = ("_fields", "_typed", "_by_key", "_memos")

    def __init__(self, fields=()):
        """@param fields: (name, value) pairs, in order."""
        #: (key, name, value, line) tuples: line is the field as written:
        #: as received (with any folding), or C{name: value} for a field
        #: set in code.
        self._fields = [_field(*header_key_and_name(name), value) for name, value in fields]
        #: header key -> typed value parsed from (or assigned to) that header.
        self._typed = {}
        #: header key -> the values of its fields, in order, in a tuple;
        #: keys in the order they first appear; made when first needed (see
        #: L{_values_by_key}), kept up to date by every change to the fields.
        self._by_key = None
        #: the L{recurring.Memos} of the parser that read the fields, or None.
        self._memos = None

    @classmethod
    def received(cls, fields, by_key=None, memos=None):
        """
        Headers from the parser's (key, name, value, line) tuples, kept as
        they are, (when the parser made it) the index of their values by key
        (see C{_by_key}), and the parser's L{recurring.Memos} (validation
        reads them).
        """
        headers = cls.__new__(cls)
        headers._fields = fields
        headers._typed = {}
        headers._by_key = by_key
        headers._memos = memos
        return headers

    def __getstate__(self):
        """A message pickled or copied leaves its parser's memos behind."""
        return None, {"_fields": self._fields, "_typed": self._typed, "_by_key": self._by_key,
                      "_memos": None}

    def get(self, name):
        """@return: the first value of header C{name} (as L{get_all} would give it), or None."""
        key = header_key(name)
        values = self._field_values(key)
        if not values:
            return None
        if is_list_header(key):
            values = split_list(values[0])
            return values[0] if values else ""
        return values[0]

    def get_all(self, name):
        """@return: every value of header C{name}, list headers split at top-level commas."""
        return list(self._values(header_key(name)))

    def field_values(self, name):
        """@return: the value of each field of header C{name}, unsplit."""
        return list(self._field_values(header_key(name)))

    def _values(self, key):
        """@return: the values of header C{key}, a list header's split (not to be changed)."""
        return _split_values(key, self._field_values(key))

    def _field_values(self, key):
        """@return: the value of each field of header C{key}, in a tuple."""
        by_key = self._by_key
        return (self._values_by_key() if by_key is None else by_key).get(key, ())

    def _values_by_key(self):
        """
        @return: header key -> the values of its fields (see C{_by_key}).
            Reading a message reads most of its headers: one pass files every
            field by key, instead of one pass over the fields per header.
            Tuples: most headers have one field, and a tuple of strings is
            one allocation, which the garbage collector soon stops tracking.
        """
        by_key = self._by_key
        if by_key is None:
            by_key = self._by_key = {}
            get = by_key.get
            for key, _, value, _ in self._fields:
                values = get(key)
                by_key[key] = (value,) if values is None else values + (value,)
        return by_key

    def _changed(self, key, values=None):
        """
        Forget the typed value of header C{key}, whose fields changed, and
        file them again.  A header keeps its place among the keys: every
        change puts its first field where the first one was, or at the end.

        @param values: the values of its fields now, when the caller knows them.
        """
        self._typed.pop(key, None)
        by_key = self._by_key
        if by_key is not None:
            if values is None:
                values = [field[2] for field in self._fields if field[0] == key]
            if values:
                by_key[key] = tuple(values)
            else:
                by_key.pop(key, None)

    def add(self, name, value):
        """Append a field."""
        key, name = header_key_and_name(name)
        self._fields.append(_field(key, name, value))
        self._changed(key)

    def extend(self, pairs):
        """
        Append a field for each (name, value) pair, in order.

        @param pairs: an iterable of pairs, or L{PreparedFields}, whose
            fields are appended as they were made.
        """
        if type(pairs) is PreparedFields:
            added, keys = pairs._fields, pairs._keys
        else:
            added = [_field(*header_key_and_name(name), value) for name, value in pairs]
            keys = {field[0] for field in added}
        if added:
            self._fields += added
            for key in keys:
                self._changed(key)

    def set(self, name, value):
        """
        Replace every field of header C{name} by one field per value, where the
        first field was (or at the end).

        @param value: a str, or a list of str for several fields.
        """
        key, name = header_key_and_name(name)
        values = [value] if isinstance(value, str) else list(value)
        new = [_field(key, name, text) for text in values]
        fields = self._fields
        for index, field in enumerate(fields):
            if field[0] == key:
                if len(self._field_values(key)) == 1:     # no other field to remove
                    fields[index:index + 1] = new
                else:
                    rest = [field for field in fields[index + 1:] if field[0] != key]
                    fields[index:] = new + rest
                break
        else:
            fields += new
        self._changed(key, values)

    def remove(self, name):
        """Remove every field of header C{name} (there may be none)."""
        key = header_key(name)
        self._fields = [field for field in self._fields if field[0] != key]
        self._changed(key, [])

    def copy_from(self, other, name):
        """Append the fields of header C{name} of Headers C{other}, byte-for-byte."""
        key = header_key(name)
        self._fields += [field for field in other._fields if field[0] == key]
        self._changed(key)

    def __contains__(self, name):
        return header_key(name) in self._values_by_key()

    def __iter__(self):
        """Yield (name, value) for each field, in order, names as received or set."""
        return ((field[1], field[2]) for field in self._fields)

    def __len__(self):
        return len(self._fields)

    def serialize(self, start_line, body):
        """
        @return: the message's bytes: C{start_line}, the fields (received ones
            as received), a Content-Length equal to C{len(body)} (where the
            received one was, else last), an empty line and C{body}.
        """
        fields = self._fields
        if "content-length" not in map(_KEY, fields):
            lines = [start_line, *map(_LINE, fields), f"Content-Length: {len(body)}"]
        else:
            lines = [start_line]
            length_written = False
            for key, name, value, line in fields:
                if key != "content-length":
                    lines.append(line)
                elif not length_written:
                    length = str(len(body))
                    lines.append(line if value == length else f"{name}: {length}")
                    length_written = True
        lines += ("", "")
        # surrogateescape gives back the bytes of received non-UTF-8 text.
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def __repr__(self):
        return f"Headers({list(self)!r})"


class PreparedFields:
    """
    Header fields made once and added to many messages, such as the
    capabilities every answer to OPTIONS carries: (name, value) pairs, named
    and checked once, which L{Headers.extend} copies as they are.
    """

    __slots__ = ("_fields", "_keys")

    def __init__(self, pairs):
        self._fields = tuple(_field(*header_key_and_name(name), value) for name, value in pairs)
        self._keys = frozenset(field[0] for field in self._fields)

    def __iter__(self):
        """Yield (name, value) for each field, in order."""
        return ((field[1], field[2]) for field in self._fields)

    def __len__(self):
        return len(self._fields)

    def __repr__(self):
        return f"PreparedFields({list(self)!r})"


_KEY = itemgetter(0)
_LINE = itemgetter(3)


def _field(key, name, value):
    """
    @return: the field tuple of a field set in code (see C{Headers._fields}).
    @raise ValueError: for a value that would break the framing.
    """
    if "\r" in value or "\n" in value:
        raise ValueError(f"a header value cannot hold a line break: {value!r}")
    return key, name, value, name + ": " + value


def _split_values(key, field_values):
    """
    @return: the values of header C{key} whose fields have values
        C{field_values}: those of a list header split at top-level commas.
    """
    if not field_values or not is_list_header(key):
        return field_values
    values = []
    for value in field_values:
        values += split_list(value)
    return values


def _header_error(key):
    return ParseError(f"Bad {header_name(key)} header")


def _single(parse_value, addresses=False):
    """
    A header with one value: None when absent, an error when repeated.

    @param addresses: whether C{parse_value} reads an address, and takes
        as its second argument the memo of the addresses that recur in the
        messages of the parser that read this one (L{recurring.Memos}: a
        client sends the same To, Contact and Route again and again).
    """
    def parse(key, values, memos=None):
        if not values:
            return None
        if len(values) > 1:
            raise ParseError(f"Multiple {header_name(key)} headers")
        try:
            if addresses:
                return parse_value(values[0], None if memos is None else memos.addresses)
            return parse_value(values[0])
        except ParseError as error:
            raise _header_error(key) from error
    return parse


def _listed(parse_value, addresses=False):
    """
    A header with several values: every value of every field, parsed (the
    values of a header that is not a list, like WWW-Authenticate, are its
    fields).  C{addresses}: as for L{_single}.
    """
    def parse(key, values, memos=None):
        try:
            values = _split_values(key, values)
            if addresses:
                memo = None if memos is None else memos.addresses
                return [parse_value(value, memo) for value in values]
            return list(map(parse_value, values))
        except ParseError as error:
            raise _header_error(key) from error
    return parse


def _one_field_each(values):
    return list(map(str, values))


def _joined(values):
    return ", ".join(values)


def _word(text):
    """A Call-ID, SIP-ETag or SIP-If-Match: one word, no white space."""
    if not text or " " in text or "\t" in text:
        raise ParseError("Bad word")
    return text


def _parse_from_to(text, memo=None):
    """A From or To value: one tag at most (the dialog's id is made of them)."""
    address = NameAddr.parse(text, memo=memo)
    if address.params.count("tag") > 1:
        raise ParseError("Several tags")
    return address


def _is_usual_from_to(text):
    """
    L{NameAddr.is_usual}, and one C{;tag} at most: a second one, even
    without a value, is a second tag to L{_parse_from_to}.
    """
    return NameAddr.is_usual(text) and text.lower().count(";tag") < 2


def _parse_contact(text, memo):
    return NameAddr.parse(text, allow_star=True, memo=memo)


def _parse_route(text, memo):
    return NameAddr.parse(text, memo=memo)


_NOT_PARSED = object()


class _TypedHeader:
    """
    A typed, read/write view of one header on a message: parsed on first
    access and cached in the message's L{Headers}; assigning serializes the
    value into the header (None removes it).
    """

    def __init__(self, name, parse, format=str, is_usual=None):
        """
        @param parse: C{parse(key, values, memos)} makes the typed value of
            the header C{key} from the values of its fields and the memos of
            the parser that read them (or None) (see L{_single} and
            L{_listed}).
        @param is_usual: None, or a test that a field value has a usual
            shape: one that C{parse} accepts when it is the header's only
            field.
        """
        self.key = header_key(name)
        self.parse = parse
        self.format = format
        self.is_usual = is_usual

    def __get__(self, message, owner=None):
        if message is None:
            return self
        headers = message.headers
        value = headers._typed.get(self.key, _NOT_PARSED)
        if value is _NOT_PARSED:
            key = self.key
            value = headers._typed[key] = self.parse(key, headers._field_values(key),
                                                     headers._memos)
        return value

    def check(self, headers, values):
        """
        Raise L{ParseError} if reading the header, not read yet, would;
        C{values} are its field values.  A header of one field of the usual
        shape is known to parse without being built: L{validate_request}
        checks every header, and most are never read.  The values of the
        usual shape that recur are remembered by the parser that read them
        (see L{recurring}): a client sends the same Contact, Accept,
        Max-Forwards... each time.
        """
        if len(values) == 1 and self.is_usual is not None:
            value = values[0]
            memos = headers._memos
            usual = None if memos is None else memos.usual_values[self.key]
            if usual is not None and value in usual.kept:
                return
            if self.is_usual(value):
                if usual is not None:
                    usual.note(value, True)
                return
        headers._typed[self.key] = self.parse(self.key, values, headers._memos)

    def __set__(self, message, value):
        headers = message.headers
        if value is None:
            headers.remove(self.key)
        else:
            headers.set(self.key, self.format(value))
        headers._typed[self.key] = value


_DELTA_SECONDS = 2 ** 32 - 1


def _number(name, limit, absent_if_over=False):
    """
    The typed header of a number up to C{limit} (a larger one reads as if
    the header were absent, None, when C{absent_if_over}).  Its usual
    shape: fewer digits than C{limit} has, which makes a smaller number.
    """
    digits = len(str(limit)) - 1

    def is_usual(text):
        return len(text) <= digits and text.isascii() and text.isdigit()
    if absent_if_over:
        def parse(text):
            return parse_int(text, "number", limit, over_limit=None)
    else:
        def parse(text):
            return parse_int(text, "number", limit)
    return _TypedHeader(name, _single(parse), is_usual=is_usual)


class Message:
    """
    What requests and responses share: headers, body, typed header access
    and serialization (C{bytes(message)}).
    """

    __slots__ = ("headers", "body")

    via = _TypedHeader("Via", _listed(Via.parse), _one_field_each)
    # A From is new in every request (its tag): not remembered.
    from_ = _TypedHeader("From", _single(_parse_from_to), is_usual=_is_usual_from_to)
    # Every layer reads the To (transaction and dialog matching,
    # make_response): checking it builds it, no is_usual.
    to = _TypedHeader("To", _single(_parse_from_to, addresses=True))
    call_id = _TypedHeader("Call-ID", _single(_word))
    cseq = _TypedHeader("CSeq", _single(CSeq.parse))
    max_forwards = _number("Max-Forwards", 255)
    contact = _TypedHeader("Contact", _listed(_parse_contact, addresses=True), _one_field_each,
                           NameAddr.is_usual)
    route = _TypedHeader("Route", _listed(_parse_route, addresses=True), _one_field_each,
                         NameAddr.is_usual)
    record_route = _TypedHeader("Record-Route", _listed(_parse_route, addresses=True),
                                _one_field_each,
                                NameAddr.is_usual)
    # RFC 4475 §3.1.2.19: an Expires out of range may be taken as absent,
    # which gives the default expiry.
    expires = _number("Expires", _DELTA_SECONDS, absent_if_over=True)
    min_expires = _number("Min-Expires", _DELTA_SECONDS)
    event = _TypedHeader("Event", _single(Event.parse))
    allow_events = _TypedHeader("Allow-Events", _listed(parse_tokens), _joined)
    subscription_state = _TypedHeader("Subscription-State", _single(SubscriptionState.parse))
    sip_etag = _TypedHeader("SIP-ETag", _single(_word))
    sip_if_match = _TypedHeader("SIP-If-Match", _single(_word))
    content_type = _TypedHeader("Content-Type", _single(ContentType.parse))
    accept = _TypedHeader("Accept", _listed(ContentType.parse), _one_field_each,
                          ContentType.is_usual_list)
    allow = _TypedHeader("Allow", _listed(parse_tokens), _joined)
    require = _TypedHeader("Require", _listed(parse_tokens), _joined)
    proxy_require = _TypedHeader("Proxy-Require", _listed(parse_tokens), _joined)
    supported = _TypedHeader("Supported", _listed(parse_tokens), _joined)
    unsupported = _TypedHeader("Unsupported", _listed(parse_tokens), _joined)
    www_authenticate = _TypedHeader("WWW-Authenticate", _listed(Challenge.parse),
                                    _one_field_each)
    authorization = _TypedHeader("Authorization", _listed(Challenge.parse), _one_field_each)
    proxy_authenticate = _TypedHeader("Proxy-Authenticate", _listed(Challenge.parse),
                                      _one_field_each)
    proxy_authorization = _TypedHeader("Proxy-Authorization", _listed(Challenge.parse),
                                       _one_field_each)
    content_length = _number("Content-Length", _DELTA_SECONDS)

    def __init__(self, headers=None, body=b""):
        self.headers = Headers() if headers is None else headers
        self.body = body

    def start_line(self):
        """@return: the request line or status line, without CRLF."""
        raise NotImplementedError

    def __bytes__(self):
        return self.headers.serialize(self.start_line(), self.body)


#: Header key -> the typed property of messages that reads it.
_TYPED_HEADERS = {value.key: value for value in vars(Message).values()
                  if isinstance(value, _TypedHeader)}


class Request(Message):
    """
    A request.

    @ivar method: as received: methods are case-sensitive (RFC 3261 §7.1).
    @ivar uri: the Request-URI, a L{SipURI} or L{AbsoluteURI}.
    """

    __slots__ = ("method", "uri")

    def __init__(self, method, uri, headers=None, body=b""):
        """@param uri: a L{SipURI}, an L{AbsoluteURI} or the text of one."""
        super().__init__(headers, body)
        self.method = method
        self.uri = parse_uri(uri) if isinstance(uri, str) else uri

    def start_line(self):
        return f"{self.method} {self.uri} SIP/2.0"

    def __repr__(self):
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """
    A response.

    @ivar status: the status code, an int from 100 to 699.
    @ivar reason: the reason phrase.
    """

    __slots__ = ("status", "reason")

    def __init__(self, status, reason=None, headers=None, body=b""):
        """@param reason: the default phrase for C{status} when None."""
        super().__init__(headers, body)
        self.status = status
        self.reason = reason if reason is not None else REASON_PHRASES.get(status, "")

    @property
    def is_final(self):
        """Whether this response ends its transaction (not 1xx)."""
        return self.status >= 200

    @property
    def status_class(self):
        """1 for provisional responses, 2 for success... 6 for global failures."""
        return self.status // 100

    def start_line(self):
        return f"SIP/2.0 {self.status} {self.reason}"

    def __repr__(self):
        return f"<Response {self.status} {self.reason}>"


# The headers a response copies from its request (RFC 3261 §8.2.6.2), and
# Timestamp too in a 100 (§8.2.6.1).
_COPIED_TO_RESPONSES = frozenset(("via", "from", "to", "call-id", "cseq"))
_COPIED_TO_100 = _COPIED_TO_RESPONSES | {"timestamp"}


def make_response(request, status, reason=None, to_tag=None):
    """
    Build a response to C{request} (RFC 3261 §8.2.6): its Via fields (all, in
    order), From, To, Call-ID and CSeq copied byte-for-byte, and Timestamp
    for a 100.

    It never raises for a request that L{answerable} accepts: the answer
    to a malformed request (a 400) copies the first of each of From, To,
    Call-ID and CSeq, as they are.

    @param to_tag: added to the To header unless it has a tag already (the
        request was in a dialog) or is malformed.
    """
    copied = _COPIED_TO_100 if status == 100 else _COPIED_TO_RESPONSES
    fields = [field for field in request.headers._fields if field[0] in copied]
    if len(fields) > 5 and status != 100:
        fields = _first_of_each(fields)
    if to_tag is not None:
        for index, (key, name, value, _) in enumerate(fields):
            if key == "to":
                if _untagged(request, value):
                    # In the addr-spec form as well as the name-addr form, a
                    # parameter after the value is a header parameter.
                    fields[index] = _field(key, name, value + ";tag=" + to_tag)
                break
    response = Response(status, reason, Headers.received(fields))
    vias = request.headers._typed.get("via")
    if vias is not None:
        # Its Vias are the request's: the response is routed by them without
        # parsing them again.
        response.headers._typed["via"] = list(map(Via.copy, vias))
    return response


def _first_of_each(fields):
    """@return: C{fields} with all the Vias, and the first field of each other header."""
    seen = set()
    kept = []
    for field in fields:
        key = field[0]
        if key != "via":
            if key in seen:
                continue
            seen.add(key)
        kept.append(field)
    return kept


def _untagged(request, first_value):
    """
    @return: whether the To of C{request}, whose first field value is
        C{first_value}, is well-formed and has no tag.
    """
    try:
        to = request.to
    except ParseError:
        try:    # several To fields, or a bad one
            to = _parse_from_to(first_value)
        except ParseError:
            return False
    return to is not None and to.tag is None


def answerable(request):
    """
    @return: whether a response to C{request} can be built and sent back:
        its Via is readable (it routes the response) and From, To, Call-ID
        and CSeq are there (the response copies the first of each as they
        are).
    """
    headers = request.headers
    if not all(name in headers for name in ("From", "To", "Call-ID", "CSeq")):
        return False
    try:
        return bool(request.via)
    except ParseError:
        return False


def validate_request(request, methods=None, uri_schemes=("sip", "sips"), content_types=None):
    """
    The checks of RFC 3261 §8.2 that need more than the syntax
    L{parser.parse_message} checked, in the order §8.2 makes them: the
    transaction user calls this before acting on a request, and answers a
    failure with C{make_response(request, error.status, error.reason)}.

    @param methods: the methods this element implements, or None to accept
        any method.
    @param uri_schemes: the Request-URI schemes this element handles.
    @param content_types: the media types (C{"type/subtype"}, lower case)
        this element understands in a body, or None not to check.
    @raise ParseError: 501 for a method not in C{methods}; 416 for a
        Request-URI of another scheme; 400 when the CSeq method is not the
        request's or when a header of a type this stack knows is malformed
        (Contact, Expires, Event...); 415 for a body of a type not in
        C{content_types}.
    """
    def refuse(reason, status=400):
        return ParseError(reason, status, request if answerable(request) else None)

    if methods is not None and request.method not in methods:
        raise refuse("Not Implemented", 501)
    if request.uri.scheme not in uri_schemes:
        raise refuse("Unsupported URI Scheme", 416)
    if request.cseq.method != request.method:
        raise refuse("CSeq method does not match the request")
    # Only the headers present can be malformed, and not those read already
    # (they parsed); they are checked in the message's order, so that the
    # first bad one is the one reported.
    headers = request.headers
    typed = headers._typed
    for key, values in headers._values_by_key().items():
        header = _TYPED_HEADERS.get(key)
        if header is not None and key not in typed:
            try:
                header.check(headers, values)
            except ParseError as error:
                raise refuse(error.reason) from error
    if content_types is not None and request.body:
        content_type = request.content_type
        if content_type is None or content_type.mime not in content_types:
            raise refuse("Unsupported Media Type", 415)

