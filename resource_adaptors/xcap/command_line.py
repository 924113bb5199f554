"""
The XCAP RA's C{twistd slee} options, set on the RA entity named C{xcap}
(config file keys of the same names): C{--xcap ENDPOINT}, C{--xcap-root
PATH}, C{--xcap-auth MODE} and C{--users FILE}.
"""

import os

from resource_adaptors.auth.users import UserStore
from slee.errors import ConfigurationError
from slee.resources import RaOption
from slee.settings import check_server_endpoint

AUTH_MODES = ("digest", "trust-localhost")


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


def check_auth(value):
    """@return: C{value}, one of L{AUTH_MODES}."""
    if value not in AUTH_MODES:
        raise ValueError(f"expected one of {', '.join(AUTH_MODES)}, not {value!r}")
    return value


def check_users(value):
    """@return: the absolute path of a user store file that loads (checked now)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected the path of a user store file, not {value!r}")
    path = os.path.abspath(value)
    try:
        UserStore.load(path)
    except ConfigurationError as error:
        raise ValueError(str(error)) from None
    return path


XCAP_AUTH_OPTION = RaOption(
    "xcap-auth", entity="xcap", property="auth", check=check_auth, metavar="MODE",
    doc="MODE: how XCAP clients are authenticated: digest (HTTP Digest, SHA-256 or MD5, "
        "against --users) or trust-localhost (development only: requests from 127.0.0.1 and "
        "::1 act as an administrator, others are refused). [default: digest]")

USERS_OPTION = RaOption(
    "users", entity="xcap", property="users", check=check_users, metavar="FILE",
    doc="FILE: the user store (TOML: realm, then [users.NAME] with password or ha1-md5 / "
        "ha1-sha256, xui, admin). [default: none: every XCAP request is refused]")
