"""
What the resource list server reads from the XDMS: every user's services
(rls-services, RFC 4826 §4.4), the resource-lists documents they refer to,
and the pres-rules of the services' owners, through the XDM client, kept
current by its change notification (in-process, or xcap-diff over SIP).

One entity reads for the whole server (L{ServicesSbb}, on the named
activity L{READER}).  When the service starts it reads the global index of
rls-services (every user's services, with their owners) and watches the
usages whole; from then on each change of a user's rls-services document
replaces that user's services.  What it read lives in shared data, for the
list subscriptions to read in their own transactions:

- L{SERVICES}: service key (L{sbbs.sipevent.addresses.resource_key}) ->
  L{sbbs.rls.lists.Service}; L{OWNERS}: owner -> the keys of its services;
- L{DOCUMENTS}: document path below the XCAP root -> its content, or None
  when it does not exist: the documents some list needed, read when first
  asked for (L{want_documents}), then kept current.

A change is announced on named activities that the list subscriptions
depending on it attach to: L{SERVICE_CHANGED} on L{service_name} of the
service, L{DOCUMENT_CHANGED} on L{document_name} of the document (which
also announces a document read for the first time).  The keys of the
services are also given to the process's list directory
(L{sbbs.sipevent.list_directory.LISTS}) once each change commits, so that
SUBSCRIBEs to them come to the list server.
"""

from dataclasses import dataclass

from lxml import etree

from sbbs.rls.lists import ListError, parse_services
from sbbs.sipevent.list_directory import LISTS
from sbbs.xdms.appusage import OWNER_NAMESPACE
from sbbs.xdms.client import XdmReaderSbb
from slee.events import SERVICE_STARTED, EventType
from slee.sbb import handler

SERVICES = "slee.rls.services"
OWNERS = "slee.rls.owners"
DOCUMENTS = "slee.rls.documents"

#: The global index of rls-services, every user's services (our XDMS marks
#: each with its owner's XUI: L{sbbs.xdms.appusage.rls_services_index}).
GLOBAL_INDEX = "rls-services/global/index"
#: The usages whose changes matter: the services, the lists they refer
#: to, and the owners' rules (for watchers other than the owner).
WATCHED_USAGES = ("rls-services", "resource-lists", "pres-rules",
                  "org.openmobilealliance.pres-rules")
#: An owner's rules documents, preferred first (as the presence server reads them).
RULES_DOCUMENTS = (("org.openmobilealliance.pres-rules", "pres-rules"),
                   ("pres-rules", "index"))

#: Declared by the unit deployables/rls.
SERVICE_CHANGED = EventType("RlsServiceChanged", "slee", "1.0")
DOCUMENT_CHANGED = EventType("RlsDocumentChanged", "slee", "1.0")
DOCUMENTS_WANTED = EventType("RlsDocumentsWanted", "slee", "1.0")

#: The named activity where the reader lives.
READER = "rls-services-reader"
_OWNER = f"{{{OWNER_NAMESPACE}}}owner"
_SERVICE = "{urn:ietf:params:xml:ns:rls-services}service"


@dataclass(frozen=True, slots=True)
class ServiceChangedEvent:
    """A service changed: its key, and the service now (None: it is gone)."""

    key: str
    service: object


@dataclass(frozen=True, slots=True)
class DocumentChangedEvent:
    """A document some list uses was read, or changed: its path below the XCAP root."""

    path: str


@dataclass(frozen=True, slots=True)
class DocumentsWantedEvent:
    paths: tuple


def service_name(key):
    return f"rls:service:{key}"


def document_name(path):
    return f"rls:document:{path}"


def rules_paths(owner):
    """The paths of C{owner}'s rules documents, preferred first."""
    return tuple(f"{auid}/users/{owner}/{name}" for auid, name in RULES_DOCUMENTS)


def cached_document(context, path):
    """
    @return: (whether it was read, its content or None) of the document at
        C{path} below the XCAP root.
    """
    cache = context.shared_data(DOCUMENTS)
    return path in cache, cache.get(path)


def want_documents(context, paths):
    """Ask the reader for the documents at C{paths}; it announces each once read."""
    reader = context.naming.lookup_or_create(READER)
    context.fire_event(reader, DOCUMENTS_WANTED, DocumentsWantedEvent(tuple(paths)))


def find_service(context, key):
    """@return: the L{sbbs.rls.lists.Service} of C{key}, or None."""
    return context.shared_data(SERVICES).get(key)


class ServicesSbb(XdmReaderSbb):
    """
    The one entity that reads the services and their documents (see the
    module docstring); its L{reading} holds the paths being read.
    """

    reader = READER

    @handler(SERVICE_STARTED, initial=True)
    def on_started(self, event, aci):
        """
        Serve the services known already at once (after a restart), read
        them all again, and watch the usages (watching is idempotent).
        """
        self.live_on_the_reader_activity(aci)
        known = list(self.context.shared_data(SERVICES).keys())
        self.context.after_commit(lambda: LISTS.replace(known))
        client = self.xdm.get_or_create()
        for auid in WATCHED_USAGES:
            client.subscribe(f"{auid}/")
        client.get(GLOBAL_INDEX)

    @handler(DOCUMENTS_WANTED, initial=True)
    def on_documents_wanted(self, event, aci):
        client, reading = self.xdm.get_or_create(), self.reading
        for path in event.paths:
            if path not in reading:
                reading[path] = True
                client.get(path)

    def get_response(self, uri, status, etag, content, content_type):
        if uri == GLOBAL_INDEX:
            if status == 200:
                self._load_index(content)
            else:
                self.context.tracer.warn("rls-services: the global index could not be "
                                         "read (HTTP {status}): no list is served",
                                         status=status)
            return
        if self.reading.pop(uri, None) is None:
            return
        self._document_is(uri, content if status == 200 else None)

    def document_updated(self, document, old_etag, new_etag, content):
        auid, tree, rest = document.split("/", 2)
        if tree != "users":
            return
        if auid == "rls-services":
            owner, _, name = rest.partition("/")
            if name == "index":
                self._replace_services(owner, self._parsed(owner, content))
            return
        if document in self.context.shared_data(DOCUMENTS):
            self._document_is(document, content)

    # -- services -------------------------------------------------------------------

    def _load_index(self, content):
        """Every user's services, from the global index: each owner's replaced."""
        try:
            root = etree.fromstring(content, _PARSER)
        except etree.XMLSyntaxError as error:
            self.context.tracer.warn("rls-services: the global index is not XML: {error}",
                                     error=str(error))
            return
        by_owner = {}
        for element in root.iter(_SERVICE):
            owner = element.get(_OWNER)
            if owner:
                by_owner.setdefault(owner, []).append(element)
        owners = set(self.context.shared_data(OWNERS).keys()) | set(by_owner)
        for owner in owners:
            self._replace_services(owner, self._parsed_elements(owner, by_owner.get(owner, ())))

    def _parsed_elements(self, owner, elements):
        """The services of C{owner} among C{elements} of the global index."""
        document = etree.Element("{urn:ietf:params:xml:ns:rls-services}rls-services")
        document.extend(elements)
        return self._parsed(owner, etree.tostring(document))

    def _parsed(self, owner, content):
        if content is None:
            return []
        try:
            return parse_services(content, owner)
        except ListError as error:
            self.context.tracer.warn("rls-services of {owner}: {error}", owner=owner,
                                     error=str(error))
            return []

    def _replace_services(self, owner, services):
        """Make C{services} the services of C{owner}, and tell who depends on one that changed."""
        stored, owners = self.context.shared_data(SERVICES), self.context.shared_data(OWNERS)
        before = set(owners.get(owner, ()))
        now = {service.key: service for service in services}
        for key in before - set(now):
            del stored[key]
            self._announce(service_name(key), SERVICE_CHANGED, ServiceChangedEvent(key, None))
        for key, service in now.items():
            if stored.get(key) != service:
                stored[key] = service
                self._announce(service_name(key), SERVICE_CHANGED,
                               ServiceChangedEvent(key, service))
        if now:
            owners[owner] = tuple(sorted(now))
        else:
            owners.pop(owner, None)
        added, removed = set(now) - before, before - set(now)
        if added or removed:
            self.context.after_commit(lambda: LISTS.update(added, removed))

    # -- documents ------------------------------------------------------------------

    def _document_is(self, path, content):
        cache = self.context.shared_data(DOCUMENTS)
        if path in cache and cache[path] == content:
            return
        cache[path] = content
        self._announce(document_name(path), DOCUMENT_CHANGED, DocumentChangedEvent(path))

    def _announce(self, name, event_type, event):
        activity = self.context.naming.lookup(name)
        if activity is not None:
            self.context.fire_event(activity, event_type, event)


#: Parses what the XDMS serves (validated when written), safely all the same.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
