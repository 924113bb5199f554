"""The parent of both clients: does what a probe Ping says, journals what it hears."""

from zope.interface import implementer

from probe_unit import PING
from sbbs.sipevent.publication_client import PublicationClientSbb
from sbbs.sipevent.subscription_client import ISubscriptionClientParent, SubscriptionClientSbb
from slee.sbb import ChildRelation, Sbb, handler
from presenceclients_unit import JOURNAL


@implementer(ISubscriptionClientParent)
class Parent(Sbb):
    local_interface = ISubscriptionClientParent
    singleton = True
    publications = ChildRelation(PublicationClientSbb)
    subscriptions = ChildRelation(SubscriptionClientSbb)

    @handler(PING, initial=True)
    def on_ping(self, event, aci):
        operation, arguments = event["op"], event["args"]
        if operation.endswith("publication"):
            client = self.publications.get_or_create()
            JOURNAL.append((operation, getattr(client, operation)(*arguments)))
        else:
            getattr(self.subscriptions.get_or_create(), operation)(*arguments)

    def _heard(name):
        def heard(self, *arguments):
            JOURNAL.append((name, *arguments))
        heard.__name__ = name
        return heard

    subscribe_ok = _heard("subscribe_ok")
    subscribe_error = _heard("subscribe_error")
    resubscribe_ok = _heard("resubscribe_ok")
    resubscribe_error = _heard("resubscribe_error")
    unsubscribe_ok = _heard("unsubscribe_ok")
    unsubscribe_error = _heard("unsubscribe_error")
    notify_event = _heard("notify_event")
