"""
The user store: who may log in, with what secret, as which XCAP user.

It is a TOML file (C{--users FILE}); a user is a table under C{users} named
by the Digest username::

    realm = "example.com"

    [users."joe@example.com"]
    password = "secret"              # or the HA1 hashes instead:
    # ha1-md5 = "..."                # MD5("joe@example.com:example.com:secret")
    # ha1-sha256 = "..."             # SHA-256 of the same
    xui = "sip:joe@example.com"      # default: "sip:" + the username
    admin = false                    # an administrator reads and writes every document

A user with only C{ha1-md5} can log in with MD5 only, and the same for
SHA-256; a password serves both.  The file is read once, at start.
"""

import hashlib
import tomllib
from dataclasses import dataclass, field

from twisted.cred.portal import IRealm
from zope.interface import Interface, implementer

from slee.errors import ConfigurationError

#: Digest algorithm name -> its hash function (RFC 7616 §3.3).
ALGORITHMS = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}

_HA1_KEYS = {"ha1-md5": "MD5", "ha1-sha256": "SHA-256"}


class IUser(Interface):
    """The avatar of a logged-in user: a L{User}."""


@implementer(IUser)
@dataclass(frozen=True)
class User:
    """
    @ivar name: the Digest username.
    @ivar xui: the XCAP user id whose documents are this user's.
    @ivar admin: whether it may read and write every document.
    @ivar ha1: Digest algorithm -> HA1 (hex) in the store's realm.
    """

    name: str
    xui: str
    admin: bool = False
    ha1: dict = field(default_factory=dict, compare=False, repr=False)


#: Who a request is when it is trusted without logging in (the development
#: mode that trusts the local host): an administrator.
TRUSTED = User("(trusted)", "", admin=True)


def ha1(algorithm, username, realm, password):
    """@return: the Digest HA1 of a password (RFC 7616 §3.4.2), in hex."""
    return ALGORITHMS[algorithm](f"{username}:{realm}:{password}".encode("utf-8")).hexdigest()


class UserStore:
    """The users of one realm, by Digest username."""

    def __init__(self, realm, users=()):
        self.realm = realm
        self._users = {user.name: user for user in users}

    def get(self, name):
        """@return: the L{User} named C{name}, or None."""
        return self._users.get(name)

    def with_xui(self, xui):
        """@return: the L{User} whose XUI is C{xui} (the first, by name), or None."""
        return next((user for _, user in sorted(self._users.items()) if user.xui == xui), None)

    def __len__(self):
        return len(self._users)

    @classmethod
    def load(cls, path):
        """
        @return: the store in the TOML file at C{path}.
        @raise ConfigurationError: naming the file and what is wrong.
        """
        try:
            with open(path, "rb") as file:
                data = tomllib.load(file)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(f"{path}: {error}") from None
        realm = data.get("realm")
        if not isinstance(realm, str) or not realm:
            raise ConfigurationError(f"{path}: realm: a non-empty string is required")
        users = data.get("users", {})
        if not isinstance(users, dict):
            raise ConfigurationError(f"{path}: users: expected tables of users")
        return cls(realm, [_user(path, realm, name, entry) for name, entry in users.items()])


def _user(path, realm, name, entry):
    where = f"{path}: users.{name!r}"
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: expected a table")
    unknown = set(entry) - {"password", "xui", "admin", *_HA1_KEYS}
    if unknown:
        raise ConfigurationError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    hashes = {}
    password = entry.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise ConfigurationError(f"{where}: password: expected a string")
        hashes = {algorithm: ha1(algorithm, name, realm, password) for algorithm in ALGORITHMS}
    for key, algorithm in _HA1_KEYS.items():
        value = entry.get(key)
        if value is not None:
            size = ALGORITHMS[algorithm]().digest_size * 2
            if not isinstance(value, str) or len(value) != size \
                    or value.strip("0123456789abcdefABCDEF"):
                raise ConfigurationError(f"{where}: {key}: expected {size} hex digits")
            hashes[algorithm] = value.lower()
    if not hashes:
        raise ConfigurationError(f"{where}: a password or an HA1 hash is required")
    xui = entry.get("xui", f"sip:{name}")
    admin = entry.get("admin", False)
    if not isinstance(xui, str) or not xui or not isinstance(admin, bool):
        raise ConfigurationError(f"{where}: xui must be a string and admin a boolean")
    return User(name, xui, admin, hashes)


@implementer(IRealm)
class UserRealm:
    """The twisted.cred realm of a store: a logged-in username's L{User}."""

    def __init__(self, store):
        self._store = store

    def requestAvatar(self, avatarId, mind, *interfaces):
        if IUser not in interfaces:
            raise NotImplementedError("only IUser avatars")
        return IUser, self._store.get(avatarId), lambda: None
