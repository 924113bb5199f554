"""
The OPTIONS service: answers a SIP OPTIONS request with 200 and the
capabilities the services running here announce (RFC 3261 §11.2), so that
clients and monitoring probes get a proper answer.

It needs the SIP RA entity named C{sip}.
"""

from slee.sbb import Sbb, Select, handler

from resource_adaptors.sip.events import REQUEST


class OptionsSbb(Sbb):
    """One short-lived entity per OPTIONS request: answer, then detach."""

    @handler(REQUEST["OPTIONS"], initial=True, select=(Select.ACTIVITY_CONTEXT,))
    def on_options(self, event, aci):
        sip = self.context.resource_adaptor("sip")
        sip.respond(event, 200, headers=sip.capability_headers())
        aci.detach(self.context.sbb_local_object)
