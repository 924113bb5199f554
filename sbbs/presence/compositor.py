"""
The presence server's compositor (RFC 3903 for the C{presence} package):
the publications of each presentity, composed into its one document.

Each change of a watched presentity's publications (a PUBLISH, a
publication client's call, an expiry) or of its static presence (its
pidf-manipulation document in the XDMS, L{sbbs.presence.documents})
composes its document again from all its live publications over the
static presence (L{sbbs.presence.composition}); when the result differs
from what the watchers have, it is stored and announced to them
(L{sbbs.presence.state}).

A presentity nobody watches is not composed at its changes: nobody would
read the result, and most PUBLISHes would pay for it (as Kamailio, which
composes when it sends a NOTIFY).  Its kept document is dropped instead,
and L{current_document} composes it when a watcher asks.  So a document
kept in L{STATES} is always the current one.
"""


from sbbs.presence.composition import compose
from sbbs.presence.documents import cached_manipulation, want_documents
from sbbs.presence.memo import MEMO
from sbbs.presence.pidf import PIDF_TYPE, PidfError, parse_pidf
from sbbs.presence.state import PRESENCE_CHANGED, STATES, PresenceChangedEvent, watch_name
from sbbs.sipevent.notifier import Refusal
from sbbs.sipevent.publication import STORE, publications_of
from sbbs.sipevent.publisher import PublisherSbb
from sbbs.sipevent.subscription import ExpiryPolicy


def current_document(context, presentity):
    """
    @return: the composed document of C{presentity} (bytes), or None when
        it has no state: the kept one, else composed now and kept (the
        caller watches it: the compositor keeps it current from now on).
    """
    states = context.shared_data(STATES)
    document = states.get(presentity)
    if document is None:
        publications = publications_of(context.shared_data(STORE), CompositorSbb.package,
                                       presentity)
        _, manipulation = cached_manipulation(context, presentity)
        document = _compose(presentity, publications, manipulation)
        if document is not None:
            states[presentity] = document
    return document


def _compose(presentity, publications, manipulation):
    """The document of C{publications} over the static presence C{manipulation} (or None)."""
    return compose(presentity, [(MEMO.get(parse_pidf, p.body), p.published_at) for p in publications],
                   manipulation)


class CompositorSbb(PublisherSbb):
    """The publications of one presentity; see L{sbbs.sipevent.publisher}."""

    package = "presence"
    content_types = (PIDF_TYPE,)
    expiry = ExpiryPolicy(default=3600, minimum=60, maximum=86400)

    @classmethod
    def check_body(cls, body, content_type):
        try:
            MEMO.get(parse_pidf, body)
        except PidfError as error:
            return Refusal(400, f"Bad PIDF: {error.reason}")
        return None

    def state_changed(self, resource, publications):
        states = self.context.shared_data(STATES)
        watching = self.context.naming.lookup(watch_name(resource))
        if watching is None:
            if resource in states:
                del states[resource]    # out of date: composed when watched again
            return
        known, manipulation = cached_manipulation(self.context, resource)
        if not known:
            # Only watchers see the static presence: the first of them asks
            # for it anyway, and the state is composed again once it came.
            want_documents(self.context, resource)
        document = _compose(resource, publications, manipulation)
        previous = states.get(resource)
        if previous == document:
            return                  # a refresh, or a change nobody can see
        if document is None:
            del states[resource]
        else:
            states[resource] = document
        self.context.fire_event(watching, PRESENCE_CHANGED,
                                PresenceChangedEvent(resource, document, previous))
