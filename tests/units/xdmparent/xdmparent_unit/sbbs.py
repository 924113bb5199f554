"""The parent of an XDM client: does what a probe Ping says, journals the answers."""

from zope.interface import implementer

from probe_unit import PING
from sbbs.xdms.client import IXdmClientParent, XdmClientSbb
from slee.sbb import ChildRelation, Sbb, Select, handler
from xdmparent_unit import JOURNAL


@implementer(IXdmClientParent)
class Parent(Sbb):
    local_interface = IXdmClientParent
    xdm = ChildRelation(XdmClientSbb)

    @handler(PING, initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_ping(self, event, aci):
        client = self.xdm.get_or_create()
        operation = event["op"]
        if operation == "put":
            client.put(event["uri"], event["content"], event["type"], event.get("xui"),
                       if_match=event.get("if_match"))
        elif operation == "get":
            client.get(event["uri"], event.get("xui"))
        elif operation == "subscribe":
            client.subscribe(event["uri"])
        elif operation == "unsubscribe":
            client.unsubscribe(event["uri"])
        else:
            client.delete(event["uri"], event.get("xui"))

    def get_response(self, uri, status, etag, content, content_type):
        JOURNAL.append(("get", uri, status, etag, content, content_type))

    def put_response(self, uri, status, etag):
        JOURNAL.append(("put", uri, status, etag))

    def delete_response(self, uri, status, etag):
        JOURNAL.append(("delete", uri, status, etag))

    def document_updated(self, document, old_etag, new_etag, content):
        JOURNAL.append(("updated", document, old_etag, new_etag, content))
