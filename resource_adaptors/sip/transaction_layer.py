"""
The transaction layer: runs the pure machines of
L{resource_adaptors.sip.core.transaction} on real transports and timers, keeps
the table of live transactions, and tells the transaction user (the
resource adaptor) what it must know.  (Why one module of some 680 lines:
it is one table of live transactions and the code that feeds their
machines and carries out their effects, which all read and write that
table; what stands alone has modules of its own: the machines, matching,
the lingering records, the transports.  A sixth of it is this docstring,
the layer's contract told whole.)

API::

    layer = TransactionLayer(clock, transports, user, timers=TimerSettings(),
                             max_server_transactions=None, admission=None)

- C{clock} is an C{IReactorTime} (the reactor, or a C{task.Clock} in
  tests); C{transports} an L{resource_adaptors.sip.interfaces.ITransports}
  (tests give a part of one: C{prepare_request}, C{prepare_response},
  C{send}, C{send_response}, C{via_for}, C{listening_point} and
  C{receiver}): the layer makes itself its receiver, an
  L{resource_adaptors.sip.interfaces.ITransportReceiver}.  C{user}
  provides L{resource_adaptors.sip.interfaces.ITransactionUser}.
- C{layer.message_received(message, peer, waited=0.0)} and
  C{layer.transport_error(peer, reason)}: what the transports call;
  C{waited} is how long the message waited before it was read, when the
  transport knows (seconds).
- C{admission}, if given, is asked about each new request but CANCEL
  before any transaction is made for it: C{admission(request, waited)}
  returns C{None} to take it in, or (status, reason, headers) to answer it
  so, statelessly (L{resource_adaptors.sip.admission.Door.refusal}).
- C{layer.send_request(request, destination) -> ClientTransaction}: send a
  request statefully to a L{Peer}.  A request without Via gets ours, with
  a new branch; one with a Via must carry an RFC 3261 branch of its own.
  ACKs have no transaction: send them with the transports.
- C{layer.stop()}: cancel every timer and forget every transaction, without
  telling the user.  A message received after it would start a new
  transaction: stop the transports in the same breath.
- C{len(layer)}: the number of transactions it holds (lingering ones
  included).

Transactions, as the user sees them (L{ServerTransaction},
L{ClientTransaction}): C{id} (a str unique in the process, fit for an
activity handle), C{request}, C{peer} (where the request came from, or
where it goes), C{state} (a L{State}); C{server.respond(response)};
C{client.cancel()} for an INVITE.  C{respond} raises
L{TransactionStateError} when the state allows no such response (a second
final response, one after the transaction ended).

What the layer does on its own:

- absorbs retransmitted requests and responses, resends the last response,
  retransmits requests and final responses over UDP, acknowledges non-2xx
  final responses to our INVITEs, and sends 100 Trying for an INVITE the
  user leaves unanswered for 200 ms;
- answers a request whose CSeq method is not its method with a 400;
- answers a new request with a 503 (Retry-After) and no transaction while it
  holds C{max_server_transactions} server transactions (lingering ones
  included): each costs memory for 32 s over UDP, and their number is up to
  the peers;
- answers a CANCEL (§9.2): 481 if it matches no INVITE server transaction,
  else 200, and if that INVITE has no final response yet, 487 to it, then
  C{user.cancel_received}.  CANCELs are not given to C{request_received};
- runs the CANCEL client transaction that C{cancel()} starts;
- sends a request larger than L{MAX_UDP_REQUEST} bytes that would go over
  UDP over TCP instead, to the same host and port, and back over UDP if
  that connection cannot be made (RFC 3261 §18.1.1, see
  L{TransactionLayer.transport_for_size}).

Every refusal (4xx to 6xx) a server transaction or the layer itself sends
is logged where it is made ready to go, with the request it answers
(L{message_log.refused}): the transports, below, see only the response.

The transactions the layer runs for itself (a CANCEL it answers, a CANCEL
it sends) are never shown to the user: their outcome shows on the INVITE.
Callbacks may come re-entrantly: a C{respond()} made inside
C{request_received} calls C{transaction_terminated} before it returns when
the answer is final and the transaction has nothing more for the user.

Lingering: once a transaction's work is done, RFC 3261 keeps it a while
(Completed or Confirmed) only to absorb retransmissions: a UDP server holds
each answered request 32 s (timer J), tens of thousands of them under load.
The user is told C{transaction_terminated} as it starts to linger (the
handle's C{state} stays what the RFC says, Completed or Confirmed), and the
layer keeps of it only a small record with the message to send again (the
last response, or the ACK of a non-2xx to our INVITE) as the transports
prepared it (its bytes and route), not the request, the machine, the
handle nor any parsed message.  A record (L{lingering}) is a plain tuple
of numbers, strings and that prepared message, which over UDP is one too:
Python's garbage collector untracks such tuples, so the 32 s of answered
requests a loaded UDP server keeps (a quarter of a million at 8,000 a
second) cost it no work, where objects of ours would be walked by every
collection and stall the server for tenths of a second.  A resend that fails is only
logged then.

Transport errors: a send that raises L{TransportError} fails its
transaction once the effects at hand are carried out.  One reported later
by C{transport_error(destination, reason)} fails the client transactions
to that destination that have had no response yet.  A server transaction
learns only of errors raised at once; the others end it by its timers.
Either kind sends a request moved to TCP for its size over UDP instead,
once, rather than failing it.

Timers: a live transaction arms one C{clock.callLater} per running timer,
cancelled when the timer stops or the transaction ends.  Lingering records
all wait for the same time per kind (D, I, J, K), so they expire in the
order they started: one FIFO per duration with one C{callLater} for its
head.  The hot path (a non-INVITE request answered at once) thus arms no
timer of its own: over UDP it adds one entry to the J FIFO, over reliable
transports nothing.
"""

import itertools

from twisted.logger import Logger

from resource_adaptors.sip import lingering, message_log
from resource_adaptors.sip.core.message import Response, make_response
from resource_adaptors.sip.core.randomness import random_hex
from resource_adaptors.sip.core.matching import (
    client_key, is_rfc3261_branch, new_branch, rfc2543_key, server_key)
from resource_adaptors.sip.core.transaction import (
    DeliverToUser, InviteClient, InviteServer, Linger, NonInviteClient, NonInviteServer, Send,
    SendCancel, StartTimer, State, StopTimer, Terminated, TimerSettings, Timeout,
    TransactionStateError, TransportFailed)
from resource_adaptors.sip.core.routing import Peer, TransportError
from resource_adaptors.sip.lingering import LingerQueue, is_record
from slee.log_limits import RateLimitedWarning
from slee.trace import log_observer

log = Logger(namespace="resource_adaptors.sip.transaction_layer", observer=log_observer)

__all__ = ["TransactionLayer", "ServerTransaction", "ClientTransaction",
           "State", "TimerSettings", "TransactionStateError", "MAX_UDP_REQUEST"]

#: The largest request sent over UDP, in bytes, when the path MTU is
#: unknown, as it always is here (RFC 3261 §18.1.1).
MAX_UDP_REQUEST = 1300


class Transaction:
    """
    A live transaction: a machine of L{resource_adaptors.sip.core.transaction}
    and the timers and table entry that carry out its effects.

    @ivar id: unique in the process, usable as an activity handle.
    @ivar peer: where the request came from (server) or goes (client).
    """

    __slots__ = ("id", "peer", "_layer", "_user", "_machine", "_key", "_timers", "_failure",
                 "_done", "_sent_message", "_sent")

    def __init__(self, layer, user, machine, peer, key):
        self.id = layer._new_id()
        self.peer = peer
        self._layer = layer
        # The layer's user, or _UNHEARD for the transactions the layer runs
        # for itself.
        self._user = user
        self._machine = machine
        self._key = key
        self._timers = {}
        # A TransportError raised by a send, handled once the effects at
        # hand are carried out (they were decided before it).
        self._failure = None
        self._done = False
        # The last message sent, and as the transports prepared it: a
        # retransmission is sent as it was prepared.
        self._sent_message = None
        self._sent = None

    @property
    def request(self):
        return self._machine.request

    @property
    def state(self):
        return self._machine.state

    def __repr__(self):
        return f"<{type(self).__name__} {self.id} {self.request.method} {self.state.value}>"

    def _execute(self, effects):
        for effect in effects:
            if self._done:
                return   # a callback ended the transaction (or stopped the layer)
            # The effects of every request first: deliver, send, linger.
            kind = type(effect)
            if kind is DeliverToUser:
                self._deliver(effect.message)
            elif kind is Send:
                self._send(effect.message)
            elif kind is Linger:
                self._linger(effect)
            elif kind is StartTimer:
                self._start_timer(effect.name, effect.delay)
            elif kind is StopTimer:
                call = self._timers.pop(effect.name, None)
                if call is not None:
                    call.cancel()
            elif kind is Terminated:
                self._end()
            elif kind is Timeout:
                self._user.transaction_timeout(self)
            elif kind is TransportFailed:
                self._user.transaction_error(self, effect.reason)
            elif kind is SendCancel:
                self._layer._start_client(effect.cancel, self.peer, _UNHEARD)
        if self._failure is not None and not self._done:
            failure, self._failure = self._failure, None
            self._fail(failure)

    def _send(self, message):
        try:
            self._layer.transports.send(self._prepared(message))
        except TransportError as error:
            self._failure = error

    def _prepared(self, message):
        """@return: C{message} as the transports prepared it, once."""
        if self._sent_message is not message:
            self._sent = self._prepare(message)
            self._sent_message = message
        return self._sent

    def _start_timer(self, name, delay):
        running = self._timers.get(name)
        if running is not None:
            running.cancel()
        self._timers[name] = self._layer.clock.callLater(delay, self._timer_fired, name)

    def _timer_fired(self, name):
        del self._timers[name]
        self._execute(self._machine.timer_fired(name))

    def _fail(self, reason):
        self._execute(self._machine.transport_failed(reason))

    def _end(self):
        self._abandon()
        self._forget()
        self._user.transaction_terminated(self)

    def _linger(self, effect):
        """Leave a small record in the table in our stead (see the module
        docstring), and end."""
        if self._failure is not None:
            return   # what went before failed: the failure ends the transaction instead
        self._abandon()
        self._forget()
        try:
            resend = None if effect.resend is None else self._prepared(effect.resend)
        except TransportError as error:
            log.debug("{transaction} lingers with nothing to send again: {error}",
                      transaction=self, error=error)
            resend = None
        layer = self._layer
        deadline = layer.clock.seconds() + effect.delay
        table = self._table()
        table[self._key] = lingering.record(deadline, self._machine.state is State.ACCEPTED,
                                            self._lingering_to_tag(), resend)
        layer._linger_queue(effect.delay, table).add(deadline, self._key)
        self._user.transaction_terminated(self)

    def _abandon(self):
        """Stop for good: no timer, no effect any more."""
        self._done = True
        for call in self._timers.values():
            call.cancel()
        self._timers.clear()


class ServerTransaction(Transaction):
    """A server transaction: the user answers its request with
    L{respond}."""

    __slots__ = ()

    def respond(self, response):
        """
        Send a response to the request: provisional ones first if any, then
        one final response (an INVITE's 2xx may be sent again).

        @raise TransactionStateError: if the state allows no such response.
        """
        self._execute(self._machine.respond(response))

    @property
    def to_tag(self):
        """For an INVITE: the To tag of the last response sent, or None."""
        return self._machine.to_tag

    def _receive(self, request):
        self._execute(self._machine.receive_request(request))

    def _table(self):
        return self._layer._servers

    def _lingering_to_tag(self):
        # Only an INVITE's To tag is asked for (CANCEL, RFC 2543 ACKs).
        return self._machine.to_tag if self.request.method == "INVITE" else None

    def _prepare(self, response):
        message_log.refused(self.request, response, self.peer)
        return self._layer.transports.prepare_response(response, self.peer)

    def _deliver(self, request):
        self._user.request_received(self, request)

    def _forget(self):
        del self._table()[self._key]


class ClientTransaction(Transaction):
    """A client transaction: the user may L{cancel} an INVITE."""

    __slots__ = ("_udp_fallback",)

    def __init__(self, layer, user, machine, peer, key, udp_fallback=None):
        super().__init__(layer, user, machine, peer, key)
        # The UDP destination of a request moved to TCP for its size
        # (§18.1.1), until the request goes over UDP after all.
        self._udp_fallback = udp_fallback

    def cancel(self):
        """
        Cancel this INVITE (§9.1): a CANCEL goes to the same destination
        once a provisional response shows the INVITE arrived, and not at
        all if a final response came.  The INVITE then ends with its final
        response (normally 487), or a timeout 64*T1 after the CANCEL.
        """
        if self.request.method != "INVITE":
            raise TransactionStateError(f"cannot cancel a {self.request.method} transaction")
        self._execute(self._machine.cancel())

    def _receive(self, response):
        self._execute(self._machine.receive_response(response))

    def _table(self):
        return self._layer._clients

    def _lingering_to_tag(self):
        return None

    def _prepare(self, request):
        return self._layer.transports.prepare_request(request, self.peer)

    def _deliver(self, response):
        self._user.response_received(self, response)

    def _fail(self, reason):
        """
        A request moved to TCP for its size that could not be sent there
        goes over UDP after all (RFC 3261 §18.1.1 says the element SHOULD
        retry over UDP); any other failure fails the transaction.
        """
        udp, self._udp_fallback = self._udp_fallback, None
        if udp is None or self.state not in (State.CALLING, State.TRYING):
            super()._fail(reason)
            return
        log.info("{transaction}: sending it over UDP, TCP failed: {reason}",
                 transaction=self, reason=reason)
        self._stop_waiting()
        self.peer = udp
        self._layer._by_destination.setdefault(udp, set()).add(self)
        self._sent_message = self._sent = None
        self._execute(self._machine.fall_back_to_udp())

    def _forget(self):
        del self._layer._clients[self._key]
        self._stop_waiting()

    def _stop_waiting(self):
        """Leave the transactions sending to our destination, which its
        transport errors fail."""
        by_destination = self._layer._by_destination
        waiting = by_destination[self.peer]
        waiting.discard(self)
        if not waiting:
            del by_destination[self.peer]


def _to_tag(entry):
    """The To tag of an INVITE server, live or lingering."""
    return lingering.to_tag(entry) if is_record(entry) else entry.to_tag


def _leaves_acks_to_the_user(entry):
    """Whether an INVITE server passes the ACKs it matches on (RFC 6026 §7.1)."""
    return lingering.accepted(entry) if is_record(entry) else entry.state is State.ACCEPTED


class _Unheard:
    """
    The user of the transactions the layer runs for itself: what becomes
    of a CANCEL shows on its INVITE, so it is only logged.
    """

    def response_received(self, transaction, response):
        log.debug("{id}: {method} answered {status}", id=transaction.id,
                  method=transaction.request.method, status=response.status)

    def transaction_timeout(self, transaction):
        log.debug("{id}: {method} timed out", id=transaction.id,
                  method=transaction.request.method)

    def transaction_error(self, transaction, reason):
        log.debug("{id}: {method} failed: {reason}", id=transaction.id,
                  method=transaction.request.method, reason=reason)

    def transaction_terminated(self, transaction):
        pass


_UNHEARD = _Unheard()


def _new_tag():
    """A To tag for the answers the layer makes up (400, 481, 487)."""
    return random_hex(8)


class TransactionLayer:
    """See the module docstring."""

    #: Seconds a peer is asked to wait when the table is full.
    RETRY_AFTER_WHEN_FULL = 5

    def __init__(self, clock, transports, user, timers=TimerSettings(),
                 max_server_transactions=None, admission=None):
        self.clock = clock
        self.transports = transports
        self.user = user
        self.timers = timers
        self.max_server_transactions = max_server_transactions
        self.admission = admission
        self._full_warning = RateLimitedWarning(clock)
        self._bad_ack_warning = RateLimitedWarning(clock)
        self._warned_no_tcp = False
        transports.receiver = self
        # server_key -> ServerTransaction or lingering record; client_key ->
        # ClientTransaction or lingering record.
        self._servers = {}
        self._clients = {}
        # Peer -> the client transactions sending there, for the transport
        # errors reported after the send.
        self._by_destination = {}
        # (lingering duration, table is _servers) -> its _LingerQueue.
        self._linger_queues = {}
        # Ids: a random prefix per layer, so that two layers (two RA
        # entities) never share one, and a counter.
        self._id_prefix = random_hex(4) + "-"
        self._ids = itertools.count(1)

    def __len__(self):
        return len(self._servers) + len(self._clients)

    def holds(self, key):
        """Whether a server transaction (or its lingering record) has this
        key (L{resource_adaptors.sip.core.transaction.server_key})."""
        return key in self._servers

    def _new_id(self):
        return f"{self._id_prefix}{next(self._ids)}"

    def _linger_queue(self, delay, table):
        which = (delay, table is self._servers)
        queue = self._linger_queues.get(which)
        if queue is None:
            queue = self._linger_queues[which] = LingerQueue(self.clock, delay, table)
        return queue

    def _receive(self, entry, message):
        """A message for a live transaction, or a retransmission for a
        lingering one: its answer, if any, is sent again."""
        if not is_record(entry):
            entry._receive(message)
            return
        resend = lingering.resend(entry)
        if resend is None:
            return
        try:
            self.transports.send(resend)
        except TransportError as error:
            log.debug("could not answer a retransmitted {method} again: {error}",
                      method=message.cseq.method, error=error)

    # -- from the transports -------------------------------------------------

    def message_received(self, message, peer, waited=0.0):
        if isinstance(message, Response):
            self._response_received(message, peer)
        elif message.method == "ACK":
            self._ack_received(message, peer)
        else:
            self._request_received(message, peer, waited)

    def transport_error(self, peer, reason):
        """A message to C{peer} was not sent after all: fail the client
        transactions that sent there and have had no answer."""
        waiting = [transaction for transaction in self._by_destination.get(peer, ())
                   if transaction.state is State.CALLING or transaction.state is State.TRYING]
        if not waiting:
            log.debug("transport error for {peer}, no transaction waiting: {reason}",
                      peer=peer, reason=reason)
        for transaction in waiting:
            transaction._fail(reason)

    def _response_received(self, response, peer):
        entry = self._clients.get(client_key(response))
        if entry is None:
            self.user.stray_response(response, peer)
        else:
            self._receive(entry, response)

    def _ack_received(self, ack, peer):
        """
        An ACK belongs to the INVITE server transaction it matches while
        that one waits for it; otherwise (the ACK of a 2xx) to the user,
        RFC 6026 §7.1.
        """
        if ack.cseq.method != "ACK":
            self._bad_ack_warning(log, "dropped an ACK with CSeq method {method} from {peer}",
                                  method=ack.cseq.method, peer=peer)
            return
        entry = self._acked(ack)
        if entry is None or _leaves_acks_to_the_user(entry):
            self.user.stray_ack(ack, peer)
        else:
            self._receive(entry, ack)

    def _acked(self, ack):
        """The INVITE server transaction (or lingering record) an ACK
        matches (§17.2.3), or None."""
        entry = self._servers.get(server_key(ack, "INVITE"))
        if entry is None and not is_rfc3261_branch(ack.via[0].branch):
            # RFC 2543: the INVITE had no To tag; its response gave the one
            # the ACK carries.
            entry = self._servers.get(rfc2543_key(ack, "INVITE", None))
            if entry is not None and _to_tag(entry) != ack.to.tag:
                return None
        return entry

    def _request_received(self, request, peer, waited):
        method = request.method
        if request.cseq.method != method:
            self._answer_statelessly(request, peer, 400,
                                     "CSeq method does not match the request method")
            return
        key = server_key(request, method)
        entry = self._servers.get(key)
        if entry is not None:
            self._receive(entry, request)
            return
        cancelling = method == "CANCEL"   # the layer answers CANCELs itself
        if self.admission is not None and not cancelling:
            refusal = self.admission(request, waited)
            if refusal is not None:
                self._answer_statelessly(request, peer, *refusal, logged=False)
                return
        limit = self.max_server_transactions
        if limit is not None and len(self._servers) >= limit:
            self._full_warning(log, "{limit} server transactions held (max-transactions): "
                               "answering new requests 503", limit=limit)
            self._answer_statelessly(request, peer, 503, "Service Unavailable",
                                     [("Retry-After", str(self.RETRY_AFTER_WHEN_FULL))])
            return
        machine_class = InviteServer if method == "INVITE" else NonInviteServer
        transaction = ServerTransaction(
            self, _UNHEARD if cancelling else self.user,
            machine_class(request, peer.reliable, self.timers), peer, key)
        self._servers[key] = transaction
        if cancelling:
            self._cancel(transaction)
        else:
            transaction._execute(transaction._machine.start())

    def _cancel(self, cancel):
        """Answer a CANCEL, and cancel the INVITE it matches (§9.2)."""
        request = cancel.request
        invite = self._servers.get(server_key(request, "INVITE"))
        if invite is None:
            cancel.respond(make_response(request, 481, to_tag=_new_tag()))
            return
        # The 200 and the 487 carry the tag the INVITE's answers had, if any.
        tag = _to_tag(invite) or _new_tag()
        cancel.respond(make_response(request, 200, to_tag=tag))
        if not is_record(invite) and invite.state is State.PROCEEDING:
            invite.respond(make_response(invite.request, 487, to_tag=tag))
            self.user.cancel_received(invite, request)

    def _answer_statelessly(self, request, peer, status, reason, headers=(), logged=True):
        """Answer without a transaction; C{logged} false leaves the refusal out of
        the refusals' log (the door sums its own up)."""
        response = make_response(request, status, reason, to_tag=_new_tag())
        response.headers.extend(headers)
        if logged:
            message_log.refused(request, response, peer)
        try:
            self.transports.send_response(response, peer)
        except TransportError as error:
            log.debug("could not send the {status}: {error}", status=status, error=error)

    # -- from the user -------------------------------------------------------

    def send_request(self, request, destination):
        """
        Send a request statefully to C{destination} (a L{Peer}), or over
        TCP when it is too large for UDP (L{transport_for_size}): the
        transaction's C{peer} says where it went.

        @return: its L{ClientTransaction}.
        @raise ValueError: for an ACK, or a request whose top Via has no
            RFC 3261 branch, or one whose branch is in use.
        @raise TransportError: when there is no listening point for the
            destination's transport (to build our Via).
        """
        if request.method == "ACK":
            raise ValueError("an ACK has no transaction: send it with the transports")
        vias = request.via
        if not vias:
            request.via = [self.transports.via_for(destination.transport, new_branch())]
        elif not is_rfc3261_branch(vias[0].branch):
            raise ValueError(f"the top Via needs a branch starting with z9hG4bK: {vias[0]}")
        sized = self.transport_for_size(request, destination)
        return self._start_client(request, sized, self.user,
                                  udp_fallback=None if sized is destination else destination)

    def transport_for_size(self, request, destination):
        """
        Where a request goes, by its size (RFC 3261 §18.1.1): one larger
        than L{MAX_UDP_REQUEST} bytes (the path MTU is unknown) MUST NOT go
        over UDP but over a congestion controlled transport.  It goes over
        TCP to the same host and port, and the transports make its top Via
        say TCP; with no TCP listening point it stays on UDP (a warning is
        logged once).  Its transaction follows TCP rules (no
        retransmissions, no lingering).

        @return: C{destination}, or the TCP L{Peer} at its address.
        """
        if destination.transport != "udp" or len(bytes(request)) <= MAX_UDP_REQUEST:
            return destination
        try:
            self.transports.listening_point("tcp")
        except TransportError:
            if not self._warned_no_tcp:
                self._warned_no_tcp = True
                log.warn("sending requests larger than {limit} bytes over UDP: RFC 3261 "
                         "§18.1.1 wants TCP, where this stack does not listen",
                         limit=MAX_UDP_REQUEST)
            return destination
        return Peer("tcp", destination.host, destination.port)

    def _start_client(self, request, destination, user, udp_fallback=None):
        key = client_key(request)
        if key in self._clients:
            raise ValueError(f"branch {key[0]} is in use by a {key[1]} transaction")
        machine_class = InviteClient if request.method == "INVITE" else NonInviteClient
        transaction = ClientTransaction(
            self, user, machine_class(request, destination.reliable, self.timers),
            destination, key, udp_fallback)
        self._clients[key] = transaction
        waiting = self._by_destination.get(destination)
        if waiting is None:
            waiting = self._by_destination[destination] = set()
        waiting.add(transaction)
        transaction._execute(transaction._machine.start())
        return transaction

    def stop(self):
        """Cancel every timer and forget every transaction, silently."""
        for transaction in [*self._servers.values(), *self._clients.values()]:
            if not is_record(transaction):
                transaction._abandon()
        for queue in self._linger_queues.values():
            queue.stop()
        self._servers.clear()
        self._clients.clear()
        self._by_destination.clear()
