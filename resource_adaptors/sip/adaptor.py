"""
The SIP resource adaptor: the SIP stack as activities and events.

Server transactions, client transactions and dialogs are activities.  An
incoming request outside any dialog starts its server transaction's
activity and fires the request's event there (one event type per method,
L{resource_adaptors.sip.events}); a request within a dialog the RA knows is
fired on the dialog's activity; a response on its client transaction's.

The RA answers what no SBB answers, so that a client never meets silence:

- before any service sees it: what L{validate_request} refuses (400 for a
  malformed header, 416 for a Request-URI scheme other than sip, sips and
  tel, ...), 481 for a request naming a dialog that does not exist, 420 for
  a Require the stack does not support, 503 when the container is
  overloaded;
- before anything is made for it: a new request whose answer would come
  too late is shed with 503 and Retry-After, statelessly, by the door
  (L{resource_adaptors.sip.admission}), requests within dialogs last;
- after the event was processed without any SBB handling it: 501 for a
  method the stack does not know, 489 for a SUBSCRIBE or PUBLISH whose event
  package no service took (when some service serves the method), else 405;
  all with Allow (and Allow-Events);
- 500 when the handler that took it rolled back.

A server transaction's activity ends once its final response is sent (the
transaction layer absorbs retransmissions on its own) or when the
transaction ends; a client transaction's once its final response, timeout
or transport error was fired.

Properties (all checked when the unit is deployed):

- C{endpoints}: listening endpoints (C{udp:5060}, C{tcp:...}, C{tls:...},
  C{ws:...}, C{wss:...}); C{--sip} sets them;
- C{t1}, C{t2}, C{t4}: RFC 3261 timer values in seconds;
- C{max-message-size}, C{max-headers}, C{max-line-length},
  C{max-body-size}, C{max-uri-length} (at most 960): parser limits;
- C{max-connections}, C{max-connections-per-peer}, C{idle-timeout}: stream
  connection limits (a connection a dialog or a registration uses is not
  closed for being idle while it does);
- C{udp-receive-buffer}: the kernel buffer of each UDP socket, in bytes;
- C{max-queue-delay}: the seconds an answer may come late (the wait in the
  socket's buffer and the container's queue) before the door sheds new
  requests;
- C{supported}: the option tags answered in Supported (and accepted in
  Require);
- C{auth}: who requests come from (L{resource_adaptors.sip.authentication}):
  C{digest}, C{trust-localhost} or C{none}; by default C{digest} when
  C{users} names a user store, else C{trust-localhost}; C{--sip-auth} sets it;
- C{users}: the user store file, the XCAP server's (C{--users} sets both);
- C{trusted-peers}: addresses or networks whose P-Asserted-Identity is
  believed (C{--sip-trusted-peer});
- C{proxy-auth}: challenge with 407 and Proxy-Authenticate, as a proxy
  does, rather than 401 (C{--sip-proxy-auth});
- C{client-username}, C{client-password}: the account our own requests
  answer Digest challenges with, in any realm (C{--sip-client-user},
  C{--sip-client-password}); none by default.

Every request outside a dialog but OPTIONS, ACK and CANCEL goes through
the gate before any service sees it.  Every dialog the RA knows was made by
a request the gate let in, or by us: a request in one (matched by Call-ID
and both tags, else 481) takes the identity of the request that made it
(None when we made it, or after a restart).  The event's C{identity} says
who it comes from.

Our own requests meet such gates on other servers: a 401 or 407 to a
request we sent, with a Digest challenge we can answer (an account
configured, SHA-256 or MD5, C{qop=auth}), is not fired: the request goes
again, signed, as a new transaction on the same activity (RFC 3261
§22.2), and the SBB hears the answer to that one only.  A request is
signed once per kind of challenge: a second 401 to a signed request means
the account is refused, and is the answer.

Why one module of some 1,000 lines: L{SipResourceAdaptor} is at once the
transaction user (L{resource_adaptors.sip.interfaces.ITransactionUser})
and the provider SBBs call (L{ISipProvider}), and both sides read and
write the same tables (transactions to activities, dialogs, the requests
sent in each dialog, the identities admitted).  Cut in two, each half
would reach into the other's state; the parts that stand alone are
modules of their own already (the door, the gate, the transports, the
dialogs, the events).
"""

import itertools
import uuid
from functools import partial

from twisted.logger import Logger
from zope.interface import implementer

from slee.errors import OverloadError, UnknownActivityError
from slee.log_limits import RateLimitedWarning
from slee.resources import Property, ResourceAdaptor, positive
from slee.trace import log_observer

from resource_adaptors.auth.digest import DigestClient
from resource_adaptors.auth.users import ALGORITHMS, UserStore
from resource_adaptors.sip import events
from resource_adaptors.sip.admission import Door
from resource_adaptors.sip.shedding import Shedder
from resource_adaptors.sip.authentication import Gate, Refused, trusted_network
from resource_adaptors.sip.command_line import DEFAULT_ENDPOINTS, check_auth, check_endpoint
from resource_adaptors.sip.core.dialog import (
    DIALOG_CREATING_METHODS, Dialog, DialogState, DialogTable, dialog_id, new_tag)
from resource_adaptors.sip.core.headers import NameAddr, Params, header_key
from resource_adaptors.sip.core.message import (
    Headers, PreparedFields, Request, make_response, validate_request)
from resource_adaptors.sip.core.parser import Limits, ParseError
from resource_adaptors.sip.provider import ISipProvider
from resource_adaptors.sip.transaction_layer import State, TransactionLayer
from resource_adaptors.sip.core.transaction import TimerSettings, TransactionStateError
from resource_adaptors.sip.core.routing import Peer, TransportError
from resource_adaptors.sip.transports import (
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_PEER, DEFAULT_UDP_RECEIVE_BUFFER,
    SipTransports, reserve_descriptors)
from resource_adaptors.sip.core.uri import SipURI, parse_uri

SUPPORTED_SCHEMES = frozenset(("sip", "sips", "tel"))
#: Methods whose requests name an event package (RFC 6665, RFC 3903).
EVENT_METHODS = frozenset(("SUBSCRIBE", "PUBLISH", "NOTIFY"))
#: Methods a UA serving INVITE must also accept.
INVITE_COMPANIONS = ("ACK", "CANCEL", "BYE")
DIALOG_PREFIX = "dialog:"
SECURE_TRANSPORTS = frozenset(("tls", "wss"))
#: Challenge status -> (the header that challenges, the header that answers it).
CHALLENGES = {401: ("WWW-Authenticate", "Authorization"),
              407: ("Proxy-Authenticate", "Proxy-Authorization")}


def _endpoints(value):
    if not value:
        return "needs at least one endpoint"
    for item in value:
        try:
            check_endpoint(item)
        except ValueError as e:
            return str(e)
    return None


def _to_tag(status):
    """
    The To tag of a response we make: RFC 3261 §8.2.6.2 wants one on every
    response but 100 when the request had none (make_response keeps the one
    it had).  Retransmitted answers are the transaction layer's copies: they
    keep the tag.
    """
    return None if status == 100 else new_tag()


def _again(request, cseq, field):
    """
    @return: a copy of C{request} (ours, sent) to send anew: without its Via
        (the transaction layer adds one with a new branch), numbered C{cseq},
        with the header C{field} (a (name, value) pair) added.
    """
    via = header_key("Via")
    headers = Headers([(name, value) for name, value in request.headers
                       if header_key(name) != via])
    headers.set("CSeq", f"{cseq} {request.method}")
    headers.add(*field)
    return Request(request.method, request.uri, headers, request.body)


def _hold_connection(peer, user):
    """Keep the connection of C{peer} (if it came on one) open for C{user}."""
    if peer.connection is not None:
        peer.connection.hold(user)


#: A binding's expiry, seconds, when neither its Contact nor the response
#: says (RFC 3261 §10.2.1.1).
DEFAULT_BINDING_EXPIRY = 3600


def _binding_expiry(contact, default):
    """@return: how long the binding of a Contact in a REGISTER's 2xx lasts."""
    expires = contact.expires
    if expires is None:
        expires = DEFAULT_BINDING_EXPIRY if default is None else default
    return expires


def _uri_length(value):
    highest = Limits().max_uri_length
    if not 0 < value <= highest:
        return f"must be from 1 to {highest}: services name activities after Request-URIs"
    return None


def _auth_mode(value):
    if not value:
        return None                     # chosen by whether there is a user store
    try:
        check_auth(value)
    except ValueError as e:
        return str(e)
    return None


def _trusted_peers(value):
    for item in value:
        try:
            trusted_network(item)
        except ValueError as e:
            return str(e)
    return None


def _digest_algorithms(value):
    if not value or any(algorithm not in ALGORITHMS for algorithm in value) or \
            len(set(value)) != len(value):
        return f"must name some of {', '.join(ALGORITHMS)}, each once"
    return None


def _option_tags(value):
    bad = [tag for tag in value if not isinstance(tag, str) or not tag or " " in tag]
    return f"not an option tag: {bad[0]!r}" if bad else None


@implementer(ISipProvider)
class SipResourceAdaptor(ResourceAdaptor):
    """See the module docstring.  SBBs use it through L{ISipProvider}."""

    log = Logger(namespace="resource_adaptors.sip.adaptor", observer=log_observer)

    properties = {
        "endpoints": Property(list, list(DEFAULT_ENDPOINTS), _endpoints),
        "t1": Property(float, 0.5, positive),
        "t2": Property(float, 4.0, positive),
        "t4": Property(float, 5.0, positive),
        "max-message-size": Property(int, Limits().max_message_size, positive),
        "max-headers": Property(int, Limits().max_headers, positive),
        "max-line-length": Property(int, Limits().max_line_length, positive),
        "max-body-size": Property(int, Limits().max_body_size, positive),
        "max-uri-length": Property(int, Limits().max_uri_length, _uri_length),
        "max-connections": Property(int, DEFAULT_MAX_CONNECTIONS, positive),
        "max-connections-per-peer": Property(int, DEFAULT_MAX_CONNECTIONS_PER_PEER, positive),
        "max-transactions": Property(int, 500000, positive),
        "max-queue-delay": Property(float, 0.25, positive),
        "idle-timeout": Property(float, 300.0, positive),
        "udp-receive-buffer": Property(int, DEFAULT_UDP_RECEIVE_BUFFER, positive),
        "supported": Property(list, [], _option_tags),
        "auth": Property(str, "", _auth_mode),
        "users": Property(str, ""),
        "trusted-peers": Property(list, [], _trusted_peers),
        "proxy-auth": Property(bool, False),
        "digest-algorithms": Property(list, list(ALGORITHMS), _digest_algorithms),
        "client-username": Property(str, ""),
        "client-password": Property(str, ""),
    }
    event_types = events.EVENT_TYPES

    def __init__(self):
        super().__init__()
        self.transports = None
        self.layer = None
        self.door = None
        self._dropped_warning = None
        #: server transaction id -> transaction, while it may be answered.
        self.server_transactions = {}
        #: the ids of the server transactions that are activities.
        self.server_activities = set()
        #: client transaction id -> transaction, while it waits for its answer.
        self.client_transactions = {}
        #: client transaction -> (its id, the handle of the activity its answer
        #: is fired on): a request sent in a dialog is answered on the dialog's
        #: activity, any other on its own, whose handle is its id.
        self.client_handles = {}
        #: dialog activity handle -> ids of the client transactions sent in
        #: the dialog whose request is still to be sent or waits for its
        #: final answer; and the count the ids of such requests are made of.
        self.dialog_requests = {}
        self._dialog_request_ids = itertools.count(1)
        self.dialogs = DialogTable(
            Logger(namespace="resource_adaptors.sip.dialog", observer=log_observer))
        #: who requests come from (L{Gate}), made when the RA is activated.
        self.gate = None
        #: server transaction id -> the identity of its request, once admitted.
        self.server_identities = {}
        #: dialog id -> the identity of the request that made it (None for a
        #: dialog we made, or one restored): requests in it pass the gate.
        self.dialog_identities = {}
        #: dialog id -> the peer its requests go to (connection reuse).
        self.dialog_peers = {}
        self.event_packages = set()
        self.accepted_types = set()
        # Option tags services added to the configured ones (eventlist...).
        self.option_tags = set()
        # allowed_methods() and the initial event types it was made from.
        self._allowed = []
        self._allowed_for = None
        # capability_headers() and the initial event types it was made from;
        # None once capabilities change.
        self._capability_headers = ()
        self._capability_headers_for = None

    # -- life cycle ----------------------------------------------------------

    def configure(self, properties):
        super().configure(properties)
        self._capability_headers_for = None     # Supported may have changed
        config = self.config
        try:
            self.timer_settings = TimerSettings(config["t1"], config["t2"], config["t4"])
        except ValueError as e:
            from slee.errors import ConfigurationError
            raise ConfigurationError(f"properties t1, t2, t4: {e}") from None
        self.limits = Limits(max_message_size=config["max-message-size"],
                             max_headers=config["max-headers"],
                             max_line_length=config["max-line-length"],
                             max_body_size=config["max-body-size"],
                             max_uri_length=config["max-uri-length"])

    async def activate(self, endpoint):
        super().activate(endpoint)
        # The network's time too (retransmissions, idle connections): the
        # reactor's, not the container's clock, which a test may drive.
        reactor = endpoint.reactor
        files = reserve_descriptors(self.config["max-connections"])
        if files is not None:
            self.log.warn("max-connections is {connections} but the process may open only "
                          "{files} files (RLIMIT_NOFILE, its hard limit): raise it (ulimit -Hn, "
                          "systemd's LimitNOFILE) or lower max-connections",
                          connections=self.config["max-connections"], files=files)
        self.transports = SipTransports(reactor, None, self.limits,
                                        max_connections=self.config["max-connections"],
                                        max_connections_per_peer=self.config[
                                            "max-connections-per-peer"],
                                        idle_timeout=self.config["idle-timeout"],
                                        udp_receive_buffer=self.config["udp-receive-buffer"])
        self._dropped_warning = RateLimitedWarning(reactor)
        self.door = Door(endpoint.queue_delay, self.config["max-queue-delay"], reactor)
        self.layer = TransactionLayer(reactor, self.transports, self, self.timer_settings,
                                      self.config["max-transactions"], self.door.refusal)
        self.transports.shedder = Shedder(self.door, self.layer.holds, self._send_datagram)
        self.gate = self._gate(reactor)
        for description in self.config["endpoints"]:
            point = await self.transports.listen(description)
            self.log.info("SIP listening on {transport} {host}:{port}",
                          transport=point.transport, host=point.host, port=point.port)

    def _send_datagram(self, data, host, port, peer):
        """Send C{data} over UDP from the listening point C{peer} came to."""
        point = peer.local
        self.transports.send((data, "udp", host, port, point.host, point.port, None, False))

    def _gate(self, clock):
        """The L{Gate} the properties describe, its mode logged."""
        config = self.config
        users = config["users"]
        mode = config["auth"] or ("digest" if users else "trust-localhost")
        store = UserStore.load(users) if users else UserStore("slee")
        trusted = [trusted_network(item) for item in config["trusted-peers"]]
        if mode == "digest":
            self.log.info("SIP authentication: digest (realm {realm!r}, {count} users)",
                          realm=store.realm, count=len(store))
            if not users:
                self.log.warn("no --users file: every SIP request but OPTIONS will be refused")
        elif mode == "trust-localhost":
            self.log.info("SIP authentication: trust-localhost (development only: requests "
                          "from the loopback interface are taken from their From, others "
                          "get 403)")
        else:
            self.log.warn("SIP authentication: none: every request is taken from its From")
        if trusted:
            self.log.info("SIP peers trusted to assert identities: {peers}",
                          peers=", ".join(map(str, trusted)))
        return Gate(mode, store, trusted, config["proxy-auth"], clock,
                    config["digest-algorithms"])

    async def stop(self):
        if self.layer is not None:
            self.layer.stop()
        if self.transports is not None:
            await self.transports.stop()
        self.server_transactions.clear()
        self.server_identities.clear()
        self.server_activities.clear()
        self.client_transactions.clear()
        self.client_handles.clear()
        self.dialog_requests.clear()

    def status(self):
        return {"listening": [f"{p.transport}:{p.host}:{p.port}"
                              for p in self.transports.listening],
                "transactions": len(self.server_transactions) + len(self.client_transactions),
                "dialogs": len(self.dialogs),
                "shed": self.door.shed, "dropped": self.door.dropped}

    def get_activity(self, handle):
        if handle.startswith(DIALOG_PREFIX):
            return self.dialogs.get(handle[len(DIALOG_PREFIX):])
        return self.server_transactions.get(handle) or self.client_transactions.get(handle)

    # -- incoming requests (the transaction user) ----------------------------

    def request_received(self, transaction, request):
        try:
            validate_request(request, uri_schemes=SUPPORTED_SCHEMES)
        except ParseError as error:
            self._answer(transaction, error.status, error.reason)
            return
        refusal = self._refusal(request)
        if refusal is not None:
            self._answer(transaction, *refusal)
            return
        dialog = handle = None
        if request.to.tag is not None:
            dialog = self.dialogs.match(request)
            if dialog is None:
                dialog, handle = self._dialog_from_notify(transaction)
            if dialog is None:
                self._answer(transaction, 481, "Call/Transaction Does Not Exist")
                return
            if dialog.receive_request(request) is not None:
                self._answer(transaction, 500, "Server Internal Error",
                             [("Retry-After", "1")])  # an out-of-order CSeq (§12.2.2)
                return
        if dialog is not None:
            self.gate.screen(request, transaction.peer)
            self._admitted(transaction, dialog, handle, self.dialog_identities.get(dialog.id))
            return
        self.gate.identify(request, transaction.peer).addCallbacks(
            partial(self._admitted, transaction, dialog, handle),
            partial(self._turned_away, transaction))

    def _turned_away(self, transaction, failure):
        """The gate refused the request (a challenge, 403...): answer it."""
        failure.trap(Refused)
        self._answer(transaction, *failure.value.answer)

    def _admitted(self, transaction, dialog, handle, identity):
        """Fire the event of a request the gate let in, from C{identity}."""
        request = transaction.request
        self.server_transactions[transaction.id] = transaction
        self.server_identities[transaction.id] = identity
        event = events.RequestEvent(request, transaction.id, transaction.peer,
                                    None if dialog is None else dialog.id, identity)
        if dialog is None:
            self.endpoint.start_activity(transaction.id)
            self.server_activities.add(transaction.id)
            handle = transaction.id
        elif handle is None:
            handle = DIALOG_PREFIX + dialog.id
        event_type = events.request_event_type(request.method)
        try:
            self.endpoint.fire_event(handle, event_type, event,
                                     on_processed=partial(self._processed, transaction, event_type))
        except OverloadError:
            self._answer(transaction, 503, "Service Unavailable", [("Retry-After", "5")])

    def _dialog_from_notify(self, transaction):
        """
        The dialog a NOTIFY creates for a SUBSCRIBE we sent (it may come
        before the SUBSCRIBE's 2xx, RFC 6665 §4.1.2.4), with its activity.

        @return: (the dialog, the handle of the activity the NOTIFY is fired
            on), or (None, None).  While the SUBSCRIBE waits for its answer,
            the NOTIFY goes to its client transaction's activity, where the
            SBB that sent it is attached already (the dialog's is new: nobody
            is attached there yet); else to the dialog's.
        """
        notify = transaction.request
        subscribe = self.dialogs.subscription_of(notify)
        try:
            dialog = self.dialogs.dialog_from_notify(notify,
                                                     transaction.peer.transport in SECURE_TRANSPORTS)
        except ParseError:
            return None, None
        if dialog is None:
            return None, None
        self._dialog_started(dialog, transaction.peer)
        waiting = next((handle for handle, client in self.client_transactions.items()
                        if client.request is subscribe), None)
        return dialog, waiting

    def _dialog_started(self, dialog, peer):
        """A dialog the stack made (as UAC): its activity starts now."""
        self.dialog_peers[dialog.id] = peer
        _hold_connection(peer, dialog.id)
        self.dialog_identities[dialog.id] = None
        self.endpoint.start_activity(DIALOG_PREFIX + dialog.id)

    def _refusal(self, request):
        """
        @return: (status, reason, headers) for a request the RA refuses
            before any service sees it, or C{None}.
        """
        if request.method in DIALOG_CREATING_METHODS:
            contacts = request.contact
            if not contacts:
                if request.to.tag is None:
                    return 400, "Missing Contact header", ()
            elif any(contact.star or contact.uri.scheme not in ("sip", "sips")
                     for contact in contacts):
                # RFC 3261 §8.1.1.8: the dialog's remote target.
                return 400, "Contact must be a SIP or SIPS URI", ()
        if request.method not in ("ACK", "CANCEL") and request.require:
            unsupported = [tag for tag in request.require
                           if tag not in self.config["supported"]
                           and tag not in self.option_tags]
            if unsupported:
                return 420, "Bad Extension", [("Unsupported", ", ".join(unsupported))]
        return None

    def _processed(self, transaction, event_type, committed, handlers):
        """
        The C{on_processed} callback of a request's event (with its first
        two arguments bound): it answers what no SBB took, or what rolled
        back.
        """
        if self.server_transactions.get(transaction.id) is not transaction:
            return
        if not committed:
            self._answer(transaction, 500, "Server Internal Error")
        elif not handlers:
            self._answer(transaction, *self._unserved(transaction.request, event_type))

    def _unserved(self, request, event_type):
        """
        @return: (status, reason, headers) for a request no service took.
            In a dialog, that is one nobody uses any more (its subscription
            just ended, say): 481.
        """
        if request.to.tag is not None:
            return 481, "Call/Transaction Does Not Exist", ()
        allow = [("Allow", ", ".join(self.allowed_methods()))]
        if event_type is events.UNKNOWN_REQUEST:
            return 501, "Not Implemented", allow
        if request.method in EVENT_METHODS and event_type.id in self.endpoint.initial_event_types():
            return 489, "Bad Event", [("Allow-Events", ", ".join(sorted(self.event_packages)))]
        return 405, "Method Not Allowed", allow

    def _answer(self, transaction, status, reason, headers=()):
        """Answer a request here and now, outside any SBB."""
        response = make_response(transaction.request, status, reason, to_tag=_to_tag(status))
        response.headers.extend(headers)
        self._send_response(transaction, response)

    def cancel_received(self, transaction, cancel):
        """The layer answered the INVITE 487 already: tell its SBBs, then end it."""
        if transaction.id in self.server_transactions:
            event = events.RequestEvent(cancel, None, transaction.peer)
            self._fire_quietly(transaction.id, events.REQUEST["CANCEL"], event)
            self._server_gone(transaction)

    def stray_ack(self, request, peer):
        dialog = self.dialogs.match(request)
        if dialog is not None:
            event = events.RequestEvent(request, None, peer, dialog.id)
            self._fire_quietly(DIALOG_PREFIX + dialog.id, events.REQUEST["ACK"], event)

    def stray_response(self, response, peer):
        self.log.debug("dropped a response matching no transaction: {status} {call_id}",
                       status=response.status, call_id=response.headers.get("Call-ID"))

    # -- transaction ends ----------------------------------------------------

    def response_received(self, transaction, response):
        client = self.client_handles.get(transaction)
        if client is None:
            return
        if response.status in CHALLENGES and self._signed_again(transaction, response):
            return
        transaction_id, handle = client
        if handle != transaction_id:
            # Sent in a dialog: the response is that dialog's (the
            # transaction layer matched it), with no need to read its tags.
            dialog = self.dialogs.get(handle[len(DIALOG_PREFIX):])
            if dialog is not None:
                dialog.receive_response(response)
        else:
            known = len(self.dialogs)
            dialog = self.dialogs.handle_response(transaction.request, response,
                                                  transaction.peer.transport in SECURE_TRANSPORTS)
            if dialog is not None and len(self.dialogs) > known:
                self._dialog_started(dialog, transaction.peer)
        event = events.ResponseEvent(response, transaction_id,
                                     None if dialog is None else dialog.id)
        self._fire_quietly(handle, events.RESPONSE[response.status // 100], event)
        if dialog is not None and dialog.state is DialogState.TERMINATED:
            self._forget_dialog(dialog)
        if response.status >= 200:
            self._end_client(transaction)

    def _signed_again(self, transaction, response):
        """
        Answer the Digest challenge of C{response}, a 401 or 407 to a
        request we sent, by sending that request again signed: a new
        transaction in the place of C{transaction}, the same activity
        waiting for its answer.  Out of a dialog it keeps its Call-ID and
        tags, its CSeq counted once more; in a dialog it takes the dialog's
        next CSeq (RFC 3261 §8.1.3.5, §22.2).

        @return: whether it was sent; not when no account is configured, no
            challenge fits, or the request answered this kind of challenge
            already (the account was refused: the challenge is the answer).
        """
        challenge, credentials = CHALLENGES[response.status]
        request = transaction.request
        username = self.config["client-username"]
        if not username or credentials in request.headers:
            return False
        digest = DigestClient(username, self.config["client-password"])
        if digest.challenged(response.headers.field_values(challenge)) is None:
            return False
        client = transaction_id, handle = self.client_handles[transaction]
        if handle == transaction_id:
            number = request.cseq.number + 1
        else:
            dialog = self.dialogs.get(handle[len(DIALOG_PREFIX):])
            if dialog is None:
                return False            # it ended meanwhile: nothing to send in
            dialog.local_seq += 1       # numbered as Dialog.create_request does
            number = dialog.local_seq
        signed = _again(request, number,
                        (credentials, digest.authorization(request.method, str(request.uri))))
        if request.method == "SUBSCRIBE" and request.to.tag is None:
            self.dialogs.subscription_sent(signed)      # its NOTIFYs make the dialog
        del self.client_handles[transaction]
        again = self.layer.send_request(signed, transaction.peer)
        self.client_transactions[transaction_id] = again
        self.client_handles[again] = client
        return True

    def transaction_timeout(self, transaction):
        self._client_failed(transaction, events.TRANSACTION_TIMEOUT,
                            lambda transaction_id: events.TransactionTimeoutEvent(
                                transaction_id, transaction.request))
        self._server_gone(transaction)

    def transaction_error(self, transaction, reason):
        self._client_failed(transaction, events.TRANSPORT_ERROR,
                            lambda transaction_id: events.TransportErrorEvent(
                                transaction_id, transaction.request, str(reason)))
        self._server_gone(transaction)

    def transaction_terminated(self, transaction):
        if transaction in self.client_handles:
            self._end_client(transaction)
        self._server_gone(transaction)

    def _client_failed(self, transaction, event_type, make_event):
        client = self.client_handles.get(transaction)
        if client is not None:
            transaction_id, handle = client
            self._fire_quietly(handle, event_type, make_event(transaction_id))
            self._end_client(transaction)

    def _end_client(self, transaction):
        client = self.client_handles.pop(transaction, None)
        if client is not None:
            transaction_id, handle = client
            del self.client_transactions[transaction_id]
            if handle == transaction_id:        # its own activity, not its dialog's
                self.endpoint.end_activity(handle)
            else:
                self._dialog_request_done(handle, transaction_id)

    def _dialog_request_done(self, handle, transaction_id):
        waiting = self.dialog_requests.get(handle)
        if waiting is not None:
            waiting.discard(transaction_id)
            if not waiting:
                del self.dialog_requests[handle]

    def _server_gone(self, transaction):
        """The server transaction may not be answered any more: its
        activity, if it is one, ends."""
        handle = transaction.id
        self.server_transactions.pop(handle, None)
        self.server_identities.pop(handle, None)
        if handle in self.server_activities:
            self.server_activities.remove(handle)
            self.endpoint.end_activity(handle)

    def _fire_quietly(self, handle, event_type, event):
        """
        Fire an event the RA has no way to refuse; log it if the queue is
        full, or if its activity ended (a dialog ended while a request sent
        in it waited for its answer).
        """
        try:
            self.endpoint.fire_event(handle, event_type, event)
        except OverloadError:
            self._dropped_warning(self.log, "overloaded: dropped {event_type} on {handle}",
                                  event_type=event_type.name, handle=handle)
        except UnknownActivityError:
            self.log.debug("dropped {event_type} on {handle}, an activity that ended",
                           event_type=event_type.name, handle=handle)

    # -- the SBB interface (ISipProvider) ------------------------------------

    def respond(self, transaction, status, reason=None, headers=(), body=b"", content_type=None,
                dialog=None):
        if not 100 <= int(status) <= 699:
            raise ValueError(f"not a SIP status code: {status!r}")
        handle = getattr(transaction, "transaction", transaction)
        server = self.server_transactions.get(handle)
        if server is None:
            raise KeyError(f"no server transaction {handle!r} waiting for an answer")
        if dialog is not None:
            dialog = self._dialog(dialog)
        to_tag = dialog.local_tag if dialog is not None else _to_tag(status)
        response = make_response(server.request, status, reason, to_tag=to_tag)
        response.headers.extend(headers)
        if dialog is not None:
            if not response.contact:
                response.headers.set("Contact", f"<{self.local_contact(server.peer)}>")
            if server.request.to.tag is None and 100 < status < 300:
                # RFC 3261 §12.1.1: the answer that makes a dialog carries the
                # request's Record-Route, so that the peer's requests in the
                # dialog go through the same proxies as ours.
                response.headers.copy_from(server.request.headers, "Record-Route")
        self._set_body(response, body, content_type)
        self.endpoint.after_commit(partial(self._send_response, server, response, dialog))
        return response

    def _send_response(self, transaction, response, dialog=None):
        if dialog is not None:
            dialog.response_sent(response)
        try:
            transaction.respond(response)
        except TransactionStateError as e:
            # A peer's doing as often as not (a CANCEL won the race): held back per peer.
            self.transports.peer_log.warn(self.log, transaction.peer.host,
                                          "response {status} to {id} not sent: {error}",
                                          status=response.status, id=transaction.id,
                                          error=str(e))
            return
        if dialog is not None and dialog.id in self.dialog_peers:
            _hold_connection(self.dialog_peers[dialog.id], dialog.id)
        elif transaction.request.method == "REGISTER" and 200 <= response.status < 300:
            self._hold_for_registration(transaction, response)
        # A final response ends the transaction's activity, unless the layer
        # said already that the transaction is over (it lingers).
        if response.status >= 200 and transaction.id in self.server_transactions:
            self._server_gone(transaction)

    def _hold_for_registration(self, transaction, response):
        """
        Keep the connection a REGISTER came on open, idle or not, until the
        longest of the bindings it made expires (those of its 2xx that the
        REGISTER names; all of them for a REGISTER naming none): requests
        to the client come that way (behind NAT it cannot be connected to,
        RFC 5626).  A 2xx without such a lasting binding (expires=0, no
        Contact) lets it go.  One hold per address of record, so that a
        proxy's connection carrying the registrations of many stays while
        any of them lasts.
        """
        connection = transaction.peer.connection
        if connection is None:
            return
        request = transaction.request
        user = ("registration", str(request.to.uri))
        try:
            named = [contact.uri for contact in request.contact if not contact.star]
            bindings = [contact for contact in response.contact if not contact.star and (
                not named or any(contact.uri.equivalent(uri) for uri in named))]
            default = response.expires
            longest = max((_binding_expiry(contact, default) for contact in bindings), default=0)
        except ParseError:      # what a service wrote: keep what was held
            return
        if longest > 0:
            connection.hold(user, until=self.transports.clock.seconds() + longest)
        else:
            connection.release(user)

    def capabilities(self):
        return {"allow": self.allowed_methods(),
                "allow_events": sorted(self.event_packages),
                "accept": sorted(self.accepted_types),
                "supported": [*self.config["supported"],
                              *sorted(self.option_tags - set(self.config["supported"]))]}

    def capability_headers(self):
        """
        @return: Allow, Accept, Supported and Allow-Events (when services
            serve event packages), L{PreparedFields}: what an answer to
            OPTIONS says.  Made again only when the services or their
            capabilities change: an OPTIONS keep-alive is the commonest
            request there is.
        """
        initial = self.endpoint.initial_event_types()
        if initial is not self._capability_headers_for:
            offered = self.capabilities()
            headers = [("Allow", ", ".join(offered["allow"])),
                       ("Accept", ", ".join(offered["accept"])),
                       ("Supported", ", ".join(offered["supported"]))]
            if offered["allow_events"]:
                headers.append(("Allow-Events", ", ".join(offered["allow_events"])))
            self._capability_headers_for = initial
            self._capability_headers = PreparedFields(headers)
        return self._capability_headers

    def register_capabilities(self, event_packages=(), accept=(), supported=()):
        self.event_packages.update(event_packages)
        self.accepted_types.update(accept)
        self.option_tags.update(supported)
        self._capability_headers_for = None

    def allowed_methods(self):
        """The methods some active service serves (as an initial event):
        worked out again only when the services change."""
        initial = self.endpoint.initial_event_types()
        if initial is not self._allowed_for:
            methods = {method for method, event_type in events.REQUEST.items()
                       if event_type.id in initial}
            if "INVITE" in methods:
                methods.update(INVITE_COMPANIONS)
            self._allowed_for, self._allowed = initial, sorted(methods)
        return list(self._allowed)

    def new_request(self, method, uri, from_uri, to_uri, headers=(), body=b"",
                    content_type=None):
        request = Request(method, parse_uri(str(uri)))
        request.headers.add("Max-Forwards", "70")
        request.headers.add("From", str(NameAddr(parse_uri(str(from_uri)),
                                                 params=Params(tag=new_tag()))))
        request.headers.add("To", str(NameAddr(parse_uri(str(to_uri)))))
        request.headers.add("Call-ID", uuid.uuid4().hex)
        request.headers.add("CSeq", f"1 {method}")
        request.headers.extend(headers)
        self._set_body(request, body, content_type)
        return request

    def send_request(self, request, destination=None):
        handle = uuid.uuid4().hex
        self.endpoint.start_activity(handle)
        self._send_client(request, destination, handle, handle)
        return self.endpoint.activity_context(handle)

    def _send_client(self, request, destination, transaction_id, handle):
        """Send C{request} once the transaction commits; its answer comes on activity C{handle}."""
        if handle != transaction_id:            # sent in a dialog
            self.dialog_requests.setdefault(handle, set()).add(transaction_id)
            self.endpoint.on_abort(lambda: self._dialog_request_done(handle, transaction_id))

        def send():
            peer = destination or self._destination(request)
            if request.method in DIALOG_CREATING_METHODS and not request.contact:
                request.headers.set("Contact", f"<{self.local_contact(peer)}>")
            if request.method == "SUBSCRIBE" and request.to.tag is None:
                self.dialogs.subscription_sent(request)
            try:
                transaction = self.layer.send_request(request, peer)
            except TransportError as error:     # no listening point for its transport
                self._unsent(transaction_id, handle, request, error)
                return
            self.client_transactions[transaction_id] = transaction
            self.client_handles[transaction] = (transaction_id, handle)
            if transaction.state is State.TERMINATED:
                # Its first send failed at once, before we knew the transaction.
                self._client_failed(transaction, events.TRANSPORT_ERROR,
                                    lambda transaction_id: events.TransportErrorEvent(
                                        transaction_id, request, "could not be sent"))

        self.endpoint.after_commit(send)

    def _unsent(self, transaction_id, handle, request, error):
        """A request the layer could not even start a transaction for: its
        activity hears a transport error, and ends as a failed one's does."""
        self._fire_quietly(handle, events.TRANSPORT_ERROR,
                           events.TransportErrorEvent(transaction_id, request, str(error)))
        if handle == transaction_id:
            self.endpoint.end_activity(handle)
        else:
            self._dialog_request_done(handle, transaction_id)

    def create_dialog(self, event, durable=False):
        handle = getattr(event, "transaction", event)
        server = self.server_transactions.get(handle)
        if server is None:
            raise KeyError(f"no server transaction {handle!r} waiting for an answer")
        peer = server.peer
        dialog = Dialog.from_uas(server.request, new_tag(),
                                 local_contact=self.local_contact(peer),
                                 over_tls=peer.transport in SECURE_TRANSPORTS)
        handle = DIALOG_PREFIX + dialog.id
        self.endpoint.start_activity(handle, durable=durable)
        self.dialogs.add(dialog)
        self.dialog_peers[dialog.id] = peer
        self.dialog_identities[dialog.id] = self.server_identities.get(server.id)
        self.endpoint.on_abort(lambda: (self.dialogs.remove(dialog.id),
                                        self.dialog_peers.pop(dialog.id, None),
                                        self.dialog_identities.pop(dialog.id, None)))
        return self.endpoint.activity_context(handle)

    def dialog_snapshot(self, dialog):
        return self._dialog(dialog).snapshot()

    def restore_dialog(self, snapshot):
        dialog = self.dialogs.get(dialog_id(snapshot["call_id"], snapshot["local_tag"],
                                            snapshot["remote_tag"]))
        if dialog is None:
            dialog = Dialog.from_snapshot(snapshot)
            self.dialogs.add(dialog)
            self.dialog_identities[dialog.id] = None    # made by an admitted request, or by us
            self.endpoint.start_activity(DIALOG_PREFIX + dialog.id, durable=True)
        return self.endpoint.activity_context(DIALOG_PREFIX + dialog.id)

    def send_in_dialog(self, dialog, method, headers=(), body=b"", content_type=None):
        dialog = self._dialog(dialog)
        request = dialog.create_request(method)
        request.headers.extend(headers)
        self._set_body(request, body, content_type)
        transaction_id = f"d{next(self._dialog_request_ids)}"    # in memory only: a count
        self._send_client(request, self._dialog_destination(dialog, request), transaction_id,
                          DIALOG_PREFIX + dialog.id)
        return transaction_id

    def awaits_answers(self, dialog):
        try:
            handle = DIALOG_PREFIX + self._dialog(dialog).id
        except KeyError:
            return False            # a dialog the stack forgot has nothing waiting
        return handle in self.dialog_requests

    def end_dialog(self, dialog):
        dialog = self._dialog(dialog)

        self.endpoint.after_commit(lambda: self._forget_dialog(dialog))

    def dialog_activity(self, dialog_id):
        if self.dialogs.get(dialog_id) is None:
            raise KeyError(f"no dialog {dialog_id!r}")
        return self.endpoint.activity_context(DIALOG_PREFIX + dialog_id)

    def _forget_dialog(self, dialog):
        if self.dialogs.remove(dialog.id) is not None:
            peer = self.dialog_peers.pop(dialog.id, None)
            if peer is not None and peer.connection is not None:
                peer.connection.release(dialog.id)
            self.dialog_identities.pop(dialog.id, None)
            self.dialog_requests.pop(DIALOG_PREFIX + dialog.id, None)
            self.endpoint.end_activity(DIALOG_PREFIX + dialog.id)

    # -- helpers -------------------------------------------------------------

    def _dialog(self, dialog):
        """A dialog given as an activity context interface, a Dialog or an id."""
        if dialog is None or isinstance(dialog, Dialog):
            return dialog
        key = getattr(dialog, "key", None)      # an activity context interface: its handle
        if key is not None:
            dialog = key.split("/", 1)[1][len(DIALOG_PREFIX):]
        found = self.dialogs.get(str(dialog))
        if found is None:
            raise KeyError(f"no dialog {dialog!r}")
        return found

    @staticmethod
    def _set_body(message, body, content_type):
        if body:
            if content_type is None:
                raise ValueError("a body needs a content type")
            message.headers.set("Content-Type", content_type)
            message.body = body if isinstance(body, bytes) else body.encode("utf-8")

    def local_contact(self, peer):
        """Our Contact URI for requests that came in on C{peer}'s transport."""
        point = self.transports.listening_point(peer.transport)
        uri = SipURI(scheme="sips" if peer.transport in SECURE_TRANSPORTS else "sip",
                     host=point.host, port=point.port)
        if peer.transport != "udp":
            uri.params["transport"] = peer.transport
        return uri

    def _destination(self, request):
        """RFC 3263 in its simplest form: the first Route, else the Request-URI."""
        route = request.route
        uri = route[0].uri if route else request.uri
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        port = uri.port or (5061 if transport in SECURE_TRANSPORTS else 5060)
        return Peer(transport, uri.host.strip("[]"), port)

    def _dialog_destination(self, dialog, request):
        """
        Where a request in C{dialog} goes: over the connection its requests
        came on while it is open (the peer may be unreachable otherwise,
        behind NAT); else to the dialog's remote target.
        """
        peer = self.dialog_peers.get(dialog.id)
        if peer is not None and peer.connection is not None and not peer.connection.closed:
            return peer
        return self._destination(request)
