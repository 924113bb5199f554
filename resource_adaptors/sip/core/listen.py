"""
Listening descriptions: the C{--sip} option's values and the C{endpoints}
property (C{udp:5060}, C{tls:5061:privateKey=key.pem}...), checked before
anything listens, so that a mistake is reported with the option at start,
not as a failure to listen later.
"""

import ipaddress
from dataclasses import dataclass

from resource_adaptors.sip.core.routing import SECURE_TRANSPORTS, TRANSPORTS

@dataclass(frozen=True)
class ListenDescription:
    """
    A checked listening description.  C{host}, when given, is the name or
    address to advertise in Via and Contact instead of the interface (needed
    behind NAT); on all interfaces, the machine's primary address is
    advertised unless it is given (see
    L{resource_adaptors.sip.transports.advertised_host}).
    """

    transport: str
    port: int
    interface: str = ""
    private_key: str | None = None
    cert_key: str | None = None
    host: str | None = None

    @property
    def endpoint(self):
        """The Twisted server endpoint string for a stream transport."""
        fields = ["ssl" if self.transport in SECURE_TRANSPORTS else "tcp", str(self.port)]
        if self.interface:
            fields.append("interface=" + _escape(self.interface))
        if self.transport in SECURE_TRANSPORTS:
            fields.append("privateKey=" + _escape(self.private_key))
            fields.append("certKey=" + _escape(self.cert_key or self.private_key))
        return ":".join(fields)


_OPTIONS = {"interface": "interface", "privateKey": "private_key", "certKey": "cert_key",
            "host": "host"}


def parse_listen_description(text):
    """
    Check a listening description and return its L{ListenDescription}.

    The form is Twisted's endpoint syntax, C{transport:port[:key=value]...}
    with C{\\:} for a colon inside a value: C{udp:5060},
    C{tcp:0:interface=127.0.0.1},
    C{tls:5061:privateKey=key.pem:certKey=cert.pem}, C{ws:8088},
    C{wss:8089:privateKey=key.pem}.  Options: C{interface} (an IP address),
    C{privateKey} and C{certKey} (PEM files; tls and wss only, privateKey
    required there, certKey defaults to it), C{host} (what to advertise).

    Raises C{ValueError} saying what is wrong; files are not looked at.
    """
    fields = _split_fields(text)
    transport = fields[0].lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"{text!r}: the transport must be one of {', '.join(TRANSPORTS)}, "
                         f"not {fields[0]!r}")
    if len(fields) < 2 or "=" in fields[1]:
        raise ValueError(f"{text!r}: expected a port number after {transport}:")
    port = _port(text, fields[1])
    for option in fields[2:]:
        if "=" not in option:
            raise ValueError(f"{text!r}: expected key=value, not {option!r} (a colon inside "
                             "a value is written \\:, as in interface=\\:\\:1)")
    options = {}
    for option in fields[2:]:
        key, value = option.split("=", 1)
        if key not in _OPTIONS:
            raise ValueError(f"{text!r}: unknown option {key!r} "
                             f"(known: {', '.join(_OPTIONS)})")
        if _OPTIONS[key] in options:
            raise ValueError(f"{text!r}: option {key!r} given twice")
        if not value:
            raise ValueError(f"{text!r}: option {key!r} needs a value")
        options[_OPTIONS[key]] = value
    if "interface" in options:
        _check_address(text, options["interface"])
    secure = transport in SECURE_TRANSPORTS
    if secure and "private_key" not in options:
        raise ValueError(f"{text!r}: {transport} needs privateKey=<PEM file>")
    if not secure and ({"private_key", "cert_key"} & options.keys()):
        raise ValueError(f"{text!r}: privateKey and certKey are for tls and wss only")
    return ListenDescription(transport, port, **options)


def _split_fields(text):
    """Split on colons, as Twisted does: a backslash escapes the next character."""
    fields, current, chars = [], [], iter(text)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _escape(value):
    return value.replace("\\", "\\\\").replace(":", "\\:")


def _port(text, value):
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535, not {value!r}")
    return int(value)


def _check_address(text, value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"{text!r}: interface must be an IP address, not {value!r}") from None
