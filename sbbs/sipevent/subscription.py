"""
A subscription seen from the notifier (RFC 6665 §4.2), sans-IO: its state,
the expiry it is granted, the body type it is sent, and the
Subscription-State value each NOTIFY carries.

Nothing here sends or keeps time: the notifier SBB (L{sbbs.sipevent.notifier})
stores a L{Subscription} in a CMP field and gives it the clock's time.
"""

import enum
from dataclasses import dataclass, field, replace

from slee.compact import Compact


class State(enum.Enum):
    """The subscription states of RFC 6665 §4.1.3, as Subscription-State writes them."""

    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


class Reason:
    """The C{reason} values of a terminated Subscription-State (RFC 6665 §4.1.3)."""

    DEACTIVATED = "deactivated"
    PROBATION = "probation"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    GIVEUP = "giveup"
    NORESOURCE = "noresource"
    INVARIANT = "invariant"


@dataclass(frozen=True)
class Refusal:
    """
    A SUBSCRIBE or PUBLISH refused: the status, reason phrase and extra
    headers of the answer.
    """

    status: int
    reason: str
    headers: tuple = ()


@dataclass(frozen=True)
class ExpiryPolicy:
    """
    How long subscriptions of a package may last, in seconds.

    @ivar default: granted to a SUBSCRIBE without Expires.
    @ivar minimum: a shorter non-zero Expires is refused with 423 and this
        as Min-Expires (a subscription refreshed too often costs as much as
        a flood).
    @ivar maximum: a longer Expires is cut down to it (RFC 6665 §4.2.1.1:
        the notifier may shorten, never lengthen).
    """

    default: int = 3600
    minimum: int = 60
    maximum: int = 86400

    def __post_init__(self):
        if not 0 < self.minimum <= self.default <= self.maximum:
            raise ValueError("expiry policy: need 0 < minimum <= default <= maximum, "
                             f"not {self.minimum}, {self.default}, {self.maximum}")

    def grant(self, requested):
        """
        @param requested: the SUBSCRIBE's Expires, or None.
        @return: the seconds granted (0 for a fetch or an unsubscribe), or
            None when C{requested} is too brief (answer 423).
        """
        if requested is None:
            return self.default
        if requested == 0:
            return 0
        if requested < self.minimum:
            return None
        return min(requested, self.maximum)


def negotiate(accept, offered):
    """
    Choose the body type of a subscription's NOTIFYs (RFC 6665 §4.1.2.1,
    §4.2.1.1): the SUBSCRIBE's Accept, or the package's first type when it
    has none (many clients send no Accept for presence).

    @param accept: the L{ContentType} values of the Accept header (an empty
        list: the header is absent); C{q} parameters order them, C{*/*}
        and C{type/*} match.
    @param offered: the types the package can send, best first.
    @return: the chosen type, or None if none is acceptable (406).
    """
    if not accept:
        return offered[0]
    best, best_q = None, 0.0
    for wanted in accept:
        q = _quality(wanted)
        if q <= best_q:
            continue
        for mime in offered:
            if _matches(wanted, mime):
                best, best_q = mime, q
                break
    return best


def _quality(media_type):
    try:
        q = float(media_type.params.get("q", "1"))
    except ValueError:
        return 0.0
    return q if 0.0 <= q <= 1.0 else 0.0


def _matches(wanted, mime):
    type_, subtype = mime.split("/")
    return ((wanted.type == "*" or wanted.type.lower() == type_)
            and (wanted.subtype == "*" or wanted.subtype.lower() == subtype))


@dataclass(frozen=True)
class SubscribeRequest:
    """
    A SUBSCRIBE, from SIP or from a service's subscription client: what a
    notifier and its package look at, wherever it came from.

    @ivar package: the event package; C{event_id} its C{id}, and
        C{parameters} the Event header's other parameters.
    @ivar subscriber: the watcher's address of record; C{resource}, the
        resource's (L{sbbs.sipevent.addresses.address_of_record}).
    @ivar identity: who the SIP RA says the watcher is (the event's
        C{identity}, a L{resource_adaptors.auth.users.User}: C{subscriber}
        is its address of record), or None for a service's subscription,
        made for C{subscriber}.
    @ivar host: the address it came from, or None for a service's.
    @ivar expires: the Expires asked for, or None.
    @ivar accept: the L{ContentType}s of its Accept (empty: none given).
    @ivar body: its body; C{content_type}, the body's type (lower case) or None.
    @ivar uri: its Request-URI as written, parameters and all (or the
        notifier a service named), for packages that tell resources apart
        by more than their address of record (resource lists).
    @ivar supported: the option tags of its Supported; C{require}, of its
        Require (for a service's, none).
    @ivar disposition: its body's Content-Disposition (lower case, without
        parameters), and C{content_encoding}, its Content-Encoding, or None.
    """

    package: str
    event_id: str | None
    parameters: dict
    subscriber: str
    resource: str
    identity: object
    host: str | None
    expires: int | None
    accept: tuple = ()
    body: bytes = b""
    content_type: str | None = None
    uri: str | None = None
    supported: tuple = ()
    require: tuple = ()
    disposition: str | None = None
    content_encoding: str | None = None


@dataclass(frozen=True)
class Subscription(Compact):
    """
    One subscription, as its notifier keeps it.  Immutable: every change
    makes a new one (L{dataclasses.replace}), which is what a CMP field
    needs to notice it.

    @ivar package: the event package (C{presence}, C{xcap-diff}).
    @ivar event_id: the Event header's C{id}, or None.
    @ivar subscriber: the watcher's address of record (of the SUBSCRIBE's
        From, L{sbbs.sipevent.addresses.address_of_record}).
    @ivar resource: the address of record subscribed to (of the Request-URI).
    @ivar content_type: the body type its NOTIFYs carry.
    @ivar state: a L{State}.
    @ivar expires_at: when it ends unless refreshed (clock seconds).
    @ivar reason: why it was terminated, or None.
    @ivar parameters: the Event header's other parameters (the package's
        options, like xcap-diff's C{diff-processing}), name -> value.
    """

    package: str
    event_id: str | None
    subscriber: str
    resource: str
    content_type: str
    state: State
    expires_at: float
    reason: str | None = None
    parameters: dict = field(default_factory=dict)

    recurring = False       # each is made once, and holds a dict

    def remaining(self, now):
        """@return: the whole seconds left before it expires, at least 0."""
        return max(0, int(self.expires_at - now + 0.5))

    def refreshed(self, now, seconds):
        """@return: this subscription, ending C{seconds} after C{now}."""
        return replace(self, expires_at=now + seconds)

    def with_state(self, state, reason=None):
        return replace(self, state=state, reason=reason)

    def subscription_state(self, now, retry_after=None):
        """
        @return: the Subscription-State value of a NOTIFY sent now
            (RFC 6665 §4.2.2): C{active;expires=N}, C{pending;expires=N} or
            C{terminated;reason=R}, with C{retry-after} when the watcher
            may come back.
        """
        if self.state is State.TERMINATED:
            value = "terminated"
            if self.reason:
                value += f";reason={self.reason}"
            if retry_after is not None:
                value += f";retry-after={int(retry_after)}"
            return value
        return f"{self.state.value};expires={self.remaining(now)}"

    def event_header(self):
        """@return: the Event header value of its NOTIFYs: the package and the C{id}."""
        return self.package if self.event_id is None else f"{self.package};id={self.event_id}"
