"""
The presence.winfo event package (RFC 3857, RFC 3858): a presentity
watching who watches it, so that it can authorize the watchers waiting
(C{pending}) by writing its pres-rules.

Only the presentity itself may subscribe (others get 403).  The first
NOTIFY, and the one after each refresh, holds every live watcher
(C{state="full"}); each change of a watcher then makes a partial one with
the watchers that changed since the last NOTIFY.  Every document of a
subscription has the next version number, from 0.
"""

from sbbs.presence.watchers import WATCHERS_CHANGED, watchers_of, winfo_name
from sbbs.presence.winfo import WINFO_TYPE, watcherinfo_document
from sbbs.sipevent.notifier import NotifierSbb, Refusal
from sbbs.sipevent.subscription import ExpiryPolicy, State
from slee.sbb import CmpField, handler


class WinfoNotifierSbb(NotifierSbb):
    """One presentity watching its watchers."""

    package = "presence.winfo"
    content_types = (WINFO_TYPE,)
    expiry = ExpiryPolicy(default=3600, minimum=60, maximum=86400)

    #: The version number of the next document.
    version = CmpField(default=0)
    #: watcher id -> the L{Watcher} as it changed since the last NOTIFY.
    changed = CmpField(default_factory=dict)

    def check_subscribe(self, event, subscription):
        if subscription.subscriber != subscription.resource:
            return Refusal(403, "Only the presentity may watch its watchers")
        self.context.naming.join(winfo_name(subscription.resource), self.context.sbb_local_object)
        return State.ACTIVE

    def notify_body(self, subscription, full_state):
        if full_state:
            watchers = watchers_of(self.context, subscription.resource).values()
        else:
            watchers = self.changed.values()
        body = watcherinfo_document(subscription.resource, "presence",
                                    sorted(watchers, key=lambda w: w.id), self.version,
                                    full=full_state)
        self.version += 1
        self.changed = {}
        return body

    def subscription_ended(self, subscription):
        self.context.naming.leave(winfo_name(subscription.resource), self.context.sbb_local_object)

    @handler(WATCHERS_CHANGED)
    def on_watchers_changed(self, event, aci):
        self.changed = {**self.changed, event.watcher.id: event.watcher}
        self.state_changed()
