"""
A presence bot: it publishes its own presence, watches other
presentities, and says in its note what it sees of them, so that anyone
watching the bot sees them too.

One entity does it all (its convergence name is constant).  It uses the
presence server's internal interfaces as any service would: a
publication client child, whose calls answer at once, and a subscription
client child, whose answers come to this SBB's local interface later.
"""

import re
from xml.sax.saxutils import escape

from zope.interface import implementer

from sbbs.sipevent.publication_client import PublicationClientSbb
from sbbs.sipevent.subscription_client import (
    ISubscriptionClientParent, SubscriptionClientParent, SubscriptionClientSbb)
from slee.events import SERVICE_STARTED, TIMER
from slee.resources import Property
from slee.sbb import ChildRelation, CmpField, Sbb, handler

PIDF = "application/pidf+xml"
#: How long its publication and subscriptions last, and how often it refreshes them.
LIFETIME, REFRESH = 3600, 3000


def _aors(value):
    return None if all(uri.startswith(("sip:", "sips:")) for uri in value.split()) else \
        "expected SIP URIs separated by spaces"


@implementer(ISubscriptionClientParent)
class PresenceBotSbb(SubscriptionClientParent, Sbb):
    local_interface = ISubscriptionClientParent
    singleton = True
    environment = {"bot": Property(str, "sip:bot@example.com", _aors),
                   "watch": Property(str, "", _aors)}

    publications = ChildRelation(PublicationClientSbb)
    subscriptions = ChildRelation(SubscriptionClientSbb)

    etag = CmpField()
    #: watched presentity -> what the bot last heard of it.
    seen = CmpField(default_factory=dict)

    @handler(SERVICE_STARTED, initial=True)
    def on_started(self, event, aci):
        aci.detach(self.context.sbb_local_object)
        home = self.context.naming.lookup_or_create("presence-bot")
        home.attach(self.context.sbb_local_object)
        self.context.timers.set_timer(home, REFRESH, period=REFRESH)
        client = self.subscriptions.get_or_create()
        for presentity in self.context.env["watch"].split():
            self.seen = {**self.seen, presentity: "unknown"}
            client.subscribe(self.context.env["bot"], presentity, "presence", presentity,
                             LIFETIME)
        self._publish()

    @handler(TIMER)
    def on_refresh(self, event, aci):
        publisher = self.publications.get_or_create()
        if self.etag is not None:
            result = publisher.refresh_publication(self.context.env["bot"], "presence",
                                                   self.etag, LIFETIME)
            self.etag = result.etag
        client = self.subscriptions.get_or_create()
        for presentity in self.seen:
            client.resubscribe(self.context.env["bot"], presentity, "presence", presentity,
                               LIFETIME)

    # -- what the subscription client tells ------------------------------------------

    def notify_event(self, subscriber, notifier, event_package, subscription_id,
                     termination_reason, status, content, content_type):
        basic = re.search(rb"<(?:\w+:)?basic>\s*(\w+)\s*<", content or b"")
        heard = basic.group(1).decode() if basic else status
        if self.seen.get(notifier) != heard:
            self.seen = {**self.seen, notifier: heard}
            self._publish()

    def subscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires,
                     status):
        self.context.tracer.info("watching {who} ({status})", who=notifier, status=status)

    def subscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self.context.tracer.warn("cannot watch {who}: {error}", who=notifier, error=error)

    def resubscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires):
        pass

    def resubscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self.context.tracer.warn("lost {who}: {error}", who=notifier, error=error)

    # -- its own presence ------------------------------------------------------------

    def _publish(self):
        bot = self.context.env["bot"]
        note = "; ".join(f"{who}: {what}" for who, what in sorted(self.seen.items()))
        document = (f'<?xml version="1.0" encoding="UTF-8"?>'
                    f'<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="{bot}">'
                    f'<tuple id="bot"><status><basic>open</basic></status></tuple>'
                    f'<note>{escape(note or "watching nobody")}</note></presence>').encode()
        publisher = self.publications.get_or_create()
        if self.etag is None:
            result = publisher.new_publication(bot, "presence", document, PIDF, LIFETIME)
        else:
            result = publisher.modify_publication(bot, "presence", self.etag, document, PIDF,
                                                  LIFETIME)
        self.etag = result.etag if result.status == 200 else None
