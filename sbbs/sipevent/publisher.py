"""
The event state compositor's side of publications (RFC 3903), written once
for every event package: a package is a subclass of L{PublisherSbb} that
checks bodies and says what a change of the publications means.

Publications are kept in shared data (L{sbbs.sipevent.publication}), so
that a SIP PUBLISH and a service's publication client
(L{sbbs.sipevent.publication_client}) change them alike, at once, in the
transaction that asks: L{publish} is that change, with everything it
involves.  Each resource has a named null activity, C{publication:<package>:<resource>};
the expiry timers of its publications are set there, and a
L{PUBLICATIONS_CHANGED} event is fired there when its state changed.  The
resource's L{PublisherSbb} entity (its convergence name is the resource)
is attached there: it hears of each change, each expiry, and every SIP
PUBLISH for the resource, and tells its package (L{PublisherSbb.state_changed}).
A SIP PUBLISH it handles itself changes the state in its own delivery, with
no event fired: one delivery per PUBLISH, not two.  Once a resource has no
publication left, the entity lets the activity go, and goes.

A new publication is held to the quotas (L{sbbs.sipevent.quotas}), and
every change of the stored publications goes through L{_store}, which
counts them.

A package subclass sets C{package}, C{content_types} (the bodies it takes,
for 415 and Accept) and C{expiry} (an L{ExpiryPolicy}), and implements:

- C{check_body(body, content_type)}, a class method: a L{Refusal} (400
  with a reason) for a body it cannot take, or None;
- C{state_changed(resource, publications)}: the live L{Publications} of
  C{resource} changed (possibly to none): compose and tell the watchers.
"""

from dataclasses import dataclass, replace

from resource_adaptors.sip.events import REQUEST
from resource_adaptors.sip.core.syntax import ParseError
from sbbs.sipevent.addresses import address_of_record, identity_address
from sbbs.sipevent.notifier import Refusal
from sbbs.sipevent.publication import STORE, Outcome, publications_of, store_publications
from sbbs.sipevent.quotas import (
    PUBLICATION_ENVIRONMENT, count_publications, publication_refusal)
from sbbs.sipevent.subscription import ExpiryPolicy
from slee.events import TIMER, EventType
from slee.sbb import CmpField, Sbb, handler

#: Declared by the unit deployables/sipevent.
PUBLICATIONS_CHANGED = EventType("PublicationsChanged", "slee", "1.0")


@dataclass(frozen=True, slots=True)
class PublicationsChangedEvent:
    """The publications of C{resource} for C{package} changed."""

    package: str
    resource: str


def publisher_for(context, package):
    """
    @return: the L{PublisherSbb} subclass of the event package C{package}
        in a service active now (what the publication client checks a
        service's bodies with), or None.
    """
    return next((cls for cls in context.active_sbb_classes(PublisherSbb)
                 if cls.package == package), None)


def activity_name(package, resource):
    return f"publication:{package}:{resource}"


def publish(context, package, policy, resource, if_match=None, body=b"", content_type=None,
            expires=None, announce=True):
    """
    Apply a PUBLISH for C{resource} in the caller's transaction: store the
    publications, move the expiry timers, and fire L{PUBLICATIONS_CHANGED}
    when the state changed.  The body was checked already.

    @param context: the SBB context of the caller: a publisher or the
        publication client, whose environment has the quotas' entries (a
        new publication past them is refused: L{sbbs.sipevent.quotas}).
    @param announce: whether to fire L{PUBLICATIONS_CHANGED}; the
        resource's own L{PublisherSbb} entity, which would hear it, says
        False and composes at once instead.
    @return: the L{sbbs.sipevent.publication.Outcome}.
    """
    publications = publications_of(context.shared_data(STORE), package, resource)
    outcome = publications.publish(context.timers.clock.seconds(), policy, if_match, body,
                                   content_type, expires)
    if outcome.is_new:
        refusal = publication_refusal(context, len(publications))
        if refusal is not None:
            return Outcome(refusal.status, refusal.reason, headers=refusal.headers)
    if outcome.status != 200:
        return outcome
    activity = _resource_activity(context, package, resource)
    timers = context.timers
    if outcome.replaced is not None and outcome.replaced.timer is not None:
        timers.cancel_timer(outcome.replaced.timer)
    if outcome.publication is not None:
        timer = timers.set_timer(activity, outcome.expires)
        outcome = _with_timer(outcome, timer)
    _store(context, package, resource, publications, publications.after(outcome))
    if outcome.changed_state and announce:
        context.fire_event(activity, PUBLICATIONS_CHANGED,
                           PublicationsChangedEvent(package, resource))
    return outcome


def _store(context, package, resource, before, after):
    """Store the publications C{after} of C{resource}, which were C{before}, and count them."""
    store_publications(context.shared_data(STORE), package, resource, after)
    count_publications(context, len(after) - len(before))


def _with_timer(outcome, timer):
    return replace(outcome, publication=replace(outcome.publication, timer=timer))


def _resource_activity(context, package, resource):
    """The resource's named activity, made if need be."""
    return context.naming.lookup_or_create(activity_name(package, resource))


class PublisherSbb(Sbb):
    """The publications of one resource; see the module docstring."""

    package = None
    content_types = ()
    expiry = ExpiryPolicy()

    environment = PUBLICATION_ENVIRONMENT

    resource = CmpField()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Every publisher has the quotas' entries, besides its package's own.
        cls.environment = {**PUBLICATION_ENVIRONMENT, **cls.environment}

    # -- the package's part ---------------------------------------------------

    @classmethod
    def check_body(cls, body, content_type):
        raise NotImplementedError

    def state_changed(self, resource, publications):
        raise NotImplementedError

    # -- which resource ---------------------------------------------------------

    def _by_resource(self, event_type, event, aci, address):
        """The convergence name: the resource, for this package's PUBLISH and changes."""
        if isinstance(event, PublicationsChangedEvent):
            return event.resource if event.package == self.package else None
        request = event.request
        header = request.event
        if event.dialog is not None or header is None or header.package != self.package:
            return None
        return address_of_record(request.uri)

    # -- PUBLISH ------------------------------------------------------------------

    @handler(REQUEST["PUBLISH"], initial=True, select=(), selector="_by_resource")
    def on_publish(self, event, aci):
        aci.detach(self.context.sbb_local_object)       # the server transaction's
        sip = self.context.resource_adaptor("sip")
        request = event.request
        resource = address_of_record(request.uri)
        self._own(resource)
        try:
            refusal = self._check(request, event.identity)
            if_match, expires = request.sip_if_match, request.expires
        except ParseError as error:         # a malformed Expires, Content-Type...
            refusal = Refusal(error.status, error.reason)
        if refusal is not None:
            sip.respond(event, refusal.status, refusal.reason, headers=refusal.headers)
            self._leave_if_idle()
            return
        content_type = request.content_type
        outcome = publish(self.context, self.package, self.expiry, resource, if_match,
                          request.body, None if content_type is None else content_type.mime,
                          expires, announce=False)
        headers = [*outcome.headers]
        if outcome.status == 200:
            if outcome.etag is not None:
                headers.append(("SIP-ETag", outcome.etag))
            headers.append(("Expires", str(outcome.expires)))
        elif outcome.status == 423:
            headers.append(("Min-Expires", str(outcome.expires)))
        sip.respond(event, outcome.status, outcome.reason, headers=headers)
        if outcome.changed_state:
            self._changed()     # in this transaction: no event of its own to route
        else:
            self._leave_if_idle()

    def _check(self, request, identity):
        """
        A L{Refusal} for a publisher other than the resource, or a body this
        package does not take.  Who publishes is who the SIP RA says the
        request comes from (C{identity}), never its From; an administrator
        publishes for anyone.
        """
        if identity is None or not identity.admin \
                and identity_address(identity) != address_of_record(request.uri):
            return Refusal(403, "Only the resource itself publishes its state")
        if not request.body:
            return None
        content_type = request.content_type
        mime = None if content_type is None else content_type.mime
        if mime not in self.content_types:
            return Refusal(415, "Unsupported Media Type",
                           (("Accept", ", ".join(self.content_types)),))
        return self.check_body(request.body, mime)

    # -- changes and expiry ---------------------------------------------------------

    @handler(PUBLICATIONS_CHANGED, initial=True, select=(), selector="_by_resource")
    def on_publications_changed(self, event, aci):
        self._own(event.resource)
        self._changed()

    @handler(TIMER)
    def on_expiry(self, event, aci):
        publications = publications_of(self.context.shared_data(STORE), self.package,
                                       self.resource)
        expired = [p for p in publications if p.timer == event.timer_id]
        if not expired:
            return
        _store(self.context, self.package, self.resource, publications,
               publications.without(expired[0]))
        self._changed()

    def _changed(self):
        store = self.context.shared_data(STORE)
        publications = publications_of(store, self.package, self.resource)
        self.state_changed(self.resource, publications)
        self._leave_if_idle()

    # -- the entity's life ------------------------------------------------------------

    def _own(self, resource):
        """Be the entity of C{resource}: attached to its activity."""
        if self.resource is None:
            self.resource = resource
            _resource_activity(self.context, self.package, resource).attach(
                self.context.sbb_local_object)

    def _leave_if_idle(self):
        """No publication left: let the resource's activity go; the entity goes with it."""
        store = self.context.shared_data(STORE)
        if len(publications_of(store, self.package, self.resource)):
            return
        name = activity_name(self.package, self.resource)
        activity = self.context.naming.lookup(name)
        if activity is not None:
            self.context.naming.unbind(name)
            activity.detach(self.context.sbb_local_object)
