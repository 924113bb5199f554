"""
What SBBs get from the SIP RA: C{context.resource_adaptor("sip")}, the
L{resource_adaptors.sip.adaptor.SipResourceAdaptor} itself, seen through
L{ISipProvider}.

Every method that sends something only builds it at once (so the SBB can
look at it) and sends it when the SBB's transaction commits; a handler
that rolls back sends nothing.  Activities an SBB may attach to (client
transactions, dialogs) come back as activity context interfaces, usable
in the same transaction.

    class Echo(Sbb):
        @handler(REQUEST["MESSAGE"], initial=True, select=(Select.ACTIVITY_CONTEXT,))
        def on_message(self, event, aci):
            sip = self.context.resource_adaptor("sip")
            sip.respond(event.transaction, 200)
            aci.detach(self.context.sbb_local_object)
"""

from zope.interface import Interface


class ISipProvider(Interface):
    """The SIP RA's SBB interface."""

    def respond(transaction, status, reason=None, headers=(), body=b"", content_type=None,
                dialog=None):
        """
        Answer a request statefully.

        @param transaction: the server transaction: a L{RequestEvent} or its
            C{transaction} id (what an SBB keeps to answer later).
        @param headers: (name, value) pairs added to the response.
        @param dialog: the dialog (activity context interface, L{Dialog} or
            dialog id) the response belongs to: its local tag becomes the To
            tag and our Contact is added.
        @return: the L{Response}, sent when the transaction commits.
        @raise KeyError: the transaction is unknown or answered already.
        """

    def capabilities():
        """
        @return: a dict of what the services here offer, for OPTIONS and
            the RA's own error answers: C{allow} (methods), C{allow_events}
            (event packages), C{accept} (body types), C{supported} (option
            tags).
        """

    def capability_headers():
        """
        @return: what C{capabilities()} says, as the (name, value) pairs of
            the Allow, Accept, Supported and Allow-Events (when there are
            event packages) headers of an answer to OPTIONS (RFC 3261
            §11.2); kept until the capabilities change.  They are
            L{resource_adaptors.sip.core.message.PreparedFields}: made once, they
            cost a response nothing more than a copy.
        """

    def register_capabilities(event_packages=(), accept=(), supported=()):
        """
        Announce event packages, body types and option tags (answered in
        Supported, accepted in Require) a service serves (at once, not
        transactional: call it when the service starts).
        """

    def new_request(method, uri, from_uri, to_uri, headers=(), body=b"", content_type=None):
        """
        @return: a new out-of-dialog L{Request} with a fresh Call-ID, From
            tag, CSeq 1 and Max-Forwards 70; the Via is added when it is sent.
        """

    def send_request(request, destination=None):
        """
        Send a request statefully.  A dialog-creating request (SUBSCRIBE,
        INVITE) without Contact gets ours, on the transport it leaves on.

        @param destination: a L{Peer}; by default the first Route or the
            Request-URI decides (host, port, transport parameter).
        @return: the activity context interface of the client transaction;
            its responses, timeout or transport error are fired on it.
        """

    def create_dialog(event, durable=False):
        """
        Make the UAS dialog of a dialog-creating request (SUBSCRIBE, INVITE):
        its L{RequestEvent}, or its C{transaction} id (to answer later).

        @param durable: whether its activity outlives a restart: the SBB
            keeps the dialog's L{dialog_snapshot} and gives it back to
            L{restore_dialog} once the container started again.
        @return: its activity context interface; C{aci.activity} is the
            L{Dialog}.  Answer the request with C{respond(..., dialog=aci)}.
        """

    def dialog_snapshot(dialog):
        """@return: a dialog's state as plain data (see L{Dialog.snapshot}), to keep."""

    def restore_dialog(snapshot):
        """
        Make a dialog again from its L{dialog_snapshot} (after a restart),
        unless the stack has it already.

        @return: its activity context interface (a durable activity).
        @raise ParseError: when the snapshot no longer parses.
        """

    def send_in_dialog(dialog, method, headers=(), body=b"", content_type=None):
        """
        Send a request within a dialog (NOTIFY, BYE, ...).  Its answer (a
        response event, a L{TransactionTimeoutEvent} or a
        L{TransportErrorEvent}) is fired on the dialog's activity, where the
        SBB that sends is attached already: a request in a dialog costs no
        activity of its own.

        @return: the id of its client transaction, the C{transaction} of
            the events that answer it.
        """

    def awaits_answers(dialog):
        """
        @return: whether a request sent in C{dialog} (L{send_in_dialog}) is
            still to be sent or waits for its final answer: False once every
            one was answered or failed, or was lost with the stack in a
            restart.
        """

    def dialog_activity(dialog_id):
        """
        @return: the activity context interface of a dialog the stack made
            (a L{ResponseEvent}'s or L{RequestEvent}'s C{dialog}).
        """

    def end_dialog(dialog):
        """Forget a dialog and end its activity (when the transaction commits)."""
