"""
The presence event package (RFC 3856) on the SIP event engine: watchers
of a presentity, authorized by its rules, each sent the presentity's
composed state as its rules let it see it.

A SUBSCRIBE for C{presence} is authorized with the presentity's
pres-rules (RFC 5025, L{sbbs.presence.rules}), cached from the XDMS
(L{sbbs.presence.documents}); a presentity without rules gets the
default policy (the SBB's environment entry C{default-policy}: C{confirm}
unless the unit says otherwise).  The rules' sub-handling decides:

- C{block}: 403;
- C{confirm}: accepted pending (202, a NOTIFY C{pending} without body)
  until the rules say otherwise;
- C{polite-block}: accepted active, and always sent the neutral document
  of an offline presentity (RFC 5025 §3.2.1);
- C{allow}: accepted active, sent the composed state after the rules'
  transformations (RFC 5025 §3.3).

When the rules are not cached yet, the SUBSCRIBE waits for them, unanswered
(they come from the XDMS within a round trip, or its failure).  A change of the rules re-evaluates every subscription of the
presentity at once: a pending one approved becomes active, an active one
blocked is terminated with C{rejected}.
"""

import hashlib

from sbbs.presence.compositor import current_document
from sbbs.presence.documents import cached_rules, want_documents
from sbbs.presence.memo import MEMO
from sbbs.presence.pidf import PIDF_TYPE, current_sphere, neutral_document
from sbbs.presence.filtering import transform
from sbbs.presence.rules import DEFAULT_DECISIONS
from sbbs.presence.state import PRESENCE_CHANGED, RULES_CHANGED, watch_name
from sbbs.presence.watchers import MAX_WATCHERS, record, watchers_of
from sbbs.sipevent.notifier import WAIT, NotifierSbb, Refusal
from sbbs.sipevent.subscription import ExpiryPolicy, Reason, State
from slee.resources import Property
from slee.sbb import CmpField, handler

def _policy(value):
    return None if value in DEFAULT_DECISIONS else \
        f"expected one of {', '.join(sorted(DEFAULT_DECISIONS))}, not {value!r}"

#: Sub-handling -> the state a subscription is in.
STATES_OF = {"block": State.TERMINATED, "confirm": State.PENDING,
             "polite-block": State.ACTIVE, "allow": State.ACTIVE}


def _transformed(document_and_decision):
    """
    The document a watcher with a decision is sent: made once per document
    and decision (through L{MEMO}), however many watchers share them (a
    change that reaches 10,000 watchers under the same rule is transformed
    once).
    """
    return transform(*document_and_decision)


class PresenceNotifierSbb(NotifierSbb):
    """One watcher of one presentity; see the module docstring."""

    package = "presence"
    content_types = (PIDF_TYPE,)
    expiry = ExpiryPolicy(default=3600, minimum=60, maximum=86400)
    environment = {
        # What a presentity without rules gets: by default its watchers
        # wait for its consent.
        "default-policy": Property(str, "confirm", _policy),
    }

    #: The L{sbbs.presence.rules.Decision} for the watcher, None while the
    #: rules are awaited.
    decision = CmpField()
    #: While a change waits for a NOTIFY's answer (and only then), the
    #: SHA-256 of the document that NOTIFY carries: the change goes out
    #: after it unless it came back to that.
    sent = CmpField()
    #: The presentity's sphere when the rules were last evaluated.
    sphere = CmpField()

    def check_subscribe(self, request, subscription):
        presentity = subscription.resource
        if len(watchers_of(self.context, presentity)) >= MAX_WATCHERS:
            return Refusal(403, "Too many watchers of this presentity")
        # where its rules' changes come
        self.context.naming.join(watch_name(presentity),
                                 self.context.sbb_local_object)
        known, decision = self._decision_for(subscription)
        if not known:
            want_documents(self.context, presentity)
            return WAIT                 # answered once the rules came (on_rules_changed)
        return self._outcome(decision)

    def _decision_for(self, subscription):
        """@return: (whether the rules are known, the L{Decision} for this watcher)."""
        known, ruleset = cached_rules(self.context, subscription.resource)
        if not known:
            return False, None
        decision, matched = None, ()
        self.sphere = sphere = self._sphere(subscription.resource)
        if ruleset is not None:
            decision, matched = ruleset.decide(subscription.subscriber, self._now(),
                                               sphere=sphere)
        if decision is None:
            policy = self.context.env["default-policy"]
            decision, why = DEFAULT_DECISIONS[policy], f"the default policy {policy}"
        else:
            why = f"the rules {', '.join(matched)}"
        self.context.tracer.debug("watcher {watcher} of {presentity}: {handling}, by {why}",
                                  watcher=subscription.subscriber,
                                  presentity=subscription.resource,
                                  handling=str(decision.sub_handling), why=why)
        return True, decision

    def _sphere(self, presentity):
        """The presentity's current sphere, as its composed state says (or None)."""
        document = current_document(self.context, presentity)
        return None if document is None else MEMO.get(current_sphere, document)

    def _outcome(self, decision):
        """The answer to a new subscription the rules decided: a L{Refusal} or its L{State}."""
        self.decision = decision
        if decision.sub_handling == "block":
            return Refusal(403, "Forbidden by the presentity's rules")
        return STATES_OF[decision.sub_handling]

    def notify_body(self, subscription, full_state):
        presentity = subscription.resource
        body = self._seen(presentity, current_document(self.context, presentity))
        sent = self.sent
        if sent is not None:
            self.sent = None
            if not full_state and hashlib.sha256(body).digest() == sent:
                return None                 # the changes that waited undid each other
        return body

    def _seen(self, presentity, document):
        """What this watcher sees of C{presentity}'s composed C{document} (or of None)."""
        decision = self.decision
        if decision is None or decision.sub_handling == "polite-block" or document is None:
            return MEMO.get(neutral_document, presentity)
        return MEMO.get(_transformed, (document, decision))

    def subscription_ended(self, subscription):
        self.context.naming.leave(watch_name(subscription.resource), self.context.sbb_local_object)

    def watcher_event(self, subscription, event):
        record(self.context, subscription, str(self.context.sbb_local_object.entity_id), event)

    @handler(PRESENCE_CHANGED)
    def on_presence_changed(self, event, aci):
        subscription = self.subscription
        if subscription is None or subscription.state is State.TERMINATED:
            return
        sphere = None if event.document is None else MEMO.get(current_sphere, event.document)
        if sphere != self.sphere and self._rules_may_say_otherwise():
            return          # its <sphere> conditions decided otherwise, and it was told
        if subscription.state is not State.ACTIVE:
            return
        # A change this watcher cannot see sends no NOTIFY.  It is told apart
        # from the state before the change, which is what the watcher was
        # last sent (a NOTIFY carries its change's state) unless a change
        # waits for a NOTIFY's answer already: nothing is stored per NOTIFY.
        # The first change to wait notes what the watcher has.
        before = self._seen(event.presentity, event.previous)
        after = self._seen(event.presentity, event.document)
        if before == after:
            return
        waiting = self.notify_again
        self.state_changed(after)
        if self.notify_again and not waiting and self.sent is None:
            self.sent = hashlib.sha256(before).digest()

    @handler(RULES_CHANGED)
    def on_rules_changed(self, event, aci):
        if self.waiting is not None:                # a SUBSCRIBE waits for them
            known, decision = self._decision_for(self.waiting[0])
            if known:
                self.decided(self._outcome(decision))
            return
        self._rules_may_say_otherwise()

    def _rules_may_say_otherwise(self):
        """
        Decide again (the rules, or the presentity's sphere, changed), and
        act on it.

        @return: whether the decision changed.
        """
        subscription = self.subscription
        if subscription is None or subscription.state is State.TERMINATED:
            return False
        known, decision = self._decision_for(subscription)
        if not known or decision == self.decision:
            return False
        self.decision = decision
        state = STATES_OF[decision.sub_handling]
        if state is State.TERMINATED:
            self.change_state(State.TERMINATED, Reason.REJECTED)
        elif state is not State.PENDING or subscription.state is not State.PENDING:
            self.change_state(state)        # still pending: the watcher has nothing new
        return True
