"""
HTTP Digest access authentication, server side (RFC 7616), sans-IO, and
its place in twisted.cred.

The server offers SHA-256 and MD5 (in that order), C{qop=auth}.  Nonces
are stateless: a time, random bytes that make each challenge's own, and an
HMAC of both under a secret of the process, so
any nonce this process made checks without a table, and one older than the
lifetime is answered with a new challenge marked C{stale=true} (the client
retries without asking its user).  The C{uri} a client signs must be the
request's own: a response cannot be replayed on another resource; and each
good response must count higher (C{nc}) than the last one with its nonce,
so that one cannot be replayed on the same resource either.  The counts are
kept for the nonces still good, at most C{MAX_COUNTED_NONCES} of them.

A response is checked through twisted.cred: L{DigestResponse} provides
C{IUsernameDigestHash}, and L{UserStoreChecker} gives it the HA1 of its
algorithm from the L{resource_adaptors.auth.users.UserStore}.
"""

import base64
import hashlib
import hmac
import os
import re

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernameDigestHash
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from zope.interface import implementer

from resource_adaptors.auth.users import ALGORITHMS

#: Seconds a nonce stays good.
NONCE_LIFETIME = 300

#: Nonces whose last count is remembered; beyond it the oldest are forgotten,
#: and a response with a forgotten nonce is answered with a stale challenge.
MAX_COUNTED_NONCES = 65536

_PARAMETER = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


class DigestError(ValueError):
    """An Authorization header that is no usable Digest response."""


class DigestAuthority:
    """Makes challenges and reads responses for one realm."""

    def __init__(self, realm, secret=None, lifetime=NONCE_LIFETIME):
        self.realm = realm
        self._secret = secret if secret is not None else os.urandom(32)
        self._lifetime = lifetime
        # nonce -> the highest nc of a good response with it, oldest first.
        self._counts = {}

    def challenges(self, now, stale=False):
        """@return: the values of the WWW-Authenticate headers of a 401, best algorithm first."""
        nonce = self._nonce(now)
        opaque = hashlib.sha256(self._secret + b"opaque").hexdigest()[:32]
        return [f'Digest realm="{_quoted(self.realm)}", qop="auth", algorithm={algorithm}, '
                f'nonce="{nonce}", opaque="{opaque}"' + (", stale=true" if stale else "")
                for algorithm in ALGORITHMS]

    def response(self, authorization, method, target, now):
        """
        @param authorization: the value of the Authorization header.
        @param target: the request target (path and query) the request was sent to.
        @return: the L{DigestResponse} to check against the user's HA1.
        @raise DigestError: for a header that is no Digest response of this
            realm for this request; its C{stale} says whether only the nonce
            is too old.
        """
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "digest":
            raise DigestError("not a Digest response")
        fields = _parameters(rest)
        for name in ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce"):
            if not fields.get(name):
                raise DigestError(f"no {name}")
        algorithm = fields.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS:
            raise DigestError(f"algorithm {algorithm} is not offered")
        if fields["realm"] != self.realm or fields["qop"].lower() != "auth":
            raise DigestError("another realm or qop")
        if fields["uri"] != target:
            raise DigestError("the signed uri is not the request's")
        try:
            int(fields["nc"], 16)
        except ValueError:
            raise DigestError("a bad nonce count") from None
        stale = self._stale(fields["nonce"], now)
        return DigestResponse(fields, algorithm, method, stale, self._count)

    def _count(self, nonce, count):
        """
        A good response counted C{count} with C{nonce}: @return: whether it
        counts higher than every one before (else it is a replay).
        """
        counts = self._counts
        if count <= counts.get(nonce, 0):
            return False
        counts.pop(nonce, None)
        counts[nonce] = count
        if len(counts) > MAX_COUNTED_NONCES:
            del counts[next(iter(counts))]
        return True

    def _nonce(self, now):
        stamp = str(int(now)).encode() + b":" + os.urandom(8).hex().encode()
        mac = hmac.new(self._secret, stamp, hashlib.sha256).hexdigest()[:32].encode()
        return base64.b64encode(stamp + b":" + mac).decode()

    def _stale(self, nonce, now):
        """@return: whether C{nonce}, one of ours, is too old. @raise DigestError: not ours."""
        try:
            stamp, mac = base64.b64decode(nonce, validate=True).rsplit(b":", 1)
            made = int(stamp.split(b":", 1)[0])
        except ValueError:
            raise DigestError("not a nonce of ours") from None
        expected = hmac.new(self._secret, stamp, hashlib.sha256).hexdigest()[:32].encode()
        if not hmac.compare_digest(mac, expected):
            raise DigestError("not a nonce of ours")
        return not 0 <= now - made <= self._lifetime


@implementer(IUsernameDigestHash)
class DigestResponse:
    """
    A client's Digest response, as twisted.cred credentials.

    @ivar username: who it claims to be.
    @ivar algorithm: C{"SHA-256"} or C{"MD5"}: the HA1 to check it with.
    @ivar stale: whether its nonce is too old (it fails then, with a new
        challenge marked stale).
    """

    def __init__(self, fields, algorithm, method, stale, count):
        self._fields = fields
        self.username = fields["username"]
        self.algorithm = algorithm
        self._method = method
        self.stale = stale
        self._count = count

    def checkHash(self, digestHash):
        """@return: whether the response was made with the HA1 C{digestHash}."""
        if self.stale:
            return False
        fields, hash_ = self._fields, ALGORITHMS[self.algorithm]

        def h(text):
            return hash_(text.encode("utf-8")).hexdigest()
        ha2 = h(f"{self._method}:{fields['uri']}")
        expected = h(f"{digestHash}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:"
                     f"{fields['qop']}:{ha2}")
        return hmac.compare_digest(expected, fields["response"].lower()) \
            and self._count(fields["nonce"], int(fields["nc"], 16))


@implementer(ICredentialsChecker)
class UserStoreChecker:
    """Checks L{DigestResponse}s against a user store; the avatar id is the username."""

    credentialInterfaces = (IUsernameDigestHash,)

    def __init__(self, store):
        self._store = store

    def requestAvatarId(self, credentials):
        user = self._store.get(credentials.username)
        secret = None if user is None else user.ha1.get(credentials.algorithm)
        if secret is not None and credentials.checkHash(secret):
            return defer.succeed(user.name)
        return defer.fail(UnauthorizedLogin("bad Digest response"))


def _parameters(text):
    fields, position = {}, 0
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None or match.end() == position:
            raise DigestError("malformed Digest parameters")
        name, quoted, token = match.groups()
        fields[name.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
        position = match.end()
    return fields


def _quoted(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')
