"""
Where the presence server's authorization rules come from: each
presentity's pres-rules document in the XDMS, read through the XDM client
and kept up to date by its change notifications.

The documents are cached in the shared data L{RULES}, by (AUID,
presentity): the OMA usage's C{pres-rules} document and the IETF usage's
C{index} (RFC 5025 §9), None when the presentity has none.  A subscription
that finds nothing cached for its presentity asks for the rules
(L{want_rules}) and waits, pending; the L{RulesSbb} reads both documents
and announces L{RULES_CHANGED} to the presentity's watchers once they
came.  From then on the cache follows every change the XDMS makes to
either usage (the XDM client watches them whole), and each change is
announced the same way: a rule changed re-evaluates every live
subscription of its presentity at once.
"""

from dataclasses import dataclass

from sbbs.presence.rules import RulesError, parse_rules
from sbbs.presence.state import RULES_CHANGED, RulesChangedEvent, announce
from sbbs.xdms.client import IXdmClientParent, XdmClientSbb
from slee.events import SERVICE_STARTED, EventType
from slee.sbb import ChildRelation, CmpField, Sbb, handler

#: The shared data caching the rules: (AUID, presentity) -> bytes or None.
RULES = "slee.presence.rules"

#: The usages and document names of presence rules, preferred first: OMA's
#: (what OMA clients write), then the IETF's.
RULES_DOCUMENTS = (("org.openmobilealliance.pres-rules", "pres-rules"),
                   ("pres-rules", "index"))

#: Declared by the unit deployables/presence-server.
RULES_WANTED = EventType("PresenceRulesWanted", "slee", "1.0")

#: The named activity where the rules reader lives.
READER = "presence-rules"


@dataclass(frozen=True, slots=True)
class RulesWantedEvent:
    presentity: str


def cached_rules(context, presentity):
    """
    @return: (whether the rules of C{presentity} are known, its L{Ruleset}
        or None when it has none).  A document that does not parse counts
        as none (the XDMS validated it: this is a usage we do not read).
    """
    cache = context.shared_data(RULES)
    keys = [(auid, presentity) for auid, _ in RULES_DOCUMENTS]
    if not all(key in cache for key in keys):
        return False, None
    for key in keys:
        document = cache[key]
        if document is not None:
            try:
                return True, parse_rules(document)
            except RulesError:
                continue
    return True, None


def want_rules(context, presentity):
    """Ask the rules reader for C{presentity}'s rules; it announces them once read."""
    reader = context.naming.lookup_or_create(READER)
    context.fire_event(reader, RULES_WANTED, RulesWantedEvent(presentity))


def rules_uri(auid, document, presentity):
    return f"{auid}/users/{presentity}/{document}"


class RulesSbb(Sbb):
    """
    The one entity that reads rules for the presence server (its
    convergence name is constant), with its XDM client child.
    """

    local_interface = IXdmClientParent
    xdm = ChildRelation(XdmClientSbb)

    #: rules document URI -> the presentity waiting for it.
    reading = CmpField(default_factory=dict)

    def _the_reader(self, event_type, event, aci, address):
        return READER

    @handler(SERVICE_STARTED, initial=True, select=(), selector="_the_reader")
    def on_started(self, event, aci):
        """Watch both usages whole (again, after a restart: watching is idempotent)."""
        aci.detach(self.context.sbb_local_object)
        client = self._client()
        for auid, _ in RULES_DOCUMENTS:
            client.subscribe(f"{auid}/")
        self._stay()

    @handler(RULES_WANTED, initial=True, select=(), selector="_the_reader")
    def on_rules_wanted(self, event, aci):
        client = self._client()
        reading = dict(self.reading)
        for auid, document in RULES_DOCUMENTS:
            uri = rules_uri(auid, document, event.presentity)
            if uri not in reading:
                reading[uri] = event.presentity
                client.get(uri)
        self.reading = reading

    def get_response(self, uri, status, etag, content, content_type):
        reading = dict(self.reading)
        presentity = reading.pop(uri, None)
        self.reading = reading
        if presentity is None:
            return
        auid = uri.split("/", 1)[0]
        self.context.shared_data(RULES)[(auid, presentity)] = content if status == 200 else None
        if not any(waiting == presentity for waiting in reading.values()):
            announce(self.context, RULES_CHANGED, RulesChangedEvent(presentity), presentity)

    def document_updated(self, document, old_etag, new_etag, content):
        auid, tree, rest = document.split("/", 2)
        presentity, _, name = rest.partition("/")
        if tree != "users" or (auid, name) not in RULES_DOCUMENTS:
            return
        self.context.shared_data(RULES)[(auid, presentity)] = content
        announce(self.context, RULES_CHANGED, RulesChangedEvent(presentity), presentity)

    def put_response(self, uri, status, etag):
        pass                        # the reader never writes

    def delete_response(self, uri, status, etag):
        pass

    def _client(self):
        children = list(self.xdm)
        return children[0] if children else self.xdm.create()

    def _stay(self):
        """Stay attached to the reader's activity, where the rules are asked for."""
        self.context.naming.lookup_or_create(READER).attach(self.context.sbb_local_object)
