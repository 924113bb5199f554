"""
The resource list server's C{twistd slee} options (config file keys of the
same names), set on the environment of its SBB C{ResourceListNotifierSbb}
in the unit C{rls}: C{--rls-outbound-proxy URI}, C{--rls-notify-interval
SECONDS}, C{--rls-max-list-size N}, C{--rls-request-contained-lists
yes|no} and C{--rls-local-domain DOMAIN} (repeatable).  Each value is
checked here, and again by the SBB's environment when the unit is
deployed.
"""

from slee.resources import SbbEnvOption
from slee.settings import check_number, check_switch

SBB = "ResourceListNotifierSbb"


def _sip_uri(value):
    if not isinstance(value, str) or not value.startswith(("sip:", "sips:")) or \
            any(c in value for c in " <>\r\n"):
        raise ValueError(f"expected a SIP URI such as sip:proxy.example.com:5060, not {value!r}")
    return value


def _domain(value):
    if not isinstance(value, str) or not value or any(c in value for c in " /@;:<>"):
        raise ValueError(f"expected a domain name (or *), not {value!r}")
    return value.lower()


OUTBOUND_PROXY_OPTION = SbbEnvOption(
    "rls-outbound-proxy", SBB, "outbound-proxy", check=_sip_uri, metavar="URI",
    doc="URI: the SIP proxy the resource list server's back-end SUBSCRIBEs to members on "
        "other servers go through (a loose Route). [default: none: to each member's host]")
NOTIFY_INTERVAL_OPTION = SbbEnvOption(
    "rls-notify-interval", SBB, "notify-interval", check=check_number(0.001, 3600, float),
    metavar="SECONDS",
    doc="SECONDS: the least time between two NOTIFYs of one list subscription; changes "
        "meanwhile go together in the next. [default: 1.0]")
MAX_LIST_SIZE_OPTION = SbbEnvOption(
    "rls-max-list-size", SBB, "max-list-size", check=check_number(1, 100000, int), metavar="N",
    doc="N: the most members of one list (a larger one is refused with 403). [default: 1000]")
REQUEST_CONTAINED_LISTS_OPTION = SbbEnvOption(
    "rls-request-contained-lists", SBB, "request-contained-lists", check=check_switch,
    metavar="yes|no",
    doc="yes|no: serve lists a SUBSCRIBE carries (RFC 5367); no: such SUBSCRIBEs get 420. "
        "[default: yes]")
LOCAL_DOMAIN_OPTION = SbbEnvOption(
    "rls-local-domain", SBB, "local-domains", check=_domain, repeatable=True,
    metavar="DOMAIN",
    doc="DOMAIN (repeatable): a domain whose members this container's presence server "
        "serves, subscribed to without SIP; members of other domains are subscribed to "
        "over SIP; * for every domain. Without the presence server in the container (the "
        "profile rls) every member is subscribed to over SIP. [default: *]")
