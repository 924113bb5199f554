"""
Dialogs (RFC 3261 §12, RFC 6665 §4): the state two user agents keep between
the requests of one INVITE session or one subscription, sans-IO.

A L{Dialog} is made from the messages that create it, on either side:

- as UAS, from a dialog-creating request we answer (L{Dialog.from_uas});
- as UAC, from our request and a response with a To tag
  (L{Dialog.from_uac}): a 2xx, or a 1xx to an INVITE for an early dialog;
- as subscriber, from our SUBSCRIBE and a NOTIFY that comes before (or
  instead of) the SUBSCRIBE's 2xx (L{Dialog.from_notify}, RFC 6665 §4.1.2.4).

It then checks and follows the requests and responses exchanged in it
(remote CSeq order, remote target refresh, early to confirmed, ends on 481
or 408) and builds the requests we send in it (§12.2.1.1).  A
L{DialogTable} finds the dialog of a message, makes the dialogs that
responses and NOTIFYs create, and says when a request names a dialog that
does not exist (481).

Nothing here sends anything or keeps time: the resource adaptor does.
"""

from enum import Enum

from resource_adaptors.sip.core.headers import NameAddr, Params
from resource_adaptors.sip.core.message import Headers, Request
from resource_adaptors.sip.core.parser import ParseError
from resource_adaptors.sip.core.randomness import random_hex
from resource_adaptors.sip.core.uri import SipURI, parse_uri


#: Requests whose Contact replaces the remote target, as do the 2xx
#: responses to them: INVITE (a re-INVITE, RFC 3261 §12.2), UPDATE (RFC
#: 3311), SUBSCRIBE and NOTIFY (RFC 6665).
TARGET_REFRESH_METHODS = frozenset(("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"))

#: Out-of-dialog requests whose responses with a To tag create a dialog.
DIALOG_CREATING_METHODS = frozenset(("INVITE", "SUBSCRIBE"))

#: The answer to an in-dialog request older than the last one (§12.2.2).
OUT_OF_ORDER = 500

#: The first CSeq number of requests we send in a dialog we did not start
#: (RFC 3261 §8.1.1.5 only asks for less than 2**31).
FIRST_LOCAL_SEQ = 1


def new_tag():
    """
    @return: a new From or To tag: 64 random bits, in hex, so that tags are
        globally unique as RFC 3261 §19.3 asks and cannot be guessed.
    """
    return random_hex(8)


def dialog_id(call_id, local_tag, remote_tag):
    """
    @return: the id of a dialog, as text, from its three parts (§12): it is
        what the resource adaptor names the dialog's activity by.  A
        C{None} remote tag (an RFC 2543 peer without From tag) is empty.
        The grammar keeps C{;} out of Call-IDs and tags.
    """
    return f"{call_id};{local_tag};{remote_tag or ''}"


class DialogState(Enum):
    """Early until a 2xx answers the creating request (§12), then confirmed."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def _contact_uri(message):
    """The URI of a message's (first) Contact; None when it has none, or C{*}."""
    contacts = message.contact
    return None if not contacts or contacts[0].star else contacts[0].uri


def _remote_target(message):
    """
    The Contact URI that the peer's dialog-creating message must have.

    @raise ParseError: (400) when it has none.
    """
    uri = _contact_uri(message)
    if uri is None:
        raise ParseError("Missing Contact")
    return uri


def _local_contact(request):
    """The Contact URI of a dialog-creating request of ours (a bug of ours if missing)."""
    uri = _contact_uri(request)
    if uri is None:
        raise ValueError(f"our {request.method} has no Contact for the dialog")
    return uri


def _secure(request, over_tls):
    """The secure flag (§12.1.1, §12.1.2): a SIPS Request-URI, over TLS."""
    return over_tls and request.uri.scheme == "sips"


def _request_uri(uri):
    """
    A strict router's URI as a Request-URI: without the method parameter and
    the URI headers, which §19.1.1 does not allow there.
    """
    if not isinstance(uri, SipURI) or (not uri.headers and "method" not in uri.params):
        return uri
    params = Params((name, value) for name, value in uri.params.items()
                    if name.lower() != "method")
    return SipURI(uri.scheme, uri.user, uri.password, uri.host, uri.port, params)


class Dialog:
    """
    One dialog, seen from our side.

    @ivar id: L{dialog_id} of the three below.
    @ivar call_id: the Call-ID of every request in it.
    @ivar local_tag: our tag (From of our requests, To of theirs).
    @ivar remote_tag: the peer's tag, None for an RFC 2543 peer without one.
    @ivar local_uri: the URI of our From (and of their To).
    @ivar remote_uri: the URI of our To (and of their From).
    @ivar remote_target: the URI our requests go to, the peer's last Contact.
    @ivar route_set: the Route values our requests carry, a tuple of
        L{NameAddr}, first hop first.
    @ivar local_contact: our Contact URI, sent in target refresh requests.
    @ivar local_seq: the CSeq number of our last request, None before any.
    @ivar remote_seq: the CSeq number of the peer's last request, None
        before any.
    @ivar secure: whether the dialog was made with a SIPS Request-URI over TLS.
    @ivar state: a L{DialogState}.
    """

    # A subscription keeps its dialog in memory as long as it lives.
    __slots__ = ("id", "call_id", "local_tag", "remote_tag", "local_uri", "remote_uri",
                 "remote_target", "route_set", "local_contact", "local_seq", "remote_seq",
                 "secure", "state", "_created_by")

    def __init__(self, *, call_id, local_tag, remote_tag, local_uri, remote_uri,
                 remote_target, route_set, local_contact, local_seq, remote_seq, secure,
                 state, created_by):
        """
        Use L{from_uas}, L{from_uac} or L{from_notify}.

        @param created_by: (CSeq number, method) of the request that made
            the dialog: its answers confirm or end an early dialog.
        """
        self.id = dialog_id(call_id, local_tag, remote_tag)
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_contact = local_contact
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.secure = secure
        self.state = state
        self._created_by = created_by

    @classmethod
    def from_uas(cls, request, local_tag, local_contact, over_tls=False):
        """
        The dialog a request creates on the side that answers it (§12.1.1),
        early until a 2xx is sent (L{response_sent}).

        The responses that make it must carry C{local_tag} as their To tag
        and C{local_contact} as their Contact.

        @param request: a dialog-creating request (SUBSCRIBE, INVITE).
        @param local_contact: our Contact URI.
        @param over_tls: whether the request came over TLS (or WSS).
        @raise ParseError: (400) when the request has no usable Contact.
        """
        cseq = request.cseq
        return cls(call_id=request.call_id, local_tag=local_tag,
                   remote_tag=request.from_.tag, local_uri=request.to.uri,
                   remote_uri=request.from_.uri, remote_target=_remote_target(request),
                   route_set=tuple(request.record_route), local_contact=local_contact,
                   local_seq=None, remote_seq=cseq.number,
                   secure=_secure(request, over_tls), state=DialogState.EARLY,
                   created_by=(cseq.number, cseq.method))

    @classmethod
    def from_uac(cls, request, response, over_tls=False):
        """
        The dialog a response with a To tag creates on the side that sent
        the request (§12.1.2): confirmed for a 2xx, early for a 1xx.  Each
        fork's response makes its own dialog: the remote tag is part of the
        id.

        @param over_tls: whether the request was sent over TLS (or WSS).
        @raise ParseError: (400) when the response has no usable Contact.
        """
        return cls._ours(request, response, remote_tag=response.to.tag,
                         route_set=tuple(reversed(response.record_route)), remote_seq=None,
                         state=DialogState.EARLY if response.status < 200
                         else DialogState.CONFIRMED, over_tls=over_tls)

    @classmethod
    def from_notify(cls, subscribe, notify, over_tls=False):
        """
        The dialog a NOTIFY creates for our SUBSCRIBE when it comes before
        the SUBSCRIBE's 2xx (RFC 6665 §4.1.2.4): its From tag is the remote
        tag.  The NOTIFY is a request that came to us, so its Record-Route
        is taken in order, as a UAS does (§12.1.1).

        @param over_tls: whether the SUBSCRIBE was sent over TLS (or WSS).
        @raise ParseError: (400) when the NOTIFY has no usable Contact.
        """
        return cls._ours(subscribe, notify, remote_tag=notify.from_.tag,
                         route_set=tuple(notify.record_route), remote_seq=notify.cseq.number,
                         state=DialogState.CONFIRMED, over_tls=over_tls)

    @classmethod
    def _ours(cls, request, answer, remote_tag, route_set, remote_seq, state, over_tls):
        """
        A dialog of a request we sent: our side of it comes from the
        request, the remote target from the peer's C{answer}.
        """
        cseq = request.cseq
        return cls(call_id=request.call_id, local_tag=request.from_.tag,
                   remote_tag=remote_tag, local_uri=request.from_.uri,
                   remote_uri=request.to.uri, remote_target=_remote_target(answer),
                   route_set=route_set, local_contact=_local_contact(request),
                   local_seq=cseq.number, remote_seq=remote_seq,
                   secure=_secure(request, over_tls), state=state,
                   created_by=(cseq.number, cseq.method))

    def __repr__(self):
        return f"<Dialog {self.id} {self.state.value}>"

    # -- keeping it across a restart ------------------------------------------

    def snapshot(self):
        """
        @return: the dialog as plain data (text, numbers), for whoever keeps
            it in a database: L{from_snapshot} makes it again.
        """
        return {"call_id": self.call_id, "local_tag": self.local_tag,
                "remote_tag": self.remote_tag, "local_uri": str(self.local_uri),
                "remote_uri": str(self.remote_uri), "remote_target": str(self.remote_target),
                "route_set": [str(route) for route in self.route_set],
                "local_contact": str(self.local_contact), "local_seq": self.local_seq,
                "remote_seq": self.remote_seq, "secure": self.secure,
                "state": self.state.value, "created_by": list(self._created_by)}

    @classmethod
    def from_snapshot(cls, data):
        """
        @return: the dialog a L{snapshot} was taken of.
        @raise ParseError: when a URI of it no longer parses.
        """
        return cls(call_id=data["call_id"], local_tag=data["local_tag"],
                   remote_tag=data["remote_tag"], local_uri=parse_uri(data["local_uri"]),
                   remote_uri=parse_uri(data["remote_uri"]),
                   remote_target=parse_uri(data["remote_target"]),
                   route_set=tuple(NameAddr.parse(route) for route in data["route_set"]),
                   local_contact=parse_uri(data["local_contact"]),
                   local_seq=data["local_seq"], remote_seq=data["remote_seq"],
                   secure=data["secure"], state=DialogState(data["state"]),
                   created_by=tuple(data["created_by"]))

    def _answers_creation(self, message):
        cseq = message.cseq
        return (cseq.number, cseq.method) == self._created_by

    # -- the peer's requests (§12.2.2) ------------------------------------------

    def receive_request(self, request):
        """
        Take a request the peer sent in this dialog: check its CSeq against
        the remote sequence number and refresh the remote target.

        ACKs (which repeat their INVITE's number) and CANCELs are not
        checked.  A request as old as the last one is in order: its
        retransmissions never get here, the transaction layer absorbs them.

        @return: L{OUT_OF_ORDER} (500), the status to answer with, when the
            request is older than the last one (nothing is changed then);
            None when it is in order.
        """
        if request.method in ("ACK", "CANCEL"):
            return None
        number = request.cseq.number
        if self.remote_seq is not None and number < self.remote_seq:
            return OUT_OF_ORDER
        self.remote_seq = number
        if request.method in TARGET_REFRESH_METHODS:
            self._refresh_target(request)
        return None

    def _refresh_target(self, message):
        uri = _contact_uri(message)
        if uri is not None:
            self.remote_target = uri

    def response_sent(self, response):
        """
        Follow a response we sent in this dialog as UAS: a 2xx to the
        request that created it confirms an early dialog, a failure ends it
        (§12.1, §12.3).
        """
        if self.state is DialogState.EARLY and self._answers_creation(response):
            if 200 <= response.status < 300:
                self.state = DialogState.CONFIRMED
            elif response.status >= 300:
                self.state = DialogState.TERMINATED

    # -- the peer's responses (§12.2.1.2) ---------------------------------------

    def receive_response(self, response):
        """
        Take a response to a request we sent in this dialog (or to the one
        that created it): a 2xx to the creating INVITE confirms an early
        dialog, with the route set taken again from that 2xx (§13.2.2.4), a
        failure to it ends the early dialog (§12.3); a 2xx to a target
        refresh request replaces the remote target; a 481 or 408 ends the
        dialog (§12.2.1.2).  Look at L{state} afterwards.
        """
        status = response.status
        if self.state is DialogState.EARLY and self._answers_creation(response):
            if 200 <= status < 300:
                self.state = DialogState.CONFIRMED
                self.route_set = tuple(reversed(response.record_route))
            elif status >= 300:
                self.state = DialogState.TERMINATED
                return
        if status in (408, 481):
            self.state = DialogState.TERMINATED
        elif 200 <= status < 300 and response.cseq.method in TARGET_REFRESH_METHODS:
            self._refresh_target(response)

    # -- our requests (§12.2.1.1) -----------------------------------------------

    def create_request(self, method):
        """
        A new request in this dialog, with the next local CSeq number: its
        Request-URI and Route from the remote target and the route set,
        From, To, Call-ID, CSeq, Max-Forwards, and our Contact when it is a
        target refresh request.  The transaction layer adds the Via.

        Not for ACK (L{create_ack}) nor CANCEL (the client transaction
        makes it).
        """
        if method in ("ACK", "CANCEL"):
            raise ValueError(f"a dialog does not number {method} requests")
        self.local_seq = FIRST_LOCAL_SEQ if self.local_seq is None else self.local_seq + 1
        return self._request(method, self.local_seq)

    def create_ack(self, invite):
        """
        The ACK for a 2xx to our C{invite} (§13.2.2.4): built as an
        in-dialog request, with the INVITE's CSeq number and credentials.
        """
        ack = self._request("ACK", invite.cseq.number)
        for name in ("Authorization", "Proxy-Authorization"):
            for value in invite.headers.get_all(name):
                ack.headers.add(name, value)
        return ack

    def _request(self, method, number):
        route_set = self.route_set
        if route_set and not self._loose_first_hop():
            # A strict router (RFC 2543) routes on the Request-URI: it gets
            # the first route, and the remote target goes last in Route.
            uri = _request_uri(route_set[0].uri)
            routes = [str(route) for route in route_set[1:]]
            routes.append(f"<{self.remote_target}>")
        else:
            uri = self.remote_target
            routes = [str(route) for route in route_set]
        fields = [("Route", route) for route in routes]
        fields += [
            ("Max-Forwards", "70"),
            ("From", f"<{self.local_uri}>;tag={self.local_tag}"),
            ("To", f"<{self.remote_uri}>;tag={self.remote_tag}" if self.remote_tag
             else f"<{self.remote_uri}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{number} {method}"),
        ]
        if method in TARGET_REFRESH_METHODS:
            fields.append(("Contact", f"<{self.local_contact}>"))
        return Request(method, uri, Headers(fields))

    def _loose_first_hop(self):
        uri = self.route_set[0].uri
        return isinstance(uri, SipURI) and "lr" in uri.params


class _Silent:
    """The log of a L{DialogTable} not given one: it says nothing."""

    def debug(self, format, **fields):
        pass

    warn = debug


_SILENT = _Silent()


class DialogTable:
    """
    The dialogs of one user agent, by id, and the SUBSCRIBEs we sent whose
    NOTIFYs may still create dialogs.

    The core does no I/O, logging included: C{log}, given by the shell (a
    Twisted C{Logger}, or anything with C{debug} and C{warn} taking a
    format and its fields), hears of the dialogs made and of those that
    could not be.
    """

    def __init__(self, log=None):
        self._log = log or _SILENT
        self._dialogs = {}
        #: (Call-ID, From tag) -> an out-of-dialog SUBSCRIBE we sent.
        self._subscriptions = {}

    def __len__(self):
        return len(self._dialogs)

    def get(self, id):
        """@return: the dialog with this L{dialog_id}, or None."""
        return self._dialogs.get(id)

    def add(self, dialog):
        self._dialogs[dialog.id] = dialog

    def remove(self, id):
        """@return: the dialog removed, or None if there was none."""
        return self._dialogs.pop(id, None)

    # -- requests that came to us -----------------------------------------------

    def match(self, request):
        """
        @return: the dialog of a request the peer sent in it (its To tag is
            our local tag, its From tag the remote tag), or None.
        """
        to_tag = request.to.tag
        if to_tag is None:
            return None
        return self._dialogs.get(dialog_id(request.call_id, to_tag, request.from_.tag))

    def needs_481(self, request):
        """
        @return: whether C{request} names a dialog (it has a To tag) that does
            not exist, and must be answered 481 Call/Transaction Does Not
            Exist (§12.2.2).  Not for ACKs, which are never answered, nor for
            a NOTIFY that creates a dialog for one of our SUBSCRIBEs.
        """
        return (request.method != "ACK" and request.to.tag is not None
                and self.match(request) is None and self.subscription_of(request) is None)

    # -- subscriptions we started (RFC 6665) ------------------------------------

    def subscription_sent(self, subscribe):
        """
        Remember an out-of-dialog SUBSCRIBE we sent, so that the NOTIFYs
        answering it create dialogs (L{dialog_from_notify}), each notifier
        its own when the SUBSCRIBE forked.  A failure response to it forgets
        it (L{handle_response}); else L{forget_subscription} once no more
        NOTIFYs are expected.
        """
        self._subscriptions[(subscribe.call_id, subscribe.from_.tag)] = subscribe

    def forget_subscription(self, subscribe):
        self._subscriptions.pop((subscribe.call_id, subscribe.from_.tag), None)

    def subscription_of(self, notify):
        """
        @return: the SUBSCRIBE of ours a NOTIFY answers (RFC 6665
            §4.1.2.4: same Call-ID, its To tag our From tag, and the same
            Event package and id, compared byte by byte), or None.
        """
        if notify.method != "NOTIFY":
            return None
        subscribe = self._subscriptions.get((notify.call_id, notify.to.tag))
        if subscribe is None:
            return None
        theirs, ours = notify.event, subscribe.event
        if theirs is None or ours is None:
            return None
        if theirs.package != ours.package or theirs.id != ours.id:
            return None
        return subscribe

    def dialog_from_notify(self, notify, over_tls=False):
        """
        Create and add the dialog of a NOTIFY that answers one of our
        SUBSCRIBEs and matches no dialog yet.

        @return: the new dialog, or None when the NOTIFY answers no
            SUBSCRIBE of ours (or already has its dialog).
        @raise ParseError: (400) when the NOTIFY has no usable Contact.
        """
        if self.match(notify) is not None:
            return None
        subscribe = self.subscription_of(notify)
        if subscribe is None:
            return None
        dialog = Dialog.from_notify(subscribe, notify, over_tls)
        self.add(dialog)
        self._log.debug("NOTIFY created dialog {id}", id=dialog.id)
        return dialog

    # -- responses to our requests ----------------------------------------------

    def handle_response(self, request, response, over_tls=False):
        """
        Take a response to a request we sent: the dialog it belongs to
        follows it (L{Dialog.receive_response}), or it creates one (a 2xx or,
        to an INVITE, a 1xx with a To tag, to an out-of-dialog INVITE or
        SUBSCRIBE), which is added.

        @return: the dialog the response belongs to, or None.  Its C{state}
            is L{DialogState.TERMINATED} when the response ended it: the
            caller removes it.
        """
        status = response.status
        if request.method == "SUBSCRIBE" and status >= 300 and request.to.tag is None:
            self.forget_subscription(request)
        to_tag = response.to.tag
        if to_tag is None:
            return None
        dialog = self._dialogs.get(dialog_id(response.call_id, response.from_.tag, to_tag))
        if dialog is not None:
            dialog.receive_response(response)
            return dialog
        if not self._creates_dialog(request, status):
            return None
        try:
            dialog = Dialog.from_uac(request, response, over_tls)
        except ParseError as e:
            self._log.warn("a {status} to {method} without a usable Contact creates no dialog: "
                     "{reason}", status=status, method=request.method, reason=e.reason)
            return None
        self.add(dialog)
        self._log.debug("{status} created dialog {id}", status=status, id=dialog.id)
        return dialog

    @staticmethod
    def _creates_dialog(request, status):
        if request.method not in DIALOG_CREATING_METHODS or request.to.tag is not None:
            return False
        return 200 <= status < 300 or (request.method == "INVITE" and 100 < status < 200)
