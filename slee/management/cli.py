"""
C{slee}: manage a running container through its management API.

    slee [--admin URL] [--var DIR] [--token TOKEN] [--json] COMMAND ...

The global options may also follow the command.  The token is read from
C{DIR/admin.token} (the container creates it at start) unless C{--token}
gives it.  Errors are one line on stderr, C{slee: <message>}; the exit
code is 0 on success, 1 when the container cannot be reached or refuses
the operation, 2 for a usage error.

Only the standard library is used: this runs anywhere Python does.
"""

import argparse
import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request

from slee.management.formatting import (
    format_activities, format_alarms, format_ra_entities, format_sbb_entities, format_services,
    format_status, format_trace, format_unit, format_units, format_usage)
from slee.management.token import read_token, token_path

DEFAULT_ADMIN = "http://127.0.0.1:8787"
ADMIN_URL_FILE = "admin.url"
DEFAULT_VAR = "./var"
DEFAULT_TIMEOUT = 120.0


class CliError(Exception):
    """A failure to report as C{slee: <message>}, exiting with C{code}."""

    code = 1

    def __init__(self, message, code=None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class UsageError(CliError):
    """The command line is wrong (exit code 2)."""

    code = 2


# -- talking to the container ------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # Never follow a redirect: it would carry the token elsewhere.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _reason(exc):
    """
    Say in a few words why a connection failed.
    """
    if isinstance(exc, str):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the connection closed without an answer"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP answer ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def decode_answer(status, raw, url):
    """
    Turn an HTTP answer of the management API into data, or raise
    L{CliError} with the message to show.
    """
    try:
        data = json.loads(raw)
    except ValueError:
        if 200 <= status < 300:
            raise CliError(
                f"unexpected answer from {url}: not JSON "
                f"(is that a slee container?)"
            )
        raise CliError(f"HTTP {status} from {url}")
    if 200 <= status < 300:
        return data
    message = data.get("error") if isinstance(data, dict) else None
    if not isinstance(message, str) or not message:
        message = f"HTTP {status}"
    if status == 401:
        raise CliError(f"401 unauthorized: {message}")
    if status >= 500:
        raise CliError(f"server error {status}: {message}")
    raise CliError(message)


class Client:
    """
    A blocking client of the management API.
    """

    def __init__(self, base_url, token, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        # No proxy (the container is local; http_proxy must not see the
        # token) and no redirects.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), _NoRedirect()
        )

    def call(self, method, path, body=None):
        """
        @param path: the route, its variable segments already quoted.
        @return: the decoded JSON answer.
        @raise CliError: the container cannot be reached or answered an
            error.
        """
        url = self.base_url + path
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
            "User-Agent": "slee-cli",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status = e.code
            try:
                raw = e.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                e.close()
        except urllib.error.URLError as e:
            raise CliError(
                f"cannot reach the container at {self.base_url}: {_reason(e.reason)}"
            )
        except (OSError, http.client.HTTPException) as e:
            raise CliError(f"cannot reach the container at {self.base_url}: {_reason(e)}")
        return decode_answer(status, raw, url)


def _q(segment):
    return urllib.parse.quote(segment, safe="")


# -- commands --------------------------------------------------------------------
#
# Each command is a function of the parsed arguments giving
# (method, path, body, formatter); the formatter turns the JSON answer into
# the human output.


def _cmd_status(args):
    return "GET", "/status", None, format_status


def _cmd_deploy(args):
    path = os.path.abspath(os.path.expanduser(args.path))
    return "POST", "/units", {"path": path}, format_unit


def _cmd_undeploy(args):
    return "DELETE", f"/units/{_q(args.name)}", None, (
        lambda data: f"undeployed unit {args.name}"
    )


def _cmd_activate(args):
    return "POST", f"/services/{_q(args.service)}/activate", None, (
        lambda data: f"activated service {args.service}"
    )


def _cmd_deactivate(args):
    return "POST", f"/services/{_q(args.service)}/deactivate", None, (
        lambda data: f"deactivated service {args.service}"
        + (" (stopping: no new initial events; existing SBB entities finish)"
           if data.get("state") == "stopping" else "")
    )


def _cmd_services(args):
    return "GET", "/services", None, format_services


def _cmd_units(args):
    return "GET", "/units", None, format_units


def _cmd_ra_entities(args):
    return "GET", "/ra-entities", None, format_ra_entities


def _cmd_activities(args):
    return "GET", "/activities", None, format_activities


def _cmd_sbb_entities(args):
    return "GET", "/sbb-entities", None, format_sbb_entities


def _cmd_usage(args):
    if args.reset:
        return "POST", "/usage/reset", None, (lambda data: "usage parameters reset")
    return "GET", "/usage", None, format_usage


def _cmd_alarms(args):
    return "GET", "/alarms", None, format_alarms


def _cmd_clear_alarm(args):
    return "DELETE", f"/alarms/{_q(args.id)}", None, (
        lambda data: f"cleared alarm {args.id}"
    )


def _cmd_trace(args):
    if args.component is None:
        return "GET", "/trace", None, format_trace
    if args.level is None:
        raise UsageError("trace takes COMPONENT and LEVEL, or nothing to list the levels")
    body = {"component": args.component, "level": args.level}
    return "PUT", "/trace", body, (
        lambda data: f"trace level of {args.component or '(root)'} set to {args.level}"
    )


FORMATTERS = {
    "status": format_status,
    "deploy": format_unit,
    "services": format_services,
    "units": format_units,
    "ra-entities": format_ra_entities,
    "activities": format_activities,
    "sbb-entities": format_sbb_entities,
    "usage": format_usage,
    "alarms": format_alarms,
    "trace": format_trace,
}


def render(command, data):
    """
    The human output of a listing command for its JSON answer C{data}.
    """
    return FORMATTERS[command](data)


# -- command line ----------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _global_options(parser, defaults):
    def default(value):
        # The sub-command parsers must not overwrite an option given
        # before the command with their own default.
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--admin",
        metavar="URL",
        default=default(None),
        help="the container's management API (default: the URL the running "
        f"container wrote to DIR/admin.url, else {DEFAULT_ADMIN})",
    )
    group.add_argument(
        "--var",
        metavar="DIR",
        default=default(DEFAULT_VAR),
        help="the container's state directory, where admin.token is read "
        f"(default {DEFAULT_VAR})",
    )
    group.add_argument(
        "--token",
        default=default(None),
        help="the admin token (overrides DIR/admin.token)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print the raw JSON answer",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=default(DEFAULT_TIMEOUT),
        help=f"give up after this long (default {DEFAULT_TIMEOUT:g})",
    )


def build_parser():
    parser = _Parser(
        prog="slee",
        description="Manage a running slee container through its management API.",
    )
    _global_options(parser, defaults=True)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", title="commands", parser_class=_Parser
    )
    commands.required = True

    def command(name, func, help, args=()):
        sub = commands.add_parser(name, help=help, description=help)
        for spec, kwargs in args:
            sub.add_argument(spec, **kwargs)
        _global_options(sub, defaults=False)
        sub.set_defaults(func=func)
        return sub

    command("status", _cmd_status, "show the container's state and counts")
    command(
        "deploy",
        _cmd_deploy,
        "deploy a unit (directory, zip or wheel); its services start inactive",
        [("path", {"metavar": "PATH"})],
    )
    command(
        "undeploy",
        _cmd_undeploy,
        "remove a deployed unit whose services are all inactive",
        [("name", {"metavar": "NAME"})],
    )
    command(
        "activate",
        _cmd_activate,
        "activate a service (NAME or NAME:VENDOR:VERSION)",
        [("service", {"metavar": "SERVICE"})],
    )
    command(
        "deactivate",
        _cmd_deactivate,
        "deactivate a service; its SBB entities finish",
        [("service", {"metavar": "SERVICE"})],
    )
    command("services", _cmd_services, "list services")
    command("units", _cmd_units, "list deployed units")
    command("ra-entities", _cmd_ra_entities, "list resource adaptor entities")
    command("activities", _cmd_activities, "list activities")
    command("sbb-entities", _cmd_sbb_entities, "list SBB entities")
    usage = command("usage", _cmd_usage, "show usage parameters")
    usage.add_argument("--reset", action="store_true", help="reset them all to zero")
    command("alarms", _cmd_alarms, "list active alarms")
    command(
        "clear-alarm", _cmd_clear_alarm, "clear an alarm", [("id", {"metavar": "ID"})]
    )
    command(
        "trace",
        _cmd_trace,
        "list trace levels, or set the level of a component",
        [
            ("component", {"metavar": "COMPONENT", "nargs": "?"}),
            ("level", {"metavar": "LEVEL", "nargs": "?"}),
        ],
    )
    return parser


def _admin_url(url):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--admin must be an http:// or https:// URL, not {url!r}")
    if parts.query or parts.fragment:
        raise UsageError(f"--admin must not have a query or fragment: {url!r}")
    return url.rstrip("/")


def _valid_token(token):
    return bool(token) and all(33 <= ord(c) < 127 for c in token)


def _token(args):
    if args.token is not None:
        if not _valid_token(args.token):
            raise UsageError("--token must be printable ASCII without spaces")
        return args.token
    var = os.path.abspath(args.var)
    path = token_path(var)
    try:
        return read_token(var)
    except FileNotFoundError:
        raise CliError(
            f"no token: {path} not found (is the container running with --var {var}?)"
        )
    except PermissionError:
        raise CliError(f"cannot read the token: {path}: permission denied")
    except OSError as e:
        raise CliError(f"cannot read the token: {path}: {_reason(e)}")
    except ValueError as e:
        raise CliError(f"no token: {e}")


def _admin(args):
    """
    The management URL: C{--admin}, else what the container wrote to
    C{DIR/admin.url} when it started listening, else the default.
    """
    if args.admin is not None:
        return args.admin
    try:
        with open(os.path.join(os.path.abspath(args.var), ADMIN_URL_FILE)) as f:
            written = f.read(1024).strip()
    except OSError:
        return DEFAULT_ADMIN
    return written or DEFAULT_ADMIN


def run(args, client=None):
    """
    Run the parsed command; return its output text.
    """
    method, path, body, formatter = args.func(args)
    if client is None:
        if not args.timeout > 0:
            raise UsageError("--timeout must be a positive number of seconds")
        client = Client(_admin_url(_admin(args)), _token(args), args.timeout)
    data = client.call(method, path, body)
    if args.json:
        return json.dumps(data, indent=2, ensure_ascii=False)
    return formatter(data)


def main(argv=None):
    """
    The C{slee} console script.

    @return: the exit code.
    """
    try:
        args = build_parser().parse_args(argv)
        output = run(args)
    except CliError as e:
        print(f"slee: {e.message}", file=sys.stderr)
        return e.code
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except KeyboardInterrupt:
        print("slee: interrupted", file=sys.stderr)
        return 130
    if output:
        print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
