"""
The XCAP RA's C{twistd slee} options: C{--xcap ENDPOINT} and C{--xcap-root
PATH}, set on the RA entity named C{xcap} (config file keys C{xcap} and
C{xcap-root}).
"""

from slee.resources import RaOption
from slee.settings import check_server_endpoint


def check_endpoint(value):
    """@return: C{value}, a Twisted server endpoint description (C{tcp:8080})."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a server endpoint such as tcp:8080, not {value!r}")
    return check_server_endpoint(value.strip())


def check_root(value):
    """@return: C{value}, the absolute path of the XCAP root."""
    if not isinstance(value, str) or not value.startswith("/") or any(c in value for c in "?#%"):
        raise ValueError(f"expected an absolute path such as /xcap-root, not {value!r}")
    return value


XCAP_OPTION = RaOption(
    "xcap", entity="xcap", property="endpoint", check=check_endpoint, metavar="ENDPOINT",
    doc="ENDPOINT: where the XCAP server listens (a Twisted server endpoint: tcp:PORT, "
        "ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem, each with :interface=ADDRESS). "
        "[default: tcp:8080]")

XCAP_ROOT_OPTION = RaOption(
    "xcap-root", entity="xcap", property="root", check=check_root, metavar="PATH",
    doc="PATH: the XCAP root, the path under which every XCAP URI lies. [default: /xcap-root]")
