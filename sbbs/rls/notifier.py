"""
The resource list server's subscriptions (RFC 4662): one root entity per
list subscription, a L{NotifierSbb} of the C{presence} package that takes
the SUBSCRIBEs to resource lists (L{sbbs.sipevent.list_directory}) which
the presence server lets pass.

A list is a service of some user's rls-services document
(L{sbbs.rls.services}), flattened (L{sbbs.rls.lists}), or one the
SUBSCRIBE carries (RFC 5367, L{sbbs.rls.adhoc}).  For each member the
entity holds a back-end subscription with the list's watcher as its
subscriber, so that each member's rules judge the real watcher, and no
state is shared between watchers:

- a member this container serves, through the subscription client
  (L{SubscriptionClientSbb}, one child for all of them), with no SIP;
- another, over SIP (one L{SubscriberSbb} child each), with eventlist
  offered, through the outbound proxy if one is set, the watcher asserted
  in P-Asserted-Identity: a member's server that trusts this one judges
  that watcher (one that authenticates this server judges the account the
  SIP RA answers its challenges with).

What each back-end subscription says is kept per member (L{Backend}, in
the BTree C{backends}) and sent to the watcher in RLMI + multipart/related
NOTIFYs (L{sbbs.rls.rlmi}): the first after each SUBSCRIBE with the full
state, the others with the members that changed, at most one per
C{notify-interval} (the changes meanwhile batched), versions counted up
from 0 across refreshes and restarts.

Who may subscribe: the owner of the service, and whoever the owner's
pres-rules allow (the list URI is treated as the owner's presentity, as
Mobicents does); others get 403.  An ad-hoc list (RFC 5367) is the
watcher's own.

Why one module of some 800 lines: it is one SBB, and an SBB is one entity's
handlers over one persistent state (the members, their back-end
subscriptions, the pending changes, the versions).  What stands apart from
that state has its own module already: lists (L{sbbs.rls.lists}), services
(L{sbbs.rls.services}), ad-hoc lists (L{sbbs.rls.adhoc}), RLMI
(L{sbbs.rls.rlmi}), and the notifier every package shares.
"""

from dataclasses import dataclass, replace

from BTrees.OOBTree import OOBTree
from zope.interface import implementer

from sbbs.presence.rules import RulesError
from sbbs.presence.rules_reader import parse_rules
from sbbs.rls.adhoc import AdhocError, request_list
from sbbs.rls.lists import DocumentNeeded, ListError, ListTooBig, flatten, member_key
from sbbs.rls.rlmi import (
    MULTIPART_RELATED, RLMI_TYPE, Instance, Part, Resource, RlmiError, full_state,
    multipart_related, new_boundary, rlmi_document)
from sbbs.rls.services import (
    DOCUMENT_CHANGED, SERVICE_CHANGED, cached_document, document_name, find_service,
    rules_paths, service_name, want_documents)
from sbbs.sipevent.addresses import address_of_record
from sbbs.sipevent.list_directory import RECIPIENT_LIST
from sbbs.sipevent.notifier import WAIT, NotifierSbb, Refusal, notifier_for
from sbbs.sipevent.subscriber import ISubscriberParent, SubscriberSbb
from sbbs.sipevent.subscription import ExpiryPolicy, Reason, State
from sbbs.sipevent.subscription_client import (
    ISubscriptionClientParent, SubscriptionClientParent, SubscriptionClientSbb)
from sbbs.sipevent.notifier import ISubscriptionEntity
from slee.events import TIMER
from slee.resources import Property
from slee.sbb import ChildRelation, CmpField, handler

EVENTLIST = "eventlist"
RECIPIENT_LIST_SUBSCRIBE = "recipient-list-subscribe"
#: What a watcher's Accept must allow, when it has one (RFC 4662 §4.2).
LIST_TYPES = (MULTIPART_RELATED, RLMI_TYPE)
#: What a back-end subscription accepts: a member's state, or a nested list's.
BACKEND_ACCEPT = ("application/pidf+xml", RLMI_TYPE, MULTIPART_RELATED)
#: Seconds a back-end subscription is asked for, and how long before its
#: end a local one is refreshed.
BACKEND_EXPIRES = 3600
BACKEND_REFRESH = BACKEND_EXPIRES - 300
#: Seconds before a back-end subscription ended with C{probation} (or
#: refused for a while) is tried again, doubled each time up to the most.
RETRY_FIRST, RETRY_MOST = 5, 600
#: Terminations after which a back-end subscription is made again.
RESUBSCRIBE_REASONS = frozenset((Reason.DEACTIVATED, Reason.TIMEOUT, Reason.PROBATION))
#: Seconds a new list subscription waits at most for its members' first
#: states (no more than the notify interval), so that its first NOTIFY
#: has them: the SUBSCRIBE is answered then.
FIRST_STATES_WAIT = 0.5
#: A back-end NOTIFY body kept for a member at most (bytes): a larger one
#: is dropped (the member shows no state), not stored.
MAX_MEMBER_BODY = 64 * 1024


def _positive_number(value):
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not \
            0 < value <= 3600:
        return "must be a number of seconds from 0 to 3600"
    return None


def _list_size(value):
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100000:
        return "must be an integer from 1 to 100000"
    return None


def _domains(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "must be a list of domain names"
    return None


def _sip_uri_or_empty(value):
    if value and not (isinstance(value, str) and value.startswith(("sip:", "sips:"))):
        return "must be a SIP URI (sip:proxy.example.com:5060) or empty"
    return None


@dataclass(frozen=True)
class Backend:
    """
    A member of the list and its back-end subscription, as last heard of.

    @ivar uri: the member's URI, as the list has it; C{name} its display name.
    @ivar instance: its RLMI instance id, stable while it is a member.
    @ivar state: C{pending}, C{active} or C{terminated}; C{reason} for the last.
    @ivar body: its state (the member's PIDF, or a nested list's
        multipart), and C{content_type}, or empty.
    @ivar remote: the reference of the L{SubscriberSbb} child that holds
        it over SIP, or None for a local one.
    @ivar retries: failed subscriptions in a row (the back-off).
    @ivar heard: whether its back-end subscription said anything yet.
    """

    uri: str
    name: str | None
    instance: str
    state: str = "pending"
    reason: str | None = None
    body: bytes = b""
    content_type: str | None = None
    remote: object = None
    retries: int = 0
    heard: bool = False


class _IRlsEntity(ISubscriptionEntity, ISubscriptionClientParent, ISubscriberParent):
    """What a list subscription's children call back."""


@implementer(_IRlsEntity)
class ResourceListNotifierSbb(SubscriptionClientParent, NotifierSbb):
    """One list subscription; see the module docstring."""

    local_interface = _IRlsEntity
    package = "presence"
    serves_lists = True
    content_types = LIST_TYPES
    notify_headers = (("Require", EVENTLIST),)
    expiry = ExpiryPolicy(default=3600, minimum=60, maximum=86400)
    environment = {
        # Most members of one list (flattened, nested services counting one).
        "max-list-size": Property(int, 1000, _list_size),
        # Most subscriptions to one list at once (each holds a back-end
        # subscription per member).
        "max-list-watchers": Property(int, 1000, _list_size),
        # Seconds between two NOTIFYs of one list subscription, at least.
        "notify-interval": Property(float, 1.0, _positive_number),
        # RFC 5367: SUBSCRIBEs that carry their list.
        "request-contained-lists": Property(bool, True, None),
        # The SIP URI back-end SUBSCRIBEs to other servers go through.
        "outbound-proxy": Property(str, "", _sip_uri_or_empty),
        # Domains whose members this container's presence server serves
        # ("*": every domain); the others are subscribed to over SIP.
        "local-domains": Property(list, ["*"], _domains),
        # This XDMS's XCAP root, for <external> anchors and <resource-list>s.
        "xcap-root-url": Property(str, "http://127.0.0.1:8080/xcap-root", None),
    }

    local = ChildRelation(SubscriptionClientSbb)
    remote = ChildRelation(SubscriberSbb)

    #: The list: its key (None for an ad-hoc list), its URI as the RLMI
    #: says it, its name, and the owner whose rules judge watchers.
    list_key = CmpField()
    list_uri = CmpField()
    list_name = CmpField()
    owner = CmpField()
    #: member key -> L{Backend} (a BTree: a change writes one bucket).
    backends = CmpField(default_factory=OOBTree)
    #: The keys of the members changed since the last NOTIFY.
    changed = CmpField(default=())
    #: Whether the next NOTIFY must carry the full state (the list changed).
    full_due = CmpField(default=False)
    #: The RLMI version of the next NOTIFY.
    version = CmpField(default=0)
    boundary = CmpField()
    next_instance = CmpField(default=0)
    #: The paths of the documents the list was flattened from (watched).
    documents = CmpField(default=())
    #: When the last NOTIFY went, and the timer of the next, if one waits.
    notified_at = CmpField(default=0.0)
    throttle_timer = CmpField()
    #: The timer that refreshes the local back-end subscriptions, and the
    #: one that retries those that failed.
    refresh_timer = CmpField()
    retry_timer = CmpField()
    #: While a SUBSCRIBE waits for documents or its members' first states:
    #: its request; and the timer that ends the wait for the states, with
    #: the null activity it is set on.
    pending_request = CmpField()
    first_states_timer = CmpField()
    first_states_activity = CmpField()
    #: How many members have not said their first state yet.
    unheard = CmpField(default=0)

    @property
    def option_tags(self):
        tags = [EVENTLIST]
        if self.context.env["request-contained-lists"]:
            tags.append(RECIPIENT_LIST_SUBSCRIBE)
        return tuple(tags)

    # -- the SUBSCRIBE ---------------------------------------------------------------

    def check_subscribe(self, request, subscription):
        if request.host is not None and EVENTLIST not in request.supported:
            return Refusal(421, "Extension Required", (("Require", EVENTLIST),))
        if request.accept and not all(_accepts(request.accept, mime) for mime in LIST_TYPES):
            return Refusal(406, "Not Acceptable", (("Accept", ", ".join(LIST_TYPES)),))
        if request.disposition == RECIPIENT_LIST:
            return self._adhoc(request)
        return self._service_list(request)

    def _adhoc(self, request):
        """RFC 5367: the list the SUBSCRIBE carries, the watcher's own."""
        if not self.context.env["request-contained-lists"]:
            return Refusal(420, "Bad Extension", (("Unsupported", RECIPIENT_LIST_SUBSCRIBE),))
        try:
            members = request_list(request.body, request.content_encoding,
                                   self.context.env["max-list-size"])
        except AdhocError as error:
            self.context.tracer.info("request-contained list of {watcher} refused: {error}",
                                     watcher=request.subscriber, error=error.reason)
            headers = (("Warning", f'399 rls "{error.reason}"'),) if error.status == 403 else ()
            return Refusal(error.status, error.reason, headers)
        self.list_uri, self.owner = request.uri, request.subscriber
        self._start_members(request.subscriber, members)
        return self._first_states(request)

    def _service_list(self, request):
        key = member_key(request.uri or request.resource)
        service = find_service(self.context, key)
        if service is None:         # gone since the directory said it was a list
            return Refusal(404, "Not Found")
        if not service.serves(request.package):
            return Refusal(489, "Bad Event", (("Allow-Events", ", ".join(service.packages)),))
        self.list_key, self.list_uri, self.owner = key, service.uri, service.owner
        watch_service = self.context.naming.lookup_or_create(service_name(key))
        if watch_service.attached_count() >= self.context.env["max-list-watchers"]:
            self.context.tracer.warn("list {service}: refused {watcher}, the list has "
                                     "{count} watchers", service=service.uri,
                                     watcher=request.subscriber,
                                     count=watch_service.attached_count())
            return Refusal(403, "Too many watchers of this list")
        watch_service.attach(self.context.sbb_local_object)
        decision = self._judge(request, service)
        if decision == WAIT:
            self.pending_request = request
        return decision

    def _judge(self, request, service):
        """Authorize, then flatten: a L{Refusal}, L{State.ACTIVE}, or L{WAIT} for documents."""
        allowed = self._authorized(request.subscriber, service.owner)
        if allowed is None:
            return WAIT
        if not allowed:
            return Refusal(403, "Forbidden by the list owner's rules")
        outcome = self._flattened(service)
        if outcome is None:
            return WAIT
        if isinstance(outcome, Refusal):
            return outcome
        self.list_name = outcome.name
        self._start_members(request.subscriber, outcome.members)
        return self._first_states(request)

    def _first_states(self, request):
        """
        The members are subscribed to: wait for their first states
        (L{WAIT}), at most L{FIRST_STATES_WAIT} seconds, so that the first
        NOTIFY has them instead of saying each member pending; or, when
        every member has spoken or the wait is over, L{State.ACTIVE}.
        """
        if self.first_states_activity is not None and self.first_states_timer is None:
            return State.ACTIVE                 # the wait is over
        if not self.unheard:
            return State.ACTIVE
        self.pending_request = request
        if self.first_states_activity is None:
            activity = self.context.create_null_activity()
            activity.attach(self.context.sbb_local_object)
            self.first_states_activity = activity
            self.first_states_timer = self.context.timers.set_timer(
                activity, min(FIRST_STATES_WAIT, self.context.env["notify-interval"]))
        return WAIT

    def _authorized(self, watcher, owner):
        """Whether the owner's rules let C{watcher} subscribe (None: not read yet)."""
        if watcher == owner:
            return True
        paths = rules_paths(owner)
        contents = []
        for path in paths:
            known, content = cached_document(self.context, path)
            if not known:
                self._watch_documents(paths)
                want_documents(self.context, paths)
                return None
            contents.append(content)
        self._watch_documents(paths)
        for content in contents:
            if content is None:
                continue
            try:
                decision = parse_rules(content).evaluate(watcher, self._now())
            except RulesError:
                continue
            return decision is not None and decision.sub_handling == "allow"
        return False

    def _flattened(self, service):
        """
        @return: the L{Flattened} list of C{service}, a L{Refusal} (502,
            403) when it cannot be served, or None while documents are read.
        """
        env = self.context.env
        try:
            flattened = flatten(service, self._document, env["xcap-root-url"],
                                env["max-list-size"],
                                lambda key: find_service(self.context, key))
        except DocumentNeeded as needed:
            self._watch_documents((needed.uri,))
            want_documents(self.context, (needed.uri,))
            return None
        except ListTooBig as error:
            self.context.tracer.warn("list {service}: {error}", service=service.uri,
                                     error=str(error))
            return Refusal(403, "List Too Big", (
                ("Warning", f'399 rls "the list has more than {error.limit} members"'),))
        except ListError as error:
            self.context.tracer.warn("list {service}: {reference}: {reason}",
                                     service=service.uri, reference=error.reference,
                                     reason=error.reason)
            return Refusal(502, "Bad Gateway", (
                ("Warning", f'399 rls "{_header_text(error.reference)}: {error.reason}"'),))
        self._watch_documents(flattened.documents)
        return flattened

    def _document(self, path):
        known, content = cached_document(self.context, path)
        if not known:
            raise DocumentNeeded(path)
        return content

    def _watch_documents(self, paths):
        """Attach to the activities announcing changes of C{paths} (once each)."""
        watched = set(self.documents)
        for path in paths:
            if path not in watched:
                self.context.naming.lookup_or_create(document_name(path)).attach(
                    self.context.sbb_local_object)
                watched.add(path)
        if len(watched) != len(self.documents):
            self.documents = tuple(sorted(watched))

    @handler(DOCUMENT_CHANGED)
    def on_document_changed(self, event, aci):
        """
        A document the list depends on was read or changed: the owner's
        rules say who may subscribe, and change nothing of the list; the
        others may change its members.
        """
        if self.waiting is not None:
            self._decide_waiting()
        elif event.path in rules_paths(self.owner):
            self._authorization_changed()
        elif self.list_key is not None:
            self._list_changed(find_service(self.context, self.list_key))

    def _authorization_changed(self):
        """
        The owner's rules changed (or were read, after the SUBSCRIBE was
        decided): a watcher they no longer allow is let go, C{rejected},
        as the presence server lets go of the watchers of a presentity.
        """
        subscription = self.subscription
        if subscription is not None and \
                self._authorized(subscription.subscriber, self.owner) is False:
            self.change_state(State.TERMINATED, Reason.REJECTED)

    @handler(SERVICE_CHANGED)
    def on_service_changed(self, event, aci):
        if self.waiting is not None:
            self._decide_waiting()
        elif event.service is None:
            self.change_state(State.TERMINATED, Reason.NORESOURCE)
        else:
            self._list_changed(event.service)

    def _decide_waiting(self):
        """
        What the waiting SUBSCRIBE needed came (a document, a member's first
        state, the end of the wait for them): answer it if it can be now.
        """
        request = self.pending_request
        if self.first_states_activity is not None or self.list_key is None:
            decision = self._first_states(request)    # only the members' states are awaited
        else:
            service = find_service(self.context, self.list_key)
            decision = Refusal(404, "Not Found") if service is None else \
                self._judge(request, service)
        if decision == WAIT:
            return
        self.pending_request = None
        self._end_first_states_wait()
        self.decided(decision)

    def _end_first_states_wait(self):
        activity = self.first_states_activity
        if activity is None:
            return
        if self.first_states_timer is not None:
            self.context.timers.cancel_timer(self.first_states_timer)
            self.first_states_timer = None
        activity.detach(self.context.sbb_local_object)
        self.first_states_activity = None

    def watcher_event(self, subscription, event):
        """
        The list subscription starts (C{subscribe}, its channel open): from
        now on its local back-end subscriptions are refreshed, by a timer
        on its dialog (or a service's activity).
        """
        if event == "subscribe" and self.refresh_timer is None:
            self.refresh_timer = self.context.timers.set_timer(
                self.dialog, BACKEND_REFRESH, period=BACKEND_REFRESH)

    # -- the members -------------------------------------------------------------------

    def _start_members(self, watcher, members):
        """Hold a back-end subscription to each of C{members} for C{watcher}."""
        self.boundary = self.boundary or new_boundary()
        backends = self.backends
        for member in members:
            key = member_key(member.uri)
            if key not in backends:
                backends[key] = self._subscribe_member(watcher, member)

    def _subscribe_member(self, watcher, member, instance=None):
        """@return: the L{Backend} of a new back-end subscription to C{member}."""
        if instance is None:
            instance = f"{self.next_instance:x}"
            self.next_instance += 1
        backend = Backend(member.uri, member.name, instance)
        self.unheard += 1
        if self._is_local(member.uri):
            self.local.get_or_create().subscribe(watcher, member.uri, self.package, member.uri,
                                           BACKEND_EXPIRES, accept=BACKEND_ACCEPT)
            return backend
        child = self.remote.create()
        child.start(member.uri, watcher, self.package, expires=BACKEND_EXPIRES,
                    headers=(("Supported", EVENTLIST), ("Accept", ", ".join(BACKEND_ACCEPT))),
                    proxy=self.context.env["outbound-proxy"] or None, assert_identity=True)
        return replace(backend, remote=child.reference)

    def _is_local(self, uri):
        """Whether this container's presence server serves member C{uri}."""
        if notifier_for(self.context, "presence") is None:
            return False            # no presence server here (the profile rls)
        domains = self.context.env["local-domains"]
        if "*" in domains:
            return True
        host = address_of_record(uri).rpartition("@")[2]
        return host in domains

    def _stop_member(self, key, backend):
        if backend.remote is not None:
            child = self.context.resolve(backend.remote)
            if child.exists():
                child.stop()
        else:
            self.local.get_or_create().unsubscribe(self.subscription.subscriber, backend.uri,
                                             self.package, backend.uri)

    def _list_changed(self, service):
        """
        The service or a document it uses changed: members added and
        removed, full state next.  A change that leaves the list as it was
        (another list of the document changed, say) sends nothing: the
        watcher would be sent the state it has.
        """
        subscription = self.subscription
        if service is None or subscription is None or subscription.state is State.TERMINATED:
            return
        outcome = self._flattened(service)
        if outcome is None:
            return                          # a document is being read: it comes back here
        if isinstance(outcome, Refusal):
            return                          # logged; the members stay as they were
        now = {member_key(member.uri): member for member in outcome.members}
        backends = self.backends
        if outcome.name == self.list_name and set(now) == set(backends.keys()) and all(
                backends[key].name == member.name for key, member in now.items()):
            return
        self.list_name = outcome.name
        for key in [key for key in backends.keys() if key not in now]:
            self._stop_member(key, backends.pop(key))
        for key, member in now.items():
            if key not in backends:
                backends[key] = self._subscribe_member(subscription.subscriber, member)
            elif backends[key].name != member.name:
                backends[key] = replace(backends[key], name=member.name)
        self.full_due = True
        self._changed(())

    def _member_state(self, key, state, body, content_type):
        """
        A member's NOTIFY said C{state} (C{pending}, C{active}) with
        C{body}.  A member that is a list sends its changes; what is kept
        of it is its whole state (L{full_state}), which every NOTIFY of
        ours carries.
        """
        if body and content_type and content_type.lower().startswith(MULTIPART_RELATED):
            backend = self.backends.get(key)
            before = (backend.content_type, backend.body) \
                if backend is not None and backend.body else None
            try:
                content_type, body = full_state(before, (content_type, body))
            except (RlmiError, ValueError) as error:
                self.context.tracer.warn("{member}: a list state that cannot be read: {error}",
                                         member=key, error=str(error))
                content_type, body = None, b""
        self._member_is(key, state=state, reason=None, body=body or b"",
                        content_type=content_type if body else None)

    def _member_is(self, key, **state):
        """A back-end subscription told us something: note it and NOTIFY in time."""
        backend = self.backends.get(key)
        if backend is None:
            return
        body = state.get("body", b"")
        if len(body) > MAX_MEMBER_BODY:
            self.context.tracer.warn("{member}: a state of {size} bytes dropped",
                                     member=backend.uri, size=len(body))
            state = {**state, "body": b"", "content_type": None}
        updated = replace(backend, heard=True, **state)
        if updated != backend:
            self.backends[key] = updated
            self._changed((key,))
        if not backend.heard:
            self.unheard -= 1
            if self.waiting is not None:
                self._decide_waiting()

    # -- the local back-end (the subscription client's answers) ------------------------

    def subscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires,
                     status):
        key = member_key(subscription_id)
        backend = self.backends.get(key)
        if backend is not None and backend.retries:
            self.backends[key] = replace(backend, retries=0)

    def subscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self._member_failed(member_key(subscription_id), error)

    def resubscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires):
        pass

    def resubscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self._retry_later(member_key(subscription_id))

    def notify_event(self, subscriber, notifier, event_package, subscription_id,
                     termination_reason, status, content, content_type):
        key = member_key(subscription_id)
        if status == "terminated":
            self._member_is(key, state="terminated", reason=termination_reason or
                            Reason.NORESOURCE, body=b"", content_type=None)
            if termination_reason in RESUBSCRIBE_REASONS:
                self._retry_later(key)
        else:
            self._member_state(key, status, content, content_type)

    def _retry_later(self, key):
        """Subscribe to a member again after a back-off (RETRY_FIRST, doubled each time)."""
        backend = self.backends.get(key)
        if backend is None:
            return
        self.backends[key] = replace(backend, retries=backend.retries + 1)
        if self.retry_timer is None:
            delay = min(RETRY_MOST, RETRY_FIRST * 2 ** backend.retries)
            self.retry_timer = self.context.timers.set_timer(self.dialog, delay)

    # -- the remote back-end (the subscriber children) --------------------------------

    def notified(self, child, state, content_type, body):
        key = self._member_of(child)
        if key is None:
            return
        if state == "terminated":
            self._member_is(key, state="terminated", reason=Reason.DEACTIVATED, body=b"",
                            content_type=None)
        elif state is not None:
            self._member_state(key, state, body, content_type)

    def subscription_ended(self, child_or_subscription, reason=None):
        """
        Two hooks of one name: the list subscription ended (the notifier's
        C{subscription_ended(subscription)}), or a remote member's
        subscription ended for good (the subscriber child's
        C{subscription_ended(child, reason)}: a termination reason, or the
        status of a refused or failed SUBSCRIBE).
        """
        if reason is None:
            self._end_list(child_or_subscription)
            return
        key = self._member_of(child_or_subscription)
        if key is None:
            return
        if reason.isdigit():
            self._member_failed(key, int(reason))
        else:
            self._member_is(key, state="terminated", reason=reason, body=b"",
                            content_type=None)

    def _member_failed(self, key, status):
        """
        A back-end SUBSCRIBE was refused or failed with C{status}: the
        member is C{rejected} (403), C{noresource} (another refusal), or, when
        its server did not answer or failed (408, 5xx, 6xx), on
        C{probation}: subscribed to again after a back-off.
        """
        if status == 403:
            reason = Reason.REJECTED
        elif status == 408 or status >= 500:
            reason = Reason.PROBATION
        else:
            reason = Reason.NORESOURCE
        self._member_is(key, state="terminated", reason=reason, body=b"", content_type=None)
        if reason == Reason.PROBATION:
            self._retry_later(key)

    def _member_of(self, child):
        reference = child.reference
        for key, backend in self.backends.items():
            if backend.remote == reference:
                return key
        return None

    # -- NOTIFYs -----------------------------------------------------------------------

    def _changed(self, keys):
        """
        Members changed: NOTIFY now, or once C{notify-interval} has passed
        since the last.  Before the subscription is accepted nothing is
        noted: its first NOTIFY has the full state.
        """
        subscription = self.subscription
        if subscription is None:
            return
        if keys:
            self.changed = tuple(sorted(set(self.changed) | set(keys)))
        if subscription.state is not State.ACTIVE or self.throttle_timer is not None:
            return
        wait = self.notified_at + self.context.env["notify-interval"] - self._now()
        if wait <= 0:
            self.state_changed()
        else:
            self.throttle_timer = self.context.timers.set_timer(self.dialog, wait)

    def notify_body(self, subscription, full_state):
        full_state = full_state or self.full_due
        changed = self.changed
        if not full_state and not changed:
            return None
        backends = self.backends
        keys = backends.keys() if full_state else [key for key in changed if key in backends]
        resources, parts = [], []
        version = self.version
        for key in keys:
            backend = backends[key]
            cid = None
            if backend.state == "active" and backend.body:
                cid = f"{backend.instance}.{version}@{self.boundary}"
                parts.append(Part(cid, backend.content_type, backend.body))
            instance = Instance(backend.instance, backend.state,
                                backend.reason if backend.state == "terminated" else None, cid)
            resources.append(Resource(backend.uri, backend.name, (instance,)))
        root = rlmi_document(self.list_uri, version, full_state, self.list_name, resources)
        _, body = multipart_related(self.boundary, Part(self._root_cid(version), RLMI_TYPE,
                                                         root), parts)
        self.version = version + 1
        self.changed, self.full_due = (), False
        self.notified_at = self._now()
        return body

    def notify_content_type(self, subscription, body):
        """The multipart's type: its start is the root part of the NOTIFY just made."""
        return (f'{MULTIPART_RELATED};type="{RLMI_TYPE}";'
                f'start="<{self._root_cid(self.version - 1)}>";boundary="{self.boundary}"')

    def _root_cid(self, version):
        return f"list.{version}@{self.boundary}"

    @handler(TIMER)
    def on_timer(self, event, aci):
        timer = event.timer_id
        if timer == self.throttle_timer:
            self.throttle_timer = None
            subscription = self.subscription
            if subscription is not None and subscription.state is State.ACTIVE and (
                    self.changed or self.full_due):
                self.state_changed()
        elif timer == self.refresh_timer:
            self._refresh_local()
        elif timer == self.first_states_timer:
            self.first_states_timer = None
            if self.waiting is not None:
                self._decide_waiting()
        elif timer == self.retry_timer:
            self.retry_timer = None
            self._retry_members()
        else:
            self.on_expiry(event, aci)

    def _refresh_local(self):
        """Refresh the local back-end subscriptions before they expire."""
        if not len(self.local):
            return
        client, watcher = self.local.get_or_create(), self.subscription.subscriber
        for backend in self.backends.values():
            if backend.remote is None and backend.state != "terminated":
                client.resubscribe(watcher, backend.uri, self.package, backend.uri,
                                   BACKEND_EXPIRES)

    def _retry_members(self):
        """Subscribe again to the members whose back-end subscription failed and may come back."""
        subscription = self.subscription
        if subscription is None or subscription.state is State.TERMINATED:
            return
        backends = self.backends
        for key, backend in list(backends.items()):
            if backend.retries and backend.state == "terminated" and \
                    backend.reason in RESUBSCRIBE_REASONS:
                self._stop_member(key, backend)
                fresh = self._subscribe_member(subscription.subscriber, backend,
                                               backend.instance)
                backends[key] = replace(fresh, retries=backend.retries, state="pending",
                                        reason=None)

    # -- the end -----------------------------------------------------------------------

    def _end_list(self, subscription):
        """The list subscription is over: end every back-end subscription, stop watching."""
        for timer in (self.throttle_timer, self.refresh_timer, self.retry_timer):
            if timer is not None:
                self.context.timers.cancel_timer(timer)
        self.throttle_timer = self.refresh_timer = self.retry_timer = None
        backends = self.backends
        for key in list(backends.keys()):
            backend = backends.pop(key)
            if backend.remote is not None:
                child = self.context.resolve(backend.remote)
                if child.exists():
                    child.stop()
            else:
                self.local.get_or_create().unsubscribe(subscription.subscriber, backend.uri,
                                                  self.package, backend.uri)
        for name in [service_name(self.list_key)] if self.list_key else []:
            activity = self.context.naming.lookup(name)
            if activity is not None:
                activity.detach(self.context.sbb_local_object)
        for path in self.documents:
            activity = self.context.naming.lookup(document_name(path))
            if activity is not None:
                activity.detach(self.context.sbb_local_object)


def _accepts(accept, mime):
    """Whether an Accept (its L{ContentType}s) allows C{mime}."""
    type_, subtype = mime.split("/")
    return any((wanted.type == "*" or wanted.type.lower() == type_) and
               (wanted.subtype == "*" or wanted.subtype.lower() == subtype)
               for wanted in accept)


def _header_text(text):
    """C{text} fit for a quoted string of a header: no quotes, backslashes or line breaks."""
    return "".join(c for c in text if c not in '"\\\r\n')[:200]
