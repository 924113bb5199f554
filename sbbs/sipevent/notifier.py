"""
The notifier side of SIP events (RFC 6665), written once for every event
package: a package is a subclass of L{NotifierSbb} that says what it
serves and what each watcher is sent; this class does the rest.

One root entity per subscription.  A SUBSCRIBE outside any dialog for the
package makes it (its convergence name is the server transaction, unique);
it checks the request, creates the dialog, answers 200 (202 when the
subscription is pending, for RFC 3265 clients) with the granted Expires,
and sends the first NOTIFY at once.  From then on it lives on the dialog's
activity:

- a SUBSCRIBE in the dialog refreshes (a NOTIFY with the full state
  follows) or, with C{Expires: 0}, ends the subscription;
- its expiry timer ends it with a NOTIFY C{terminated;reason=timeout};
- the package calls L{NotifierSbb.state_changed} when what the watcher
  sees changed, and a NOTIFY goes out;
- a NOTIFY that fails (a 481, any failure without Retry-After, a timeout,
  a transport error: RFC 6665 §4.2.2) ends the subscription silently.

A fetch (C{Expires: 0} on a new dialog) gets one NOTIFY with the state and
C{terminated;reason=timeout}.

Each new subscription is held to the quotas (L{sbbs.sipevent.quotas}):
refused past them, else counted from its SUBSCRIBE, decided or waiting,
until its entity goes (L{NotifierSbb.sbb_remove}, whichever way it goes).

NOTIFYs of one subscription go one at a time: a NOTIFY waits for the
answer to the one before, and changes made meanwhile are sent together in
the next.  The watcher never sees CSeqs out of order, and a burst of
changes costs one NOTIFY per round trip instead of one each.

A package subclass sets:

- C{package}: the Event package name, and C{content_types}: the body types
  it can send, best first (L{sbbs.sipevent.subscription.negotiate});
- C{expiry}: an L{ExpiryPolicy};

and implements:

- C{check_subscribe(request, subscription)}: a L{Refusal} to answer the
  SUBSCRIBE (a L{SubscribeRequest}, from SIP or from a service) with, or
  the L{State} the subscription starts in, or L{WAIT} when it must learn
  something first (it then calls C{decided(...)} within seconds, as the
  SUBSCRIBE waits for its answer); it may keep what it needs of the
  request in its own CMP fields, and attach the entity to the activities
  its state comes from;
- C{notify_body(subscription, full_state)}: the body of the NOTIFY about
  to be sent (bytes, may be empty): the whole state when C{full_state},
  else what changed since the last NOTIFY, or None when nothing the
  watcher can see did (no NOTIFY is sent then);
- C{subscription_ended(subscription)}: let go of whatever it watched;

and may implement C{watcher_event(subscription, event)}, told of each
change of the subscription's state with the watcher information event
that names it (RFC 3857: C{subscribe}, C{approved}, C{timeout},
C{rejected}, C{deactivated}...), for packages whose watchers are watched,
and C{notify_content_type(subscription, body)}, for a package whose
NOTIFYs' Content-Type changes with the body (a multipart boundary).

A resource list server (RFC 4662) is a notifier of a package too: its
subclass sets C{serves_lists}, and takes the SUBSCRIBEs to resource lists
(L{sbbs.sipevent.list_directory}) that every other notifier of the package
lets pass; C{option_tags} are the option tags it needs in Require and
offers in Supported, and C{notify_headers} the headers every NOTIFY of it
carries (C{Require: eventlist}).

Why one module of some 650 lines: it is one SBB, the life of a
subscription from its SUBSCRIBE to its last NOTIFY, over one persistent
state.  The parts that stand alone are modules of their own: the
subscription's states and expiry (L{sbbs.sipevent.subscription}), the
quotas (L{sbbs.sipevent.quotas}), the list directory.
"""

from zope.interface import Interface, implementer

from resource_adaptors.sip.events import (
    REQUEST, RESPONSE_2XX, RESPONSE_3XX, RESPONSE_4XX, RESPONSE_5XX, RESPONSE_6XX,
    TRANSACTION_TIMEOUT, TRANSPORT_ERROR)
from resource_adaptors.sip.core.syntax import ParseError
from sbbs.sipevent.addresses import address_of_record, identity_address
from sbbs.sipevent.list_directory import is_list_request, is_list_resource
from sbbs.sipevent.internal import (
    INTERNAL_ANSWER, INTERNAL_NOTIFY, INTERNAL_SUBSCRIBE, InternalAnswerEvent,
    InternalNotifyEvent)
from sbbs.sipevent.quotas import (
    SUBSCRIPTION_ENVIRONMENT, release_subscription, subscription_refusal, take_subscription)
from sbbs.sipevent.subscription import (
    ExpiryPolicy, Reason, Refusal, State, SubscribeRequest, Subscription, negotiate)
from slee.compact import Packed
from slee.events import ACTIVITY_END, SERVICE_STARTED, TIMER
from slee.sbb import CmpField, Sbb, Select, handler


#: What C{check_subscribe} returns when it cannot decide yet (the rules it
#: needs are being read): the SUBSCRIBE waits, unanswered, until the package
#: calls L{NotifierSbb.decided}.
WAIT = "wait"


def notifier_for(context, package):
    """
    @return: the L{NotifierSbb} subclass serving the event package
        C{package} (not a list server's) in a service active now: what a
        service's subscription may ask for; or None.
    """
    return next((cls for cls in context.active_sbb_classes(NotifierSbb)
                 if cls.package == package and not cls.serves_lists), None)

#: The shared data indexing the SIP subscriptions' entities, to restore
#: their dialogs after a restart: (package, subscriber, dialog activity
#: key) -> the entity's local object reference.
DIALOGS = "slee.sipevent.dialogs"

#: How far ahead of our last CSeq noted a subscription's stored dialog is
#: (see L{NotifierSbb._keep_dialog}): NOTIFYs between two notes store nothing.
CSEQ_RESERVE = 1000


class ISubscriptionEntity(Interface):
    """What the notifier's service asks of its entities when it starts again."""

    def restore_dialog():
        """Give the SIP RA back the dialog it lost in a restart."""


@implementer(ISubscriptionEntity)
class NotifierSbb(Sbb):
    """The mechanics of subscriptions; see the module docstring."""

    local_interface = ISubscriptionEntity
    package = None
    content_types = ()
    expiry = ExpiryPolicy()
    serves_lists = False
    option_tags = ()
    notify_headers = ()

    environment = SUBSCRIPTION_ENVIRONMENT

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every notifier has the quotas' entries, besides its package's own.
        cls.environment = {**SUBSCRIPTION_ENVIRONMENT, **cls.environment}

    #: The L{Subscription}, None before it is accepted.
    subscription = CmpField()
    #: The dialog's activity context interface; for a service's
    #: subscription (C{internal}), its activity.
    dialog = CmpField()
    internal = CmpField(default=False)
    #: The SIP dialog as the RA last had it (L{ISipProvider.dialog_snapshot}),
    #: but for its CSeq, kept L{CSEQ_RESERVE} ahead (L{_keep_dialog}); packed
    #: (L{_kept_dialog} reads it).
    dialog_snapshot = CmpField()
    #: A SUBSCRIBE waiting for its package's decision: (its L{Subscription},
    #: seconds granted, its SIP server transaction id or None, and for a
    #: service's, its activity).
    waiting = CmpField()
    #: The expiry timer's id, or None.
    expiry_timer = CmpField()
    #: Whether another NOTIFY is due once the one waiting for its answer is
    #: answered, and whether it must carry the full state.  Whether one
    #: waits is the SIP RA's to say (L{ISipProvider.awaits_answers}):
    #: nothing is stored for a NOTIFY in flight.
    notify_again = CmpField(default=False)
    full_state_due = CmpField(default=False)
    #: Whether the watcher was ever let see the state: a fetch or an
    #: unsubscribe then gets it in the final NOTIFY.
    authorized = CmpField(default=False)
    #: The subscriber the subscription is counted for in the quotas
    #: (L{sbbs.sipevent.quotas}), from its SUBSCRIBE until the entity goes,
    #: or None before it is counted.
    quota_watcher = CmpField()

    # -- the package's part ---------------------------------------------------

    def check_subscribe(self, event, subscription):
        raise NotImplementedError

    def notify_body(self, subscription, full_state):
        raise NotImplementedError

    def subscription_ended(self, subscription):
        raise NotImplementedError

    def watcher_event(self, subscription, event):
        """The subscription's state changed (see the module docstring); nothing by default."""

    def notify_content_type(self, subscription, body):
        """The Content-Type of a NOTIFY with C{body}: the one negotiated, by default."""
        return subscription.content_type

    # -- what the package calls -----------------------------------------------

    def state_changed(self, body=None):
        """
        What the watcher sees changed: NOTIFY it (now, or after the NOTIFY in
        flight).  C{body}: the NOTIFY's body, when the package has it at
        hand; it serves a NOTIFY sent now (one sent later asks
        C{notify_body}).
        """
        if self.subscription is not None and self.subscription.state is not State.TERMINATED:
            self._notify(full_state=False, body=body)

    def change_state(self, state, reason=None):
        """
        Authorization changed: make the subscription C{state} (a pending
        one approved, an active one rejected...) and NOTIFY the watcher
        with the full state; a terminated subscription then ends.
        """
        subscription = self.subscription
        if subscription is None or subscription.state is State.TERMINATED:
            return
        if state is State.TERMINATED:
            self.authorized = False
            self._terminate(reason or Reason.DEACTIVATED)
            return
        self.subscription = subscription.with_state(state)
        self.authorized = self.authorized or state is State.ACTIVE
        approved = subscription.state is State.PENDING and state is State.ACTIVE
        self.watcher_event(self.subscription, "approved" if approved else "subscribe")
        self._notify(full_state=True)

    # -- the service starts ---------------------------------------------------

    @handler(SERVICE_STARTED, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_service_started(self, event, aci):
        """
        Tell the SIP RA what we serve (Allow-Events and Accept of its
        answers), and give it back the dialogs of the subscriptions that
        outlived a restart.
        """
        self.context.resource_adaptor("sip").register_capabilities(
            event_packages=[self.package], accept=self.content_types,
            supported=self.option_tags)
        aci.detach(self.context.sbb_local_object)
        index = self.context.shared_data(DIALOGS)
        for key, reference in list(index.items(min=(self.package,),
                                               max=(self.package, "\U0010ffff"))):
            entity = self.context.resolve(reference)
            if entity.exists():
                entity.restore_dialog()
            else:
                del index[key]

    def restore_dialog(self):
        try:
            self.context.resource_adaptor("sip").restore_dialog(self._kept_dialog())
        except ParseError:
            self._end()
            return
        if self.notify_again:
            # A change waited for the answer to a NOTIFY the restart lost.
            self._notify(self.full_state_due)

    def _keep_dialog(self):
        """
        Note the dialog as the RA has it now, if it changed more than our
        CSeq did: the snapshot kept says a CSeq L{CSEQ_RESERVE} ahead of
        the one last noted, so that after a restart our requests go on
        above every CSeq used, and a NOTIFY stores nothing but every
        L{CSEQ_RESERVE}th (CSeqs need only increase, RFC 3261 §12.2.1.1).
        Only our NOTIFYs and the watcher's requests in the dialog change
        it: a NOTIFY calls this only once its CSeq went past the one kept.
        """
        if self.internal:
            return
        snapshot = self.context.resource_adaptor("sip").dialog_snapshot(self.dialog)
        kept = self._kept_dialog()
        if kept is not None and snapshot["local_seq"] <= kept["local_seq"] and \
                {**snapshot, "local_seq": None} == {**kept, "local_seq": None}:
            return
        snapshot["local_seq"] += CSEQ_RESERVE
        self.dialog_snapshot = Packed(snapshot)

    def _kept_dialog(self):
        """
        The dialog snapshot kept, or None: stored packed (one bytes string,
        not the dozens of objects of a dict, each through ZODB's pickling
        hook), or as a plain dict by an earlier version.
        """
        kept = self.dialog_snapshot
        return kept.value if isinstance(kept, Packed) else kept

    # -- SUBSCRIBE, from SIP ---------------------------------------------------------

    def _new_subscription(self, event_type, event, aci, address):
        """Initial: a SUBSCRIBE outside any dialog, for this package."""
        request = event.request
        if event.dialog is not None or request.to.tag is not None:
            return None
        header = request.event
        if header is None or header.package != self.package:
            return None
        return "" if is_list_request(request) == self.serves_lists else None

    @handler(REQUEST["SUBSCRIBE"], initial=True, select=(Select.ACTIVITY_CONTEXT,),
             selector="_new_subscription")
    def on_subscribe(self, event, aci):
        sip = self.context.resource_adaptor("sip")
        try:
            request = _subscribe_request(event)
        except ParseError as error:         # a malformed Expires, Accept...
            if event.dialog is None:
                aci.detach(self.context.sbb_local_object)
            sip.respond(event, error.status, error.reason)
            return
        answer, open_channel = self._sip_channel(event.transaction)
        if event.dialog is None:
            aci.detach(self.context.sbb_local_object)   # the server transaction's
            self._subscribe(request, answer, open_channel, event.transaction)
        else:
            self._resubscribe(request, answer)

    def _sip_channel(self, transaction):
        """(answer, open_channel) of a SIP SUBSCRIBE, by its server transaction id."""
        sip = self.context.resource_adaptor("sip")

        def answer(status, reason=None, headers=(), expires=None, dialog=None):
            if expires is not None:
                headers = [*headers, ("Expires", str(expires))]
            sip.respond(transaction, status, reason, headers=headers, dialog=dialog)

        return answer, lambda: sip.create_dialog(transaction, durable=True)

    # -- SUBSCRIBE, from a service --------------------------------------------------

    def _new_internal_subscription(self, event_type, event, aci, address):
        """Initial: a service's subscription to this package (its convergence name is its activity)."""
        request = event.request
        if request.package != self.package:
            return None
        return "" if is_list_resource(request.uri or request.resource) == self.serves_lists \
            else None

    @handler(INTERNAL_SUBSCRIBE, initial=True, select=(Select.ACTIVITY_CONTEXT,),
             selector="_new_internal_subscription")
    def on_internal_subscribe(self, event, aci):
        answer, open_channel = self._internal_channel(aci)
        if self.subscription is None:
            self.internal = True
            aci.detach(self.context.sbb_local_object)   # attached again if accepted
            self._subscribe(event.request, answer, open_channel, aci)
        else:
            self._resubscribe(event.request, answer)

    def _internal_channel(self, aci):
        """(answer, open_channel) of a service's SUBSCRIBE, on its activity."""
        def answer(status, reason=None, headers=(), expires=None, dialog=None):
            self.context.fire_event(aci, INTERNAL_ANSWER,
                                    InternalAnswerEvent(status, reason or "", expires))

        return answer, lambda: aci

    # -- SUBSCRIBE ----------------------------------------------------------------------

    def _subscribe(self, request, answer, open_channel, source):
        """
        A new subscription: checked, accepted on the channel C{open_channel()}
        gives (a dialog, or a service's activity), answered, NOTIFYed.
        C{source} is what it came from: its SIP server transaction id, or a
        service's activity.
        """
        refusal, granted, content_type = self._check_request(request)
        if refusal is None:
            refusal = subscription_refusal(self.context, request.subscriber)
        if refusal is not None:
            answer(refusal.status, refusal.reason, refusal.headers)
            return
        take_subscription(self.context, request.subscriber)
        self.quota_watcher = request.subscriber
        subscription = Subscription(
            package=self.package, event_id=request.event_id, subscriber=request.subscriber,
            resource=request.resource, content_type=content_type, state=State.ACTIVE,
            expires_at=self._now() + granted, parameters=request.parameters)
        decision = self.check_subscribe(request, subscription)
        if decision == WAIT:
            self.waiting = (subscription, granted, source if isinstance(source, str)
                            else source.reference)
            return
        self._decide(subscription, granted, decision, answer, open_channel)

    def decided(self, decision):
        """
        The package's decision (a L{Refusal} or a L{State}) about a
        SUBSCRIBE it made wait: answer it, as if it had been at once.
        """
        subscription, granted, source = self.waiting
        self.waiting = None
        if isinstance(source, str):
            answer, open_channel = self._sip_channel(source)
        else:
            answer, open_channel = self._internal_channel(self.context.resolve(source))
        try:
            self._decide(subscription, granted, decision, answer, open_channel)
        except KeyError:                    # the SUBSCRIBE's transaction is over: forget it
            self._forget(subscription)

    def _decide(self, subscription, granted, decision, answer, open_channel):
        if isinstance(decision, Refusal):
            answer(decision.status, decision.reason, decision.headers)
            self._forget(subscription)
            return
        channel = open_channel()
        channel.attach(self.context.sbb_local_object)
        self.dialog = channel
        self.authorized = decision is State.ACTIVE
        if granted == 0:
            subscription = subscription.with_state(State.TERMINATED, Reason.TIMEOUT)
        else:
            subscription = subscription.with_state(decision)
            self.expiry_timer = self.context.timers.set_timer(channel, granted)
        self.subscription = subscription
        answer(202 if decision is State.PENDING else 200, expires=granted, dialog=channel)
        if not self.internal:
            self.context.shared_data(DIALOGS)[
                (self.package, subscription.subscriber, channel.key)] = \
                self.context.sbb_local_object.reference
        self.watcher_event(subscription, "subscribe" if granted else Reason.TIMEOUT)
        self._notify(full_state=True)

    def _forget(self, subscription):
        """A subscription never accepted: let go of what its package watched, and go."""
        self.subscription_ended(subscription)
        for activity in self.context.activities():
            activity.detach(self.context.sbb_local_object)

    def _check_request(self, request):
        """
        @return: (L{Refusal} or None, seconds granted, body type of the
            NOTIFYs) for what every package checks alike.
        """
        granted = self.expiry.grant(request.expires)
        if granted is None:
            return (Refusal(423, "Interval Too Brief",
                            (("Min-Expires", str(self.expiry.minimum)),)), None, None)
        content_type = negotiate(request.accept, self.content_types)
        if content_type is None:
            return (Refusal(406, "Not Acceptable",
                            (("Accept", ", ".join(self.content_types)),)), None, None)
        return None, granted, content_type

    def _resubscribe(self, request, answer):
        """A SUBSCRIBE on the channel: a refresh, or an unsubscribe (Expires: 0)."""
        subscription = self.subscription
        if request.package != subscription.package or request.event_id != subscription.event_id:
            # RFC 6665 §4.5.2 deprecates a second subscription in a dialog.
            answer(403, "One subscription per dialog")
            return
        if subscription.state is State.TERMINATED:
            answer(481, "Subscription does not exist")
            return
        refusal, granted, content_type = self._check_request(request)
        if refusal is not None:
            answer(refusal.status, refusal.reason, refusal.headers)
            return
        answer(200, expires=granted, dialog=self.dialog)
        self._keep_dialog()                 # the watcher's CSeq
        self.context.timers.cancel_timer(self.expiry_timer)
        self.expiry_timer = None
        if granted == 0:
            self._terminate(Reason.TIMEOUT)
            return
        self.subscription = subscription.refreshed(self._now(), granted)
        self.expiry_timer = self.context.timers.set_timer(self.dialog, granted)
        self._notify(full_state=True)

    # -- expiry and the end -----------------------------------------------------

    @handler(TIMER)
    def on_expiry(self, event, aci):
        if event.timer_id == self.expiry_timer:
            self.expiry_timer = None
            self._terminate(Reason.TIMEOUT)

    def _terminate(self, reason):
        """End the subscription with a final NOTIFY (RFC 6665 §4.2.2)."""
        self.subscription = self.subscription.with_state(State.TERMINATED, reason)
        if self.expiry_timer is not None:
            self.context.timers.cancel_timer(self.expiry_timer)
            self.expiry_timer = None
        self.watcher_event(self.subscription,
                           Reason.DEACTIVATED if reason == Reason.INVARIANT else reason)
        self._notify(full_state=True)

    def _end(self):
        """Forget the subscription and its dialog: the entity goes with them."""
        subscription = self.subscription
        if subscription is not None:
            if subscription.state is not State.TERMINATED:     # a NOTIFY failed
                self.watcher_event(subscription.with_state(State.TERMINATED),
                                   Reason.DEACTIVATED)
            self.subscription_ended(subscription)
        if self.expiry_timer is not None:
            self.context.timers.cancel_timer(self.expiry_timer)
            self.expiry_timer = None
        if not self.internal and subscription is not None:
            self.context.shared_data(DIALOGS).pop(
                (self.package, subscription.subscriber, self.dialog.key), None)
            try:
                self.context.resource_adaptor("sip").end_dialog(self.dialog)
            except KeyError:
                pass                        # the RA ended it already
        for activity in self.context.activities():
            activity.detach(self.context.sbb_local_object)

    def sbb_remove(self):
        """However the entity goes, its subscription leaves the quotas."""
        if self.quota_watcher is not None:
            release_subscription(self.context, self.quota_watcher)

    @handler(ACTIVITY_END)
    def on_activity_end(self, event, aci):
        if aci == self.dialog:              # the dialog is gone: a restart, a 481...
            self._end()

    # -- NOTIFY -----------------------------------------------------------------

    def _notify(self, full_state, body=None):
        """
        Send a NOTIFY (with C{body}, if given and the watcher may see it),
        or note that one is due once the one in flight is answered.
        """
        internal, dialog = self.internal, self.dialog
        sip = None if internal else self.context.resource_adaptor("sip")
        if sip is not None and sip.awaits_answers(dialog):
            self.notify_again = True
            self.full_state_due = self.full_state_due or full_state
            return
        subscription = self.subscription
        now = self._now()
        if subscription.state is State.ACTIVE or (
                self.authorized and subscription.reason == Reason.TIMEOUT):
            if body is None:
                body = self.notify_body(subscription, full_state)
            if body is None:
                return                      # nothing this watcher can see changed
        else:
            body = b""
        content_type = self.notify_content_type(subscription, body) if body else None
        if internal:
            self._notify_service(subscription, body, content_type)
            return
        headers = [("Event", subscription.event_header()),
                   ("Subscription-State", subscription.subscription_state(now)),
                   *self.notify_headers]
        sip.send_in_dialog(dialog, "NOTIFY", headers=headers, body=body,
                           content_type=content_type)
        kept = self._kept_dialog()
        if kept is None or dialog.activity.local_seq > kept["local_seq"]:
            self._keep_dialog()             # our CSeq went past the one kept
        self.notify_again = self.full_state_due = False

    def _notify_service(self, subscription, body, content_type):
        """A NOTIFY to a service: an event on its activity, delivered once committed."""
        self.context.fire_event(self.dialog, INTERNAL_NOTIFY, InternalNotifyEvent(
            subscription.state.value, subscription.reason, body, content_type))
        if subscription.state is State.TERMINATED:
            self._end()

    # A NOTIFY's answer comes on the dialog's activity, where only NOTIFYs
    # are sent: an answer to an older NOTIFY than the last one sent (one
    # the RA saw answered before a change was sent) is told apart by
    # nothing, and needs not be: nothing waits for it, and its failure
    # ends the dialog as the last one's would.

    @handler(RESPONSE_2XX)
    def on_notify_accepted(self, event, aci):
        self._notify_answered(failed=False)

    @handler(RESPONSE_3XX)
    def on_notify_redirected(self, event, aci):
        self._notify_refused(event)

    @handler(RESPONSE_4XX)
    def on_notify_refused(self, event, aci):
        self._notify_refused(event)

    @handler(RESPONSE_5XX)
    def on_notify_failed(self, event, aci):
        self._notify_refused(event)

    @handler(RESPONSE_6XX)
    def on_notify_declined(self, event, aci):
        self._notify_refused(event)

    def _notify_refused(self, event):
        """
        RFC 6665 §4.2.2: a NOTIFY refused without Retry-After (a 481 above
        all) ends the subscription; with it, the watcher only asks for
        time, and the subscription goes on.
        """
        response = event.response
        self._notify_answered(failed=response.status == 481
                              or "Retry-After" not in response.headers)

    @handler(TRANSACTION_TIMEOUT)
    def on_notify_timeout(self, event, aci):
        self._notify_answered(failed=True)

    @handler(TRANSPORT_ERROR)
    def on_notify_undeliverable(self, event, aci):
        self._notify_answered(failed=True)

    def _notify_answered(self, failed):
        subscription = self.subscription
        if subscription is None:
            return
        if failed or subscription.state is State.TERMINATED and not self.notify_again:
            self._end()
        elif self.notify_again:
            self._notify(self.full_state_due)

    # -- helpers ----------------------------------------------------------------

    def _now(self):
        return self.context.timers.clock.seconds()


def _subscribe_request(event):
    """
    The L{SubscribeRequest} of a SIP SUBSCRIBE's event.  The subscriber is
    who the SIP RA says it comes from (L{identity_address}), never its From;
    a refresh in a dialog the RA knows no identity of (ours, or one from
    before a restart) leaves it as its From says: a refresh is checked
    against the subscription kept, whose subscriber was authenticated.
    """
    request = event.request
    header = request.event
    content_type = request.content_type
    identity = event.identity
    subscriber = identity_address(identity) if identity is not None \
        else address_of_record(request.from_.uri)
    disposition = request.headers.get("Content-Disposition") if request.body else None
    encoding = request.headers.get("Content-Encoding") if request.body else None
    return SubscribeRequest(
        package=header.package if header is not None else "", event_id=header and header.id,
        parameters={name: value for name, value in header.params.items()
                    if name.lower() != "id"} if header is not None else {},
        subscriber=subscriber, resource=address_of_record(request.uri),
        identity=identity,
        host=event.peer.host, expires=request.expires, accept=tuple(request.accept or ()),
        body=request.body, content_type=None if content_type is None else content_type.mime,
        uri=str(request.uri), supported=tuple(request.supported or ()),
        require=tuple(request.require or ()),
        disposition=disposition and disposition.split(";")[0].strip().lower(),
        content_encoding=encoding and encoding.strip().lower())
