"""
Publications (RFC 3903), sans-IO: what an event state compositor keeps of
each publication, and the rules every PUBLISH follows, whoever publishes
(a SIP client or a service through the publication client).

A resource (a presentity) has live publications per event package, each
known by its entity tag (how many, the quotas say:
L{sbbs.sipevent.quotas}).  The publications of one resource live in a
L{Publications} value, immutable:
every change makes a new one, which is what stored data needs to notice
it.  The store (L{publications_of}, L{store_publications}) is the shared
data L{STORE} of the container, keyed by (package, resource).
"""

import uuid
from dataclasses import dataclass, replace

from slee.compact import Compact

#: The name of the shared data holding the publications (see
#: L{slee.interfaces.ISbbContext.shared_data}).
STORE = "slee.sipevent.publications"

@dataclass(frozen=True)
class Publication(Compact):
    """
    One publication (stored with its resource's, at every PUBLISH: compact).

    @ivar etag: its entity tag (SIP-ETag), new on every change.
    @ivar content_type: the body's type.
    @ivar body: the published state (bytes).
    @ivar expires_at: when it ends unless refreshed (clock seconds).
    @ivar published_at: when its body was last set (the compositor's
        "most recent" rule).
    @ivar timer: the id of its expiry timer, or None.
    """

    etag: str
    content_type: str
    body: bytes
    expires_at: float
    published_at: float
    timer: object = None


@dataclass(frozen=True)
class Outcome:
    """
    What a PUBLISH came to (RFC 3903 §6).

    @ivar status: 200, or the refusal: 400, 412, 423 (or a quota's 403, 503).
    @ivar reason: the reason phrase.
    @ivar etag: the publication's new entity tag (200 and not removed).
    @ivar expires: the seconds granted (200), or the minimum (423).
    @ivar publication: the new L{Publication}, or None when removed or refused.
    @ivar replaced: the L{Publication} it replaces or removes, or None.
    @ivar headers: the extra headers of a refusal (a quota's Retry-After).
    """

    status: int
    reason: str
    etag: str | None = None
    expires: int | None = None
    publication: Publication | None = None
    replaced: Publication | None = None
    headers: tuple = ()

    @property
    def is_new(self):
        """Whether it makes one more publication: neither refused nor a change of one."""
        return self.status == 200 and self.replaced is None

    @property
    def changed_state(self):
        """Whether the resource's state changed (a refresh changes nothing but the ETag)."""
        if self.status != 200:
            return False
        if self.publication is None or self.replaced is None:
            return True
        return self.publication.body != self.replaced.body


def new_etag():
    """@return: an entity tag nobody can guess or has seen (RFC 3903 §6, step 6)."""
    return uuid.uuid4().hex


class Publications:
    """The live publications of one resource for one event package, by entity tag."""

    __slots__ = ("_by_etag",)

    def __init__(self, publications=()):
        self._by_etag = {publication.etag: publication for publication in publications}

    def __len__(self):
        return len(self._by_etag)

    def __iter__(self):
        """The publications, oldest body first."""
        return iter(sorted(self._by_etag.values(), key=lambda p: p.published_at))

    def get(self, etag):
        return self._by_etag.get(etag)

    def with_(self, publication, replacing=None):
        """@return: these publications with C{publication}, and without C{replacing}."""
        kept = [p for p in self._by_etag.values() if p is not replacing]
        return Publications([*kept, publication])

    def without(self, publication):
        return Publications([p for p in self._by_etag.values() if p is not publication])

    def __reduce__(self):
        return Publications, (tuple(self._by_etag.values()),)

    def __eq__(self, other):
        return isinstance(other, Publications) and self._by_etag == other._by_etag

    def publish(self, now, policy, if_match=None, body=b"", content_type=None, expires=None):
        """
        Apply a PUBLISH (RFC 3903 §6, steps 3 to 6): the caller checked
        the event package and, for a body, its type and content.

        @param if_match: the SIP-If-Match entity tag, or None for an
            initial publication.
        @param expires: the Expires asked for, or None.
        @return: an L{Outcome}.
        """
        replaced = None
        if if_match is not None:
            replaced = self.get(if_match)
            if replaced is None or replaced.expires_at <= now:
                return Outcome(412, "Conditional Request Failed")
        elif not body:
            return Outcome(400, "Missing body in initial PUBLISH")
        granted = policy.grant(expires)
        if granted is None:
            return Outcome(423, "Interval Too Brief", expires=policy.minimum)
        if granted == 0:
            if replaced is None:
                return Outcome(400, "Expires 0 needs SIP-If-Match")
            return Outcome(200, "OK", expires=0, replaced=replaced)
        if body:
            publication = Publication(new_etag(), content_type, body, now + granted, now)
        else:
            publication = replace(replaced, etag=new_etag(), expires_at=now + granted,
                                  timer=None)
        return Outcome(200, "OK", publication.etag, granted, publication, replaced)

    def after(self, outcome):
        """@return: these publications once C{outcome} (a 200) is applied."""
        if outcome.publication is None:
            return self.without(outcome.replaced)
        return self.with_(outcome.publication, outcome.replaced)


def publications_of(store, package, resource):
    """@return: the L{Publications} of C{resource} in the shared data C{store}."""
    return store.get((package, resource)) or Publications()


def store_publications(store, package, resource, publications):
    """Keep C{publications} (or forget the resource when there are none)."""
    if len(publications):
        store[(package, resource)] = publications
    elif (package, resource) in store:
        del store[(package, resource)]
