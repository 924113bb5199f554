"""
The XCAP client resource adaptor: the XCAP requests of SBBs
(L{IXcapRequester}) sent over HTTP to an XDMS that runs elsewhere.

A service's XDM client (L{sbbs.xdms.client}) asks the RA entity named
C{xcap} for C{root} and C{request(...)}.  Deployed under that name
(C{deployables/xcap-remote}), this adaptor sends each request, once the
transaction that made it commits, to the XCAP server at C{xcap-root-url},
and fires the answer as an L{XcapResponseEvent} on the request's activity,
which then ends: the SBB sees what the XCAP server RA of its own container
would have given it.  The path an SBB gives is percent-encoded where HTTP
needs it (quotes and brackets of node selectors); escapes it wrote stay, as
the server decodes them either way.

Who asks: the account C{username} / C{password}, with HTTP Digest (RFC 7616,
L{resource_adaptors.auth.digest.DigestClient}).  The first request gets a
401 and is sent again, answering the best challenge (SHA-256 before MD5);
the following ones are signed up front with the same nonce.  A request is
sent again once for each algorithm the server offers while it answers 401
to a response this request signed with a fresh challenge: when the nonce
went stale or the server forgot it (a restart), and when the server holds
the account's MD5 hash only.  A request for an administrator
(L{resource_adaptors.auth.users.TRUSTED}) is the account's own; one for a
user carries that user's XUI in C{X-XCAP-Asserted-Identity}
(L{resource_adaptors.xcap.identity}), which the XCAP server honours when the
account is an administrator there: the account acts as OMA's aggregation
proxy, and the user may do what the user may do.

What the adaptor answers itself, when no answer comes from the server (each
with a text/plain body saying why):

- 502: the server could not be reached (connection refused, unknown host,
  TLS failure), the connection broke before the whole answer came, or the
  answer's body is larger than C{max-body-size} (its connection is closed);
- 504: no whole answer within C{timeout} seconds of sending, connecting and
  Digest retries included (the connection is closed);
- 400: the request is for a user whose XUI the header cannot carry;
- 503: the RA entity stopped before the answer came;
- 500: the adaptor itself failed (logged with the traceback).

Watching documents (the XDM client's C{subscribe}) is an xcap-diff
subscription over SIP (RFC 5875) to C{xcap-diff-uri}, the SIP URI the
remote XDMS's xcap-diff notifier answers on, from C{sip-identity}, the SIP
URI this service is known by there (an administrator's XUI in its user
store, to watch every user's documents).  Without C{xcap-diff-uri}, nothing
can be watched.

Connections are persistent: up to C{max-connections} idle ones per server
are kept for the requests that follow (more requests at once open more),
for L{IDLE_TIMEOUT} seconds: less than slee's XCAP server (C{idle-timeout},
60 s by default) or nginx (75 s) wait before they close an idle
connection, so that a request is not sent just as the server closes the
connection it goes on (twisted.web's default is 240 s).
HTTPS checks the server's certificate against the system's CAs, or against
the PEM certificates of C{ca-file}.
"""

import itertools
from io import BytesIO
from urllib.parse import quote, urlsplit

from OpenSSL import crypto
from twisted.internet import defer, error, protocol
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.logger import Logger
from twisted.web.client import (Agent, BrowserLikePolicyForHTTPS, FileBodyProducer,
                                HTTPConnectionPool, RequestTransmissionFailed, ResponseDone,
                                ResponseFailed, ResponseNeverReceived)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from zope.interface import implementer

from resource_adaptors.auth.digest import DigestClient
from resource_adaptors.sip.core.parser import ParseError
from resource_adaptors.sip.core.uri import parse_uri
from resource_adaptors.xcap import events, identity
from resource_adaptors.xcap.provider import IXcapRequester
from slee.errors import OverloadError
from slee.resources import Property, ResourceAdaptor, positive
from slee.trace import log_observer

ROOT_URL = "http://127.0.0.1:8080/xcap-root"

#: What a request target keeps as the SBB wrote it, besides letters, digits
#: and C{_.-~}: RFC 3986's sub-delims, C{:} and C{@} (path characters), C{/},
#: and C{%}, so that escapes stay escapes.
_SAFE = "/:@!$&'()*+,;=%"

#: Seconds an idle connection to the server is kept (see the module's docstring).
IDLE_TIMEOUT = 30

#: The failures that mean no (whole) answer came from the server: 502.
_UNREACHABLE = (error.ConnectError, error.ConnectionClosed, ResponseFailed,
                ResponseNeverReceived, RequestTransmissionFailed)


def check_root_url(value):
    """A L{Property} check: an http or https URL with no credentials, query or fragment."""
    try:
        url = urlsplit(value)
        url.port        # a bad port raises ValueError
    except ValueError as problem:
        return f"{value!r} is no URL: {problem}"
    if url.scheme not in ("http", "https") or not url.hostname or not value.isascii():
        return f"expected an http or https URL such as {ROOT_URL}, not {value!r}"
    if url.username is not None or url.query or url.fragment or "%" in url.path:
        return (f"{value!r}: no credentials (see username and password), query, fragment or "
                f"escape belongs in it")
    return None


def check_sip_uri(value):
    """A L{Property} check: none, or a SIP or SIPS URI."""
    if not value:
        return None
    try:
        uri = parse_uri(value)
    except ParseError as problem:
        return f"{value!r} is no SIP URI: {problem.reason}"
    return None if uri.scheme in ("sip", "sips") else f"expected a SIP URI, not {value!r}"


def check_username(value):
    """A L{Property} check: a username Digest carries as it is."""
    return None if value.isascii() and value.isprintable() else \
        f"expected printable ASCII, not {value!r}"


def _trust_root(path):
    """
    @return: a trust root of the CA certificates in the PEM file at C{path}.
    @raise ValueError: naming the file and what is wrong with it.
    """
    end = b"-----END CERTIFICATE-----"
    try:
        with open(path, "rb") as file:
            blocks = [block + end for block in file.read().split(end) if b"-----BEGIN" in block]
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except (OSError, crypto.Error) as problem:
        raise ValueError(f"{path}: {problem}") from None
    if not certificates:
        raise ValueError(f"{path}: no PEM certificate in it")
    return trustRootFromCertificates(certificates)


def _check_ca_file(value):
    """A L{Property} check: none, or a PEM file of CA certificates."""
    if not value:
        return None
    try:
        _trust_root(value)
    except ValueError as problem:
        return str(problem)
    return None


@implementer(IXcapRequester)
class RemoteXcapAdaptor(ResourceAdaptor):
    """
    @ivar calls: request id -> the Deferred of its exchange with the server,
        until it is answered.
    """

    properties = {
        "xcap-root-url": Property(str, ROOT_URL, check_root_url),
        "username": Property(str, "", check_username),
        "password": Property(str, ""),
        "timeout": Property(float, 10.0, positive),
        "max-body-size": Property(int, 1 << 20, positive),
        "max-connections": Property(int, 8, positive),
        "ca-file": Property(str, "", _check_ca_file),
        "xcap-diff-uri": Property(str, "", check_sip_uri),
        "sip-identity": Property(str, "sip:presence@localhost", check_sip_uri),
    }
    event_types = (events.RESPONSE,)
    log = Logger(namespace="resource_adaptors.xcap.remote", observer=log_observer)

    def __init__(self):
        super().__init__()
        self.calls = {}
        self.clock = None
        self._origin = None
        self._pool = None
        self._agent = None
        self._digest = None
        self._ids = itertools.count(1)

    @property
    def root(self):
        return urlsplit(self.config["xcap-root-url"]).path.rstrip("/") or "/"

    @property
    def xcap_diff_uri(self):
        return self.config["xcap-diff-uri"] or None

    @property
    def sip_identity(self):
        return self.config["sip-identity"]

    def activate(self, endpoint):
        super().activate(endpoint)
        reactor = self.clock = endpoint.reactor     # the network's time (timeouts)
        url = urlsplit(self.config["xcap-root-url"])
        self._origin = f"{url.scheme}://{url.netloc}"
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = self.config["max-connections"]
        self._pool.cachedConnectionTimeout = IDLE_TIMEOUT
        ca_file = self.config["ca-file"]
        policy = BrowserLikePolicyForHTTPS(_trust_root(ca_file) if ca_file else None)
        self._agent = Agent(reactor, policy, pool=self._pool)
        username = self.config["username"]
        self._digest = DigestClient(username, self.config["password"]) if username else None
        self.log.info("XCAP client of {url}", url=self.config["xcap-root-url"])

    async def stop(self):
        pool, self._pool, self._agent = self._pool, None, None
        for call in list(self.calls.values()):
            call.cancel()       # answered 503: see _failed
        if pool is not None:
            await pool.closeCachedConnections()

    def status(self):
        return {"xcap-root-url": self.config["xcap-root-url"], "waiting": len(self.calls)}

    # -- the SBB interface (IXcapRequester) --------------------------------------

    def request(self, method, path, user, headers=(), body=b""):
        if not path.startswith("/"):
            raise ValueError(f"expected an absolute path, not {path!r}")
        handle = f"h{next(self._ids)}"
        self.endpoint.start_activity(handle)
        self.endpoint.after_commit(self._send, handle, method, path, user, tuple(headers), body)
        return self.endpoint.activity_context(handle)

    def _send(self, handle, method, path, user, headers, body):
        """The transaction that made the request committed: send it."""
        if self._agent is None:
            return self._answer(_text(503, "the XCAP client is stopped"), handle)
        call = defer.ensureDeferred(self._exchange(method, _target(path), user, headers, body))
        call.addTimeout(self.config["timeout"], self.clock, onTimeoutCancel=self._timed_out)
        call.addErrback(self._failed, method, path)
        self.calls[handle] = call
        call.addCallback(self._answer, handle)

    async def _exchange(self, method, target, user, headers, body):
        """
        Send the request, and again for the Digest challenges it meets.

        @return: the answer: (status, lower-case header name -> value, body).
        """
        fields = Headers()
        for name, value in headers:
            fields.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        if not user.admin:
            fields.addRawHeader(identity.HEADER.encode(),
                                identity.asserting(user.xui).encode("latin-1"))
        digest, answered = self._digest, set()
        signed = None if digest is None else digest.authorization(method, target)
        response = await self._http(method, target, fields, body, signed)
        while response.code == 401 and digest is not None:
            challenges = [value.decode("latin-1")
                          for value in response.headers.getRawHeaders(b"www-authenticate", [])]
            algorithm = digest.challenged(challenges, answered)
            if algorithm is None:
                break
            answered.add(algorithm)
            await self._body(response)      # read, so that the connection serves again
            response = await self._http(method, target, fields, body,
                                        digest.authorization(method, target))
        answer_headers = {name.decode("latin-1").lower(): values[-1].decode("latin-1")
                          for name, values in response.headers.getAllRawHeaders()}
        return response.code, answer_headers, await self._body(response)

    def _http(self, method, target, fields, body, authorization):
        """@return: the Deferred response to one HTTP request."""
        if authorization is not None:
            fields = fields.copy()
            fields.setRawHeaders(b"authorization", [authorization.encode("latin-1")])
        return self._agent.request(method.encode("ascii"), (self._origin + target).encode("ascii"),
                                   fields, FileBodyProducer(BytesIO(body)) if body else None)

    def _body(self, response):
        """@return: the Deferred body of C{response}, at most C{max-body-size} bytes."""
        reader = _BodyReader(self.config["max-body-size"])
        response.deliverBody(reader)
        return reader.done

    @staticmethod
    def _timed_out(result, timeout):
        """The answer to a request C{timeout} cancelled, whatever the cancelling made of it."""
        return _text(504, f"no answer from the XCAP server within {timeout:g} s")

    def _failed(self, failure, method, path):
        """@return: the answer to a request whose exchange failed."""
        if self._agent is None:
            return _text(503, "the XCAP client stopped before the answer came")
        if failure.check(identity.IdentityError, _TooLarge):
            return _text(failure.value.status, failure.value.reason)
        if failure.check(*_UNREACHABLE):
            reasons = getattr(failure.value, "reasons", [failure])
            reason = "; ".join(reason.getErrorMessage() for reason in reasons)
            self.log.warn("XCAP {method} {path} failed: {reason}", method=method, path=path,
                          reason=reason)
            return _text(502, f"no answer from the XCAP server: {reason}")
        self.log.failure("XCAP {method} {path} failed", failure, method=method, path=path)
        return _text(500, "the XCAP client failed")

    def _answer(self, answer, handle):
        """Fire the answer on the request's activity, which ends."""
        self.calls.pop(handle, None)
        status, headers, body = answer
        try:
            self.endpoint.fire_event(handle, events.RESPONSE,
                                     events.XcapResponseEvent(handle, status, headers, body))
        except OverloadError:
            self.log.warn("overloaded: dropped the answer to {handle}", handle=handle)
        self.endpoint.end_activity(handle)


def _target(path):
    """The request target of an SBB's path (and query), percent-encoded where HTTP needs it."""
    path, _, query = path.partition("?")
    target = quote(path, safe=_SAFE)
    return f"{target}?{quote(query, safe=_SAFE + '?')}" if query else target


def _text(status, reason):
    """An answer the adaptor makes itself."""
    return status, {"content-type": "text/plain; charset=utf-8"}, (reason + "\n").encode("utf-8")


class _TooLarge(Exception):
    """An answer whose body is larger than C{max-body-size}."""

    status = 502

    def __init__(self, limit):
        self.reason = f"the XCAP server's answer is larger than {limit} bytes (max-body-size)"
        super().__init__(self.reason)


class _BodyReader(protocol.Protocol):
    """
    Gathers a response's body into C{done}.  Past C{limit} bytes, or when
    C{done} is cancelled, it stops the transfer, which closes the connection.
    """

    def __init__(self, limit):
        self.limit = limit
        self.chunks = []
        self.size = 0
        self.done = defer.Deferred(lambda _: self.transport.stopProducing())

    def dataReceived(self, data):
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()
            self.done.errback(_TooLarge(self.limit))
        else:
            self.chunks.append(data)

    def connectionLost(self, reason):
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):    # the end, by length or by close
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)
