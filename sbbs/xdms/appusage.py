"""
Application usages (RFC 4825 §5): what the XDMS knows of each kind of
document it stores.

An application usage is an L{AppUsage}: its AUID (the first segment of its
URIs), its MIME type, its default document namespace (for node selector
steps without prefix), the root element its documents must have, and
optionally an XML Schema they are validated against.  The XDMS serves the
usages registered in L{REGISTRY}; a package that brings its own calls
L{register} when it is imported (a deployed unit's SBB module, say), and
the XDMS needs no change.
"""

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from resource_adaptors.xcap.uri import DocumentSelector
from sbbs.xdms.errors import XcapConflict
from sbbs.xdms.stored import etag_and_content
from sbbs.xml.namespaces import (
    RESOURCE_LISTS as RESOURCE_LISTS_NAMESPACE,
    RLS_SERVICES as RLS_SERVICES_NAMESPACE,
    XCAP_CAPS as XCAP_CAPS_NAMESPACE)


def owner_policy(user, document, method):
    """
    The default authorization policy (RFC 4825 §5.7): whether C{user} may
    do C{method} on the L{DocumentSelector} C{document}: an administrator
    anything; a user read and write the documents of its own XUI, and read
    the global tree.
    """
    if user.admin:
        return True
    if document.is_global:
        return method == "GET"
    return document.xui == user.xui


@dataclass(frozen=True)
class AppUsage:
    """
    @ivar auid: the application unique id (C{"resource-lists"}).
    @ivar mime_type: of its documents.
    @ivar namespace: its default document namespace.
    @ivar root: the local name of its documents' root element (in
        C{namespace}).
    @ivar schema: an C{lxml.etree.XMLSchema} its documents must satisfy, or
        None.
    @ivar generate: for a usage whose documents the server makes (xcap-caps,
        the xcap-directory), C{generate(registry, store, document, base)}
        returns the document at the L{DocumentSelector} C{document}, or None
        when there is none there; C{store} is the XDMS's, C{base} the HTTP
        URI of the XCAP root.  Such a usage is read only.  None for the
        others.
    @ivar generate_global: for a usage whose users write their documents
        but whose global tree the server makes from them (rls-services'
        C{index}, RFC 4826 §4.4.2: every user's services),
        C{generate_global(store, document)}, as C{generate} (read only, in
        the global tree only).  None for the others.
    @ivar authorize: C{authorize(user, document, method)}, whether a
        L{resource_adaptors.auth.users.User} may do an HTTP method on a
        document of the usage (its nodes included), and what a SIP watcher
        may watch (C{"GET"}): L{owner_policy} unless the usage says more.
    @ivar constraints: None, or C{constraints(root, key, store)}, which
        raises L{XcapConflict} (C{uniqueness-failure}, C{constraint-failure})
        when the document of C{root} may not be stored at C{key}.
    @ivar stored: None, or C{stored(old, new, key, store)}, called once the
        document at C{key} changed from root element C{old} to C{new} (None
        for a document that was not there, or is gone): it keeps the
        usage's indexes in the store.
    """

    auid: str
    mime_type: str
    namespace: str
    root: str
    schema: object = field(default=None, compare=False)
    generate: object = field(default=None, compare=False)
    generate_global: object = field(default=None, compare=False)
    authorize: object = field(default=owner_policy, compare=False)
    constraints: object = field(default=None, compare=False)
    stored: object = field(default=None, compare=False)

    def validate(self, root):
        """
        @param root: the root element of a document about to be stored.
        @raise XcapConflict: C{schema-validation-error}, saying why.
        """
        expected = f"{{{self.namespace}}}{self.root}"
        if root.tag != expected:
            raise XcapConflict("schema-validation-error",
                               f"the root element must be {expected}, not {root.tag}")
        if self.schema is not None and not self.schema.validate(root.getroottree()):
            error = self.schema.error_log.last_error
            raise XcapConflict("schema-validation-error",
                               error.message if error is not None else "not valid")


class Registry:
    """The application usages the XDMS serves, by AUID."""

    def __init__(self):
        self._usages = {}

    def register(self, usage):
        """Serve C{usage}; it replaces one registered before with its AUID."""
        self._usages[usage.auid] = usage

    def get(self, auid):
        return self._usages.get(auid)

    def __iter__(self):
        return iter(sorted(self._usages.values(), key=lambda usage: usage.auid))


REGISTRY = Registry()
register = REGISTRY.register

SCHEMAS = Path(__file__).parent / "schemas"


def xml_schema(name):
    """
    @return: the XML Schema in C{schemas/<name>}, read with the safe
        parser's rules: no entity, no network (a schema that imports
        another over the network fails to load, here, at start).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name), parser))




def xcap_caps(registry, store, document, base):
    """
    @return: the xcap-caps document (RFC 4825 §12.1), the global C{index}:
        the AUIDs and the default namespaces of the usages served.
    """
    if not document.is_global or document.path != ("index",):
        return None
    namespace = f"{{{XCAP_CAPS_NAMESPACE}}}"
    root = etree.Element(namespace + "xcap-caps", nsmap={None: XCAP_CAPS_NAMESPACE})
    auids = etree.SubElement(root, namespace + "auids")
    namespaces = etree.SubElement(root, namespace + "namespaces")
    for usage in registry:
        etree.SubElement(auids, namespace + "auid").text = usage.auid
    for name in sorted({usage.namespace for usage in registry}):
        etree.SubElement(namespaces, namespace + "namespace").text = name
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")



#: The store's index of service URIs: (this, uri, "", "") -> the key of the
#: document that has it.  No AUID starts with "#".
_SERVICE_URI_INDEX = "#rls-services-uri"


def _service_uris(root):
    return [] if root is None else \
        [service.get("uri") for service in root.iter(f"{{{RLS_SERVICES_NAMESPACE}}}service")]


def rls_services_constraints(root, key, store):
    """
    A service URI is unique among all the services of all the users (RFC
    4826 §4.4.4): a document that repeats one, or takes one another
    document has, is refused, with free URIs proposed instead.
    """
    seen = set()
    for uri in _service_uris(root):
        owner = store.get((_SERVICE_URI_INDEX, uri, "", ""))
        if uri in seen or (owner is not None and owner != key):
            raise XcapConflict("uniqueness-failure", f"the service URI {uri} is taken",
                               exists=[("rls-services/service/@uri",
                                        _free_uris(uri, store, seen))])
        seen.add(uri)


def _free_uris(uri, store, taken, count=3):
    """@return: C{count} URIs like C{uri} (a number after its user part) that no service has."""
    scheme, colon, rest = uri.partition(":")
    user, at, host = rest.rpartition("@") if "@" in rest else (rest, "", "")
    free, number = [], 1
    while len(free) < count:
        candidate = f"{scheme}{colon}{user}-{number}{at}{host}"
        if candidate not in taken and (_SERVICE_URI_INDEX, candidate, "", "") not in store:
            free.append(candidate)
        number += 1
    return free



#: What must be unique among the children of one element (RFC 4826 §3.4.5):
#: element name -> its attribute.
_UNIQUE_IN_PARENT = {"list": "name", "entry": "uri", "entry-ref": "ref", "external": "anchor"}


def resource_lists_constraints(root, key, store):
    """
    Among the children of one element, the C{name} of each C{<list>}, the
    C{uri} of each C{<entry>}, the C{ref} of each C{<entry-ref>} and the
    C{anchor} of each C{<external>} are unique (RFC 4826 §3.4.5): a document
    that repeats one is refused, the field naming the second one (a node
    selector with positions), with free names proposed for a list.
    """
    namespace = f"{{{RESOURCE_LISTS_NAMESPACE}}}"
    for parent in root.iter():
        seen = {}
        for child in parent:
            if not isinstance(child.tag, str) or not child.tag.startswith(namespace):
                continue
            local = child.tag[len(namespace):]
            attribute = _UNIQUE_IN_PARENT.get(local)
            value = None if attribute is None else child.get(attribute)
            if value is None:
                continue
            taken = seen.setdefault(local, set())
            if value in taken:
                alternatives = _free_names(value, taken, parent, namespace + local, attribute) \
                    if local == "list" else []
                raise XcapConflict(
                    "uniqueness-failure",
                    f"another {local} in the same element has {attribute} {value!r}",
                    exists=[(f"{_selector(child, namespace)}/@{attribute}", alternatives)])
            taken.add(value)


def _free_names(name, taken, parent, tag, attribute, count=3):
    """@return: C{count} names like C{name} (a number after it) no C{tag} child of C{parent} has."""
    used = taken | {child.get(attribute) for child in parent.iterchildren(tag)}
    free, number = [], 1
    while len(free) < count:
        if f"{name}-{number}" not in used:
            free.append(f"{name}-{number}")
        number += 1
    return free


def _selector(element, namespace):
    """
    @return: the node selector (RFC 4825 §6.3) of C{element}: a step per
        ancestor, with its position among the siblings of its name (of any
        name, C{*}, out of C{namespace}, the usage's default one).
    """
    steps = []
    while element is not None:
        parent = element.getparent()
        if element.tag.startswith(namespace):
            name = element.tag[len(namespace):]
            siblings = [element] if parent is None else list(parent.iterchildren(element.tag))
        else:
            name = "*"
            siblings = [element] if parent is None else \
                [child for child in parent if isinstance(child.tag, str)]
        steps.append(name if parent is None else f"{name}[{siblings.index(element) + 1}]")
        element = parent
    return "/".join(reversed(steps))


def rls_services_stored(old, new, key, store):
    """Keep the index of service URIs in step with the document at C{key}."""
    for uri in _service_uris(old):
        if store.get((_SERVICE_URI_INDEX, uri, "", "")) == key:
            del store[_SERVICE_URI_INDEX, uri, "", ""]
    for uri in _service_uris(new):
        store[_SERVICE_URI_INDEX, uri, "", ""] = key


def rls_services_policy(user, document, method):
    """
    L{owner_policy}, but the global index, which holds every user's lists,
    is for administrators (the resource list server) alone.
    """
    if document.is_global:
        return user.admin
    return owner_policy(user, document, method)


def rls_services_index(store, document):
    """
    @return: the global C{index} of rls-services (RFC 4826 §4.4.2): one
        document with the services of every user, which is how a resource
        list server learns them all with one GET; None for another path.
        Each service says whose it is, in an attribute of our own
        namespace (C{owner}, in L{OWNER_NAMESPACE}): the list server
        authorizes its watchers by its owner's rules.
    """
    if document.path != ("index",):
        return None
    namespace = f"{{{RLS_SERVICES_NAMESPACE}}}"
    index = etree.Element(namespace + "rls-services", nsmap={None: RLS_SERVICES_NAMESPACE})
    for key, (_, content) in documents_under(store, "rls-services", "users"):
        for service in etree.fromstring(content, _TRUSTED_PARSER).iter(namespace + "service"):
            service.set(_OWNER, key[2])
            index.append(service)
    return etree.tostring(index, xml_declaration=True, encoding="UTF-8")


#: The namespace of what the XDMS adds to the documents it makes.
OWNER_NAMESPACE = "urn:slee:params:xml:ns:xdms"
_OWNER = f"{{{OWNER_NAMESPACE}}}owner"

#: Parses what the XDMS stored: validated when it was written.
_TRUSTED_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def documents_of(store, auid, xui):
    """
    @return: (path, (ETag, content)) of each document user C{xui} has in
        usage C{auid}, in the store (keys (auid, "users", xui, path), as
        the XDMS files them).
    """
    return ((key[3], value) for key, value in documents_under(store, auid, "users", xui))


def documents_under(store, *prefix):
    """
    @param prefix: the first parts of the store's keys: an AUID, then
        C{"global"} or C{"users"}, then an XUI.
    @return: (key, (ETag, content)) of each document whose key starts so,
        in key order.
    """
    return ((key, etag_and_content(value))
            for key, value in store.items(min=prefix, max=prefix + ("\U0010ffff",)))


XCAP_DIRECTORY_NAMESPACE = "urn:oma:xml:xdm:xcap-directory"


def xcap_directory(registry, store, document, base):
    """
    @return: a user's C{directory.xml} (OMA XDM xcap-directory): a folder
        per application usage with an entry (URI and ETag) per document the
        user has there.
    """
    if document.is_global or document.path != ("directory.xml",):
        return None
    namespace = f"{{{XCAP_DIRECTORY_NAMESPACE}}}"
    root = etree.Element(namespace + "xcap-directory", nsmap={None: XCAP_DIRECTORY_NAMESPACE})
    for usage in registry:
        if usage.generate is not None:
            continue
        folder = etree.SubElement(root, namespace + "folder", auid=usage.auid)
        for path, (etag, _) in documents_of(store, usage.auid, document.xui):
            selector = DocumentSelector(usage.auid, document.xui, tuple(path.split("/")))
            etree.SubElement(folder, namespace + "entry", uri=f"{base}/{selector}", etag=etag)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


#: Common policy (RFC 4745) with the presence rules of RFC 5025; OMA's
#: extensions, in namespaces of their own, are let through.
PRES_RULES_SCHEMA = xml_schema("pres-rules.xsd")

# The usages of the presence service (RFC 4826, 4827, 5025, OMA), xcap-caps and
# the xcap-directory.
for _usage in (
        AppUsage("resource-lists", "application/resource-lists+xml",
                 RESOURCE_LISTS_NAMESPACE, "resource-lists",
                 xml_schema("resource-lists.xsd"), constraints=resource_lists_constraints),
        AppUsage("rls-services", "application/rls-services+xml", RLS_SERVICES_NAMESPACE,
                 "rls-services", xml_schema("rls-services.xsd"),
                 constraints=rls_services_constraints, stored=rls_services_stored,
                 generate_global=rls_services_index, authorize=rls_services_policy),
        AppUsage("pres-rules", "application/auth-policy+xml",
                 "urn:ietf:params:xml:ns:common-policy", "ruleset", PRES_RULES_SCHEMA),
        AppUsage("org.openmobilealliance.pres-rules", "application/auth-policy+xml",
                 "urn:ietf:params:xml:ns:common-policy", "ruleset", PRES_RULES_SCHEMA),
        AppUsage("pidf-manipulation", "application/pidf+xml",
                 "urn:ietf:params:xml:ns:pidf", "presence", xml_schema("pidf.xsd")),
        AppUsage("xcap-caps", "application/xcap-caps+xml", XCAP_CAPS_NAMESPACE, "xcap-caps",
                 generate=xcap_caps),
        AppUsage("org.openmobilealliance.xcap-directory",
                 "application/vnd.oma.xcap-directory+xml", XCAP_DIRECTORY_NAMESPACE,
                 "xcap-directory", generate=xcap_directory)):
    register(_usage)

