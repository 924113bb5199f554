"""
SIP and SIPS URIs (RFC 3261 §19.1), and every other absolute URI (tel:,
http:, urn:...) kept as opaque text.

A L{SipURI} keeps each component as received, %-escapes included, so that
serializing it gives back what was parsed; L{SipURI.equivalent} compares
the unescaped components with the rules of RFC 3261 §19.1.4, which is what
matching a Request-URI or a registered contact needs.
"""

import re
from ipaddress import ip_address
from urllib.parse import unquote

from resource_adaptors.sip.core.recurring import usual_groups
from resource_adaptors.sip.core.syntax import ParseError, Params, parse_port

# The character classes of RFC 3261 §25.1.  Each component's class excludes
# the character that ends it, so the expressions below cannot backtrack.
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_ESCAPED = r"%[0-9A-Fa-f]{2}"


def _escapable(chars, at_least_one=True):
    """
    @return: an expression for a run of C{chars} (a character class without
        C{%}) and %-escapes, i.e. C{(?:[chars]|%XX)+} (or C{*}), written so
        that the runs of plain characters are matched by one fast repeat
        instead of one alternation per character.
    """
    run = rf"[{chars}]*(?:{_ESCAPED}[{chars}]*)*"
    return rf"(?:[{chars}]|{_ESCAPED}){run}" if at_least_one else run


_USER = _escapable(rf"{_UNRESERVED}&=+$,;?/")
_PASSWORD = _escapable(rf"{_UNRESERVED}&=+$,", at_least_one=False)
#: A host: an IPv6 reference, or a name or IPv4 address (L{_check_host}
#: checks the labels of a SIP URI's).
HOST = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+"
#: The host of a usual URI: an IPv6 reference, or a name or IPv4 address
#: of 63 characters at most whose labels are not empty: one that
#: L{_check_host} accepts.
_USUAL_HOST = (r"\[[0-9A-Fa-f:.]+\]|(?=[A-Za-z0-9\-.]{1,63}(?![A-Za-z0-9\-.]))"
               r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.?")
_PARAM_CHARS = _escapable(rf"{_UNRESERVED}\[\]/:&+$")
_HEADER_CHARS = rf"{_UNRESERVED}\[\]/?:+$"
_HEADER = rf"{_escapable(_HEADER_CHARS)}={_escapable(_HEADER_CHARS, at_least_one=False)}"
_HOSTPORT_PARAMS_HEADERS = (
    rf"({HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;{_PARAM_CHARS}(?:={_PARAM_CHARS})?)*)"
    rf"(?:\?({_HEADER}(?:&{_HEADER})*))?")
# Whether there is a userinfo is decided by looking for "@" first: trying
# both shapes in one expression would backtrack over long inputs.
_WITH_USERINFO = re.compile(rf"({_USER})(?::({_PASSWORD}))?@" + _HOSTPORT_PARAMS_HEADERS)
_WITHOUT_USERINFO = re.compile(_HOSTPORT_PARAMS_HEADERS)

#: A port number (0 to 65535 in at most 5 digits), as an expression: a fast
#: path that matches it has no port to refuse.
PORT_NUMBER = r"6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5]?[0-9]{1,4}"

# The usual SIP URIs, for the fast paths that match a whole value with one
# expression.  Each matches only what parse_uri accepts and reads the same
# way: a lower-case scheme, a port of at most 65535, no headers; its groups
# are scheme, user, password, host, port, params (see usual_sip_uri).  An
# optional userinfo costs no backtracking here: neither its user nor its
# password class holds the ":" or "@" that ends it.
#: Alone, or between <> in a header.
USUAL_SIP_URI = (rf"(sips?):(?:({_USER})(?::({_PASSWORD}))?@)?({_USUAL_HOST})"
                 rf"(?::({PORT_NUMBER}))?"
                 rf"((?:;{_PARAM_CHARS}(?:={_PARAM_CHARS})?)*)")
#: In an addr-spec (no <>), where a ";" starts the header's parameters: no
#: URI parameters (an empty group stands for them), and no ";", "?" or ","
#: (which would split a list header) in the userinfo.
USUAL_ADDR_SPEC_URI = (rf"(sips?):(?:({_escapable(rf'{_UNRESERVED}&=+$/')})"
                       rf"(?::({_escapable(rf'{_UNRESERVED}&=+$', at_least_one=False)}))?@)?"
                       rf"({_USUAL_HOST})(?::({PORT_NUMBER}))?()")
_USUAL_SIP_URI = re.compile(USUAL_SIP_URI)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# An opaque URI may hold almost anything, but not what would end it in a
# header or a request line, nor what no URI holds (RFC 3986 §2): control
# characters, and characters that are not ASCII (bytes that were not
# UTF-8 among them), which services could not write in a document.
_NOT_IN_OPAQUE = re.compile(r'[^!-~]|[<>"]')

# URI parameters that make two URIs different even when only one has them
# (RFC 3261 §19.1.4).
_PARAMS_THAT_MUST_BOTH_BE_THERE = frozenset(("user", "ttl", "method", "maddr"))


def parse_uri(text, memo=None):
    """
    @return: a L{SipURI} for sip: and sips:, an L{AbsoluteURI} for any
        other scheme.
    @param memo: None, or the L{RecurringMemo} of a parser's Request-URIs
        (see L{usual_groups}).
    @raise ParseError: when C{text} is not a URI.
    """
    usual = None if memo is None else memo.kept.get(text)
    if usual is None:
        usual = usual_groups(_USUAL_SIP_URI, text, memo)
    if usual is not None:       # the fast path; anything else below
        return usual_sip_uri(*usual)
    if text.startswith("sip:"):
        return _parse_sip_uri("sip", text[4:])
    colon = text.find(":")
    scheme = text[:colon]
    if colon <= 0 or not _SCHEME.fullmatch(scheme):
        raise ParseError("Bad URI")
    lowered = scheme.lower()
    if lowered == "sip" or lowered == "sips":
        return _parse_sip_uri(lowered, text[colon + 1:])
    if colon + 1 == len(text) or _NOT_IN_OPAQUE.search(text):
        raise ParseError("Bad URI")
    return AbsoluteURI(text)


def _parse_sip_uri(scheme, rest):
    if "@" in rest:
        match = _WITH_USERINFO.fullmatch(rest)
        if match is None:
            raise ParseError("Bad SIP URI")
        user, password, host, port, params, headers = match.groups()
    else:
        match = _WITHOUT_USERINFO.fullmatch(rest)
        if match is None:
            raise ParseError("Bad SIP URI")
        user = password = None
        host, port, params, headers = match.groups()
    _check_host(host)
    return SipURI(scheme, user, password, host, None if port is None else parse_port(port),
                  Params.from_validated(params),
                  [tuple(header.split("=", 1)) for header in headers.split("&")] if headers else [])


def _check_host(host):
    """
    @raise ParseError: for a host name that no DNS holds (RFC 1035 §2.3.4,
        and RFC 3261's grammar): an empty label, one over 63 characters,
        over 253 in all.  Sending to one would fail in the resolver.
    """
    if host.startswith("["):
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(0 < len(label) <= 63 for label in name.split(".")):
        raise ParseError("Bad host")


def usual_sip_uri(scheme, user, password, host, port, params):
    """
    @return: the L{SipURI} of the groups of L{USUAL_SIP_URI} or
        L{USUAL_ADDR_SPEC_URI}: what L{parse_uri} gives for the text they matched.
    """
    return SipURI(scheme, user, password, host, None if port is None else int(port),
                  Params.from_validated(params), [])


def _unescape(text):
    return None if text is None else unquote(text, errors="surrogateescape")


def _same_host(one, other):
    if one.lower() == other.lower():
        return True
    if one.startswith("[") and other.startswith("["):
        try:
            return ip_address(one[1:-1]) == ip_address(other[1:-1])
        except ValueError:
            return False
    return False


class SipURI:
    """
    A sip: or sips: URI.

    @ivar scheme: C{"sip"} or C{"sips"} (lower case).
    @ivar user: the user part as received (%-escapes kept), or None.
    @ivar password: or None.
    @ivar host: a host name, an IPv4 address or an IPv6 reference with its
        brackets (C{"[2001:db8::1]"}).
    @ivar port: an int, or None when absent (which is not the same as 5060
        for comparisons).
    @ivar params: the URI parameters, a L{Params}.
    @ivar headers: the URI headers (C{?name=value&...}), a list of
        (name, value) pairs as received.
    """

    __slots__ = ("scheme", "user", "password", "host", "port", "params", "headers")

    def __init__(self, scheme="sip", user=None, password=None, host="", port=None,
                 params=None, headers=None):
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.params = Params() if params is None else params
        self.headers = [] if headers is None else headers

    @property
    def transport(self):
        """The C{transport} parameter in lower case, or None."""
        value = self.params.get("transport")
        return value.lower() if value else None

    def equivalent(self, other):
        """
        @return: whether the two URIs are equivalent by RFC 3261 §19.1.4:
            components are compared unescaped, user and password
            case-sensitively, the rest ignoring case; a parameter found in
            only one URI is ignored unless it is user, ttl, method or maddr;
            URI headers must all match.
        """
        if not isinstance(other, SipURI) or self.scheme != other.scheme:
            return False
        if (_unescape(self.user) != _unescape(other.user)
                or _unescape(self.password) != _unescape(other.password)
                or self.port != other.port or not _same_host(self.host, other.host)):
            return False
        return self._params_match(other) and self._headers_match(other)

    def _params_match(self, other):
        mine = {name.lower(): value for name, value in self.params.items()}
        theirs = {name.lower(): value for name, value in other.params.items()}
        for name in mine.keys() | theirs.keys():
            if name in mine and name in theirs:
                if (_unescape(mine[name]) or "").lower() != (_unescape(theirs[name]) or "").lower():
                    return False
            elif name in _PARAMS_THAT_MUST_BOTH_BE_THERE:
                return False
        return True

    def _headers_match(self, other):
        def unescaped(headers):
            return sorted((_unescape(name).lower(), _unescape(value)) for name, value in headers)
        return unescaped(self.headers) == unescaped(other.headers)

    def __str__(self):
        pieces = [self.scheme, ":"]
        if self.user is not None:
            pieces.append(self.user)
            if self.password is not None:
                pieces += (":", self.password)
            pieces.append("@")
        pieces.append(self.host)
        if self.port is not None:
            pieces += (":", str(self.port))
        if self.params:
            pieces.append(self.params.serialize())
        if self.headers:
            pieces += ("?", "&".join(name + "=" + value for name, value in self.headers))
        return "".join(pieces)

    def __repr__(self):
        return f"SipURI({str(self)!r})"


class AbsoluteURI:
    """
    A URI of another scheme than sip or sips, kept as the text received:
    SIP only needs to carry it and compare it.
    """

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    @property
    def scheme(self):
        """The scheme in lower case (C{"tel"}, C{"http"}...)."""
        return self.text.partition(":")[0].lower()

    def equivalent(self, other):
        """@return: whether both are the same text but for the scheme's case."""
        return (isinstance(other, AbsoluteURI) and self.scheme == other.scheme
                and self.text.partition(":")[2] == other.text.partition(":")[2])

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"AbsoluteURI({self.text!r})"
