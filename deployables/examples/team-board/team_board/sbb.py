"""
A team board: who on a resource list is online.

One entity (its convergence name is constant) subscribes as its
environment entry C{watcher} to the list C{list} (a service of some user's
rls-services document, served by the resource list server of this
container) through a subscription client child, as any service would, and
reads the list NOTIFYs it gets (RFC 4662): a C{multipart/related} body
whose root is an RLMI document naming each member and the state of the
RLS's subscription to it, the other parts the members' PIDF documents.

A member is online when one of its instances is C{active} and the PIDF
that instance's C{cid} names has a tuple whose C{<basic>} is C{open}.  The
board (member -> its name, state and whether it is online) is kept in CMP
fields: a full-state NOTIFY replaces it, a partial one (the members that
changed) is merged into it.  Each time the set of online members changes,
one line is logged: C{team board {list}: online {online}}, C{online} the
sorted list of their URIs.

The subscription is refreshed before it expires (a timer), and made again
when it ends: at once after C{deactivated} or C{timeout} (RFC 6665
§4.2.2); after a back-off (5 s, doubled each time up to 10 min) when it
was refused, ended otherwise (C{noresource}: the list is gone...), or
ended again before it was ever refreshed.  A NOTIFY that is not a list's
(the presence server took the URI for its user's: the list did not exist
yet) ends it too.  Each subscription has an id of its own (the list's URI
and a counter), so that what the subscription client still says of an
older one is told apart and ignored.
"""

from zope.interface import implementer

from sbbs.presence.pidf import BASIC, PIDF_TYPE, STATUS, TUPLE, PidfError, parse_pidf
from sbbs.rls.rlmi import MULTIPART_RELATED, RLMI_TYPE, RlmiError, parse_multipart, parse_rlmi
from sbbs.sipevent.subscription_client import (
    ISubscriptionClientParent, SubscriptionClientParent, SubscriptionClientSbb)
from slee.events import SERVICE_STARTED, TIMER
from slee.resources import Property
from slee.sbb import ChildRelation, CmpField, Sbb, handler

PACKAGE = "presence"
#: What a list subscriber accepts (RFC 4662 §4.2): the multipart, its RLMI
#: root, and the members' states.
ACCEPT = (RLMI_TYPE, MULTIPART_RELATED, PIDF_TYPE)
#: Seconds the subscription is asked for, and refreshed this long before
#: its end (at most half of what was granted).
LIFETIME, REFRESH_MARGIN = 3600, 300
#: Seconds before subscribing again after a refusal or an end that is not
#: retried at once, doubled each time up to the most.
RETRY_FIRST, RETRY_MOST = 5, 600
#: Terminations after which the subscription is made again at once.
AT_ONCE = frozenset(("deactivated", "timeout"))
#: Instance states, best first: a member's state is its best instance's.
_STATES = ("active", "pending", "terminated")


def _sip_uri(value):
    return None if value.startswith(("sip:", "sips:")) and " " not in value else \
        "expected a SIP URI"


@implementer(ISubscriptionClientParent)
class TeamBoardSbb(SubscriptionClientParent, Sbb):
    local_interface = ISubscriptionClientParent
    singleton = True
    environment = {"watcher": Property(str, "sip:board@example.com", _sip_uri),
                   "list": Property(str, "sip:alice@example.com;pres-list=team", _sip_uri)}

    subscriptions = ChildRelation(SubscriptionClientSbb)

    #: The activity the entity lives and sets its timers on.
    home = CmpField()
    #: The id of the subscription held or asked for (None: none), and the
    #: counter the ids are made with.
    subscription_id = CmpField()
    generation = CmpField(default=0)
    #: The version of the last RLMI document read (None: none yet).
    version = CmpField()
    refresh_timer = CmpField()
    retry_timer = CmpField()
    #: Subscriptions refused or ended in a row, none refreshed between (the back-off).
    failures = CmpField(default=0)
    #: The board: member URI -> (its display name or None, its state:
    #: active, pending or terminated, whether it is online).
    members = CmpField(default_factory=dict)
    #: The URIs of the members online, sorted: what the log says.
    online = CmpField(default=())

    @handler(SERVICE_STARTED, initial=True)
    def on_started(self, event, aci):
        aci.detach(self.context.sbb_local_object)
        if self.home is None:
            env = self.context.env
            self.home = self.context.naming.lookup_or_create(
                f"team-board:{env['watcher']}:{env['list']}")
            self.home.attach(self.context.sbb_local_object)
        # Started again (a restart): the subscription's activities are
        # durable and the timers armed again; nothing to do.
        if self.subscription_id is None and self.retry_timer is None:
            self._subscribe()

    # -- the subscription -------------------------------------------------------------

    def _subscribe(self):
        env = self.context.env
        self.generation += 1
        self.subscription_id = f"{env['list']}#{self.generation}"
        self.version = None
        self._client().subscribe(env["watcher"], env["list"], PACKAGE, self.subscription_id,
                                 LIFETIME, accept=ACCEPT)

    def _current(self, subscription_id):
        return subscription_id is not None and subscription_id == self.subscription_id

    def _arm_refresh(self, expires):
        self._cancel("refresh_timer")
        if expires:
            self.refresh_timer = self.context.timers.set_timer(
                self.home, max(1, expires - min(REFRESH_MARGIN, expires // 2)))

    def _lost(self, at_once, log, **fields):
        """
        The subscription is gone: subscribe again, at once or after a
        back-off; log C{log} (its C{delay}: the seconds until then).
        """
        self.subscription_id = None
        self._cancel("refresh_timer")
        self._cancel("retry_timer")
        delay = 0 if at_once and not self.failures else \
            min(RETRY_MOST, RETRY_FIRST * 2 ** min(self.failures, 16))
        self.failures += 1
        self.retry_timer = self.context.timers.set_timer(self.home, delay)
        self.context.tracer.warn(log, list=self.context.env["list"], delay=delay, **fields)
        if delay:
            self._show({})              # nobody is known to be online meanwhile

    def _cancel(self, field):
        timer = getattr(self, field)
        if timer is not None:
            self.context.timers.cancel_timer(timer)
            setattr(self, field, None)

    @handler(TIMER)
    def on_timer(self, event, aci):
        if event.timer_id == self.refresh_timer:
            self.refresh_timer = None
            if self.subscription_id is not None:
                env = self.context.env
                self._client().resubscribe(env["watcher"], env["list"], PACKAGE,
                                           self.subscription_id, LIFETIME)
        elif event.timer_id == self.retry_timer:
            self.retry_timer = None
            if self.subscription_id is None:
                self._subscribe()

    # -- what the subscription client tells -------------------------------------------

    def subscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires,
                     status):
        if self._current(subscription_id):
            self.context.tracer.info("team board {list}: subscribed as {watcher} ({status})",
                                     list=notifier, watcher=subscriber, status=status)
            self._arm_refresh(expires)

    def subscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        if self._current(subscription_id):
            self._lost(False, "team board {list}: subscription refused ({error}), "
                       "trying again in {delay} s", error=error)

    def resubscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires):
        if self._current(subscription_id):
            self.context.tracer.info("team board {list}: subscription refreshed ({expires} s)",
                                     list=notifier, expires=expires)
            self.failures = 0
            self._arm_refresh(expires)

    def resubscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        if self._current(subscription_id):
            self._lost(True, "team board {list}: refresh refused ({error}), "
                       "subscribing again in {delay} s", error=error)

    def notify_event(self, subscriber, notifier, event_package, subscription_id,
                     termination_reason, status, content, content_type):
        if not self._current(subscription_id):
            return                      # an older subscription's last words
        if content and not self._read(notifier, content, content_type):
            return
        if status == "terminated":
            self._lost(termination_reason in AT_ONCE, "team board {list}: subscription "
                       "terminated ({reason}), subscribing again in {delay} s",
                       reason=termination_reason)

    # -- the list's state --------------------------------------------------------------

    def _read(self, notifier, content, content_type):
        """
        Read a NOTIFY's body into the board.
        @return: whether the subscription goes on (not when it is no list's).
        """
        try:
            root, parts = parse_multipart(content_type or "", content)
            rlmi = parse_rlmi(root.body)
        except RlmiError as error:
            if (content_type or "").split(";")[0].strip().lower() != MULTIPART_RELATED:
                # Not a list (not yet known to the RLS, say): the presence
                # server took the URI for its user's.  Drop it; try later.
                env = self.context.env
                self._client().unsubscribe(env["watcher"], notifier, PACKAGE,
                                           self.subscription_id)
                self._lost(False, "team board {list}: not a resource list (a NOTIFY of "
                           "{type}), trying again in {delay} s", type=content_type)
                return False
            self.context.tracer.warn("team board {list}: unreadable NOTIFY: {error}",
                                     list=notifier, error=error.reason)
            return True
        last = self.version
        if not rlmi.full_state and last is not None and rlmi.version <= last:
            return True                 # older than what the board shows (RFC 4662 §5.4)
        by_cid = {part.content_id: part for part in parts}
        heard = {resource.uri: self._member(notifier, resource, by_cid)
                 for resource in rlmi.resources}
        self.version = rlmi.version
        self._show(heard if rlmi.full_state else {**self.members, **heard})
        if not rlmi.full_state and last is not None and rlmi.version > last + 1:
            # A partial state missed: a refresh brings the full state.
            env = self.context.env
            self._client().resubscribe(env["watcher"], notifier, PACKAGE,
                                       self.subscription_id, LIFETIME)
        return True

    def _member(self, notifier, resource, by_cid):
        """@return: (name, state, online) of an RLMI resource."""
        states = {instance.state for instance in resource.instances}
        state = next((state for state in _STATES if state in states), "pending")
        online = any(instance.state == "active" and
                     self._is_open(notifier, resource.uri, by_cid.get(instance.cid))
                     for instance in resource.instances)
        return resource.name, state, online

    def _is_open(self, notifier, member, part):
        """Whether a member's state part (or None) is PIDF with a tuple whose basic is open."""
        if part is None or part.content_type.split(";")[0].strip().lower() != PIDF_TYPE:
            return False                # no state, or a nested list's: not a person online
        try:
            document = parse_pidf(part.body)    # safe: no DTD, no entity, no network
        except PidfError as error:
            self.context.tracer.warn("team board {list}: {member}: {error}", list=notifier,
                                     member=member, error=error.reason)
            return False
        return any(basic.text == "open"
                   for basic in document.iterfind(f"{TUPLE}/{STATUS}/{BASIC}"))

    def _show(self, members):
        """Make C{members} the board; log the members online if they changed."""
        if members != self.members:
            self.members = members
        online = tuple(sorted(uri for uri, (_, _, on) in members.items() if on))
        if online != self.online:
            self.online = online
            self.context.tracer.info("team board {list}: online {online}",
                                     list=self.context.env["list"], online=list(online))

    def _client(self):
        return self.subscriptions.get_or_create()
