"""
The registrar (RFC 3261 §10.3, RFC 3327): REGISTER binds an address of
record to the contacts where its user is reached.

One L{RegistrarSbb} entity per address of record (its convergence name)
takes each REGISTER for it, applies the rules of
L{sbbs.registrar.bindings} to the bindings in the shared data of
L{sbbs.registrar.location}, and answers 200 with every current binding
and the seconds it has left.  While the address has bindings the entity
stays attached to its named activity C{registrar:<aor>}, where one timer,
set for the earliest expiry and moved when that changes, removes the
bindings that expired: one timer per user, however many devices.  When
none is left the entity lets the activity go, and goes.  Everything is in
the database: bindings and timers survive a restart.

Who registers is the SIP RA's to say (L{registrant}); a user may bind only
its own address of record, an administrator any.

It needs the SIP RA entity named C{sip}.
"""

from resource_adaptors.sip.events import REQUEST
from resource_adaptors.sip.core.syntax import ParseError
from sbbs.registrar.bindings import (
    Limits, Refusal, contact_fields, live, next_expiry, read_register, register)
from sbbs.registrar.location import (
    announce, current_bindings, store_bindings, stored_bindings)
from sbbs.sipevent.addresses import address_of_record, identity_address
from sbbs.sipevent.subscription import ExpiryPolicy
from slee.events import TIMER
from slee.resources import Property
from slee.sbb import CmpField, Sbb, handler


def _seconds(value):
    return None if 0 < value <= 2 ** 31 else f"expected seconds above 0, not {value}"


def _count(value):
    return None if 0 < value <= 1000 else f"expected 1 to 1000, not {value}"


def registrant(event):
    """
    Who sends a REGISTER, as the SIP RA decided at the door (it
    authenticates REGISTER itself): the event's C{identity}, a
    L{resource_adaptors.auth.users.User} whose XUI is its address of
    record, and whose C{admin} lets it register for anyone.

    @return: (the registrant's address of record, or None for an XUI that
        is no URI; whether it is an administrator).
    """
    identity = event.identity
    if identity is None:                # none was decided: nobody registers
        return None, False
    try:
        return identity_address(identity), identity.admin
    except ParseError:
        return None, False


class RegistrarSbb(Sbb):
    """The bindings of one address of record; see the module docstring."""

    #: min-expires: the shortest binding (423 and Min-Expires below it);
    #: max-expires: the longest (longer ones are cut down); max-contacts:
    #: the bindings one address of record may have.
    environment = {
        "min-expires": Property(int, 60, _seconds),
        "max-expires": Property(int, 86400, _seconds),
        "max-contacts": Property(int, 20, _count),
    }

    aor = CmpField()
    #: The id of the expiry timer, and when it falls due.
    timer = CmpField()
    due = CmpField()

    def _by_aor(self, event_type, event, aci, address):
        """The convergence name: the address of record of the To."""
        return address_of_record(event.request.to.uri)

    @handler(REQUEST["REGISTER"], initial=True, select=(), selector="_by_aor")
    def on_register(self, event, aci):
        aci.detach(self.context.sbb_local_object)       # the server transaction's
        sip = self.context.resource_adaptor("sip")
        request = event.request
        self.aor = aor = address_of_record(request.to.uri)
        who, admin = registrant(event)
        if who != aor and not admin:
            sip.respond(event, 403, "Only the user of an address of record registers it")
            return              # a refusal changes nothing: a new entity, unattached, goes
        now = self.context.timers.clock.seconds()
        limits = self._limits()
        try:
            outcome = register(current_bindings(self.context, aor),
                               read_register(request, limits), now, limits)
        except Refusal as refusal:
            sip.respond(event, refusal.status, refusal.reason)
            return
        if outcome.status != 200:
            headers = [] if outcome.min_expires is None else [
                ("Min-Expires", str(outcome.min_expires))]
            sip.respond(event, outcome.status, outcome.reason, headers=headers)
            return
        self._keep(outcome.bindings)
        sip.respond(event, 200, headers=contact_fields(outcome.bindings, now) + _path(request))

    @handler(TIMER)
    def on_expiry(self, event, aci):
        if event.timer_id != self.timer:
            return
        self.timer = None                   # fired: nothing to cancel
        # Its due time, even if the clock reads a hair less: it must remove something.
        now = max(self.due, self.context.timers.clock.seconds())
        self._keep(live(stored_bindings(self.context, self.aor), now))

    def _keep(self, bindings):
        """
        Make C{bindings} those of the address: stored and announced to its
        watchers if they changed (expired ones that were not removed yet
        count), and timed.
        """
        if bindings != stored_bindings(self.context, self.aor):
            store_bindings(self.context, self.aor, bindings)
            announce(self.context, self.aor, bindings)
        self._settle(bindings)

    def _limits(self):
        env = self.context.env
        minimum, maximum = env["min-expires"], max(env["min-expires"], env["max-expires"])
        return Limits(ExpiryPolicy(min(max(3600, minimum), maximum), minimum, maximum),
                      env["max-contacts"])

    def _settle(self, bindings):
        """
        Hold the address's activity and a timer for its earliest expiry
        while it has C{bindings}; else let both go (the entity goes too).
        """
        due = next_expiry(bindings)
        if due == self.due and self.timer is not None:
            return
        name = f"registrar:{self.aor}"
        timers, naming = self.context.timers, self.context.naming
        if self.timer is not None:
            timers.cancel_timer(self.timer)
            self.timer = None
        held, self.due = self.due is not None, due
        if due is None:
            activity = naming.lookup(name) if held else None
            if activity is not None:
                naming.unbind(name)
                activity.detach(self.context.sbb_local_object)
            return
        activity = naming.lookup_or_create(name)
        if not held:
            activity.attach(self.context.sbb_local_object)
        self.timer = timers.set_timer(activity, due - timers.clock.seconds())


def _path(request):
    """The Path of a 200 (RFC 3327 §5.3): the request's, echoed to a UA that supports path."""
    try:
        supported = request.supported or ()
    except ParseError:
        return []
    if "path" not in (token.lower() for token in supported):
        return []
    return [("Path", entry) for entry in request.headers.get_all("Path")]
