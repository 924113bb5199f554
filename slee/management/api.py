"""
The management HTTP JSON API, served by twisted.web on 127.0.0.1.

Every request must carry C{Authorization: Bearer <token>}, the token being
the one in C{<var>/admin.token} (see L{slee.management.token}); without it
the answer is 401 with C{WWW-Authenticate: Bearer}.  Bodies, where a route
takes one, are JSON objects of at most 64 KiB; every answer is JSON.

Routes (C{<id>} and C{<name>} are percent-encoded path segments: a service
id such as C{presence:org.example:1.0} may be sent as is or as
C{presence%3Aorg.example%3A1.0})::

    GET     /status                    status()
    GET     /units                     units()
    POST    /units                     deploy(path)     body {"path": "/abs/path"}
    DELETE  /units/<name>              undeploy(name)   -> {"undeployed": name}
    GET     /services                  services()
    POST    /services/<id>/activate    activate(id)     -> {"activated": id}
    POST    /services/<id>/deactivate  deactivate(id)   -> {"deactivated": id}
    GET     /ra-entities               ra_entities()
    GET     /activities                activities()
    GET     /sbb-entities              sbb_entities()
    GET     /usage                     usage()
    POST    /usage/reset               reset_usage()    -> {"reset": true}
    GET     /alarms                    alarms()
    DELETE  /alarms/<id>               clear_alarm(id)  -> {"cleared": id}
    GET     /trace                     trace_levels()
    PUT     /trace                     set_trace_level  body {"component": ..., "level": ...}
                                                        -> {"component": ..., "level": ...}

HEAD is accepted wherever GET is.  Answers:

    - 200 and the JSON of what the L{IContainerManagement} method returned
      (or the small object shown above for operations that return nothing);
    - 400 C{{"error": "<message>"}} when the operation raises
      L{ManagementError}, L{DeploymentError} or L{ConfigurationError}; such an
      error may carry an C{http_status} attribute (404 for "no such ...",
      409 for a conflict) to choose another 4xx code;
    - 400 for a body that is not a JSON object or lacks a field; 401 without
      a valid token; 404 for an unknown route; 405 (with C{Allow}) for a
      method the route does not take; 413 for a body over 64 KiB;
    - 500 C{{"error": "internal error; see the container log"}} for anything
      else, logged with its traceback (the client never sees it).

The L{IContainerManagement} methods may return plain data or a L{Deferred}
of it.
"""

import hmac
import inspect
import io
import json
import os.path

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from slee.errors import ConfigurationError, DeploymentError, ManagementError
from slee.trace import log_observer

__all__ = ["MAX_BODY", "ManagementResource", "make_site"]

MAX_BODY = 64 * 1024

_CLIENT_ERRORS = (ManagementError, DeploymentError, ConfigurationError)

log = Logger(namespace="slee.management.api", observer=log_observer)


class _HTTPError(Exception):
    """
    Answer the request with C{code} and C{{"error": message}}.
    """

    def __init__(self, code, message, headers=()):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = list(headers)


class _LimitedRequest(server.Request):
    """
    A request that keeps at most L{MAX_BODY} bytes of body in memory and
    discards the rest, noting that the body was too large (413).
    """

    bodyTooLarge = False
    _received = 0

    def gotLength(self, length):
        self.content = io.BytesIO()
        if length is not None and length > MAX_BODY:
            self.bodyTooLarge = True

    def handleContentChunk(self, data):
        self._received += len(data)
        if self._received > MAX_BODY:
            self.bodyTooLarge = True
        if not self.bodyTooLarge:
            self.content.write(data)


class _Route:
    def __init__(self, method, template, handler, body=False):
        self.method = method
        self.template = template
        # None marks a variable segment such as {name}.
        self.pattern = tuple(
            None if seg.startswith("{") else seg for seg in template.strip("/").split("/")
        )
        self.handler = handler
        self.body = body

    def match(self, segments):
        """
        @return: the list of variable segments if C{segments} fits, else
            L{None}.
        """
        if len(segments) != len(self.pattern):
            return None
        args = []
        for want, got in zip(self.pattern, segments):
            if want is None:
                if not got:
                    return None
                args.append(got)
            elif want != got:
                return None
        return args


async def _result(value):
    """
    Await C{value} if it is a L{Deferred} (from the backend) or a coroutine
    (from a route method).
    """
    if inspect.isawaitable(value):
        value = await value
    return value


def _with_state(answer, result):
    """Add the service state the container reported, if it did."""
    if isinstance(result, dict) and "state" in result:
        answer["state"] = result["state"]
    return answer


def _string_field(body, name, absolute_path=False):
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _HTTPError(400, f"the body needs {name!r}: a non-empty string")
    if absolute_path and not os.path.isabs(value):
        raise _HTTPError(400, f"{name!r} must be an absolute path: {value!r}")
    return value


class ManagementResource(Resource):
    """
    The whole API as one leaf resource with a route table: every route
    shares the token check, the body limit and the error mapping.
    """

    isLeaf = True

    def __init__(self, management, token):
        super().__init__()
        if not token:
            raise ValueError("the admin token must not be empty")
        self._management = management
        self._token = token.encode("ascii")
        m = management
        self._routes = [
            _Route("GET", "/status", m.status),
            _Route("GET", "/units", m.units),
            _Route("POST", "/units", self._deploy, body=True),
            _Route("DELETE", "/units/{name}", self._undeploy),
            _Route("GET", "/services", m.services),
            _Route("POST", "/services/{id}/activate", self._activate),
            _Route("POST", "/services/{id}/deactivate", self._deactivate),
            _Route("GET", "/ra-entities", m.ra_entities),
            _Route("GET", "/activities", m.activities),
            _Route("GET", "/sbb-entities", m.sbb_entities),
            _Route("GET", "/usage", m.usage),
            _Route("POST", "/usage/reset", self._reset_usage),
            _Route("GET", "/alarms", m.alarms),
            _Route("DELETE", "/alarms/{id}", self._clear_alarm),
            _Route("GET", "/trace", m.trace_levels),
            _Route("PUT", "/trace", self._set_trace_level, body=True),
        ]

    # -- operations that need more than a plain call ------------------------

    async def _deploy(self, body):
        path = _string_field(body, "path", absolute_path=True)
        return await _result(self._management.deploy(path))

    async def _undeploy(self, name):
        await _result(self._management.undeploy(name))
        return {"undeployed": name}

    async def _activate(self, service):
        result = await _result(self._management.activate(service))
        return _with_state({"activated": service}, result)

    async def _deactivate(self, service):
        result = await _result(self._management.deactivate(service))
        return _with_state({"deactivated": service}, result)

    async def _reset_usage(self):
        await _result(self._management.reset_usage())
        return {"reset": True}

    async def _clear_alarm(self, alarm_id):
        await _result(self._management.clear_alarm(alarm_id))
        return {"cleared": alarm_id}

    async def _set_trace_level(self, body):
        component = body.get("component")
        if not isinstance(component, str):
            raise _HTTPError(400, "the body needs 'component': a string")
        level = _string_field(body, "level")
        await _result(self._management.set_trace_level(component, level))
        return {"component": component, "level": level}

    # -- request handling ---------------------------------------------------

    def render(self, request):
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = Deferred.fromCoroutine(self._handle(request, finished))
        # _handle answers every error itself; this only guards against a
        # bug in the answering code.
        d.addErrback(lambda f: log.failure("management request crashed", f))
        return server.NOT_DONE_YET

    def _check_token(self, request):
        values = request.requestHeaders.getRawHeaders(b"authorization") or []
        if not values:
            raise _HTTPError(401, "missing token", _CHALLENGE)
        scheme, _, credentials = values[0].strip().partition(b" ")
        if len(values) != 1 or scheme.lower() != b"bearer":
            raise _HTTPError(401, "bad token", _CHALLENGE)
        if not hmac.compare_digest(credentials.strip(), self._token):
            raise _HTTPError(401, "bad token", _CHALLENGE)

    def _find_route(self, request):
        try:
            segments = [seg.decode("utf-8") for seg in request.postpath]
        except UnicodeDecodeError:
            raise _HTTPError(400, "the URL path is not UTF-8 once decoded")
        if len(segments) > 1 and segments[-1] == "":
            segments.pop()  # tolerate one trailing slash
        shown = "/" + "/".join(segments)
        method = request.method.decode("ascii", "replace")
        lookup = "GET" if method == "HEAD" else method
        allowed = []
        for route in self._routes:
            args = route.match(segments)
            if args is None:
                continue
            if route.method == lookup:
                return route, args
            allowed.append(route.method)
        if not allowed:
            raise _HTTPError(404, f"no such resource: {shown}")
        if "GET" in allowed:
            allowed.append("HEAD")
        allow = ", ".join(allowed)
        raise _HTTPError(
            405,
            f"method {method} not allowed on {shown} (allowed: {allow})",
            [(b"Allow", allow.encode("ascii"))],
        )

    @staticmethod
    def _read_body(request):
        request.content.seek(0)
        raw = request.content.read()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            raise _HTTPError(400, f"the request body is not valid JSON: {e}")
        if not isinstance(body, dict):
            raise _HTTPError(400, "the request body must be a JSON object")
        return body

    async def _handle(self, request, finished):
        headers = []
        try:
            self._check_token(request)
            if getattr(request, "bodyTooLarge", False):
                raise _HTTPError(413, f"the request body is over {MAX_BODY} bytes")
            route, args = self._find_route(request)
            if route.body:
                args.append(self._read_body(request))
            data = await _result(route.handler(*args))
            code, payload = 200, _encode(data)
        except _HTTPError as e:
            code, headers = e.code, e.headers
            payload = _encode({"error": e.message})
        except _CLIENT_ERRORS as e:
            code = getattr(e, "http_status", 400)
            if not (isinstance(code, int) and 400 <= code < 500 and code != 401):
                code = 400
            payload = _encode({"error": str(e) or type(e).__name__})
        except Exception:
            log.failure(
                "management request {method} {uri} failed",
                method=request.method.decode("ascii", "replace"),
                uri=request.uri.decode("ascii", "replace"),
            )
            code = 500
            payload = _encode({"error": "internal error; see the container log"})
        if finished:
            return  # the client went away
        request.setResponseCode(code)
        for name, value in headers:
            request.setHeader(name, value)
        request.setHeader(b"Content-Type", b"application/json; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"Content-Length", b"%d" % len(payload))
        request.write(payload)
        request.finish()


_CHALLENGE = [(b"WWW-Authenticate", b'Bearer realm="slee"')]


def _encode(data):
    return json.dumps(data, ensure_ascii=False).encode("utf-8") + b"\n"


def make_site(management, token):
    """
    @param management: an L{slee.interfaces.IContainerManagement}.
    @param token: the admin token every request must present.
    @return: a L{twisted.web.server.Site} serving the API; listen on it
        with an endpoint such as C{tcp:8787:interface=127.0.0.1}.
    """
    site = _QuietSite(ManagementResource(management, token))
    site.requestFactory = _LimitedRequest
    site.displayTracebacks = False
    return site


class _QuietSite(server.Site):
    """
    A Site that keeps the log quiet: no access-log line per request and no
    factory start/stop lines (operations that change something log
    themselves in the container).
    """

    noisy = False

    def log(self, request):
        pass
