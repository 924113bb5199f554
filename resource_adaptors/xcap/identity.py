"""
OMA XDM's asserted identity: a trusted client makes an XCAP request on
behalf of a user by naming the user's XUI in a header, as an aggregation
proxy does once it has authenticated the user (OMA-TS-XDM_Core)::

    X-XCAP-Asserted-Identity: "sip:joe@example.com"

The XCAP server honours it from an administrator only (a Digest user of
the store with C{admin = true}, or a trusted local client): the request is
then made for that XUI, authorized as that user's and no more.  From any
other client it is refused with 403: such a client may not speak for
anybody, and ignoring the header would act with the client's own rights
where it meant another's, which is harder to see.
"""

import re

from resource_adaptors.auth.users import User

HEADER = "X-XCAP-Asserted-Identity"

#: An XUI the header can carry: visible ASCII without the double quote and
#: the backslash, so that the quoted value needs no escapes.
_XUI = re.compile(r'[!#-\[\]-~]+')


class IdentityError(ValueError):
    """
    A header that cannot be honoured.

    @ivar status: the HTTP status to answer (400 or 403).
    @ivar reason: why, for the error body.
    """

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def asserting(xui):
    """
    @return: the value of the header that makes a request for C{xui}.
    @raise IdentityError: (400) C{xui} cannot be carried in it.
    """
    if not _XUI.fullmatch(xui):
        raise IdentityError(400, f"{xui!r} cannot be carried in {HEADER}")
    return f'"{xui}"'


def asserted_user(user, value):
    """
    @param user: the L{User} who sent the request.
    @param value: the value of its header, or None without one.
    @return: the L{User} the request is made for: C{user} without the
        header, else the asserted XUI as a user of its own (no administrator).
    @raise IdentityError: (403) C{user} is no administrator; (400) the value
        is no quoted XUI.
    """
    if value is None:
        return user
    if not user.admin:
        raise IdentityError(403, f"only an administrator may send {HEADER}")
    value = value.strip()
    xui = value[1:-1]
    if len(value) < 2 or value[0] != '"' or value[-1] != '"' or not _XUI.fullmatch(xui):
        raise IdentityError(400, f'{HEADER}: expected a quoted XUI ("sip:joe@example.com"), '
                                 f"not {value}")
    return User(xui, xui)
