"""
Header names and typed header values (RFC 3261 §7.3, §20).

Names: L{header_key} maps any spelling of a header name (any case, long or
compact form) to one key, the lower-case long name, which is what
L{message.Headers} files fields under; L{header_name} gives the canonical
spelling to write; L{is_list_header} says whether a header's values may be
comma-separated in one field.

Values: each class parses one kind of header value from its unfolded text
(C{parse}) and serializes it canonically (C{str}).  They are plain mutable
objects: L{message.Message} caches the one it parsed, and assigning a value
back to the message is what rewrites the header.
"""

import re

from resource_adaptors.sip.core.recurring import usual_groups
from resource_adaptors.sip.core.syntax import (
    COMPACT_PARAMS, TOKEN, WHITESPACE, ParseError, Params, is_token, parse_int, parse_params,
    parse_port, quote, read_quoted, skip_whitespace)
from resource_adaptors.sip.core.uri import (
    HOST, PORT_NUMBER, USUAL_ADDR_SPEC_URI, USUAL_SIP_URI, parse_uri, usual_sip_uri)

__all__ = ["Params", "ParseError", "HeaderValue", "NameAddr", "Via", "CSeq", "Event",
           "SubscriptionState", "ContentType", "Challenge", "header_key", "header_name",
           "header_key_and_name", "is_list_header", "ASSERTED_IDENTITY"]

#: The header a trusted peer names a request's sender in (RFC 3325).
ASSERTED_IDENTITY = "P-Asserted-Identity"

# Canonical spellings of the headers this stack knows; any other name is
# written as it was given.
_CANONICAL_NAMES = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "P-Asserted-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
    "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
    "Referred-By", "Reject-Contact", "Replaces", "Reply-To", "Request-Disposition", "Require",
    "Retry-After", "Route", "RSeq", "Security-Client", "Security-Server", "Security-Verify",
    "Server", "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate")

# RFC 3261 §7.3.3 and the RFCs that defined the later ones (3265, 3515,
# 3892, 4028, 4474).
COMPACT_FORMS = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
    "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by",
    "x": "session-expires", "y": "identity",
}

# Headers whose grammar is a comma-separated list, so that several values
# may share a field (RFC 3261 §7.3.1).  Every other header, unknown ones
# included, is one value per field: commas in Date, Call-ID or
# WWW-Authenticate are not separators.
_LIST_HEADERS = frozenset((
    "accept", "accept-contact", "accept-encoding", "accept-language", "alert-info", "allow",
    "allow-events", "call-info", "contact", "content-encoding", "content-language", "error-info",
    "history-info", "in-reply-to", "p-asserted-identity", "path", "proxy-require", "reason",
    "record-route", "reject-contact", "request-disposition", "require", "route",
    "security-client", "security-server", "security-verify", "service-route", "supported",
    "unsupported", "via", "warning"))

_NAME_OF_KEY = {name.lower(): name for name in _CANONICAL_NAMES}


def header_key(name):
    """@return: the key of a header name: its long form in lower case."""
    lowered = name.lower()
    return COMPACT_FORMS.get(lowered, lowered)


def header_name(name):
    """@return: the spelling to write for a header name given in any form."""
    return _NAME_OF_KEY.get(header_key(name), name)


def header_key_and_name(name):
    """
    @return: (L{header_key}, L{header_name}) of C{name}; one lookup for the
        spellings of L{_KEYS_AND_NAMES}: code adds and sets the same few
        headers on every message.
    """
    known = _KEYS_AND_NAMES.get(name)
    return known if known is not None else (header_key(name), header_name(name))


#: The canonical, lower-case and compact spellings of the known headers ->
#: their (key, name): a table made once, not a memo of what was asked.
_KEYS_AND_NAMES = {
    spelling: (header_key(spelling), header_name(spelling))
    for spelling in (*_CANONICAL_NAMES, *_NAME_OF_KEY, *COMPACT_FORMS,
                     *(form.upper() for form in COMPACT_FORMS))}


def is_list_header(key):
    """@return: whether the header with that key is a comma-separated list."""
    return key in _LIST_HEADERS


def split_params(text):
    """
    Split a value of the form C{value *(;param)} where the value itself holds
    no C{;} and no quoted string.

    @return: (the value, stripped; its L{Params}).
    """
    semicolon = text.find(";")
    if semicolon < 0:
        return text.strip(WHITESPACE), Params()
    return text[:semicolon].strip(WHITESPACE), parse_params(text[semicolon:])


def parse_tokens(text):
    """@return: a token from a list header (Allow, Supported...)."""
    if not is_token(text):
        raise ParseError("Bad token")
    return text


def _parameter(name, doc):
    """A read/write property for the parameter C{name} of a header value."""
    def get(value):
        return value.params.get(name)

    def set(value, parameter):
        value.params[name] = parameter
    return property(get, set, doc=doc)


class HeaderValue:
    """What typed header values share: their repr is their serialization."""

    __slots__ = ()

    def __repr__(self):
        return f"{type(self).__name__}({str(self)!r})"


# The usual From, To, Contact... values, each matched by one expression: a
# display name (quoted without escapes and not empty, or tokens) and a
# <URI>, or an addr-spec; then compact parameters.  What they match, the
# general path of NameAddr.parse accepts and reads the same way with many
# more steps.  Groups: quoted display name, token display name (two empty
# ones in the addr-spec), the six of the URI, the parameters.
_USUAL_NAME_ADDR = re.compile(
    rf'(?:"([^"\\]+)"|({TOKEN}(?:[ \t]+{TOKEN})*))?[ \t]*<{USUAL_SIP_URI}>({COMPACT_PARAMS})')
_USUAL_ADDR_SPEC = re.compile(rf"()(){USUAL_ADDR_SPEC_URI}({COMPACT_PARAMS})")


def _usual_pattern(text):
    """@return: the expression of the usual shape C{text} (stripped) may have."""
    return _USUAL_NAME_ADDR if "<" in text else _USUAL_ADDR_SPEC


class NameAddr(HeaderValue):
    """
    A From, To, Contact, Route, Record-Route... value: a URI with an optional
    display name, and header parameters.

    In the addr-spec form (no C{<>}) the parameters after the URI belong to
    the header, not the URI (RFC 3261 §20.10); such a URI cannot hold a
    C{?}, C{,} or C{;} of its own.

    @ivar uri: a L{SipURI} or L{AbsoluteURI}; None for the C{*} contact.
    @ivar display_name: the display name unquoted, or None.
    @ivar params: the header parameters (C{tag}, C{expires}, C{q}...).
    @ivar star: True only for the C{Contact: *} of a REGISTER removing all
        bindings.
    """

    __slots__ = ("_uri", "_uri_groups", "display_name", "params", "star")

    def __init__(self, uri, display_name=None, params=None, star=False):
        self._uri = uri
        # The groups of USUAL_SIP_URI that make the URI when it is first
        # read, or None (see parse).
        self._uri_groups = None
        self.display_name = display_name
        self.params = Params() if params is None else params
        self.star = star

    @classmethod
    def parse(cls, text, allow_star=False, memo=None):
        """
        @param allow_star: whether C{*} is accepted (Contact only).
        @param memo: None, or the L{RecurringMemo} of a parser's addresses
            (see L{usual_groups}).
        @raise ParseError: when C{text} is not a name-addr or addr-spec.
        """
        text = text.strip(WHITESPACE)
        usual = None if memo is None else memo.kept.get(text)
        if usual is None:
            usual = usual_groups(_usual_pattern(text), text, memo)
        if usual is not None:       # the fast path; anything else below
            quoted, tokens, *uri, params = usual
            # The URI is made when first read: the To of every request is
            # read for its tag alone.
            address = cls(None, quoted or tokens or None, Params.from_validated(params))
            address._uri_groups = uri
            return address
        if text == "*" and allow_star:
            return cls(None, star=True)
        if text.startswith('"'):
            display_name, pos = read_quoted(text, 0)
            less_than = skip_whitespace(text, pos)
            if not text.startswith("<", less_than):
                raise ParseError("Bad display name")
            return cls._parse_bracketed(text, less_than, display_name)
        less_than = text.find("<")
        # A "<" after a ";" is in a parameter of an addr-spec.
        if less_than >= 0 and text.find(";", 0, less_than) < 0:
            display_name = text[:less_than].strip(WHITESPACE)
            if display_name and not all(is_token(word) for word in display_name.split()):
                raise ParseError("Bad display name")
            return cls._parse_bracketed(text, less_than, display_name or None)
        return cls._parse_addr_spec(text)

    @staticmethod
    def is_usual(text):
        """
        @return: whether C{text} is a value of the usual shape (see
            L{_USUAL_NAME_ADDR}): then L{parse} accepts it, and checking
            that costs one match instead of building the value.  A value
            of the usual shape has no top-level comma: it is one value
            of a list header too.
        """
        return _usual_pattern(text).fullmatch(text) is not None

    @classmethod
    def _parse_bracketed(cls, text, less_than, display_name):
        greater_than = text.find(">", less_than)
        if greater_than < 0:
            raise ParseError("Unterminated <URI>")
        uri = parse_uri(text[less_than + 1:greater_than])
        return cls(uri, display_name, parse_params(text[greater_than + 1:]))

    @classmethod
    def _parse_addr_spec(cls, text):
        semicolon = text.find(";")
        uri_text = text if semicolon < 0 else text[:semicolon].rstrip(WHITESPACE)
        if "?" in uri_text or " " in uri_text or "\t" in uri_text:
            raise ParseError("URI with headers or spaces must be enclosed in <>")
        params = Params() if semicolon < 0 else parse_params(text[semicolon:])
        return cls(parse_uri(uri_text), None, params)

    @property
    def uri(self):
        """A L{SipURI} or L{AbsoluteURI}; None for the C{*} contact."""
        if self._uri_groups is not None:
            self._uri = usual_sip_uri(*self._uri_groups)
            self._uri_groups = None
        return self._uri

    @uri.setter
    def uri(self, uri):
        self._uri = uri
        self._uri_groups = None

    tag = _parameter("tag", "The C{tag} parameter, or None.")

    @property
    def expires(self):
        """The C{expires} parameter of a Contact as an int, or None."""
        value = self.params.get("expires")
        return None if value is None else parse_int(value, "expires", 2 ** 32 - 1)

    @property
    def q(self):
        """The C{q} parameter of a Contact as a float, or None."""
        value = self.params.get("q")
        if value is None:
            return None
        try:
            q = float(value)
        except ValueError:
            raise ParseError("Bad q") from None
        if not 0 <= q <= 1:
            raise ParseError("Bad q")
        return q

    def __str__(self):
        if self.star:
            return "*"
        address = f"<{self.uri}>"
        if self.display_name is not None:
            address = quote(self.display_name) + " " + address
        return address + self.params.serialize() if self.params else address


# sent-protocol LWS sent-by, then the parameters (RFC 3261 §20.42), with
# the white space SLASH, COLON and LWS allow.
_VIA = re.compile(
    rf"({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+"
    rf"({HOST})(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?(.*)", re.S)
#: The usual Via: SIP/2.0, no white space but before the host, a port of at
#: most 65535, compact parameters.  What it matches, L{_VIA} and
#: L{parse_params} would accept and read the same way.
_USUAL_VIA = re.compile(
    rf"SIP/2\.0/({TOKEN})[ \t]+({HOST})(?::({PORT_NUMBER}))?({COMPACT_PARAMS})")


#: What L{Params.get} returns for a parameter that is not there at all, where
#: None would mean a parameter without a value.
_ABSENT = object()


class Via(HeaderValue):
    """
    A Via value: C{SIP/2.0/UDP host:port;branch=...}.

    @ivar protocol: C{"SIP/2.0"}.
    @ivar transport: as received (C{"UDP"}, C{"TCP"}, C{"WSS"}...).
    @ivar host: the sent-by host (an IPv6 reference keeps its brackets).
    @ivar port: the sent-by port, or None.
    @ivar params: C{branch}, C{received}, C{rport}, C{maddr}...
    """

    __slots__ = ("transport", "host", "port", "params", "protocol")

    def __init__(self, transport, host, port=None, params=None, protocol="SIP/2.0"):
        self.transport = transport
        self.host = host
        self.port = port
        self.params = Params() if params is None else params
        self.protocol = protocol

    @classmethod
    def parse(cls, text):
        """@raise ParseError: when C{text} is not a via-parm."""
        usual = _USUAL_VIA.fullmatch(text)
        if usual is not None:       # the fast path; anything else below
            transport, host, port, params = usual.groups()
            return cls(transport, host, None if port is None else int(port),
                       Params.from_validated(params))
        match = _VIA.match(text)
        if match is None:
            raise ParseError("Bad Via")
        name, version, transport, host, port, params = match.groups()
        return cls(transport, host, None if port is None else parse_port(port, "Via port"),
                   parse_params(params), name + "/" + version)

    def copy(self):
        """@return: an independent copy."""
        return Via(self.transport, self.host, self.port, self.params.copy(), self.protocol)

    branch = _parameter("branch", "The C{branch} parameter, or None.")
    received = _parameter("received", "The C{received} parameter (RFC 3261 §18.2.1), or None.")

    @property
    def rport(self):
        """
        The C{rport} parameter (RFC 3581): None when absent, True when present
        without a value (the client asks for it), the port as an int once the
        server filled it in.
        """
        value = self.params.get("rport", _ABSENT)
        if value is None:
            return True
        return None if value is _ABSENT else parse_int(value, "rport", 65535)

    @rport.setter
    def rport(self, value):
        self.params["rport"] = None if value is True else str(value)

    @property
    def sent_by(self):
        """(host, port) as the client wrote them; port may be None."""
        return self.host, self.port

    def __str__(self):
        sent_by = self.host if self.port is None else f"{self.host}:{self.port}"
        return f"{self.protocol}/{self.transport} {sent_by}{self.params.serialize()}"


_CSEQ = re.compile(rf"[ \t]*([0-9]+)[ \t]+({TOKEN})[ \t]*")


class CSeq(HeaderValue):
    """A CSeq value: a sequence number below 2**31 and a method."""

    __slots__ = ("number", "method")

    def __init__(self, number, method):
        self.number = number
        self.method = method

    @classmethod
    def parse(cls, text):
        """@raise ParseError: for a number that is not digits or not below 2**31."""
        match = _CSEQ.fullmatch(text)
        if match is None:
            raise ParseError("Bad CSeq")
        number, method = match.groups()
        return cls(parse_int(number, "CSeq", 2 ** 31 - 1), method)

    def __str__(self):
        return f"{self.number} {self.method}"


class _TokenAndParams(HeaderValue):
    """The shape of Event and Subscription-State values: a token, then parameters."""

    __slots__ = ("_token", "params")

    def __init__(self, token, params=None):
        self._token = token
        self.params = Params() if params is None else params

    @classmethod
    def parse(cls, text):
        token, params = split_params(text)
        if not is_token(token):
            raise ParseError(f"Bad {cls.__name__}")
        return cls(token, params)

    def __str__(self):
        return self._token + self.params.serialize()


class Event(_TokenAndParams):
    """An Event value (RFC 6665): a package name and parameters (C{id})."""

    __slots__ = ()

    def __init__(self, package, params=None):
        super().__init__(package, params)

    @property
    def package(self):
        """The event package (C{presence}, C{dialog}...)."""
        return self._token

    id = _parameter("id", "The C{id} parameter, or None.")


class SubscriptionState(_TokenAndParams):
    """
    A Subscription-State value (RFC 6665): C{active}, C{pending} or
    C{terminated} (kept as received), with C{expires}, C{reason},
    C{retry-after}.
    """

    __slots__ = ()

    def __init__(self, state, params=None):
        super().__init__(state, params)

    @property
    def state(self):
        """C{active}, C{pending}, C{terminated} or an extension."""
        return self._token

    @property
    def expires(self):
        """The C{expires} parameter as an int, or None."""
        return self._seconds("expires")

    @property
    def retry_after(self):
        """The C{retry-after} parameter as an int, or None."""
        return self._seconds("retry-after")

    reason = _parameter("reason", "The C{reason} parameter, or None.")

    def _seconds(self, name):
        value = self.params.get(name)
        return None if value is None else parse_int(value, name, 2 ** 32 - 1)


#: The usual Accept value: media types with compact parameters, separated by
#: commas.  What it matches, splitting the list and L{ContentType.parse}
#: accept: no element is empty, no parameter holds a comma.
_USUAL_MEDIA_TYPES = re.compile(
    rf"{TOKEN}/{TOKEN}{COMPACT_PARAMS}(?:[ \t]*,[ \t]*{TOKEN}/{TOKEN}{COMPACT_PARAMS})*")


class ContentType(HeaderValue):
    """
    A media type with parameters: a Content-Type value, or an Accept value
    (where type and subtype may be C{*}).
    """

    __slots__ = ("type", "subtype", "params")

    def __init__(self, type, subtype, params=None):
        self.type = type
        self.subtype = subtype
        self.params = Params() if params is None else params

    @classmethod
    def parse(cls, text):
        media_type, params = split_params(text)
        type_, slash, subtype = media_type.partition("/")
        type_ = type_.strip(WHITESPACE)
        subtype = subtype.strip(WHITESPACE)
        if not slash or not is_token(type_) or not is_token(subtype):
            raise ParseError("Bad media type")
        return cls(type_, subtype, params)

    @staticmethod
    def is_usual_list(text):
        """
        @return: whether C{text} is a list of media types of the usual shape
            (see L{_USUAL_MEDIA_TYPES}), which checks an Accept field in one
            match instead of building its values.
        """
        return _USUAL_MEDIA_TYPES.fullmatch(text) is not None

    @property
    def mime(self):
        """C{"type/subtype"} in lower case, for comparisons."""
        return f"{self.type}/{self.subtype}".lower()

    def __str__(self):
        return f"{self.type}/{self.subtype}{self.params.serialize()}"


# Digest parameters that RFC 2617 always writes as quoted strings, whatever
# their value looks like.
_QUOTED_DIGEST_PARAMS = frozenset(
    ("realm", "domain", "nonce", "opaque", "username", "uri", "response", "cnonce"))


class Challenge(HeaderValue):
    """
    A WWW-Authenticate or Proxy-Authenticate challenge, or the credentials
    of an Authorization or Proxy-Authorization: a scheme and comma-separated
    parameters.  Any scheme parses (C{Digest} or one nobody knows); deciding
    what to do with it is the authenticator's job.
    """

    __slots__ = ("scheme", "params")

    def __init__(self, scheme, params=None):
        self.scheme = scheme
        self.params = Params() if params is None else params

    @classmethod
    def parse(cls, text):
        text = text.strip(WHITESPACE)
        end = 0
        while end < len(text) and text[end] not in WHITESPACE:
            end += 1
        scheme = text[:end]
        if not is_token(scheme):
            raise ParseError("Bad authentication scheme")
        rest = text[end:].strip(WHITESPACE)
        try:
            params = parse_params(rest, ",", leading=False) if rest else Params()
        except ParseError:
            raise ParseError("Bad authentication parameters") from None
        return cls(scheme, params)

    def __str__(self):
        if self.scheme.lower() == "digest":
            params = Params()
            for name, value in self.params.items():
                params.set(name, value, self.params.is_quoted(name)
                           or name.lower() in _QUOTED_DIGEST_PARAMS)
        else:
            params = self.params
        if not params:
            return self.scheme
        return self.scheme + " " + params.serialize(", ", leading=False)

