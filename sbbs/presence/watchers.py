"""
Who watches each presentity (RFC 3857): the watchers the presence
notifier records, and the activity where the presentity's own winfo
subscriptions hear of each change.

The shared data L{WATCHERS} holds, per presentity, its live watchers by
watcher id (L{sbbs.presence.winfo.Watcher}), in a BTree of its own (a new
watcher of a popular presentity writes one bucket, not the whole list); a
terminated watcher is announced, then forgotten.  L{WATCHERS_CHANGED} is fired on the
presentity's winfo activity (L{winfo_name}) when somebody listens there.
"""

from dataclasses import dataclass

from BTrees.OOBTree import OOBTree

from sbbs.presence.winfo import Watcher, watcher_id
from slee.events import EventType

#: The shared data of the watchers: presentity -> {watcher id: Watcher}.
WATCHERS = "slee.presence.watchers"

#: Watchers of one presentity at most: a SUBSCRIBE flood stops there.
MAX_WATCHERS = 10000

#: Declared by the unit deployables/presence-server.
WATCHERS_CHANGED = EventType("PresenceWatchersChanged", "slee", "1.0")


@dataclass(frozen=True, slots=True)
class WatchersChangedEvent:
    """C{watcher} of C{presentity} changed (its status and the event that changed it)."""

    presentity: str
    watcher: Watcher


def winfo_name(presentity):
    """The name of the activity where a presentity's winfo subscriptions listen."""
    return f"winfo:{presentity}"


def watchers_of(context, presentity):
    """@return: the mapping watcher id -> L{Watcher} of C{presentity}'s live watchers."""
    return context.shared_data(WATCHERS).get(presentity) or {}


def record(context, subscription, key, event):
    """
    Note the change of a subscription to C{presentity} (its L{Subscription}),
    known by C{key} (unique and stable, never shown), and announce it.
    """
    presentity = subscription.resource
    watcher = Watcher(watcher_id(key), subscription.subscriber, subscription.state.value, event)
    store = context.shared_data(WATCHERS)
    watchers = store.get(presentity)
    if watcher.status == "terminated":
        if watchers is not None:
            watchers.pop(watcher.id, None)
            if not watchers:
                del store[presentity]
    else:
        if watchers is None:
            watchers = store[presentity] = OOBTree()
        watchers[watcher.id] = watcher
    listening = context.naming.lookup(winfo_name(presentity))
    if listening is not None:
        context.fire_event(listening, WATCHERS_CHANGED, WatchersChangedEvent(presentity, watcher))
