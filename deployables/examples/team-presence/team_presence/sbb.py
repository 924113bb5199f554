"""
Team presence: the presence of a team address, derived from its members'.

One entity (the SBB is a singleton) does it all, through the three
internal client interfaces any service uses:

- the XDM client reads the owner's resource-lists document and watches
  it, so that the members are the entries of the list C{list} as it is
  now (L{documents.contacts});
- the subscription client watches each member's presence, as the owner
  (so each member's pres-rules must let the owner see them);
- the publication client publishes the team's presence: open while at
  least one member is open, its note saying how many of how many.

A periodic timer refreshes the publication and the subscriptions (and
makes again those refused or ended meanwhile).  The usage counters say
what it did: C{lists-read}, C{notifications}, C{publications}; the
sample C{available} is how many members were open at each publication.

All state is in CMP fields, of immutable values (tuples), assigned anew
on each change: that is what makes a change persistent.
"""

from zope.interface import implementer

from sbbs.sipevent.publication_client import PublicationClientSbb
from sbbs.sipevent.subscription_client import (
    ISubscriptionClientParent, SubscriptionClientParent, SubscriptionClientSbb)
from sbbs.xdms.client import IXdmClientParent, XdmClientSbb
from slee.events import SERVICE_STARTED, TIMER
from slee.resources import Property
from slee.sbb import ChildRelation, CmpField, Sbb, handler

from team_presence.documents import PIDF_TYPE, contacts, is_open, team_pidf

PACKAGE = "presence"
#: Seconds the publication and subscriptions are asked for, and how often
#: they are refreshed.
LIFETIME, REFRESH = 3600, 3000


def _sip_uri(value):
    return None if value.startswith(("sip:", "sips:")) and " " not in value else \
        "expected a SIP URI"


class ITeamPresence(ISubscriptionClientParent, IXdmClientParent):
    """What the clients tell the service: its local interface."""


@implementer(ITeamPresence)
class TeamPresenceSbb(SubscriptionClientParent, Sbb):
    local_interface = ITeamPresence
    singleton = True
    environment = {"owner": Property(str, "sip:alice@example.com", _sip_uri),
                   "list": Property(str, "team"),
                   "team": Property(str, "sip:team@example.com", _sip_uri)}

    xdm = ChildRelation(XdmClientSbb)
    subscriptions = ChildRelation(SubscriptionClientSbb)
    publications = ChildRelation(PublicationClientSbb)

    #: The members (the list's entries), those with a subscription (held
    #: or asked for), and those whose presence is open: sorted tuples of URIs.
    members = CmpField(default=())
    watching = CmpField(default=())
    available = CmpField(default=())
    #: The publication's entity tag (None: none yet), and what it says:
    #: (available, members) as last published.
    etag = CmpField()
    published = CmpField()

    # -- starting ------------------------------------------------------------------------

    @handler(SERVICE_STARTED, initial=True)
    def on_started(self, event, aci):
        # Live on a named activity of its own, where its timer fires.
        aci.detach(self.context.sbb_local_object)
        home = self.context.naming.lookup_or_create(f"team-presence:{self.context.env['team']}")
        if home.is_attached(self.context.sbb_local_object):
            return                      # started again after a restart: all is in place
        home.attach(self.context.sbb_local_object)
        self.context.timers.set_timer(home, REFRESH, period=REFRESH)
        client = self.xdm.get_or_create()
        client.get(self._list_document(), self.context.env["owner"])
        client.subscribe(self._list_document())
        self._publish()

    def _list_document(self):
        return f"resource-lists/users/{self.context.env['owner']}/index"

    # -- the members: what the XDM client tells ------------------------------------------

    def get_response(self, uri, status, etag, content, content_type):
        self._read_list(content if status == 200 else None)

    def document_updated(self, document, old_etag, new_etag, content):
        self._read_list(content)

    def put_response(self, uri, status, etag):
        pass

    def delete_response(self, uri, status, etag):
        pass

    def _read_list(self, content):
        """Make the entries of the list in C{content} (None: no document) the members."""
        self.context.usage.increment("lists-read")
        members = contacts(content, self.context.env["list"]) if content else ()
        client = self.subscriptions.get_or_create()
        owner = self.context.env["owner"]
        for gone in set(self.watching) - set(members):
            client.unsubscribe(owner, gone, PACKAGE, gone)
        self.watching = tuple(uri for uri in self.watching if uri in members)
        self.available = tuple(uri for uri in self.available if uri in members)
        self.members = members
        self._watch_all()
        self._publish()

    def _watch_all(self):
        """Subscribe to each member not watched yet (the subscription id is its URI)."""
        client = self.subscriptions.get_or_create()
        new = sorted(set(self.members) - set(self.watching))
        self.watching = self.members    # first: a refusal may come back at once
        for member in new:
            client.subscribe(self.context.env["owner"], member, PACKAGE, member, LIFETIME,
                             accept=(PIDF_TYPE,))

    # -- their presence: what the subscription client tells ------------------------------

    def subscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires,
                     status):
        pass

    def subscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self.context.tracer.warn("cannot watch {member}: {error} (trying again later)",
                                 member=notifier, error=error)
        self._lost(notifier)

    def resubscribe_ok(self, subscriber, notifier, event_package, subscription_id, expires):
        pass

    def resubscribe_error(self, subscriber, notifier, event_package, subscription_id, error):
        self._lost(notifier)

    def notify_event(self, subscriber, notifier, event_package, subscription_id,
                     termination_reason, status, content, content_type):
        self.context.usage.increment("notifications")
        if status == "terminated":
            self._lost(notifier)
        elif notifier in self.members:
            available = set(self.available) - {notifier}
            if is_open(content):
                available.add(notifier)
            self.available = tuple(sorted(available))
        self._publish()

    def _lost(self, member):
        """A member's subscription is gone: not available; watched again at the next refresh."""
        self.watching = tuple(uri for uri in self.watching if uri != member)
        self.available = tuple(uri for uri in self.available if uri != member)

    # -- the team's presence: the publication client -------------------------------------

    def _publish(self):
        """Publish the team's presence, if it says something new."""
        state = (len(self.available), len(self.members))
        if state == self.published and self.etag is not None:
            return
        team = self.context.env["team"]
        client = self.publications.get_or_create()
        document = team_pidf(team, *state)
        if self.etag is None:
            result = client.new_publication(team, PACKAGE, document, PIDF_TYPE, LIFETIME)
        else:
            result = client.modify_publication(team, PACKAGE, self.etag, document, PIDF_TYPE,
                                               LIFETIME)
        if result.status != 200:
            self.context.tracer.warn("cannot publish {team}: {status}", team=team,
                                     status=result.status)
            self.etag = self.published = None
            return
        self.etag, self.published = result.etag, state
        self.context.usage.increment("publications")
        self.context.usage.sample("available", state[0])
        self.context.tracer.info("{team}: {available} of {members} available", team=team,
                                 available=state[0], members=state[1])

    # -- keeping it all alive ------------------------------------------------------------

    @handler(TIMER)
    def on_refresh(self, event, aci):
        owner = self.context.env["owner"]
        client = self.subscriptions.get_or_create()
        for member in self.watching:
            client.resubscribe(owner, member, PACKAGE, member, LIFETIME)
        self._watch_all()
        if self.etag is not None:
            result = self.publications.get_or_create().refresh_publication(
                self.context.env["team"], PACKAGE, self.etag, LIFETIME)
            self.etag = result.etag if result.status == 200 else None
        self._publish()
