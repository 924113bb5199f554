"""The parent of a subscriber child: does what a probe Ping says, journals what it hears."""

from zope.interface import implementer

from probe_unit import PING
from sbbs.sipevent.subscriber import ISubscriberParent, SubscriberSbb
from slee.sbb import ChildRelation, Sbb, Select, handler
from subscriberparent_unit import JOURNAL


@implementer(ISubscriberParent)
class Parent(Sbb):
    local_interface = ISubscriberParent
    subscribers = ChildRelation(SubscriberSbb)

    @handler(PING, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_ping(self, event, aci):
        if event["op"] == "start":
            self.subscribers.create().start(event["notifier"], "sip:watcher@example.com",
                                            "test", expires=event.get("expires", 600))
        else:
            for child in self.subscribers:
                child.stop()

    def notified(self, child, state, content_type, body):
        JOURNAL.append(("notified", state, content_type, body))

    def subscription_ended(self, child, reason):
        JOURNAL.append(("ended", reason))
        child.remove()
