"""
HTTP Digest access authentication (RFC 7616), sans-IO: the server side and
its place in twisted.cred, and the client side (L{DigestClient}).

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

The client answers the best challenge a server offers (SHA-256 before MD5,
C{qop=auth}), then signs the requests that follow with the same nonce up
front, counting C{nc}, until the server challenges again.  Both sides
compute the response with one function, L{request_digest}.
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

from resource_adaptors.auth.users import ALGORITHMS, ha1

#: Seconds a nonce stays good.
NONCE_LIFETIME = 300

#: Nonces whose last count is remembered; beyond it the oldest are forgotten,
#: and a response with a forgotten nonce is answered with a stale challenge.
MAX_COUNTED_NONCES = 65536

_PARAMETER = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')
#: The authentication scheme that opens a challenge (RFC 9110 §11.1: a token).
_SCHEME = re.compile(r"\s*,?\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:\s+|$)")


class DigestError(ValueError):
    """An Authorization header that is no usable Digest response."""


class DigestAuthority:
    """
    Makes challenges and reads responses for one realm.

    @ivar algorithms: the algorithms it offers, in the order its challenges
        give them: all it knows, best first (RFC 8760 §2.4), unless told
        (clients that read only the first challenge and do not know
        SHA-256, as baresip 1.0, need MD5 alone).
    """

    def __init__(self, realm, secret=None, lifetime=NONCE_LIFETIME, algorithms=None):
        self.realm = realm
        self.algorithms = tuple(algorithms or ALGORITHMS)
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
                for algorithm in self.algorithms]

    def response(self, authorization, method, target, now, same_target=None):
        """
        @param authorization: the value of the Authorization header.
        @param target: the request target (path and query) the request was sent to.
        @param same_target: tells whether the C{uri} the response signs names
            C{target}; by default, when it is the same text.  SIP compares
            Request-URIs by RFC 3261 §19.1.4, as clients may write them
            differently from how they arrive.
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
        if algorithm not in self.algorithms:
            raise DigestError(f"algorithm {algorithm} is not offered")
        if fields["realm"] != self.realm or fields["qop"].lower() != "auth":
            raise DigestError("another realm or qop")
        if not (same_target(fields["uri"]) if same_target else fields["uri"] == target):
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
        fields = self._fields
        expected = request_digest(self.algorithm, digestHash, fields["nonce"], fields["nc"],
                                  fields["cnonce"], fields["qop"], self._method, fields["uri"])
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


def request_digest(algorithm, secret, nonce, nc, cnonce, qop, method, uri):
    """
    @param secret: the user's HA1 (hex) for C{algorithm}.
    @param nc: the nonce count as sent: 8 hex digits.
    @return: the C{response} of a Digest request (RFC 7616 §3.4.1): what the
        client sends and the server computes again to check it.
    """
    hash_ = ALGORITHMS[algorithm]

    def h(text):
        return hash_(text.encode("utf-8")).hexdigest()
    return h(f"{secret}:{nonce}:{nc}:{cnonce}:{qop}:{h(f'{method}:{uri}')}")


def challenges(values):
    """
    @param values: the values of the WWW-Authenticate headers of a 401.
    @return: a list of (scheme in lower case, parameters) for each challenge
        in them; one value may hold several.  What does not parse is left
        out: a client takes what it understands.
    """
    found = []
    for value in values:
        position = 0
        while position < len(value):
            parameter = _PARAMETER.match(value, position) if found else None
            if parameter is not None and parameter.end() > position:
                name, quoted, token = parameter.groups()
                found[-1][1][name.lower()] = _unquoted(quoted, token)
                position = parameter.end()
                continue
            scheme = _SCHEME.match(value, position)
            if scheme is None or scheme.end() == position:
                break
            found.append((scheme.group(1).lower(), {}))
            position = scheme.end()
    return found


def digest_authorization(challenge, username, secret, method, uri, nc, cnonce):
    """
    @param challenge: the parameters of a Digest challenge with C{qop=auth}
        (from L{challenges}).
    @param secret: the user's HA1 (hex) in the challenge's realm, for its algorithm.
    @param nc: how many requests this nonce signed, this one included.
    @return: the value of the Authorization header that signs a request to
        C{uri} (its target: path and query) with C{challenge}.
    """
    algorithm = challenge.get("algorithm", "MD5").upper()
    count = f"{nc:08x}"
    response = request_digest(algorithm, secret, challenge["nonce"], count, cnonce, "auth",
                              method, uri)
    fields = [f'username="{_quoted(username)}"', f'realm="{_quoted(challenge["realm"])}"',
              f'nonce="{_quoted(challenge["nonce"])}"', f'uri="{_quoted(uri)}"',
              f"algorithm={algorithm}", f'response="{response}"', "qop=auth", f"nc={count}",
              f'cnonce="{cnonce}"']
    if "opaque" in challenge:
        fields.append(f'opaque="{_quoted(challenge["opaque"])}"')
    return "Digest " + ", ".join(fields)


class DigestClient:
    """
    The client side of Digest for one account, sans-IO.

    Give it the WWW-Authenticate values of each 401 (L{challenged}): it keeps
    the challenge it chose and signs every request with it (L{authorization})
    until the next one, so that a server whose nonces stay good a while (ours:
    5 minutes) challenges once, not before every request.  When the nonce is
    stale, or the server forgot it, the server answers 401 again, and the
    caller gives the new challenge and sends again.

    A user store may hold one hash only of a user (MD5 or SHA-256): a server
    offering both cannot tell which it can check before the response comes.
    So the caller says which algorithms the server refused for a request,
    and the algorithm that worked last is taken first from then on.
    """

    def __init__(self, username, password):
        self.username = username
        self._password = password
        self._challenge = None
        self._secret = None
        self._count = 0

    @property
    def algorithm(self):
        """The algorithm of the challenge kept, or None before the first."""
        return None if self._challenge is None else self._challenge["algorithm"]

    def challenged(self, values, refused=()):
        """
        Take the best Digest challenge of a 401: one with C{qop=auth} and an
        algorithm we know, not in C{refused}; the kept challenge's algorithm
        first, then SHA-256 before MD5.

        @param values: the 401's WWW-Authenticate values.
        @param refused: algorithms the server refused the credentials of,
            for the request this 401 answers.
        @return: the algorithm of the challenge taken, or None if none fits
            (the kept challenge stays).
        """
        order = list(ALGORITHMS)
        usable = []
        for scheme, fields in challenges(values):
            algorithm = fields.get("algorithm", "MD5").upper()
            if scheme == "digest" and fields.get("nonce") and "realm" in fields \
                    and "auth" in _tokens(fields.get("qop", "")) \
                    and algorithm in ALGORITHMS and algorithm not in refused:
                usable.append({**fields, "algorithm": algorithm})
        if not usable:
            return None
        best = min(usable, key=lambda fields: (fields["algorithm"] != self.algorithm,
                                               order.index(fields["algorithm"])))
        self._challenge = best
        self._secret = ha1(best["algorithm"], self.username, best["realm"], self._password)
        self._count = 0
        return best["algorithm"]

    def authorization(self, method, uri):
        """
        @param uri: the request's target (path and query), as sent.
        @return: the Authorization value that signs the request with the
            kept challenge, its nonce counted once more; None before the
            first challenge.
        """
        if self._challenge is None:
            return None
        self._count += 1
        return digest_authorization(self._challenge, self.username, self._secret, method, uri,
                                    self._count, os.urandom(16).hex())


def _parameters(text):
    fields, position = {}, 0
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None or match.end() == position:
            raise DigestError("malformed Digest parameters")
        name, quoted, token = match.groups()
        fields[name.lower()] = _unquoted(quoted, token)
        position = match.end()
    return fields


def _unquoted(quoted, token):
    """The value of a parameter, written as a quoted string or as a token."""
    return re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token


def _tokens(text):
    """The items of a comma-separated list (C{qop="auth,auth-int"})."""
    return {item.strip().lower() for item in text.split(",")}


def _quoted(text):
    return text.replace("\\", "\\\\").replace('"', '\\"')
