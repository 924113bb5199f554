"""
The XCAP resource adaptor: HTTP/1.1 on twisted.web, each request an
activity and an event, the SBB's answer written once its transaction
commits.

Who is asking (C{auth}): with C{digest} (the default), every request must
carry a Digest response (RFC 7616, SHA-256 or MD5) of a user of the store
in the file C{users} (L{resource_adaptors.auth.users}), else it gets 401
and the challenges; the event names the L{User}.  With C{trust-localhost},
for development, requests from 127.0.0.1 and ::1 are trusted as an
administrator without logging in, and others are refused with 403.  What
each user may do is the XDMS's to decide.  An administrator may make a
request for another user with C{X-XCAP-Asserted-Identity} (OMA's header,
L{resource_adaptors.xcap.identity}): the event names that user then, so the
XDMS authorizes the request as that user's; from anyone else the header
gets 403.

What it answers itself, before any service sees the request:

- a request line longer than C{max-uri-length}: 414; a request or header
  line longer than 16 KiB, or header fields over 16 KiB in all: 400 (and
  the connection is closed);
- a body longer than C{max-body-size} (by its Content-Length, or as it
  arrives in chunks): 413, and the connection is closed, so that the rest
  is never served (but read and thrown away for a while, so that the
  client reads the 413: L{resource_adaptors.xcap.connections});
- a request that comes too slowly: 408 (the connection is closed too);
- a path that is no XCAP resource: 404, a malformed node selector or query:
  400 (L{resource_adaptors.xcap.uri});
- a method other than GET, PUT and DELETE: 405 with C{Allow};
- a request no service took: 404; one whose service failed: 500; one that
  found the event queue full: 503 with C{Retry-After}.

Connections are persistent; a pipelined request waits for the one before
it to be answered (twisted.web reads no further meanwhile).  How many there
may be, how slowly a request may come and how long one may stay idle are
L{resource_adaptors.xcap.connections}'s.

SBBs make requests of the server too (L{IXcapProvider.request}): such a
request takes the same path as one over HTTP, from its event on, and its
answer is fired back as an event on its activity instead of being written.
It names the user it is made for itself, so no header asserts one.

Each request over HTTP that is answered leaves a line in the access log
(L{AccessLog}): in the file of the property C{access-log}
(C{--xcap-access-log}), else in the log at info on the logger
C{resource_adaptors.xcap.access}.
"""

import itertools
import socket
import time
from functools import partial

from twisted.cred.portal import Portal
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.web import http, resource, server
from zope.interface import implementer

from resource_adaptors.auth.digest import DigestAuthority, DigestError, UserStoreChecker
from resource_adaptors.auth.users import TRUSTED, IUser, User, UserRealm, UserStore
from resource_adaptors.xcap import events, identity
from resource_adaptors.xcap.connections import PROPERTIES, BoundedSite, ConnectionLimits
from resource_adaptors.xcap.command_line import (
    check_access_log, check_auth, check_endpoint, check_root)
from resource_adaptors.xcap.provider import IXcapProvider
from resource_adaptors.xcap.uri import XcapUriError, parse_xcap_uri
from slee.errors import OverloadError
from slee.resources import Property, ResourceAdaptor, positive
from slee.runtime import StartError, cannot_listen
from slee.trace import log_observer

_access_log = Logger(namespace="resource_adaptors.xcap.access", observer=log_observer)

ALLOW = ", ".join(events.METHODS)
_LOCAL_HOSTS = ("127.0.0.1", "::1", "::ffff:127.0.0.1")


def _problem(check):
    """A L{Property} check made of an option's check, which raises ValueError."""
    def problem(value):
        try:
            check(value)
        except ValueError as error:
            return str(error)
        return None
    return problem


@implementer(IXcapProvider)
class XcapResourceAdaptor(ResourceAdaptor):
    """
    @ivar pending: request id -> the twisted.web request waiting for its answer.
    """

    properties = {
        "endpoint": Property(str, "tcp:8080", _problem(check_endpoint)),
        "root": Property(str, "/xcap-root", _problem(check_root)),
        "max-body-size": Property(int, 1 << 20, positive),
        "max-uri-length": Property(int, 4096, positive),
        "auth": Property(str, "digest", _problem(check_auth)),
        "users": Property(str, ""),
        "access-log": Property(str, "", _problem(check_access_log)),
        **PROPERTIES,
    }
    event_types = events.EVENT_TYPES
    log = Logger(namespace="resource_adaptors.xcap.adaptor", observer=log_observer)

    def __init__(self):
        super().__init__()
        self.pending = {}
        self.port = None
        self.site = None
        self.clock = None
        self.authority = None
        self.portal = None
        self.users = None
        self.access_log = None
        self._ids = itertools.count(1)

    #: The XDMS is here: no SIP subscription is needed to watch it.
    xcap_diff_uri = None
    sip_identity = None

    @property
    def root(self):
        return self.config["root"].rstrip("/") or "/"

    @property
    def root_url(self):
        """The XCAP root's HTTP URI, on the address and port listened on."""
        address = self.port.getHost()
        host = address.host
        if host in ("0.0.0.0", "::"):
            host = socket.getfqdn()
        elif ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.config["endpoint"].startswith("ssl:") else "http"
        return f"{scheme}://{host}:{address.port}{self.root.rstrip('/')}"

    def user_for(self, identity, host):
        """
        @return: the L{User} a request from elsewhere (a SIP watcher) is
            made for, as an HTTP request by the same identity would be:
            with C{trust-localhost}, an administrator when it comes from
            the local host; with C{digest}, the store's user whose XUI is
            C{identity} (an administrator if the store says so), else a
            plain user of that XUI.
        """
        if self.users is None:
            return TRUSTED if host in _LOCAL_HOSTS else User(identity, identity)
        return self.users.with_xui(identity) or User(identity, identity)

    async def activate(self, endpoint):
        super().activate(endpoint)
        reactor = self.clock = endpoint.reactor     # the network's time (timeouts, nonces)
        if self.config["auth"] == "digest":
            users = self.config["users"]
            store = UserStore.load(users) if users else UserStore("slee")
            if not users:
                self.log.warn("no --users file: every XCAP request will be refused")
            self.users = store
            self.authority = DigestAuthority(store.realm)
            self.portal = Portal(UserRealm(store), [UserStoreChecker(store)])
        access_log = self.config["access-log"]
        try:
            self.access_log = AccessLog(access_log or None, self.clock)
        except OSError as error:
            raise StartError(f"{access_log}: cannot open the access log: "
                             f"{error.strerror}") from None
        self.site = _XcapSite(_XcapResource(self), self.config["max-body-size"],
                              self.access_log, ConnectionLimits.from_config(self.config), self.clock)
        endpoint = self.config["endpoint"]
        try:
            self.port = await serverFromString(reactor, endpoint).listen(self.site)
        except CannotListenError as error:
            self.access_log.close()
            raise StartError(cannot_listen(endpoint, error)) from None
        address = self.port.getHost()
        self.log.info("XCAP listening on {host}:{port}, root {root}", host=address.host,
                      port=address.port, root=self.root)

    async def stop(self):
        if self.port is not None:
            await self.port.stopListening()
            self.port = None
        for handle in list(self.pending):
            self._answer(handle, 503, [("Retry-After", "5")], b"stopping\n")
        if self.site is not None:
            await self.site.close_all()
        if self.access_log is not None:
            self.access_log.close()

    def status(self):
        listening = None
        if self.port is not None:
            address = self.port.getHost()
            listening = f"{address.host}:{address.port}"
        connections = len(self.site.channels) if self.site is not None else 0
        return {"listening": listening, "pending": len(self.pending), "connections": connections}

    # -- from twisted.web ------------------------------------------------------

    def request_received(self, request):
        """A request whose body has arrived: who sent it, then the request itself."""
        if len(request.uri) > self.config["max-uri-length"]:
            return _plain(request, 414, "the URI is too long")
        if self.portal is None:
            if request.getClientAddress().host not in _LOCAL_HOSTS:
                return _plain(request, 403, "only local clients are trusted")
            return self._authenticated(request, TRUSTED)
        authorization = request.getHeader(b"authorization")
        if authorization is None:
            return self._challenge(request, "authentication required")
        try:
            credentials = self.authority.response(
                authorization.decode("latin-1"), request.method.decode("latin-1"),
                request.uri.decode("latin-1"), self.clock.seconds())
        except DigestError as error:
            return self._challenge(request, str(error))
        login = self.portal.login(credentials, None, IUser)
        login.addCallbacks(
            lambda result: self._finish_render(request, self._authenticated(request, result[1])),
            lambda _: self._finish_render(request, self._challenge(
                request, "bad credentials", stale=credentials.stale)))
        return server.NOT_DONE_YET

    def _challenge(self, request, reason, stale=False):
        for challenge in self.authority.challenges(self.clock.seconds(), stale):
            request.responseHeaders.addRawHeader(b"www-authenticate", challenge.encode())
        return _plain(request, 401, reason)

    @staticmethod
    def _finish_render(request, body):
        """Write what a render method would have returned, once a login ended."""
        if body is not server.NOT_DONE_YET and not request.finished:
            request.write(body)
            request.finish()

    def _authenticated(self, request, user):
        """The request of C{user}: check it, then fire its event."""
        request.user_name = user.name
        path, _, query = request.uri.decode("latin-1").partition("?")
        try:
            uri = parse_xcap_uri(path, self.root, query)
        except XcapUriError as error:
            return _plain(request, error.status, error.reason)
        method = request.method.decode("latin-1")
        event_type = events.METHODS.get(method)
        if event_type is None:
            request.setHeader(b"allow", ALLOW.encode())
            return _plain(request, 405, f"{method} is not an XCAP method")
        headers = {name.decode("latin-1").lower(): values[-1].decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        try:
            user = identity.asserted_user(user, headers.get(identity.HEADER.lower()))
        except identity.IdentityError as error:
            return _plain(request, error.status, error.reason)
        handle = f"r{next(self._ids)}"
        request.content.seek(0)
        event = events.XcapRequestEvent(handle, method, uri, headers, request.content.read(),
                                        user)
        self.pending[handle] = request
        request.notifyFinish().addErrback(lambda _: self._gone(handle))
        self.endpoint.start_activity(handle)
        self._fire_request(handle, event_type, event)
        return server.NOT_DONE_YET

    def _fire_request(self, handle, event_type, event):
        try:
            self.endpoint.fire_event(handle, event_type, event,
                                     on_processed=partial(self._processed, handle))
        except OverloadError:
            self._answer(handle, 503, [("Retry-After", "5")], b"overloaded\n")

    def _gone(self, handle):
        """The client closed the connection before its answer."""
        if self.pending.pop(handle, None) is not None:
            self.endpoint.end_activity(handle)

    def _processed(self, handle, committed, handlers):
        if handle not in self.pending:
            return
        if not committed:
            self._answer(handle, 500, (), b"the service failed\n")
        elif not handlers:
            self._answer(handle, 404, (), b"no service here\n")

    # -- the SBB interface (IXcapProvider) ---------------------------------------

    def request(self, method, path, user, headers=(), body=b""):
        handle = f"i{next(self._ids)}"
        self.endpoint.start_activity(handle)
        self.endpoint.after_commit(self._internal_request, handle, method, path, user,
                                   tuple(headers), body)
        return self.endpoint.activity_context(handle)

    def _internal_request(self, handle, method, path, user, headers, body):
        """The transaction that made the request committed: fire it."""
        self.pending[handle] = _INTERNAL
        path, _, query = path.partition("?")
        try:
            uri = parse_xcap_uri(path, self.root, query)
        except XcapUriError as error:
            return self._answer(handle, error.status, (), error.reason.encode("utf-8"))
        event_type = events.METHODS.get(method)
        if event_type is None:
            return self._answer(handle, 405, [("Allow", ALLOW)], b"")
        event = events.XcapRequestEvent(handle, method, uri,
                                        {name.lower(): value for name, value in headers},
                                        body, user)
        self._fire_request(handle, event_type, event)

    def respond(self, request, status, headers=(), body=b""):
        handle = getattr(request, "request", request)
        if handle not in self.pending:
            raise KeyError(f"no XCAP request {handle!r} waiting for an answer")
        self.endpoint.after_commit(self._answer, handle, int(status), tuple(headers), body)

    def _answer(self, handle, status, headers, body):
        request = self.pending.pop(handle, None)
        if request is None:
            return      # answered already, or the client left
        if request is _INTERNAL:
            answer = events.XcapResponseEvent(
                handle, status, {name.lower(): value for name, value in headers}, body)
            try:
                self.endpoint.fire_event(handle, events.RESPONSE, answer)
            except OverloadError:
                self.log.warn("overloaded: dropped the answer to {handle}", handle=handle)
            self.endpoint.end_activity(handle)
            return
        request.setResponseCode(status)
        for name, value in headers:
            request.setHeader(name.encode("latin-1"), value.encode("latin-1"))
        if body and not request.responseHeaders.hasHeader(b"content-type"):
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"content-length", str(len(body)).encode())
        request.write(body)
        request.finish()
        self.endpoint.end_activity(handle)


#: What L{XcapResourceAdaptor.pending} holds for a request an SBB made.
_INTERNAL = object()


def _plain(request, status, text):
    body = (text + "\n").encode("utf-8")
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    request.setHeader(b"content-length", str(len(body)).encode())
    return body


class _XcapResource(resource.Resource):
    """Every path is the RA's: the XCAP root is checked by the URI parser."""

    isLeaf = True

    def __init__(self, adaptor):
        super().__init__()
        self._adaptor = adaptor

    def render(self, request):
        return self._adaptor.request_received(request)


class _LimitedRequest(server.Request):
    """
    A request whose body may not exceed the site's C{max_body_size}: a
    longer one is refused with 413 as soon as it shows (by its
    Content-Length or as chunks arrive), and its connection closed
    (L{Channel.answer_early<resource_adaptors.xcap.connections.Channel.answer_early>}:
    it is never served).

    @ivar started: when its first line came (C{time.monotonic()}), for the
        access log.
    @ivar user_name: who it was authenticated as, for the access log; None
        until then.
    """

    _received = 0
    _refused = False
    user_name = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()

    def gotLength(self, length):
        if length is not None and length > self.channel.site.max_body_size:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.channel.site.max_body_size:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self):
        self._refused = True
        self.channel.answer_early(b"413 Request Entity Too Large")


class _XcapSite(BoundedSite):
    """A site of bounded connections that logs each request to its L{AccessLog}."""

    requestFactory = _LimitedRequest

    def __init__(self, root, max_body_size, access_log, limits, clock):
        super().__init__(root, limits, clock)
        self.max_body_size = max_body_size
        self.access_log = access_log

    def log(self, request):
        self.access_log.request_answered(request)


class AccessLog:
    """
    The access log of the XCAP server: a line per request answered, in the
    spirit of the combined log format, so that the usual tools read it::

        127.0.0.1 - alice [07/Dec/2026:16:00:00 +0000] "GET /xcap-root/... HTTP/1.1" 200 1234 0.0012

    the client's address, C{-} (no ident), the user it was authenticated as
    (C{-} if none), when it was answered (UTC), the request line, the
    status, the bytes of the body sent, and the seconds from its first line
    to its answer.  The lines go to a file, appended (opened once,
    line-buffered: a line is whole on disk as soon as it is written), else
    to the log at info on C{resource_adaptors.xcap.access}.
    """

    def __init__(self, path, clock):
        """
        @param path: the file, or None for the log.
        @param clock: gives the time of each line (C{seconds()}).
        @raise OSError: when the file cannot be opened.
        """
        self._file = None if path is None else open(path, "a", buffering=1, encoding="utf-8")
        self._clock = clock

    def request_answered(self, request):
        """Log a twisted.web request being answered (L{_LimitedRequest})."""
        line = (f"{request.getClientAddress().host} - {request.user_name or '-'} "
                f"{http.datetimeToLogString(self._clock.seconds())} "
                f'"{_quoted(request.method)} {_quoted(request.uri)} '
                f'{_quoted(request.clientproto)}" {request.code} {request.sentLength} '
                f"{time.monotonic() - request.started:.4f}")
        if self._file is None:
            _access_log.info("{line}", line=line)
        else:
            self._file.write(line + "\n")

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None


def _quoted(data):
    """@return: bytes from the network as text fit for a quoted field: non-ASCII,
    controls, backslashes and double quotes escaped."""
    return data.decode("latin-1").encode("unicode_escape").decode("ascii").replace('"', '\\"')
