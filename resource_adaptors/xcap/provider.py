"""
What SBBs get from an XCAP RA: C{context.resource_adaptor("xcap")}.

L{IXcapRequester} makes XCAP requests, whoever serves them: the XCAP server
RA of this container (L{resource_adaptors.xcap.adaptor}) or the XCAP client
RA of a remote XDMS (L{resource_adaptors.xcap.remote}), so that a service
reads and writes documents with the same code wherever the XDMS runs.  The
server RA's L{IXcapProvider} also answers the requests it receives.

What an SBB asks is done only when its transaction commits: a handler that
rolls back sends no request and no answer (the server RA answers 500
instead).
"""

from zope.interface import Attribute, Interface


class IXcapRequester(Interface):
    """What an SBB needs to make XCAP requests."""

    root = Attribute("The XCAP root's path (C{/xcap-root}).")
    xcap_diff_uri = Attribute(
        "The SIP URI of the xcap-diff notifier that tells of the XDMS's changes (RFC 5875), "
        "or None when the XDMS runs in this container and is watched in-process.")
    sip_identity = Attribute("The SIP URI the subscriptions to C{xcap_diff_uri} come from.")

    def request(method, path, user, headers=(), body=b""):
        """
        Make an XCAP request, as a client over HTTP would, once the
        transaction commits: its answer comes back as an
        L{resource_adaptors.xcap.events.XcapResponseEvent} on the request's
        activity, which then ends.

        @param path: the request's path below the host, XCAP root included,
            and its query (C{"/xcap-root/resource-lists/users/sip:a@b/index"}).
        @param user: the L{resource_adaptors.auth.users.User} it is made
            for (L{resource_adaptors.auth.users.TRUSTED}: an administrator).
        @param headers: (name, value) pairs (C{Content-Type}, C{If-Match}...).
        @return: the activity context interface of the request: attach to
            it to get the answer.
        """


class IXcapProvider(IXcapRequester):
    """
    The XCAP server RA's SBB interface.  Its requests go to the service
    that serves XCAP in this container, which sees them as any other.
    """

    root_url = Attribute("The XCAP root's HTTP URI (C{http://host:8080/xcap-root}).")

    def user_for(identity, host):
        """
        @return: the L{resource_adaptors.auth.users.User} that a request
            by C{identity} (an XUI) from C{host} is made for, as the XCAP
            server would take it over HTTP: what a SIP watcher of
            documents may see.
        """

    def respond(request, status, headers=(), body=b""):
        """
        Answer an XCAP request.

        @param request: the L{XcapRequestEvent}, or its C{request} id.
        @param headers: (name, value) pairs (C{Content-Type}, C{ETag}...).
        @raise KeyError: the request is unknown or answered already.
        """
