"""
Subscriptions of services inside the container (the subscription client,
L{sbbs.sipevent.subscription_client}): the events that stand for SUBSCRIBE,
its answer and NOTIFY between a client and a notifier, so that a notifier
serves a service exactly as it serves a SIP watcher, dialog aside.

A subscription is a null activity the client makes and stays attached to:
the client fires L{INTERNAL_SUBSCRIBE} on it (the first makes the
notifier's entity, which attaches; later ones refresh or, with expires 0,
end it), and the notifier fires L{INTERNAL_ANSWER} and L{INTERNAL_NOTIFY}
back on it.
"""

from dataclasses import dataclass

from slee.events import EventType

#: Declared by the unit deployables/sipevent.
INTERNAL_SUBSCRIBE = EventType("InternalSubscribe", "slee", "1.0")
INTERNAL_ANSWER = EventType("InternalSubscribeAnswer", "slee", "1.0")
INTERNAL_NOTIFY = EventType("InternalNotify", "slee", "1.0")


@dataclass(frozen=True, slots=True)
class InternalSubscribeEvent:
    """@ivar request: the L{sbbs.sipevent.subscription.SubscribeRequest}."""

    request: object


@dataclass(frozen=True, slots=True)
class InternalAnswerEvent:
    """The answer to an internal SUBSCRIBE: a SIP status, its reason, the seconds granted."""

    status: int
    reason: str
    expires: int | None


@dataclass(frozen=True, slots=True)
class InternalNotifyEvent:
    """
    An internal NOTIFY: the subscription's state (C{active}, C{pending},
    C{terminated}), the reason it was terminated, and the body.
    """

    state: str
    reason: str | None
    body: bytes
    content_type: str | None
