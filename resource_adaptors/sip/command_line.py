"""
The SIP RA's C{twistd slee} options, offered through the C{slee.ra_options}
entry point group (see L{slee.resources.RaOption}) for the RA entity named
C{sip}; in a config file each is the key of the same name:

- C{--sip ENDPOINT}, repeatable: the C{endpoints} property;
- C{--sip-auth MODE}: C{auth}, who requests come from
  (L{resource_adaptors.sip.authentication});
- C{--sip-trusted-peer ADDRESS}, repeatable: C{trusted-peers};
- C{--sip-proxy-auth yes|no}: C{proxy-auth};
- C{--sip-client-user NAME}, C{--sip-client-password SECRET}:
  C{client-username}, C{client-password}, the account our own requests
  answer Digest challenges with;
- C{--sip-max-queue-delay SECONDS}: C{max-queue-delay}, how late an answer
  may come before new requests are shed (L{resource_adaptors.sip.admission}).

The user store, C{users}, is set by C{--users}, the XCAP server's option
(L{resource_adaptors.xcap.command_line}): one store for both.
"""

from slee.resources import RaOption
from slee.settings import check_number, check_switch

from resource_adaptors.auth.users import ALGORITHMS
from resource_adaptors.sip.authentication import MODES, trusted_network
from resource_adaptors.sip.core.listen import parse_listen_description

DEFAULT_ENDPOINTS = ("udp:5060", "tcp:5060")


def check_endpoint(value):
    """
    @return: C{value}, a SIP listening endpoint description.
    @raise ValueError: naming what is wrong with it.
    """
    if not isinstance(value, str):
        raise ValueError(f"expected an endpoint string such as udp:5060, not {value!r}")
    parse_listen_description(value)
    return value


SIP_OPTION = RaOption(
    "sip", entity="sip", property="endpoints", check=check_endpoint, repeatable=True,
    metavar="ENDPOINT",
    doc="ENDPOINT: where the SIP RA listens: udp:PORT, tcp:PORT, "
        "tls:PORT:privateKey=KEY.pem:certKey=CERT.pem, ws:PORT, wss:PORT:privateKey=..:certKey=.. "
        "(each may add :interface=ADDRESS). Repeatable. "
        f"[default: {' '.join(DEFAULT_ENDPOINTS)}]")


def check_auth(value):
    """@return: C{value}, one of L{MODES}."""
    if value not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}, not {value!r}")
    return value


def check_trusted_peer(value):
    """@return: C{value}, an IP address or network (L{trusted_network})."""
    if not isinstance(value, str):
        raise ValueError(f"expected an IP address such as 192.0.2.7, not {value!r}")
    trusted_network(value)
    return value


SIP_AUTH_OPTION = RaOption(
    "sip-auth", entity="sip", property="auth", check=check_auth, metavar="MODE",
    doc="MODE: who SIP requests come from: digest (SIP Digest, SHA-256 or MD5, against "
        "--users; 401 challenges), trust-localhost (development only: requests from "
        "127.0.0.1 and ::1 are taken from their From, as an administrator; others get 403) "
        "or none (every request is taken from its From). OPTIONS, ACK and CANCEL pass. "
        "[default: digest with --users, else trust-localhost]")

SIP_TRUSTED_PEER_OPTION = RaOption(
    "sip-trusted-peer", entity="sip", property="trusted-peers", check=check_trusted_peer,
    repeatable=True, metavar="ADDRESS",
    doc="ADDRESS: a peer (an IP address or network: a proxy or CSCF in front, which "
        "authenticates users itself) whose P-Asserted-Identity names who a request comes "
        "from; from anyone else that header is removed. Repeatable. [default: none]")

def check_algorithm(value):
    """@return: C{value}, a Digest algorithm the stack knows, in capitals."""
    if not isinstance(value, str) or value.upper() not in ALGORITHMS:
        raise ValueError(f"expected one of {', '.join(ALGORITHMS)}, not {value!r}")
    return value.upper()


SIP_DIGEST_ALGORITHM_OPTION = RaOption(
    "sip-digest-algorithm", entity="sip", property="digest-algorithms",
    check=check_algorithm, repeatable=True, metavar="ALGORITHM",
    doc="ALGORITHM: a Digest algorithm SIP challenges offer (SHA-256, MD5), in the order "
        "given. Repeatable. Clients that read only the first challenge and do not know "
        "SHA-256 (baresip 1.0) need MD5 alone. [default: SHA-256, then MD5]")

SIP_PROXY_AUTH_OPTION = RaOption(
    "sip-proxy-auth", entity="sip", property="proxy-auth", check=check_switch,
    metavar="yes|no",
    doc="yes|no: challenge as a proxy does (407, Proxy-Authenticate) rather than 401. "
        "[default: no]")

def check_text(value):
    """@return: C{value}, text (a config file could give a number or a list)."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, not {value!r}")
    return value


SIP_CLIENT_USER_OPTION = RaOption(
    "sip-client-user", entity="sip", property="client-username", check=check_text, metavar="NAME",
    doc="NAME: the Digest account this server's own SIP requests (the list server's "
        "subscriptions to remote members, the presence server's to a remote XDMS) answer "
        "401 and 407 challenges with, in any realm. [default: none: challenges are answers]")

SIP_CLIENT_PASSWORD_OPTION = RaOption(
    "sip-client-password", entity="sip", property="client-password", check=check_text,
    metavar="SECRET", doc="SECRET: that account's password. [default: none]")

SIP_MAX_QUEUE_DELAY_OPTION = RaOption(
    "sip-max-queue-delay", entity="sip", property="max-queue-delay",
    check=check_number(0.001, 60, float), metavar="SECONDS",
    doc="SECONDS: how late the answer to a new SIP request may come (its wait in the UDP "
        "socket's buffer and in the container's queue) before new requests are refused with "
        "503 and Retry-After; requests within dialogs and PUBLISH refreshes pass until four "
        "times that. [default: 0.25]")
