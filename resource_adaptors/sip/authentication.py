"""
Who a SIP request comes from, decided once at the door (RFC 3261 §22,
RFC 8760, RFC 3325): the SIP RA asks its L{Gate}, and services read the
answer as the request event's C{identity}, never From or
P-Asserted-Identity.

The gate works in one of three modes (the RA property C{auth}, C{--sip-auth}):

- C{digest}: a request must carry a Digest response (SHA-256 or MD5,
  C{qop=auth}) of a user of the store (L{resource_adaptors.auth.users}),
  checked by L{resource_adaptors.auth.digest} as the XCAP server's are:
  stateless HMAC nonces, a count (C{nc}) that must grow, C{stale=true} for
  an old nonce.  Else it gets 401 and the challenges (407 with
  Proxy-Authenticate when the gate stands behind a proxy, C{proxy}).
  The identity is the store's L{User}.
- C{trust-localhost}, for development and tests: a request from the loopback
  interface is taken as coming from its From (an ordinary user); any other
  is refused with 403.
- C{none}: every request is taken as coming from its From, an ordinary user.

In every mode a peer named in C{trusted} (a proxy or CSCF in front, which
authenticates users itself) is believed: the user its
P-Asserted-Identity names is the identity.  From anyone else that header is
removed before any service sees the request.

ACK and CANCEL cannot be challenged (RFC 3261 §22.1) and OPTIONS is
answered to anyone: they pass with no identity.
"""

import ipaddress

from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import Portal
from twisted.internet import defer

from resource_adaptors.auth.digest import DigestAuthority, DigestError, UserStoreChecker
from resource_adaptors.auth.users import IUser, User, UserRealm
from resource_adaptors.sip.core.headers import ASSERTED_IDENTITY, NameAddr
from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.uri import SipURI, parse_uri

MODES = ("digest", "trust-localhost", "none")
#: Requests that pass without an identity.
UNCHALLENGED = frozenset(("ACK", "CANCEL", "OPTIONS"))
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class Refused(Exception):
    """
    A request the gate turns away.

    @ivar answer: (status, reason, headers) of the response it gets.
    """

    def __init__(self, status, reason, headers=()):
        super().__init__(status, reason)
        self.answer = (status, reason, list(headers))


def trusted_network(text):
    """
    @return: the L{ipaddress} network of a trusted peer given as an address
        (C{192.0.2.7}) or a network (C{10.0.0.0/8}).
    @raise ValueError: for anything else, with a message.
    """
    try:
        return ipaddress.ip_network(str(text).strip().strip("[]"), strict=False)
    except ValueError:
        raise ValueError(f"expected an IP address or network such as 192.0.2.7, "
                         f"not {text!r}") from None


def _address(host):
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class Gate:
    """
    Decides who requests come from (see the module docstring).

    @param mode: one of L{MODES}.
    @param store: the L{resource_adaptors.auth.users.UserStore}: who may log
        in with C{digest}, and who an asserted or trusted address is.
    @param trusted: the networks (L{trusted_network}) of trusted peers.
    @param proxy: whether to challenge as a proxy (407) rather than as the
        server the request is for (401).
    @param clock: what tells the time nonces are made and checked at.
    @param algorithms: the Digest algorithms challenges offer, in order
        (None: all, best first).
    """

    def __init__(self, mode, store, trusted, proxy, clock, algorithms=None):
        self.mode = mode
        self.store = store
        self._trusted = tuple(trusted)
        self._clock = clock
        self._authority = DigestAuthority(store.realm, algorithms=algorithms)
        self._portal = Portal(UserRealm(store), [UserStoreChecker(store)])
        if proxy:
            self._challenge_status = (407, "Proxy Authentication Required")
            self._challenge_header, self._credentials_header = \
                "Proxy-Authenticate", "Proxy-Authorization"
        else:
            self._challenge_status = (401, "Unauthorized")
            self._challenge_header, self._credentials_header = \
                "WWW-Authenticate", "Authorization"

    def is_trusted(self, host):
        """Whether C{host}, the address a request came from, is a trusted peer's."""
        address = _address(host)
        return address is not None and any(address in network for network in self._trusted)

    def screen(self, request, peer):
        """
        Remove the P-Asserted-Identity of a request from an untrusted peer.

        @return: the value of the one a trusted peer sent, or None.
        """
        if self.is_trusted(peer.host):
            return request.headers.get(ASSERTED_IDENTITY)
        if ASSERTED_IDENTITY in request.headers:
            request.headers.remove(ASSERTED_IDENTITY)
        return None

    def identify(self, request, peer):
        """
        Decide who C{request}, from C{peer} and outside any dialog, comes
        from; a P-Asserted-Identity from an untrusted peer is removed from it
        on the way (L{screen}).

        @return: a L{Deferred} firing with the L{User} it comes from (None
            for a request that needs no identity: L{UNCHALLENGED}), or
            failing with L{Refused}.
        """
        asserted = self.screen(request, peer)
        if request.method in UNCHALLENGED:
            return defer.succeed(None)
        if asserted:
            return _settled(lambda: self._user(_asserted_address(asserted)))
        if self.mode == "digest":
            return self._digest(request)
        if self.mode == "trust-localhost":
            address = _address(peer.host)
            if address is None or not any(address in network for network in _LOOPBACK):
                return defer.fail(Refused(403, "Only local clients are trusted"))
        return _settled(lambda: User(*[_from_address(request)] * 2))

    def _user(self, address):
        """The store's user of C{address}, else an ordinary user of that address."""
        return self.store.with_xui(address) or User(address, address)

    def _digest(self, request):
        authorization = request.headers.get(self._credentials_header)
        if not authorization:
            return defer.fail(self._challenge("Authentication required"))
        try:
            credentials = self._authority.response(
                authorization, request.method, request.uri, self._clock.seconds(),
                same_target=lambda signed: _same_uri(signed, request.uri))
        except DigestError as error:
            return defer.fail(self._challenge(f"Bad credentials: {error}"))

        def refused(failure):
            failure.trap(UnauthorizedLogin)
            raise self._challenge("Wrong credentials", stale=credentials.stale)
        login = self._portal.login(credentials, None, IUser)
        return login.addCallbacks(lambda result: result[1], refused)

    def _challenge(self, reason, stale=False):
        status, _ = self._challenge_status
        challenges = self._authority.challenges(self._clock.seconds(), stale)
        return Refused(status, reason, [(self._challenge_header, value) for value in challenges])


def _settled(make_identity):
    """A fired Deferred of what C{make_identity()} returns, failed with 400 if an address is bad."""
    try:
        return defer.succeed(make_identity())
    except ParseError:
        return defer.fail(Refused(400, f"Malformed {ASSERTED_IDENTITY}"))


def _asserted_address(value):
    """The address of a P-Asserted-Identity (C{"Joe" <sip:joe@x>}, the first one)."""
    return _address_of(NameAddr.parse(value.split(",")[0].strip()).uri)


def _from_address(request):
    return _address_of(request.from_.uri)


def _address_of(uri):
    """
    The user a URI names, as a user store writes an XUI: C{sip:joe@host},
    without port and parameters (a tel URI as it is).
    """
    if isinstance(uri, SipURI):
        return str(SipURI(scheme=uri.scheme, user=uri.user, host=uri.host.lower()))
    return str(uri)


def _same_uri(signed, uri):
    """Whether the C{uri} a Digest response signs is the Request-URI (RFC 3261 §22.4)."""
    try:
        return parse_uri(signed).equivalent(uri)
    except (ParseError, AttributeError):
        return False
