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

    def request(method, path, user, headers=(), body=b""):
        """
        Make an XCAP request of this server, as a client over HTTP would,
        once the transaction commits: the service that serves XCAP sees it
        as any other, and its answer comes back as an L{XcapResponseEvent}
        on the request's activity.

        @param path: the request's path below the host, XCAP root included,
            and its query (C{"/xcap-root/resource-lists/users/sip:a@b/index"}).
        @param user: the L{resource_adaptors.auth.users.User} it is made
            for (L{resource_adaptors.auth.users.TRUSTED}: an administrator).
        @return: the activity context interface of the request: attach to
            it to get the answer.
        """
