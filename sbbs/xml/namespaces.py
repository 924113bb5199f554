"""
The XML namespaces of the documents the services read and write, named
once.
"""

#: PIDF (RFC 3863) and its extensions: the data model (RFC 4479), RPID
#: (RFC 4480) and CIPID (RFC 4482).
PIDF = "urn:ietf:params:xml:ns:pidf"
DATA_MODEL = "urn:ietf:params:xml:ns:pidf:data-model"
RPID = "urn:ietf:params:xml:ns:pidf:rpid"
CIPID = "urn:ietf:params:xml:ns:pidf:cipid"

#: Authorization policies (RFC 4745) and presence rules (RFC 5025).
COMMON_POLICY = "urn:ietf:params:xml:ns:common-policy"
PRES_RULES = "urn:ietf:params:xml:ns:pres-rules"

#: Watcher information (RFC 3858).
WATCHERINFO = "urn:ietf:params:xml:ns:watcherinfo"

#: Resource lists and RLS services (RFC 4826), and the RLMI (RFC 4662).
RESOURCE_LISTS = "urn:ietf:params:xml:ns:resource-lists"
RLS_SERVICES = "urn:ietf:params:xml:ns:rls-services"
RLMI = "urn:ietf:params:xml:ns:rlmi"

#: XCAP's own documents (RFC 4825, RFC 5874).
XCAP_ERROR = "urn:ietf:params:xml:ns:xcap-error"
XCAP_CAPS = "urn:ietf:params:xml:ns:xcap-caps"
XCAP_DIFF = "urn:ietf:params:xml:ns:xcap-diff"
