"""
The presence server's compositor (RFC 3903 for the C{presence} package):
the publications of each presentity, composed into its one document.

Each change of a presentity's publications (a PUBLISH, a publication
client's call, an expiry) or of its static presence (its pidf-manipulation
document in the XDMS, L{sbbs.presence.documents}) composes its document
again from all its live publications over the static presence
(L{sbbs.presence.composition}); when the result differs from
what the watchers have, it is stored and announced to them
(L{sbbs.presence.state}).
"""

from functools import lru_cache

from sbbs.presence.composition import compose
from sbbs.presence.documents import cached_manipulation, want_documents
from sbbs.presence.pidf import PIDF_TYPE, PidfError, parse_pidf
from sbbs.presence.state import (
    PRESENCE_CHANGED, STATES, PresenceChangedEvent, announce, watch_name)
from sbbs.sipevent.notifier import Refusal
from sbbs.sipevent.publisher import PublisherSbb
from sbbs.sipevent.subscription import ExpiryPolicy


@lru_cache(maxsize=512)
def _parsed(body):
    """
    A publication's PIDF, parsed once: when its PUBLISH is checked, and for
    the composition that follows (which leaves the elements it is given
    unchanged).  A refused body is not remembered.
    """
    return parse_pidf(body)


class CompositorSbb(PublisherSbb):
    """The publications of one presentity; see L{sbbs.sipevent.publisher}."""

    package = "presence"
    content_types = (PIDF_TYPE,)
    expiry = ExpiryPolicy(default=3600, minimum=60, maximum=86400)

    @classmethod
    def check_body(cls, body, content_type):
        try:
            _parsed(body)
        except PidfError as error:
            return Refusal(400, f"Bad PIDF: {error.reason}")
        return None

    def state_changed(self, resource, publications):
        known, manipulation = cached_manipulation(self.context, resource)
        if not known and self.context.naming.lookup(watch_name(resource)) is not None:
            # Only watchers see the static presence: the first of them asks
            # for it anyway, and the state is composed again once it came.
            want_documents(self.context, resource)
        document = compose(resource, [(_parsed(p.body), p.published_at) for p in publications],
                           manipulation)
        states = self.context.shared_data(STATES)
        previous = states.get(resource)
        if previous == document:
            return                  # a refresh, or a change nobody can see
        if document is None:
            del states[resource]
        else:
            states[resource] = document
        announce(self.context, PRESENCE_CHANGED,
                 PresenceChangedEvent(resource, document, previous), resource)
