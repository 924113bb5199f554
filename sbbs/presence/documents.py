"""
What the presence server reads from the XDMS: each presentity's
authorization rules (pres-rules, RFC 5025, and OMA's) and its static
presence (pidf-manipulation, RFC 4827), through the XDM client, kept up to
date by its change notifications.

The documents are cached in the shared data L{DOCUMENTS}, by (AUID,
presentity), None when the presentity has none.  Whoever finds nothing
cached for a presentity (a new subscription, the compositor) asks for its
documents (L{want_documents}); the L{DocumentsSbb} reads them all and,
once they came, announces them: L{RULES_CHANGED} to the presentity's
watchers (a pending subscription is decided then) and
L{PUBLICATIONS_CHANGED} to its compositor (the static presence joins the
publications).  From then on the cache follows every change the XDMS makes
to these usages (the XDM client watches them whole), announced the same
way: a rule changed re-evaluates every live subscription of its
presentity at once.
"""

from dataclasses import dataclass

from sbbs.presence.memo import MEMO
from sbbs.presence.rules import RulesError
from sbbs.presence.rules_reader import parse_rules
from sbbs.presence.state import RULES_CHANGED, RulesChangedEvent, announce
from sbbs.sipevent.publisher import PUBLICATIONS_CHANGED, PublicationsChangedEvent, activity_name
from sbbs.xdms.client import XdmReaderSbb
from slee.events import SERVICE_STARTED, EventType
from slee.sbb import handler

#: The shared data caching the documents: (AUID, presentity) -> bytes or None.
DOCUMENTS = "slee.presence.documents"

#: The usages and document names of presence rules, preferred first: OMA's
#: (what OMA clients write), then the IETF's.
RULES_DOCUMENTS = (("org.openmobilealliance.pres-rules", "pres-rules"),
                   ("pres-rules", "index"))
#: The static presence document (RFC 4827).
MANIPULATION_DOCUMENT = ("pidf-manipulation", "index")
ALL_DOCUMENTS = (*RULES_DOCUMENTS, MANIPULATION_DOCUMENT)

#: Declared by the unit deployables/presence-server.
DOCUMENTS_WANTED = EventType("PresenceDocumentsWanted", "slee", "1.0")

#: The named activity where the documents reader lives.
READER = "presence-documents"


@dataclass(frozen=True, slots=True)
class DocumentsWantedEvent:
    presentity: str


def cached_rules(context, presentity):
    """
    @return: (whether the documents of C{presentity} are known, its
        L{Ruleset} or None when it has none).  A document that does not
        parse counts as none (the XDMS validated it: this is a usage we do
        not read).  Its static presence counts too: whoever asks for the
        rules of a presentity it watches also needs that.
    """
    cache = context.shared_data(DOCUMENTS)
    if not all((auid, presentity) in cache for auid, _ in ALL_DOCUMENTS):
        return False, None
    for key in [(auid, presentity) for auid, _ in RULES_DOCUMENTS]:
        document = cache[key]
        if document is not None:
            try:
                return True, MEMO.get(parse_rules, document)
            except RulesError:
                continue
    return True, None


def cached_manipulation(context, presentity):
    """@return: (whether it is known, the presentity's pidf-manipulation document or None)."""
    key = (MANIPULATION_DOCUMENT[0], presentity)
    cache = context.shared_data(DOCUMENTS)
    return key in cache, cache.get(key)


def want_documents(context, presentity):
    """Ask the documents reader for C{presentity}'s documents; it announces them once read."""
    reader = context.naming.lookup_or_create(READER)
    context.fire_event(reader, DOCUMENTS_WANTED, DocumentsWantedEvent(presentity))


def document_uri(auid, document, presentity):
    return f"{auid}/users/{presentity}/{document}"


class DocumentsSbb(XdmReaderSbb):
    """
    The one entity that reads documents for the presence server; its
    L{reading} maps each document URI to the presentity waiting for it.
    """

    reader = READER

    @handler(SERVICE_STARTED, initial=True)
    def on_started(self, event, aci):
        """Watch the usages whole (again, after a restart: watching is idempotent)."""
        self.live_on_the_reader_activity(aci)
        client = self.xdm.get_or_create()
        for auid, _ in ALL_DOCUMENTS:
            client.subscribe(f"{auid}/")

    @handler(DOCUMENTS_WANTED, initial=True)
    def on_documents_wanted(self, event, aci):
        client = self.xdm.get_or_create()
        reading = self.reading
        for auid, document in ALL_DOCUMENTS:
            uri = document_uri(auid, document, event.presentity)
            if uri not in reading:
                reading[uri] = event.presentity
                client.get(uri)

    def get_response(self, uri, status, etag, content, content_type):
        reading = self.reading
        presentity = reading.pop(uri, None)
        if presentity is None:
            return
        auid = uri.split("/", 1)[0]
        self.context.shared_data(DOCUMENTS)[(auid, presentity)] = \
            content if status == 200 else None
        if not any(document_uri(auid, document, presentity) in reading
                   for auid, document in ALL_DOCUMENTS):
            self._announce(presentity, ALL_DOCUMENTS)

    def document_updated(self, document, old_etag, new_etag, content):
        auid, tree, rest = document.split("/", 2)
        presentity, _, name = rest.partition("/")
        if tree != "users" or (auid, name) not in ALL_DOCUMENTS:
            return
        self.context.shared_data(DOCUMENTS)[(auid, presentity)] = content
        self._announce(presentity, [(auid, name)])

    def _announce(self, presentity, changed):
        """Tell who depends on the C{changed} documents of C{presentity}."""
        if any(document in RULES_DOCUMENTS for document in changed):
            announce(self.context, RULES_CHANGED, RulesChangedEvent(presentity), presentity)
        if MANIPULATION_DOCUMENT in changed:
            compositor = self.context.naming.lookup_or_create(
                activity_name("presence", presentity))
            self.context.fire_event(compositor, PUBLICATIONS_CHANGED,
                                    PublicationsChangedEvent("presence", presentity))
