"""
The subscription client: how a service subscribes to an event package of
this container (Mobicents' subscription client interface, in Python).

A service makes L{SubscriptionClientSbb} a child (its unit declares it,
its SBB a C{ChildRelation} to it and L{ISubscriptionClientParent} in its
local interface), calls L{ISubscriptionClient} methods, and hears of each
outcome later, in a transaction of its own::

    class Buddy(Sbb):
        local_interface = ISubscriptionClientParent
        subscriptions = ChildRelation(SubscriptionClientSbb)

        def watch(self):
            client = self.subscriptions.get_or_create()
            client.subscribe("sip:me@example.com", "sip:alice@example.com", "presence",
                             "alice", expires=3600)

        def notify_event(self, subscriber, notifier, event_package, subscription_id,
                         termination_reason, status, content, content_type):
            ...

The notifier serves such a subscription exactly as a SIP one (it is
authorized by the notifier's rules, sent what the watcher may see, and
expires unless refreshed), through the events of L{sbbs.sipevent.internal}
instead of a dialog.  Subscription ids are the parent's own: two services,
or two children, never see each other's.
"""

from zope.interface import Interface, implementer

from resource_adaptors.sip.core.headers import ContentType
from sbbs.sipevent.internal import (
    INTERNAL_ANSWER, INTERNAL_NOTIFY, INTERNAL_SUBSCRIBE, InternalSubscribeEvent)
from sbbs.sipevent.notifier import notifier_for
from sbbs.sipevent.subscription import SubscribeRequest
from slee.sbb import CmpField, Sbb, handler

#: Subscriptions one client child may hold.
MAX_SUBSCRIPTIONS = 10000


class ISubscriptionClient(Interface):
    """What a service asks of its subscription client child."""

    def subscribe(subscriber, notifier, event_package, subscription_id, expires,
                  content=b"", content_type=None, accept=()):
        """
        Subscribe C{subscriber} (an address of record) to C{notifier} (the
        resource) for C{event_package}, for C{expires} seconds (0: fetch
        the state once); answered by C{subscribe_ok} or C{subscribe_error}.
        """

    def resubscribe(subscriber, notifier, event_package, subscription_id, expires):
        """Refresh a subscription; answered by C{resubscribe_ok} or C{resubscribe_error}."""

    def unsubscribe(subscriber, notifier, event_package, subscription_id):
        """End a subscription; answered by C{unsubscribe_ok} or C{unsubscribe_error}."""


class ISubscriptionClientParent(Interface):
    """What the parent of a subscription client is told (in its own local interface)."""

    def subscribe_ok(subscriber, notifier, event_package, subscription_id, expires, status):
        """The notifier accepted: C{status} 200 (active) or 202 (pending), C{expires} granted."""

    def subscribe_error(subscriber, notifier, event_package, subscription_id, error):
        """The notifier refused: C{error} is the SIP status (403, 489...)."""

    def resubscribe_ok(subscriber, notifier, event_package, subscription_id, expires):
        """A refresh was accepted."""

    def resubscribe_error(subscriber, notifier, event_package, subscription_id, error):
        """A refresh was refused (481: the subscription is gone)."""

    def unsubscribe_ok(subscriber, notifier, event_package, subscription_id):
        """The subscription ended as asked."""

    def unsubscribe_error(subscriber, notifier, event_package, subscription_id, error):
        """An unsubscribe was refused (481: there was none)."""

    def notify_event(subscriber, notifier, event_package, subscription_id, termination_reason,
                     status, content, content_type):
        """
        A NOTIFY: C{status} is the subscription's state (C{active},
        C{pending}, C{terminated}, with C{termination_reason} then), and
        C{content} the state sent (bytes, may be empty) of C{content_type}.
        """


class SubscriptionClientParent:
    """
    A base for the parents of a subscription client: the answers to an
    unsubscribe, which most parents have nothing to do with (the
    subscription is over either way, or was already), taken as they come.
    A parent that cares overrides them.
    """

    def unsubscribe_ok(self, subscriber, notifier, event_package, subscription_id):
        """The subscription ended as asked: nothing to do."""

    def unsubscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        """There was no subscription to end (481): nothing to do."""


@implementer(ISubscriptionClient)
class SubscriptionClientSbb(Sbb):
    """The child that carries a service's subscriptions; see the module docstring."""

    local_interface = ISubscriptionClient

    #: (subscriber, notifier, package, id) -> (a reference to its activity,
    #: the operation waiting for its answer or None).
    subscriptions = CmpField(default_factory=dict)

    def subscribe(self, subscriber, notifier, event_package, subscription_id, expires,
                  content=b"", content_type=None, accept=()):
        key = (subscriber, notifier, event_package, subscription_id)
        if notifier_for(self.context, event_package) is None:
            self.context.parent.subscribe_error(*key, 489)     # Bad Event
            return
        if key in self.subscriptions:
            self.context.parent.subscribe_error(*key, 409)     # the parent's id is taken
            return
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            self.context.parent.subscribe_error(*key, 503)
            return
        activity = self.context.create_null_activity()
        activity.attach(self.context.sbb_local_object)
        self.subscriptions = {**self.subscriptions,
                              key: (activity.reference, "subscribe")}
        self._send(activity, key, expires, content, content_type, accept)

    def resubscribe(self, subscriber, notifier, event_package, subscription_id, expires):
        self._again("resubscribe", (subscriber, notifier, event_package, subscription_id),
                    expires)

    def unsubscribe(self, subscriber, notifier, event_package, subscription_id):
        self._again("unsubscribe", (subscriber, notifier, event_package, subscription_id), 0)

    def _again(self, operation, key, expires):
        held = self.subscriptions.get(key)
        if held is None:
            getattr(self.context.parent, f"{operation}_error")(*key, 481)
            return
        self.subscriptions = {**self.subscriptions, key: (held[0], operation)}
        self._send(self.context.resolve(held[0]), key, expires)

    def _send(self, activity, key, expires, content=b"", content_type=None, accept=()):
        subscriber, notifier, package, subscription_id = key
        request = SubscribeRequest(
            package=package, event_id=None, parameters={}, subscriber=subscriber,
            resource=notifier, identity=None, host=None, expires=expires,
            accept=tuple(ContentType.parse(text) for text in accept), body=content,
            content_type=content_type)
        self.context.fire_event(activity, INTERNAL_SUBSCRIBE, InternalSubscribeEvent(request))

    # -- the notifier's answers ---------------------------------------------------

    @handler(INTERNAL_ANSWER)
    def on_answer(self, event, aci):
        key, (activity, operation) = self._held(aci)
        if operation is None:
            return
        parent = self.context.parent
        accepted = event.status < 300
        if operation == "subscribe" and accepted:
            parent.subscribe_ok(*key, event.expires, event.status)
        elif operation == "resubscribe" and accepted:
            parent.resubscribe_ok(*key, event.expires)
        elif operation == "unsubscribe" and accepted:
            parent.unsubscribe_ok(*key)
        else:
            getattr(parent, f"{operation}_error")(*key, event.status)
        if accepted:
            self.subscriptions = {**self.subscriptions, key: (activity, None)}
        elif operation != "resubscribe":
            self._forget(key, aci)

    @handler(INTERNAL_NOTIFY)
    def on_notify(self, event, aci):
        key, _ = self._held(aci)
        self.context.parent.notify_event(*key, event.reason, event.state, event.body,
                                         event.content_type)
        if event.state == "terminated":
            self._forget(key, aci)

    def _held(self, aci):
        """@return: the key of the subscription on activity C{aci}, and what is held for it."""
        reference = aci.reference
        for key, held in self.subscriptions.items():
            if held[0] == reference:
                return key, held
        raise KeyError(f"no subscription on {aci!r}")

    def _forget(self, key, aci):
        subscriptions = dict(self.subscriptions)
        del subscriptions[key]
        self.subscriptions = subscriptions
        aci.detach(self.context.sbb_local_object)
        aci.activity.end_activity()
