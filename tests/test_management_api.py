"""
The management HTTP API (slee.management.api), served for real on a
127.0.0.1 port and spoken to over HTTP with twisted.web.client.Agent.

The backend is a small in-test IContainerManagement; end-to-end tests
against a running container live elsewhere.
"""

import io
import json
from urllib.parse import quote

import pytest
import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import deferLater
from twisted.logger import globalLogPublisher
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer
from zope.interface import implementer
from zope.interface.verify import verifyObject

from slee.errors import DeploymentError, ManagementError
from slee.interfaces import IContainerManagement
from slee.management.api import MAX_BODY, make_site

TOKEN = "s3cret-token_for-tests"
SERVICE_ID = "presence:org.example:1.0"

# twisted.web.client.readBody warns about the response transport proxy that
# Agent itself hands it; nothing to do with the code under test.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using readBody with a transport:DeprecationWarning"
)


class NoSuchError(ManagementError):
    http_status = 404


class Boom(Exception):
    pass


@implementer(IContainerManagement)
class FakeManagement:
    """
    Canned answers; records every mutating call in C{calls}.
    """

    def __init__(self):
        self.calls = []
        self.explode = False
        self.pending = None  # set by deploy("/slow"): a Deferred to fire
        self.service_ids = {SERVICE_ID, "weird/id"}

    def _check(self):
        if self.explode:
            raise Boom("secret internal detail")

    def status(self):
        self._check()
        return {
            "state": "running",
            "uptime": 12.5,
            "database": "memory://",
            "counts": {"services": 1, "units": 1, "ra_entities": 0,
                       "activities": 0, "sbb_entities": 0},
            "events": {"delivered": 3, "rolled_back": 0, "queued": 0},
        }

    def deploy(self, path):
        self.calls.append(("deploy", path))
        if path == "/bad":
            raise DeploymentError("/bad/slee.toml: services[0].root_sbb: missing")
        unit = {"name": "demo", "services": [SERVICE_ID], "sbbs": ["Root"],
                "event_types": [], "ra_entities": []}
        if path == "/slow":
            self.pending = defer.Deferred()
            return self.pending.addCallback(lambda _: unit)
        return unit

    def undeploy(self, name):
        self.calls.append(("undeploy", name))
        if name != "demo":
            raise NoSuchError(f"no such unit: {name}")

    def activate(self, service):
        self.calls.append(("activate", service))
        if service not in self.service_ids:
            raise NoSuchError(f"no such service: {service}")

    def deactivate(self, service):
        self.calls.append(("deactivate", service))
        raise ManagementError(f"service {service} is not active")

    def units(self):
        return [{"name": "demo", "services": [SERVICE_ID]}]

    def services(self):
        return [{"id": SERVICE_ID, "name": "presence", "unit": "demo",
                 "state": "inactive", "root_sbb": "Root", "priority": 0,
                 "root_entities": 0}]

    def ra_entities(self):
        return [{"name": "clock", "type": "clock", "unit": "demo",
                 "state": "active", "properties": {}, "activities": 1}]

    def activities(self):
        return [{"key": "clock:1", "ra": "clock", "handle": "1", "durable": False,
                 "attached": 1, "names": ["tick"], "ending": False}]

    def sbb_entities(self):
        return [{"id": "e1", "service": SERVICE_ID, "sbb": "Root", "parent": None,
                 "priority": 0, "attached": 1, "children": 0, "cmp": {"n": "3"}}]

    def usage(self):
        return [{"service": SERVICE_ID, "sbb": "Root", "counters": {"events": 3},
                 "samples": {"latency": {"count": 1, "min": 2, "max": 2, "mean": 2.0}}}]

    def reset_usage(self):
        self.calls.append(("reset_usage",))

    def alarms(self):
        return [{"id": "a1", "source": "clock", "type": "drift", "instance": "1",
                 "level": "major", "message": "clock drifts", "raised": 1700000000.0}]

    def clear_alarm(self, alarm_id):
        self.calls.append(("clear_alarm", alarm_id))
        if alarm_id != "a1":
            raise NoSuchError(f"no such alarm: {alarm_id}")

    def trace_levels(self):
        if self.explode:
            return {"slee": object()}  # not JSON
        return {"slee": "info"}

    def set_trace_level(self, component, level):
        self.calls.append(("set_trace_level", component, level))
        if level not in ("debug", "info", "warn", "error", "critical"):
            raise ManagementError(f"unknown log level: {level}")


@implementer(IBodyProducer)
class ChunkedProducer:
    """
    A body of unknown length (sent chunked), in C{chunks}.
    """

    length = UNKNOWN_LENGTH

    def __init__(self, chunks):
        self.chunks = chunks

    def startProducing(self, consumer):
        for chunk in self.chunks:
            consumer.write(chunk)
        return defer.succeed(None)

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass

    def stopProducing(self):
        pass


class Api:
    def __init__(self, backend, url, agent):
        self.backend = backend
        self.url = url
        self.agent = agent

    async def request(self, method, path, body=None, token=TOKEN, headers=None,
                      producer=None):
        """
        @return: (code, response headers, decoded JSON body)
        """
        h = Headers(headers or {})
        if token is not None:
            h.setRawHeaders(b"authorization", [b"Bearer " + token.encode()])
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
            producer = FileBodyProducer(io.BytesIO(body))
        response = await self.agent.request(
            method.encode(), (self.url + path).encode(), h, producer
        )
        raw = await readBody(response)
        assert response.headers.getRawHeaders(b"content-type") == [
            b"application/json; charset=utf-8"
        ]
        return response.code, response.headers, json.loads(raw)


@pytest_twisted.async_yield_fixture
async def api():
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    backend = FakeManagement()
    verifyObject(IContainerManagement, backend)
    site = make_site(backend, TOKEN)

    # Track the server side of each connection, to wait for it to close.
    closed = []
    build = site.buildProtocol

    def buildProtocol(addr):
        protocol = build(addr)
        lost = defer.Deferred()
        closed.append(lost)
        connectionLost = protocol.connectionLost

        def track(reason):
            try:
                return connectionLost(reason)
            finally:
                lost.callback(None)

        protocol.connectionLost = track
        return protocol

    site.buildProtocol = buildProtocol
    port = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
    pool = HTTPConnectionPool(reactor)  # persistent: closeCachedConnections waits
    agent = Agent(reactor, pool=pool)
    try:
        yield Api(backend, f"http://127.0.0.1:{port.getHost().port}", agent)
    finally:
        # Close the client side; then wait for the server side to notice.
        await pool.closeCachedConnections()
        await port.stopListening()
        await defer.gatherResults([lost for lost in closed]).addTimeout(10, reactor)


# -- authentication ------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {b"authorization": [b"Bearer wrong"]},
        {b"authorization": [b"Bearer " + TOKEN.encode() + b"x"]},
        {b"authorization": [b"Basic " + TOKEN.encode()]},
        {b"authorization": [b"Bearer"]},
        {b"authorization": [b"Bearer " + TOKEN.encode(), b"Bearer " + TOKEN.encode()]},
    ],
    ids=["none", "wrong", "longer", "basic", "empty", "twice"],
)
@pytest_twisted.ensureDeferred
async def test_unauthorized(api, headers):
    code, h, body = await api.request("GET", "/status", token=None, headers=headers)
    assert code == 401
    assert h.getRawHeaders(b"www-authenticate")[0].startswith(b"Bearer")
    assert body["error"] in ("missing token", "bad token")


@pytest_twisted.ensureDeferred
async def test_unauthorized_before_routing_and_without_effect(api):
    code, _, body = await api.request("GET", "/nowhere", token="wrong")
    assert code == 401
    code, _, body = await api.request("POST", "/usage/reset", token="wrong")
    assert code == 401
    assert api.backend.calls == []


@pytest_twisted.ensureDeferred
async def test_scheme_is_case_insensitive(api):
    code, _, _ = await api.request(
        "GET", "/status", token=None,
        headers={b"authorization": [b"bearer " + TOKEN.encode()]},
    )
    assert code == 200


def test_empty_token_refused():
    with pytest.raises(ValueError):
        make_site(FakeManagement(), "")


# -- reads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, method",
    [
        ("/status", "status"),
        ("/units", "units"),
        ("/services", "services"),
        ("/ra-entities", "ra_entities"),
        ("/activities", "activities"),
        ("/sbb-entities", "sbb_entities"),
        ("/usage", "usage"),
        ("/alarms", "alarms"),
        ("/trace", "trace_levels"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_get_routes(api, path, method):
    code, h, body = await api.request("GET", path)
    assert code == 200
    assert body == getattr(api.backend, method)()
    assert h.getRawHeaders(b"cache-control") == [b"no-store"]


@pytest_twisted.ensureDeferred
async def test_trailing_slash_and_query_are_tolerated(api):
    code, _, body = await api.request("GET", "/services/?verbose=1")
    assert code == 200
    assert body == api.backend.services()


@pytest_twisted.ensureDeferred
async def test_head(api):
    response = await api.agent.request(
        b"HEAD", (api.url + "/status").encode(),
        Headers({b"authorization": [b"Bearer " + TOKEN.encode()]}),
    )
    assert response.code == 200
    assert await readBody(response) == b""


# -- operations --------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_deploy(api):
    code, _, body = await api.request("POST", "/units", {"path": "/srv/demo"})
    assert code == 200
    assert body["name"] == "demo"
    assert api.backend.calls == [("deploy", "/srv/demo")]


@pytest_twisted.ensureDeferred
async def test_deploy_error_is_400_with_message(api):
    code, _, body = await api.request("POST", "/units", {"path": "/bad"})
    assert code == 400
    assert body == {"error": "/bad/slee.toml: services[0].root_sbb: missing"}


@pytest_twisted.ensureDeferred
async def test_backend_may_answer_with_a_deferred(api):
    from twisted.internet import reactor

    d = defer.ensureDeferred(api.request("POST", "/units", {"path": "/slow"}))
    while api.backend.pending is None:
        await deferLater(reactor, 0, lambda: None)
    assert not d.called
    api.backend.pending.callback(None)
    code, _, body = await d
    assert (code, body["name"]) == (200, "demo")


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"", "not valid JSON"),
        (b"{nope", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"/srv/demo"', "must be a JSON object"),
        (b"{}", "'path'"),
        (b'{"path": 3}', "'path'"),
        (b'{"path": ""}', "'path'"),
        (b'{"path": "relative/dir"}', "absolute path"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_deploy_bad_body(api, raw, message):
    code, _, body = await api.request("POST", "/units", raw)
    assert code == 400
    assert message in body["error"]
    assert api.backend.calls == []


@pytest_twisted.ensureDeferred
async def test_undeploy(api):
    code, _, body = await api.request("DELETE", "/units/demo")
    assert (code, body) == (200, {"undeployed": "demo"})
    code, _, body = await api.request("DELETE", "/units/other")
    assert (code, body) == (404, {"error": "no such unit: other"})


@pytest_twisted.ensureDeferred
async def test_activate_with_percent_encoded_id(api):
    code, _, body = await api.request(
        "POST", f"/services/{quote(SERVICE_ID, safe='')}/activate"
    )
    assert (code, body) == (200, {"activated": SERVICE_ID})
    # ':' may also be sent as is, and an encoded '/' stays in the segment.
    code, _, _ = await api.request("POST", f"/services/{SERVICE_ID}/activate")
    assert code == 200
    code, _, body = await api.request("POST", "/services/weird%2Fid/activate")
    assert (code, body) == (200, {"activated": "weird/id"})
    assert api.backend.calls == [("activate", SERVICE_ID)] * 2 + [("activate", "weird/id")]


@pytest_twisted.ensureDeferred
async def test_activate_unknown_service(api):
    code, _, body = await api.request("POST", "/services/nope/activate")
    assert (code, body) == (404, {"error": "no such service: nope"})


@pytest_twisted.ensureDeferred
async def test_management_error_is_400(api):
    code, _, body = await api.request("POST", f"/services/{SERVICE_ID}/deactivate")
    assert (code, body) == (400, {"error": f"service {SERVICE_ID} is not active"})


@pytest_twisted.ensureDeferred
async def test_reset_usage(api):
    code, _, body = await api.request("POST", "/usage/reset")
    assert (code, body) == (200, {"reset": True})
    assert api.backend.calls == [("reset_usage",)]


@pytest_twisted.ensureDeferred
async def test_clear_alarm(api):
    code, _, body = await api.request("DELETE", "/alarms/a1")
    assert (code, body) == (200, {"cleared": "a1"})
    code, _, body = await api.request("DELETE", "/alarms/a2")
    assert (code, body) == (404, {"error": "no such alarm: a2"})


@pytest_twisted.ensureDeferred
async def test_set_trace_level(api):
    code, _, body = await api.request(
        "PUT", "/trace", {"component": "slee.sbb.counter", "level": "debug"}
    )
    assert (code, body) == (200, {"component": "slee.sbb.counter", "level": "debug"})
    code, _, body = await api.request(
        "PUT", "/trace", {"component": "slee", "level": "loud"}
    )
    assert (code, body) == (400, {"error": "unknown log level: loud"})
    code, _, body = await api.request("PUT", "/trace", {"level": "debug"})
    assert code == 400 and "'component'" in body["error"]
    code, _, body = await api.request("PUT", "/trace", {"component": "x", "level": 3})
    assert code == 400 and "'level'" in body["error"]
    assert len(api.backend.calls) == 2


# -- protocol errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/nowhere", "/units/demo/extra", "/services/x", "/services//activate"]
)
@pytest_twisted.ensureDeferred
async def test_unknown_route_is_404(api, path):
    code, _, body = await api.request("POST", path)
    assert code == 404
    assert body["error"].startswith("no such resource: ")


@pytest.mark.parametrize(
    "method, path, allow",
    [
        ("DELETE", "/status", b"GET, HEAD"),
        ("PUT", "/units", b"GET, POST, HEAD"),
        ("GET", "/units/demo", b"DELETE"),
        ("GET", f"/services/{SERVICE_ID}/activate", b"POST"),
        ("POST", "/trace", b"GET, PUT, HEAD"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405(api, method, path, allow):
    code, h, body = await api.request(method, path)
    assert code == 405
    assert h.getRawHeaders(b"allow") == [allow]
    assert f"method {method} not allowed" in body["error"]
    assert api.backend.calls == []


@pytest_twisted.ensureDeferred
async def test_body_at_the_limit_is_accepted(api):
    prefix, suffix = b'{"path": "/', b'"}'
    raw = prefix + b"a" * (MAX_BODY - len(prefix) - len(suffix)) + suffix
    assert len(raw) == MAX_BODY
    code, _, _ = await api.request("POST", "/units", raw)
    assert code == 200


@pytest_twisted.ensureDeferred
async def test_body_too_large_is_413(api):
    raw = json.dumps({"path": "/" + "a" * MAX_BODY}).encode()
    code, _, body = await api.request("POST", "/units", raw)
    assert code == 413
    assert "64" in body["error"] or str(MAX_BODY) in body["error"]
    assert api.backend.calls == []


@pytest_twisted.ensureDeferred
async def test_chunked_body_too_large_is_413(api):
    chunks = [b'{"path": "/'] + [b"a" * 4096] * 17 + [b'"}']
    code, _, _ = await api.request("POST", "/units", producer=ChunkedProducer(chunks))
    assert code == 413
    assert api.backend.calls == []


@pytest_twisted.ensureDeferred
async def test_chunked_body_under_the_limit(api):
    chunks = [b'{"path": ', b'"/srv/', b'demo"}']
    code, _, _ = await api.request("POST", "/units", producer=ChunkedProducer(chunks))
    assert code == 200
    assert api.backend.calls == [("deploy", "/srv/demo")]


@pytest_twisted.ensureDeferred
async def test_unexpected_error_is_500_without_traceback(api):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        api.backend.explode = True
        code, _, body = await api.request("GET", "/status")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert code == 500
    assert body == {"error": "internal error; see the container log"}
    failures = [e for e in events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_namespace"] == "slee.management.api"
    assert failures[0]["log_failure"].check(Boom)
    assert failures[0]["method"] == "GET" and failures[0]["uri"] == "/status"


@pytest_twisted.ensureDeferred
async def test_unserializable_answer_is_500(api):
    api.backend.explode = True
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        code, _, body = await api.request("GET", "/trace")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert code == 500
    assert "object" not in body["error"]
    assert any("log_failure" in e for e in events)
