"""
The location service: the registrar's bindings as every service of the
container sees them.

The bindings of all addresses of record are kept in the shared data
L{STORE}, an C{OOBTree} keyed by address of record, each value the tuple
of its L{sbbs.registrar.bindings.Binding}s: a REGISTER writes one bucket
of the tree, whatever the number of users, and two REGISTERs of different
users rarely touch the same one (ZODB resolves those that do).  Any
service reads them in its own transaction (L{current_bindings}), which is
how the location client's lookup is synchronous.

When the bindings of an address change, L{BINDINGS_CHANGED} is fired on
its named activity (L{watch_name}) if anybody is attached there to hear
it: the location clients that watch it.
"""

from dataclasses import dataclass

from resource_adaptors.sip.core.syntax import ParseError
from resource_adaptors.sip.core.uri import parse_uri
from sbbs.registrar.bindings import live
from sbbs.sipevent.addresses import address_of_record
from slee.events import EventType

#: The shared data holding the bindings: address of record -> tuple of bindings.
STORE = "slee.registrar.bindings"

#: Declared by the unit deployables/registrar.
BINDINGS_CHANGED = EventType("BindingsChanged", "slee", "1.0")


@dataclass(frozen=True, slots=True)
class BindingsChangedEvent:
    """The bindings of C{aor} are now C{bindings} (best first; empty: none)."""

    aor: str
    bindings: tuple


def watch_name(aor):
    """The name of the activity where the watchers of an address of record hear of its changes."""
    return f"location:{aor}"


def normalized(aor):
    """
    @return: the address of record a URI means (L{address_of_record}:
        C{sip:user@host}, the host in lower case, no port or parameters),
        or None when C{aor} is not a URI.
    """
    try:
        return address_of_record(parse_uri(aor.strip()))
    except ParseError:
        return None


def stored_bindings(context, aor):
    """@return: the bindings of C{aor} as stored: some may have expired, their timer not run yet."""
    return context.shared_data(STORE).get(aor, ())


def current_bindings(context, aor):
    """@return: the bindings of C{aor} (normalized) live now, best first."""
    return live(stored_bindings(context, aor), context.timers.clock.seconds())


def store_bindings(context, aor, bindings):
    """Keep C{bindings} as those of C{aor} (forget the address when there are none)."""
    store = context.shared_data(STORE)
    if bindings:
        store[aor] = bindings
    elif aor in store:
        del store[aor]


def announce(context, aor, bindings):
    """Fire L{BINDINGS_CHANGED} on the watch activity of C{aor}, if anybody watches it."""
    watching = context.naming.lookup(watch_name(aor))
    if watching is not None:
        context.fire_event(watching, BINDINGS_CHANGED, BindingsChangedEvent(aor, bindings))
