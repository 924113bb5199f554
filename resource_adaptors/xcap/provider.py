"""
What SBBs get from the XCAP RA: C{context.resource_adaptor("xcap")}, seen
through L{IXcapProvider}.  The answer is only sent when the SBB's
transaction commits: a handler that rolls back sends nothing, and the RA
answers 500 instead.
"""

from zope.interface import Attribute, Interface


class IXcapProvider(Interface):
    """The XCAP RA's SBB interface."""

    root = Attribute("The XCAP root's path (C{/xcap-root}).")

    def respond(request, status, headers=(), body=b""):
        """
        Answer an XCAP request.

        @param request: the L{XcapRequestEvent}, or its C{request} id.
        @param headers: (name, value) pairs (C{Content-Type}, C{ETag}...).
        @raise KeyError: the request is unknown or answered already.
        """
