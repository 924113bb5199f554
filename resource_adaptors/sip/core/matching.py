"""
Which SIP transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3),
and the branches that make client transactions unique.

A client transaction is keyed by its top Via branch, which we made, and its
CSeq method (L{client_key}).  A server transaction is keyed by the branch
and sent-by of the client's top Via when the branch carries the RFC 3261
magic cookie, and otherwise by the identifying headers RFC 2543 clients
left (L{server_key}, L{rfc2543_key}).
"""

from resource_adaptors.sip.core.randomness import random_hex

#: Branches that start with it were made unique by an RFC 3261 client.
MAGIC_COOKIE = "z9hG4bK"


def new_branch():
    """A branch for a new client transaction: the magic cookie and 96
    random bits, so that nobody can guess it and forge responses."""
    return MAGIC_COOKIE + random_hex(12)


def client_key(message):
    """
    The key of the client transaction a message belongs to: the top Via
    branch (ours, so unique) and the CSeq method, which tells an INVITE
    from the CANCEL that shares its branch (§17.1.3).
    """
    return message.via[0].branch, message.cseq.method


def server_key(request, method):
    """
    The key of the server transaction C{request} belongs to, read as if its
    method were C{method}: the ACK of a non-2xx and a CANCEL name their
    INVITE that way (§17.2.3, §9.2).

    A branch with the magic cookie is unique per client, so it and the
    sent-by that scopes it make the key.  Without it (RFC 2543 clients) the
    request's identifying headers do, see L{rfc2543_key}.
    """
    via = request.via[0]
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):     # is_rfc3261_branch
        return branch, via.host.lower(), via.port, method
    return rfc2543_key(request, method, request.to.tag)


def is_rfc3261_branch(branch):
    """Whether a Via branch was made unique by an RFC 3261 client."""
    return branch is not None and branch.startswith(MAGIC_COOKIE)


def rfc2543_key(request, method, to_tag):
    """
    The RFC 2543 key: Request-URI, To tag, From tag, Call-ID, CSeq number
    and top Via.  An ACK carries the To tag of the response it acknowledges,
    which the INVITE did not have: it is matched with C{to_tag=None}, and
    the transaction's own To tag then checked (§17.2.3).
    """
    return (str(request.uri), to_tag, request.from_.tag, request.call_id, request.cseq.number,
            method, str(request.via[0]))
