"""
The XCAP RAs' C{twistd slee} options, set on the RA entity named C{xcap}
(config file keys of the same names): for the XCAP server, C{--xcap
ENDPOINT}, C{--xcap-root PATH}, C{--xcap-auth MODE} and C{--users FILE}
(which sets the SIP RA's user store too);
for the XCAP client of a remote XDMS (the profile presence-server),
C{--xdms-url URL}, C{--xdms-user NAME}, C{--xdms-password SECRET},
C{--xdms-sip-uri URI} and C{--sip-identity URI}.
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

#: One user store for the XCAP server and the SIP RA: the same users log in
#: to both, and the SIP RA's default mode is digest once there is one.
USERS_OPTION = RaOption(
    "users", entity=("xcap", "sip"), property="users", check=check_users, metavar="FILE",
    doc="FILE: the user store of the XCAP server and of SIP Digest (TOML: realm, then "
        "[users.NAME] with password or ha1-md5 / ha1-sha256, xui, admin). "
        "[default: none: every XCAP request is refused, and SIP trusts the local host]")


def check_access_log(value):
    """@return: the absolute path of the access log file, or C{""} for none
    (the lines go to the log then)."""
    if not isinstance(value, str):
        raise ValueError(f"expected the path of a file, not {value!r}")
    return os.path.abspath(value) if value else ""


ACCESS_LOG_OPTION = RaOption(
    "xcap-access-log", entity="xcap", property="access-log", check=check_access_log,
    metavar="FILE",
    doc="FILE: where the XCAP server appends a line per request (combined log style: "
        "client, user, time, request line, status, bytes, seconds). "
        "[default: the log, at info, logger resource_adaptors.xcap.access]")


def _checked_by(problem):
    """An option check made of a property check, which returns what is wrong, or None."""
    def check(value):
        if not isinstance(value, str):
            raise ValueError(f"expected text, not {value!r}")
        message = problem(value)
        if message:
            raise ValueError(message)
        return value
    return check


def _remote_option(name, property, metavar, doc):
    from resource_adaptors.xcap import remote
    checks = {"xcap-root-url": remote.check_root_url, "username": remote.check_username,
              "password": lambda value: None, "xcap-diff-uri": remote.check_sip_uri,
              "sip-identity": remote.check_sip_uri}
    return RaOption(name, entity="xcap", property=property,
                    check=_checked_by(checks[property]), metavar=metavar, doc=doc)


XDMS_URL_OPTION = _remote_option(
    "xdms-url", "xcap-root-url", "URL",
    "URL: the XCAP root of the remote XDMS (profile presence-server). "
    "[default: http://127.0.0.1:8080/xcap-root]")
XDMS_USER_OPTION = _remote_option(
    "xdms-user", "username", "NAME",
    "NAME: the Digest account of the presence server on the remote XDMS (an administrator "
    "there). [default: none]")
XDMS_PASSWORD_OPTION = _remote_option(
    "xdms-password", "password", "SECRET", "SECRET: that account's password. [default: none]")
XDMS_SIP_URI_OPTION = _remote_option(
    "xdms-sip-uri", "xcap-diff-uri", "URI",
    "URI: the SIP URI of the remote XDMS's xcap-diff notifier, to watch its documents. "
    "[default: none: nothing is watched]")
SIP_IDENTITY_OPTION = _remote_option(
    "sip-identity", "sip-identity", "URI",
    "URI: the SIP URI the presence server's xcap-diff subscriptions come from (an "
    "administrator's XUI on the remote XDMS). [default: sip:presence@localhost]")
