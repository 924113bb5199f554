"""
The lexical grammar that SIP URIs and header values share (RFC 3261 §25.1):
tokens, quoted strings, parameter lists and top-level comma lists, and the
L{ParseError} raised when text does not follow it.

It sits below L{uri} and L{headers} (both use L{Params}), so that neither has
to import the other to parse parameters.  L{headers} and L{parser} re-export
what their users need from here.

Values reach these functions unfolded: line folding (CRLF followed by SP or
HT) has already been replaced by a single space, so "white space" here is
only SP and HT.
"""

import re
from collections.abc import MutableMapping

WHITESPACE = " \t"
TOKEN_CHARS = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789-.!%*_+`'~")
#: A token, as a regular expression.
TOKEN = f"[{re.escape(TOKEN_CHARS)}]+"

#: A parameter value that needs no quotes: anything without white space or
#: the separators of the grammars around it.  That is more than tokens and
#: hosts, which keeps odd but harmless values of real devices.
_PLAIN = r'[^\s",;<>=\\]+'
_PLAIN_VALUE = re.compile(_PLAIN)


class ParseError(ValueError):
    """
    Text or bytes that are not a well-formed SIP message, URI or header value.

    @ivar reason: a short phrase saying what is wrong; the transport uses it as
        the reason phrase of the error response and in its log.
    @ivar status: the response code that answers it: 400 for bad syntax, 413
        for a body over the limit, 513 for a message over the limits, 505 for
        an unsupported SIP version, 416 for an unsupported URI scheme.
    @ivar request: when the error is in a request that can be answered (its
        request line could be split, its Via read, its From, To, Call-ID and
        CSeq are there: see L{message.answerable}), that partially parsed
        request, so that the error can be answered statelessly with
        C{make_response(error.request, error.status, error.reason)}; None
        when there is nothing to answer (the message is dropped).
    @ivar unanswerable: True when the error is in a header that an answer
        would copy (a line of the To too long, say): the parser leaves
        C{request} None.
    """

    unanswerable = False

    def __init__(self, reason, status=400, request=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.request = request


def is_token(text):
    """@return: whether C{text} is a non-empty RFC 3261 token."""
    # str.strip runs in C: it leaves something only if a character is
    # outside the token set.
    return bool(text) and not text.strip(TOKEN_CHARS)


_REFUSE = object()


def parse_int(text, name, limit, over_limit=_REFUSE):
    """
    @return: C{text} (1*DIGIT, leading zeros allowed) as an int; a value
        over C{limit} gives C{over_limit} when one is given.
    @raise ParseError: naming C{name} when C{text} is not digits or the
        value is over C{limit} (at most 2**32 - 1) and no C{over_limit} is
        given.
    """
    text = text.strip(WHITESPACE)
    # isdigit alone would accept non-ASCII digits; the length check keeps
    # int() away from huge strings.
    if not (text.isascii() and text.isdigit()):
        raise ParseError(f"Bad {name}")
    if len(text) > 10 and len(text.lstrip("0")) > 10 or int(text) > limit:
        if over_limit is _REFUSE:
            raise ParseError(f"Bad {name}")
        return over_limit
    return int(text)


def parse_port(digits, name="port"):
    """
    @param digits: 1 to 5 ASCII digits, as a regular expression matched
        them: what L{parse_int} would check is known already.
    @return: C{digits} as a port number.
    @raise ParseError: naming C{name} when over 65535, as L{parse_int}.
    """
    port = int(digits)
    if port > 65535:
        raise ParseError(f"Bad {name}")
    return port


def quote(text):
    """@return: C{text} as a quoted-string, with C{"} and C{\\} escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_quoted(text, start):
    """
    Read the quoted-string that opens at C{text[start]} (a C{"}).

    @return: (its content with quoted-pairs resolved, the index just past
        the closing quote).
    @raise ParseError: when the string is not terminated.
    """
    pieces = []
    pos = start + 1
    while True:
        quote_at = text.find('"', pos)
        if quote_at < 0:
            raise ParseError("Unterminated quoted string")
        backslash_at = text.find("\\", pos, quote_at)
        if backslash_at < 0:
            pieces.append(text[pos:quote_at])
            return "".join(pieces), quote_at + 1
        if backslash_at + 1 >= len(text):
            raise ParseError("Unterminated quoted string")
        pieces.append(text[pos:backslash_at])
        pieces.append(text[backslash_at + 1])
        pos = backslash_at + 2


def skip_whitespace(text, pos):
    """@return: the index of the first character at or after C{pos} that is not SP or HT."""
    length = len(text)
    while pos < length and text[pos] in WHITESPACE:
        pos += 1
    return pos


def split_list(text):
    """
    Split a list header value at its top-level commas: commas inside quoted
    strings and inside C{<...>} do not separate values.

    @return: the stripped values; an empty C{text} is an empty list.
    @raise ParseError: for an empty element (C{a,,b}) or an unterminated
        quoted string.
    """
    if "," not in text:
        text = text.strip(WHITESPACE)
        return [text] if text else []
    if '"' not in text and "<" not in text:
        values = [value.strip(WHITESPACE) for value in text.split(",")]
    else:
        values = _split_outside_quotes_and_brackets(text)
    if "" in values:
        raise ParseError("Empty element in a list")
    return values


def _split_outside_quotes_and_brackets(text):
    values = []
    start = pos = 0
    in_brackets = False
    length = len(text)
    while pos < length:
        char = text[pos]
        if char == '"' and not in_brackets:
            pos = read_quoted(text, pos)[1]
            continue
        if char == "<":
            in_brackets = True
        elif char == ">":
            in_brackets = False
        elif char == "," and not in_brackets:
            values.append(text[start:pos].strip(WHITESPACE))
            start = pos + 1
        pos += 1
    values.append(text[start:].strip(WHITESPACE))
    return values


class Params(MutableMapping):
    """
    The parameters of a URI or header value: an ordered mapping of name to
    value, C{None} for a flag parameter (C{;lr}).

    Lookups ignore case (C{params["Tag"]} finds C{;tag=...}), as RFC 3261
    makes parameter names case-insensitive; serialization keeps the spelling
    and order they were received or set with.  Values are kept as received
    (a URI parameter keeps its %-escapes); a value received as a quoted
    string is kept without its quotes and quoted again when serialized.
    """

    __slots__ = ("_items", "_keys")

    def __init__(self, items=(), **named):
        #: (name, value, quoted) triples, in order, and (in C{_keys}) their
        #: names in lower case: a lookup lowers the name it is given once
        #: and lets C{index} search.  Both are tuples as parsed, and lists
        #: from the first change on: most parameters are only ever read,
        #: an empty tuple costs nothing, a copy shares them, and the garbage
        #: collector stops tracking tuples of strings.
        self._items = self._keys = ()
        if items or named:
            for name, value in (items.items() if hasattr(items, "items") else items):
                self[name] = value
            for name, value in named.items():
                self[name] = value

    @classmethod
    def _of(cls, items, keys):
        """@return: the parameters of C{items} and C{keys} (see C{__init__}),
        made without C{__init__}: every parsed URI and header value has them."""
        params = cls.__new__(cls)
        params._items = items
        params._keys = keys
        return params

    @classmethod
    def from_validated(cls, text):
        """
        The parameters of C{text} (C{;name=value;flag}, no white space, no
        quoted string, or nothing), which the caller has checked against its
        grammar, e.g. with L{COMPACT_PARAMS}.
        """
        if not text:
            return cls._of((), ())
        items = []
        keys = []
        for piece in text[1:].split(";"):
            name, equals, value = piece.partition("=")
            items.append((name, value if equals else None, False))
            keys.append(name.lower())
        return cls._of(tuple(items), tuple(keys))

    def copy(self):
        """@return: an independent copy, spelling and quoting kept."""
        return Params._of(tuple(self._items), tuple(self._keys))

    def _writable(self):
        """@return: C{_items} as a list, C{_keys} one too, before a change."""
        if type(self._items) is tuple:
            self._items = list(self._items)
            self._keys = list(self._keys)
        return self._items

    def _index(self, name):
        """@return: the index of the first parameter named C{name} in any case, or -1."""
        lowered = name.lower()
        keys = self._keys
        return keys.index(lowered) if lowered in keys else -1

    def __getitem__(self, name):
        index = self._index(name)
        if index < 0:
            raise KeyError(name)
        return self._items[index][1]

    def get(self, name, default=None):
        # Mapping.get goes through __getitem__ and KeyError: this is the
        # hot path of .tag, .branch, .rport..., hence _index inlined.
        lowered = name.lower()
        keys = self._keys
        return self._items[keys.index(lowered)][1] if lowered in keys else default

    def __setitem__(self, name, value):
        """Replace the value in place (keeping spelling and quoting), or append."""
        index = self._index(name)
        items = self._writable()
        if index >= 0:
            spelling, _, quoted = items[index]
            items[index] = (spelling, value, quoted or _needs_quotes(value))
        else:
            items.append((name, value, _needs_quotes(value)))
            self._keys.append(name.lower())

    def set(self, name, value, quoted):
        """Set C{name}, choosing whether its value is serialized as a quoted string."""
        self[name] = value
        index = self._index(name)
        self._items[index] = (self._items[index][0], value, quoted)

    def is_quoted(self, name):
        """@return: whether the value of C{name} is serialized as a quoted string."""
        index = self._index(name)
        return index >= 0 and self._items[index][2]

    def __delitem__(self, name):
        index = self._index(name)
        if index < 0:
            raise KeyError(name)
        del self._writable()[index]
        del self._keys[index]

    def __iter__(self):
        return (item[0] for item in self._items)

    def count(self, name):
        """@return: how many parameters are named C{name}, in any case."""
        return self._keys.count(name.lower())

    def __len__(self):
        return len(self._items)

    def __contains__(self, name):
        return self._index(name) >= 0

    def serialize(self, separator=";", leading=True):
        """
        @param separator: what goes before each parameter (C{","} for
            authentication parameters).
        @param leading: whether the first parameter gets a separator too.
        """
        pieces = []
        for name, value, quoted in self._items:
            if value is None:
                pieces.append(name)
            elif quoted:
                pieces.append(name + "=" + quote(value))
            else:
                pieces.append(name + "=" + value)
        text = separator.join(pieces)
        return separator + text if leading and pieces else text

    def __str__(self):
        return self.serialize()

    def __repr__(self):
        return f"Params({dict(self.items())!r})"


def _needs_quotes(value):
    # Letters and digits never need quotes: that spares the expression
    # most values set in code (ports, tags, branches are often alphanumeric).
    return value is not None and not value.isalnum() and _PLAIN_VALUE.fullmatch(value) is None


def _param_grammar(separator):
    """
    @return: (an expression matching a whole parameter list, one matching a
        parameter): a separator, a token name, and optionally C{=} and a
        quoted string or a plain value, white space allowed around each.
        Only the white space before a separator is matched, once, and each
        character class excludes what ends its part: neither expression
        backtracks more than linearly.
    """
    one = (rf'[ \t]*{separator}[ \t]*({TOKEN})'
           rf'(?:[ \t]*(=)[ \t]*(?:"((?:[^"\\]|\\.)*)"|({_PLAIN})))?')
    return re.compile(rf"(?:{one})*[ \t]*", re.S), re.compile(one, re.S)


_PARAM_GRAMMARS = {";": _param_grammar(";"), ",": _param_grammar(",")}
#: The usual parameters, as a regular expression: no white space, no quoted
#: string.  What it matches, L{Params.from_validated} reads; the fast paths
#: of the header parsers embed it to match a whole value in one go.
COMPACT_PARAMS = rf"(?:;{TOKEN}(?:={_PLAIN})?)*"
_COMPACT_PARAMS = re.compile(COMPACT_PARAMS)
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)


def parse_params(text, separator=";", leading=True):
    """
    Parse generic parameters (C{;name=value;flag}) as they follow a header
    value, with optional white space around the separators and C{=}.

    @param separator: C{";"} for header parameters, C{","} for
        authentication parameters.
    @param leading: whether the first parameter is preceded by a separator.
    @raise ParseError: for an empty parameter (C{;;}), a name that is not a
        token, an empty value or a value that is neither a token, a host nor a
        quoted string.
    """
    if not text.strip(WHITESPACE):
        return Params()
    if not leading:
        text = separator + text
    if separator == ";" and _COMPACT_PARAMS.fullmatch(text):
        return Params.from_validated(text)
    whole, one = _PARAM_GRAMMARS[separator]
    if whole.fullmatch(text) is None:
        raise ParseError("Bad parameters")
    items = [
        (name, None, False) if not equals
        else (name, plain, False) if plain
        else (name, _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted, True)
        for name, equals, quoted, plain in one.findall(text)]
    return Params._of(tuple(items), tuple([item[0].lower() for item in items]))
