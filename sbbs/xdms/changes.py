"""
Change notification inside the container: how the XDMS tells services that
a document changed (the internal side of xcap-diff, RFC 5874).

Subscribers meet the XDMS on named null activities (the activity context
naming facility): one per thing watched, named C{xdms:} and the XCAP URI
below the root of a document (C{xdms:resource-lists/users/sip:a@b/index}),
of a user's documents of an application usage (C{.../users/sip:a@b/}), or
of all documents of a usage (C{xdms:resource-lists/}).  Once a change is
committed, the XDMS fires L{DocumentChangedEvent} on each of these
activities of the changed document that exists; whoever is attached gets
it.  A change costs a few name lookups, whatever the number of
subscriptions.
"""

from dataclasses import dataclass

from slee.events import EventType

#: Declared by the unit deployables/xdms.
DOCUMENT_CHANGED = EventType("DocumentChanged", "slee", "1.0")

PREFIX = "xdms:"


@dataclass(frozen=True, eq=False, slots=True)
class DocumentChangedEvent:
    """
    @ivar document: the document's URI below the XCAP root.
    @ivar old_etag: its ETag before, or None if it did not exist.
    @ivar new_etag: its ETag now, or None if it was deleted.
    @ivar content: the document now (bytes), or None if it was deleted.
    """

    document: str
    old_etag: str | None
    new_etag: str | None
    content: bytes | None


def watched_names(document):
    """@return: the names of the activities watching a L{DocumentSelector}."""
    text = str(document)
    auid, tree, rest = text.split("/", 2)
    collection = f"{auid}/{tree}/" if document.is_global else \
        f"{auid}/{tree}/{rest.split('/', 1)[0]}/"
    return PREFIX + text, PREFIX + collection, f"{PREFIX}{auid}/"


def watch_name(uri):
    """@return: the name of the activity that watches C{uri} (a document or a collection)."""
    return PREFIX + uri.lstrip("/")
