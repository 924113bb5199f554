"""
The subscriber side of SIP events (RFC 6665 §4.1), for services that watch
a resource on another server: a child SBB that holds one subscription,
keeps it alive and hands every NOTIFY to its parent.

    class Watcher(Sbb):
        local_interface = ISubscriberParent
        subscribers = ChildRelation(SubscriberSbb)

        def watch(self):
            child = self.subscribers.create()
            child.start("sip:xdms@example.com", "sip:ps@example.com", "xcap-diff",
                        body, "application/resource-lists+xml")

        def notified(self, child, state, content_type, body):
            ...

        def subscription_ended(self, child, reason):
            ...

The child sends the SUBSCRIBE, follows the dialog its answer (or its first
NOTIFY, which the SIP RA fires on the SUBSCRIBE's transaction while it
waits for its answer) makes, answers each NOTIFY with 200, and refreshes the
subscription before it expires.  When the notifier ends the subscription
with a reason that invites it back (RFC 6665 §4.1.3: C{deactivated},
C{timeout}, or C{probation} and C{giveup} after their C{retry-after}), or
a refresh meets a 481 (the notifier restarted, say), it subscribes again
from scratch, backing off when the notifier keeps ending it; other ends (C{rejected}, C{noresource}, a refused SUBSCRIBE,
no answer) are the parent's to hear of, and the child is then idle.
"""

from zope.interface import Interface, implementer

from resource_adaptors.sip.core.headers import ASSERTED_IDENTITY
from resource_adaptors.sip.events import (
    REQUEST, RESPONSE_2XX, RESPONSE_3XX, RESPONSE_4XX, RESPONSE_5XX, RESPONSE_6XX,
    TRANSACTION_TIMEOUT, TRANSPORT_ERROR)
from sbbs.sipevent.subscription import Reason
from slee.events import TIMER
from slee.sbb import CmpField, Sbb, handler

#: Seconds before a subscription expires that it is refreshed, at most
#: (and at most a tenth of its life).
REFRESH_MARGIN = 60
#: Seconds to wait before subscribing again when the notifier said when.
DEFAULT_RETRY = 30
#: A notifier that keeps ending the subscription is not hammered: the
#: first come-back is at once (or after its C{retry-after}), each one after
#: it waits twice as long as the last, from L{BACKOFF_FIRST} seconds up to
#: L{BACKOFF_MOST}, until a subscription lives to be refreshed.
BACKOFF_FIRST = 1
BACKOFF_MOST = 300
#: The end reasons after which the subscriber comes back (RFC 6665 §4.1.3).
RESUBSCRIBE_AT_ONCE = frozenset((Reason.DEACTIVATED, Reason.TIMEOUT))
RESUBSCRIBE_LATER = frozenset((Reason.PROBATION, Reason.GIVEUP))


class ISubscriber(Interface):
    """What a parent asks of its subscriber child."""

    def start(notifier, subscriber, event, body=b"", content_type=None, expires=3600,
              headers=(), proxy=None, assert_identity=False):
        """
        Subscribe C{subscriber} (a URI, our From) to C{notifier} (a URI,
        the Request-URI and To) for the C{event} package (the Event
        header's value, parameters included), with C{body}, C{headers}
        ((name, value) pairs: Supported, Accept...) on every SUBSCRIBE, and
        through C{proxy} (a SIP URI: the outbound proxy, as a loose Route)
        when given.

        With C{assert_identity}, every SUBSCRIBE says in P-Asserted-Identity
        (RFC 3325) that it comes from C{subscriber}: a notifier that trusts
        this server takes it as the watcher, though the request comes from
        a service subscribing on the watcher's behalf; any other notifier
        removes the header.
        """

    def stop():
        """Unsubscribe; the child removes itself once the notifier has answered."""


class ISubscriberParent(Interface):
    """What the parent of a subscriber child is told (in its own local interface)."""

    def notified(child, state, content_type, body):
        """
        A NOTIFY came: its Subscription-State value's state (C{active},
        C{pending}, C{terminated}) and its body.
        """

    def subscription_ended(child, reason):
        """The subscription ended for good: a refused SUBSCRIBE (its status), a reason..."""


@implementer(ISubscriber)
class SubscriberSbb(Sbb):
    """One subscription to a notifier elsewhere; see the module docstring."""

    local_interface = ISubscriber

    notifier = CmpField()
    subscriber = CmpField()
    event = CmpField()
    body = CmpField(default=b"")
    content_type = CmpField()
    expires = CmpField(default=3600)
    headers = CmpField(default=())
    proxy = CmpField()
    #: The dialog's activity context interface, once there is one.
    dialog = CmpField()
    #: The key of the activity of the SUBSCRIBE waiting for its answer.
    subscribing = CmpField()
    timer = CmpField()
    stopping = CmpField(default=False)
    #: Come-backs since the subscription last lived to be refreshed.
    comebacks = CmpField(default=0)

    # -- the parent's calls -------------------------------------------------------

    def start(self, notifier, subscriber, event, body=b"", content_type=None, expires=3600,
              headers=(), proxy=None, assert_identity=False):
        self.notifier, self.subscriber, self.event = str(notifier), str(subscriber), event
        self.body, self.content_type, self.expires = body, content_type, expires
        asserted = ((ASSERTED_IDENTITY, f"<{subscriber}>"),) if assert_identity else ()
        self.headers, self.proxy = (*headers, *asserted), proxy
        self._subscribe()

    def stop(self):
        self.stopping = True
        self._cancel_timer()
        if self.dialog is None:
            self._finish()
        else:
            self._send("SUBSCRIBE", expires=0)

    # -- subscribing ----------------------------------------------------------------

    def _subscribe(self):
        """An out-of-dialog SUBSCRIBE: a new subscription."""
        sip = self.context.resource_adaptor("sip")
        headers = self._headers(self.expires)
        if self.proxy:
            headers.append(("Route", f"<{self.proxy};lr>"))
        request = sip.new_request("SUBSCRIBE", self.notifier, self.subscriber, self.notifier,
                                  headers=headers, body=self.body,
                                  content_type=self.content_type if self.body else None)
        transaction = sip.send_request(request)
        transaction.attach(self.context.sbb_local_object)
        self.subscribing = transaction.key

    def _send(self, method, expires):
        """A SUBSCRIBE in the dialog: a refresh, or (C{expires} 0) the end."""
        sip = self.context.resource_adaptor("sip")
        self.subscribing = sip.send_in_dialog(self.dialog, method,
                                              headers=self._headers(expires))

    def _headers(self, expires):
        return [("Event", self.event), ("Expires", str(expires)), *self.headers]

    def _answers(self, event, aci):
        """
        Whether C{event} answers the SUBSCRIBE waiting: out of the dialog,
        on its transaction's activity (C{subscribing} is its key); in the
        dialog, on the dialog's (C{subscribing} is the transaction's id).
        """
        return self.subscribing is not None and self.subscribing in (aci.key, event.transaction)

    @handler(RESPONSE_2XX)
    def on_accepted(self, event, aci):
        if not self._answers(event, aci):
            return
        self.subscribing = None
        if self.dialog is None and event.dialog is not None:
            self._follow(event.dialog)
        elif self.dialog is not None:
            self.comebacks = 0      # a refresh: the subscription lived
        if self.stopping:
            return                  # the final NOTIFY ends it
        granted = event.response.expires
        self._arm(DEFAULT_RETRY if granted is None else granted, refresh=True)

    @handler(RESPONSE_3XX)
    def on_redirected(self, event, aci):
        self._refused(event, aci, event.response.status)

    @handler(RESPONSE_4XX)
    def on_refused(self, event, aci):
        self._refused(event, aci, event.response.status)

    @handler(RESPONSE_5XX)
    def on_failed(self, event, aci):
        self._refused(event, aci, event.response.status)

    @handler(RESPONSE_6XX)
    def on_declined(self, event, aci):
        self._refused(event, aci, event.response.status)

    @handler(TRANSACTION_TIMEOUT)
    def on_timeout(self, event, aci):
        self._refused(event, aci, 408)

    @handler(TRANSPORT_ERROR)
    def on_transport_error(self, event, aci):
        self._refused(event, aci, 503)

    def _refused(self, event, aci, status):
        if not self._answers(event, aci):
            return
        self.subscribing = None
        if self.stopping:
            self._finish()
        elif self.dialog is not None and status in (408, 481):
            self._forget_dialog()   # the notifier lost it: start again
            self._come_back()
        else:
            self._end(str(status))

    # -- the dialog and its NOTIFYs ---------------------------------------------------

    def _follow(self, dialog_id):
        dialog = self.context.resource_adaptor("sip").dialog_activity(dialog_id)
        dialog.attach(self.context.sbb_local_object)
        self.dialog = dialog

    @handler(REQUEST["NOTIFY"])
    def on_notify(self, event, aci):
        sip = self.context.resource_adaptor("sip")
        request = event.request
        if self.dialog is None and event.dialog is not None:
            self._follow(event.dialog)      # a NOTIFY before the SUBSCRIBE's 2xx
        state = request.subscription_state
        sip.respond(event, 200)
        content_type = request.content_type
        self.context.parent.notified(self.context.sbb_local_object,
                                     None if state is None else state.state,
                                     None if content_type is None else content_type.mime,
                                     request.body)
        if state is None or state.state != "terminated":
            return
        self._forget_dialog()
        self._cancel_timer()
        if self.stopping:
            self._finish()
        elif state.reason in RESUBSCRIBE_AT_ONCE or state.reason is None:
            self._come_back()
        elif state.reason in RESUBSCRIBE_LATER:
            self._come_back(at_least=state.retry_after or DEFAULT_RETRY)
        else:
            self._end(state.reason)

    def _come_back(self, at_least=0):
        """
        Subscribe again (the notifier ended the subscription, or lost it):
        at once, or after C{at_least} seconds, the first time; after the
        back-off (L{BACKOFF_FIRST}, doubled each time) when it keeps ending.
        """
        delay = at_least
        if self.comebacks:
            delay = max(delay, min(BACKOFF_FIRST * 2 ** (self.comebacks - 1), BACKOFF_MOST))
        self.comebacks += 1
        if delay:
            self._arm(delay, refresh=False)
        else:
            self._subscribe()

    # -- timers ---------------------------------------------------------------------

    def _arm(self, seconds, refresh):
        """Refresh before C{seconds} are over, or (not C{refresh}) subscribe again after them."""
        if refresh:
            seconds = max(1, seconds - min(REFRESH_MARGIN, seconds // 10))
        self._cancel_timer()
        where = self.dialog if refresh else self._idle_activity()
        self.timer = self.context.timers.set_timer(where, seconds)

    def _idle_activity(self):
        """A null activity to wait on when there is no dialog."""
        activity = self.context.create_null_activity()
        activity.attach(self.context.sbb_local_object)
        return activity

    @handler(TIMER)
    def on_timer(self, event, aci):
        if event.timer_id != self.timer:
            return
        self.timer = None
        if self.dialog is not None:
            self._send("SUBSCRIBE", expires=self.expires)
        else:
            aci.detach(self.context.sbb_local_object)   # the null activity waited on
            self._subscribe()

    def _cancel_timer(self):
        if self.timer is not None:
            self.context.timers.cancel_timer(self.timer)
            self.timer = None

    # -- the end ----------------------------------------------------------------------

    def _forget_dialog(self):
        dialog = self.dialog
        if dialog is None:
            return
        self.dialog = None
        dialog.detach(self.context.sbb_local_object)
        try:
            self.context.resource_adaptor("sip").end_dialog(dialog)
        except KeyError:
            pass                    # the stack ended it already (a 481)

    def _end(self, reason):
        """The subscription is over for good: tell the parent."""
        self._forget_dialog()
        self._cancel_timer()
        self.context.parent.subscription_ended(self.context.sbb_local_object, reason)

    def _finish(self):
        """An unsubscribe is complete: the child goes."""
        self._forget_dialog()
        self.context.sbb_local_object.remove()
