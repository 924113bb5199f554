"""
SIP transactions (RFC 3261 §17, with the INVITE fixes of RFC 6026) as pure
state machines.

A machine never touches a socket or a clock: each input is a method call
(a message received, the transaction user's action, a timer that fired, a
transport failure) that returns the I{effects} the caller must carry out,
in order, as plain data.  L{resource_adaptors.sip.transaction_layer}
carries them out with real transports and timers; tests drive the machines
with nothing at all.

Effects:

- L{Send}C{(message)}: hand the message to the transport (the request to
  the transaction's destination, a response back where the request came
  from);
- L{StartTimer}C{(name, delay)}: (re)arm the named timer;
- L{StopTimer}C{(name)}: disarm it (it may already have stopped);
- L{DeliverToUser}C{(message)}: pass a message up to the transaction user
  (the request that starts a server transaction, a response to a client
  transaction);
- L{SendCancel}C{(cancel)}: start a CANCEL client transaction with that
  request, to the INVITE's destination (§9.1);
- L{Timeout}: tell the user the transaction timed out;
- L{TransportFailed}C{(reason)}: tell the user the transport failed;
- L{Linger}C{(timer, delay, resend)}: the transaction's work is done; it
  stays in its state (the RFC's Completed or Confirmed) only to absorb
  retransmissions for C{delay} seconds, answering each with C{resend} (or
  with nothing), until the named timer ends it.  Nothing in it concerns the
  user any more.  The caller may keep feeding the machine, which does just
  that, or absorb on its own and let the machine go, as the layer does to
  hold as little as it can;
- L{Terminated}: the transaction is over: stop all its timers and forget
  it.

L{Linger} or L{Terminated} is always the last effect of a list.

Timers (RFC 3261 Table 4, RFC 6026): names are the RFC's letters.  Over a
reliable transport nothing is retransmitted (no A, E, G) and the lingering
states that only absorb retransmissions end at once (D, I, J, K are zero):
there is no L{Linger} then, but L{Terminated}.  D, I, J and K are given by
L{Linger}, the others by L{StartTimer}.

=====  =======================  ==============================================
name   duration                 what it does
=====  =======================  ==============================================
A      T1, doubling             INVITE client: retransmit the INVITE
B      64*T1                    INVITE client: give up (also after a CANCEL)
D      max(32 s, 64*T1)         INVITE client: absorb final responses (each
                                gets the ACK again)
E      T1, doubling up to T2    non-INVITE client: retransmit the request
F      64*T1                    non-INVITE client: give up
G      T1, doubling up to T2    INVITE server: retransmit the final response
H      64*T1                    INVITE server: give up waiting for the ACK
I      T4                       INVITE server: absorb ACKs
J      64*T1                    non-INVITE server: absorb requests (each
                                gets the final response again)
K      T4                       non-INVITE client: absorb responses
L      64*T1                    INVITE server: absorb INVITEs after a 2xx
M      64*T1                    INVITE client: accept 2xx from other forks
100    200 ms                   INVITE server: send 100 Trying if the user
                                has not answered (§17.2.1)
=====  =======================  ==============================================

Timer C belongs to proxies (§16.8), which this stack is not.

The module also builds the requests a transaction makes on its own:
L{make_ack} (§17.1.1.3) and L{make_cancel} (§9.1).  Which transaction a
message belongs to is L{resource_adaptors.sip.core.matching}'s.
"""

import enum
from dataclasses import dataclass

from resource_adaptors.sip.core.message import Headers, Request, make_response

#: How long an INVITE server transaction leaves the user to answer before
#: it sends 100 Trying itself (§17.2.1).
TRYING_DELAY = 0.2


@dataclass(frozen=True)
class TimerSettings:
    """
    The RFC 3261 timer values (§17.1.1.1), in seconds: C{t1} the round-trip
    estimate, C{t2} the cap on retransmission intervals, C{t4} how long a
    message may stay in the network.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self):
        if not self.t1 > 0:
            raise ValueError(f"T1 must be > 0, not {self.t1}")
        if not self.t2 >= self.t1:
            raise ValueError(f"T2 must be >= T1 ({self.t1}), not {self.t2}")
        if not self.t4 > 0:
            raise ValueError(f"T4 must be > 0, not {self.t4}")


class State(enum.Enum):
    """Transaction states; the RFC's names are the values."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class TransactionStateError(Exception):
    """The transaction user asked for something the state does not allow
    (a second final response, a response after the transaction ended)."""


# -- effects -------------------------------------------------------------------
#
# Plain data that nothing changes once made; not frozen all the same, which
# makes each twice as costly to build (two or three per request).


@dataclass(slots=True)
class Send:
    """Hand the message to the transport."""

    message: object


@dataclass(slots=True)
class StartTimer:
    """(Re)arm the named timer to fire after C{delay} seconds."""

    name: str
    delay: float


@dataclass(slots=True)
class StopTimer:
    """Disarm the named timer, if it runs."""

    name: str


@dataclass(slots=True)
class DeliverToUser:
    """Pass the message up to the transaction user."""

    message: object


@dataclass(slots=True)
class SendCancel:
    """Start a CANCEL client transaction with this request, to the INVITE's
    destination."""

    cancel: Request


@dataclass(slots=True)
class Timeout:
    """Tell the user the transaction timed out."""


@dataclass(slots=True)
class TransportFailed:
    """Tell the user the transport failed."""

    reason: object


@dataclass(slots=True)
class Linger:
    """Absorb retransmissions for C{delay} seconds (timer C{timer}),
    answering each with C{resend} unless it is None; see the module
    docstring."""

    timer: str
    delay: float
    resend: object


@dataclass(slots=True)
class Terminated:
    """The transaction is over: stop its timers, forget it, tell the user."""


TIMEOUT = Timeout()
TERMINATED = Terminated()


# -- requests a client transaction makes ---------------------------------------


def make_ack(invite, response):
    """The ACK of a non-2xx final response (§17.1.1.3): the INVITE's
    Request-URI, Call-ID, From, CSeq number, top Via and Route, and the
    response's To (with its tag)."""
    return _companion_request(invite, "ACK", response.headers.get("To"))


def make_cancel(invite):
    """The CANCEL of an INVITE (§9.1): the same fields as its ACK, but the
    INVITE's own To."""
    return _companion_request(invite, "CANCEL", invite.headers.get("To"))


def _companion_request(invite, method, to):
    """A request that travels in the INVITE's transaction: same top Via
    (so the same branch), Request-URI, Call-ID, From, CSeq number and
    Route."""
    original = invite.headers
    headers = Headers([("Via", original.get("Via")), ("Max-Forwards", "70"),
                       ("From", original.get("From")), ("To", to),
                       ("Call-ID", original.get("Call-ID")),
                       ("CSeq", f"{invite.cseq.number} {method}")])
    headers.copy_from(original, "Route")
    return Request(method, invite.uri, headers)


# -- the machines --------------------------------------------------------------


class _Transaction:
    """
    What the four machines share.

    @ivar request: the request that made the transaction.
    @ivar reliable: whether its transport is reliable (TCP, TLS,
        WebSocket): then nothing is retransmitted and nothing lingers.
    @ivar state: a L{State}.
    """

    __slots__ = ("request", "reliable", "timers", "state", "_interval")

    #: The state a machine starts in.
    INITIAL_STATE = None

    def __init__(self, request, reliable, timers):
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = self.INITIAL_STATE
        # The current retransmission interval of timer A, E or G.
        self._interval = timers.t1

    def transport_failed(self, reason):
        """The transport could not send what this transaction gave it."""
        if self.state is State.TERMINATED:
            return []
        self.state = State.TERMINATED
        return [TransportFailed(reason), TERMINATED]

    def fall_back_to_udp(self):
        """
        For client machines: the request could not be sent over the TCP
        connection it was moved to for its size, so it goes over UDP after
        all (RFC 3261 §18.1.1), from the start, retransmissions included.
        Only before any response came; the state and a pending C{cancel()}
        are kept.
        """
        self.reliable = False
        self._interval = self.timers.t1
        return self.start()

    def _linger(self, effects, timer, delay, resend):
        """
        Stay in the current state for C{delay} (timer C{timer}) to absorb
        retransmissions, answering them with C{resend} (or nothing); over a
        reliable transport, where none come, end now.
        """
        if self.reliable:
            self.state = State.TERMINATED
            effects.append(TERMINATED)
        else:
            effects.append(Linger(timer, delay, resend))
        return effects

    def _terminate(self):
        self.state = State.TERMINATED
        return [TERMINATED]

    def _time_out(self):
        self.state = State.TERMINATED
        return [TIMEOUT, TERMINATED]

    def _backed_off(self):
        """The next retransmission interval: doubled, up to T2."""
        self._interval = min(2 * self._interval, self.timers.t2)
        return self._interval


class InviteClient(_Transaction):
    """
    The INVITE client transaction (§17.1.1, RFC 6026 §8.4): Calling,
    Proceeding, then Completed (a non-2xx, acknowledged here) or Accepted (a
    2xx, which the user acknowledges; more 2xx from other forks may follow).
    """

    __slots__ = ("_ack", "_cancelling")

    INITIAL_STATE = State.CALLING

    def __init__(self, request, reliable, timers):
        super().__init__(request, reliable, timers)
        self._ack = None
        # The user called cancel(): the CANCEL goes out once a provisional
        # response shows the INVITE arrived (§9.1).
        self._cancelling = False

    def start(self):
        effects = [Send(self.request)]
        if not self.reliable:
            effects.append(StartTimer("A", self._interval))
        effects.append(StartTimer("B", 64 * self.timers.t1))
        return effects

    def receive_response(self, response):
        state = self.state
        status = response.status
        if state is State.CALLING or state is State.PROCEEDING:
            if status < 200:
                return self._provisional(response)
            if status < 300:
                return self._accepted(response)
            return self._rejected(response)
        if state is State.COMPLETED and status >= 300:
            return [Send(self._ack)]
        if state is State.ACCEPTED and 200 <= status < 300:
            return [DeliverToUser(response)]
        return []

    def cancel(self):
        """
        The user wants the INVITE cancelled: send a CANCEL now if a
        provisional response came, when one comes if not, never if a final
        response came.  Timer B then bounds the wait for the final response.
        """
        if self._cancelling:
            return []
        self._cancelling = True
        return self._send_cancel() if self.state is State.PROCEEDING else []

    def timer_fired(self, name):
        state = self.state
        if name == "A" and state is State.CALLING:
            self._interval *= 2   # no T2 cap for INVITE (§17.1.1.2)
            return [Send(self.request), StartTimer("A", self._interval)]
        if name == "B" and (state is State.CALLING or state is State.PROCEEDING):
            return self._time_out()
        if (name == "D" and state is State.COMPLETED) or (name == "M" and state is State.ACCEPTED):
            return self._terminate()
        return []

    def _send_cancel(self):
        return [SendCancel(make_cancel(self.request)), StartTimer("B", 64 * self.timers.t1)]

    def _stop_waiting(self):
        """Stop the timers that run while no final response came."""
        if self.state is State.CALLING:
            return [StopTimer("B")] if self.reliable else [StopTimer("A"), StopTimer("B")]
        return [StopTimer("B")] if self._cancelling else []

    def _provisional(self, response):
        effects = []
        if self.state is State.CALLING:
            effects = self._stop_waiting()
            self.state = State.PROCEEDING
            if self._cancelling:
                effects += self._send_cancel()
        effects.append(DeliverToUser(response))
        return effects

    def _accepted(self, response):
        effects = self._stop_waiting()
        self.state = State.ACCEPTED
        effects += [StartTimer("M", 64 * self.timers.t1), DeliverToUser(response)]
        return effects

    def _rejected(self, response):
        effects = self._stop_waiting()
        self.state = State.COMPLETED
        self._ack = make_ack(self.request, response)
        effects += [Send(self._ack), DeliverToUser(response)]
        return self._linger(effects, "D", max(32.0, 64 * self.timers.t1), self._ack)


class NonInviteClient(_Transaction):
    """The non-INVITE client transaction (§17.1.2): Trying, Proceeding,
    Completed."""

    __slots__ = ()

    INITIAL_STATE = State.TRYING

    def start(self):
        effects = [Send(self.request)]
        if not self.reliable:
            effects.append(StartTimer("E", self._interval))
        effects.append(StartTimer("F", 64 * self.timers.t1))
        return effects

    def receive_response(self, response):
        if self.state is not State.TRYING and self.state is not State.PROCEEDING:
            return []
        if response.status < 200:
            self.state = State.PROCEEDING
            return [DeliverToUser(response)]
        self.state = State.COMPLETED
        effects = [StopTimer("F")] if self.reliable else [StopTimer("E"), StopTimer("F")]
        effects.append(DeliverToUser(response))
        return self._linger(effects, "K", self.timers.t4, None)

    def timer_fired(self, name):
        state = self.state
        if name == "E" and state is State.TRYING:
            return [Send(self.request), StartTimer("E", self._backed_off())]
        if name == "E" and state is State.PROCEEDING:
            return [Send(self.request), StartTimer("E", self.timers.t2)]
        if name == "F" and (state is State.TRYING or state is State.PROCEEDING):
            return self._time_out()
        if name == "K" and state is State.COMPLETED:
            return self._terminate()
        return []


class _ServerTransaction(_Transaction):
    """
    What both server machines share.

    @ivar response: the last response sent, which a retransmitted request
        gets again; None until there is one.
    """

    __slots__ = ("response",)

    def __init__(self, request, reliable, timers):
        super().__init__(request, reliable, timers)
        self.response = None

    def _refuse(self, response):
        raise TransactionStateError(
            f"cannot send {response.status} on a {self.request.method} transaction in state "
            f"{self.state.value}")


class InviteServer(_ServerTransaction):
    """
    The INVITE server transaction (§17.2.1, RFC 6026 §8.5-8.7): Proceeding,
    then Completed and Confirmed (a non-2xx, retransmitted here until the
    ACK) or Accepted (a 2xx, which the user retransmits).
    """

    __slots__ = ()

    INITIAL_STATE = State.PROCEEDING

    @property
    def to_tag(self):
        """The To tag of the last response sent, or None: a CANCEL's 200
        and 487 reuse it (§9.2); an RFC 2543 ACK must carry it (§17.2.3)."""
        return None if self.response is None else self.response.to.tag

    def start(self):
        return [StartTimer("100", TRYING_DELAY), DeliverToUser(self.request)]

    def receive_request(self, request):
        """
        The INVITE again, or the ACK of a non-2xx final response.  (The ACK
        of a 2xx is no part of the transaction: the caller hands it to the
        user, even when it matches one in Accepted, RFC 6026 §7.1.)
        """
        state = self.state
        if request.method == "ACK":
            if state is not State.COMPLETED:
                return []
            self.state = State.CONFIRMED
            effects = [StopTimer("H")] if self.reliable else [StopTimer("G"), StopTimer("H")]
            return self._linger(effects, "I", self.timers.t4, None)
        if state is State.COMPLETED or (state is State.PROCEEDING and self.response is not None):
            return [Send(self.response)]
        return []

    def respond(self, response):
        state = self.state
        status = response.status
        if state is State.ACCEPTED and 200 <= status < 300:
            return [Send(response)]   # the user retransmits its 2xx (§13.3.1.4)
        if state is not State.PROCEEDING:
            self._refuse(response)
        effects = [StopTimer("100")] if self.response is None else []
        self.response = response
        effects.append(Send(response))
        if status < 200:
            return effects
        t1 = self.timers.t1
        if status < 300:
            self.state = State.ACCEPTED
            effects.append(StartTimer("L", 64 * t1))
            return effects
        self.state = State.COMPLETED
        if not self.reliable:
            effects.append(StartTimer("G", t1))
        effects.append(StartTimer("H", 64 * t1))
        return effects

    def timer_fired(self, name):
        state = self.state
        if name == "100" and state is State.PROCEEDING and self.response is None:
            self.response = make_response(self.request, 100)
            return [Send(self.response)]
        if name == "G" and state is State.COMPLETED:
            return [Send(self.response), StartTimer("G", self._backed_off())]
        if name == "H" and state is State.COMPLETED:
            return self._time_out()
        if (name == "I" and state is State.CONFIRMED) or (name == "L" and state is State.ACCEPTED):
            return self._terminate()
        return []


class NonInviteServer(_ServerTransaction):
    """The non-INVITE server transaction (§17.2.2): Trying, Proceeding,
    Completed."""

    __slots__ = ()

    INITIAL_STATE = State.TRYING

    def start(self):
        return [DeliverToUser(self.request)]

    def receive_request(self, request):
        """The request again: it gets the last response again, if any."""
        return [] if self.response is None else [Send(self.response)]

    def respond(self, response):
        state = self.state
        if state is not State.TRYING and state is not State.PROCEEDING:
            self._refuse(response)
        self.response = response
        if response.status < 200:
            self.state = State.PROCEEDING
            return [Send(response)]
        self.state = State.COMPLETED
        return self._linger([Send(response)], "J", 64 * self.timers.t1, response)

    def timer_fired(self, name):
        if name == "J" and self.state is State.COMPLETED:
            return self._terminate()
        return []
