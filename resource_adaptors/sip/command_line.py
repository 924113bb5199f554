"""
The SIP RA's C{twistd slee} option: C{--sip ENDPOINT}, repeatable.

It is offered through the C{slee.ra_options} entry point group (see
L{slee.resources.RaOption}) and sets the C{endpoints} property of the RA
entity named C{sip}; in a config file it is the key C{sip}, a string or a
list of strings.
"""

from slee.resources import RaOption

from resource_adaptors.sip.transport import parse_listen_description

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
