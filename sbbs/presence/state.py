"""
The presence state the presence server keeps for watchers: each
presentity's composed document, and the activities where watchers hear of
its changes.

The compositor (L{sbbs.presence.compositor}) writes a watched
presentity's composed PIDF document to the shared data L{STATES} (an
unwatched one's is composed when a watcher asks,
L{sbbs.presence.compositor.current_document}) and fires
L{PRESENCE_CHANGED} on the presentity's named activity
(L{watch_name}), where the entity of each of its subscriptions is
attached; a subscription reads the document there when it starts.  The
presentity's authorization rules change the same way
(L{RULES_CHANGED}, L{sbbs.presence.documents}).
"""

from dataclasses import dataclass

from slee.events import EventType

#: The shared data holding the composed documents: presentity -> bytes.
STATES = "slee.presence.states"

#: Declared by the unit deployables/presence-server.
PRESENCE_CHANGED = EventType("PresenceChanged", "slee", "1.0")
RULES_CHANGED = EventType("PresenceRulesChanged", "slee", "1.0")


@dataclass(frozen=True, slots=True)
class PresenceChangedEvent:
    """
    C{presentity}'s composed state is now C{document} (bytes, or None: no
    state); it was C{previous}.
    """

    presentity: str
    document: bytes | None
    previous: bytes | None = None


@dataclass(frozen=True, slots=True)
class RulesChangedEvent:
    """C{presentity}'s authorization rules changed (or arrived)."""

    presentity: str


def watch_name(presentity):
    """The name of the activity where a presentity's watchers hear of its changes."""
    return f"presence:{presentity}"


def announce(context, event_type, event, presentity):
    """Fire C{event} on the presentity's watch activity, if anybody watches it."""
    watching = context.naming.lookup(watch_name(presentity))
    if watching is not None:
        context.fire_event(watching, event_type, event)
