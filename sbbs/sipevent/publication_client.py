"""
The publication client: how a service publishes event state in this
container (Mobicents' publication client interface, in Python).

A service makes L{PublicationClientSbb} a child and calls it; each call
is done at once, in the caller's transaction, and returns a
L{PublicationResult}::

    client = self.publications.get_or_create()
    result = client.new_publication("sip:alice@example.com", "presence", pidf,
                                    "application/pidf+xml", 3600)
    if result.status == 200:
        self.etag = result.etag          # for refresh, modify and remove

A service's publication is one like any PUBLISH (L{sbbs.sipevent.publisher.publish}):
checked by its package, composed with the others, expired unless
refreshed, and its watchers are told.  The statuses are a PUBLISH's: 200,
400 (a body the package refuses), 403 and 503 (past a quota:
L{sbbs.sipevent.quotas}), 412 (an unknown or expired ETag), 415, 423 (too
brief), 489 (no such package here).
"""

from dataclasses import dataclass

from zope.interface import Interface, implementer

from sbbs.sipevent.publisher import publish, publisher_for
from sbbs.sipevent.quotas import PUBLICATION_ENVIRONMENT
from slee.sbb import Sbb


@dataclass(frozen=True)
class PublicationResult:
    """
    @ivar status: the SIP status the PUBLISH would have got.
    @ivar etag: the publication's entity tag now (200, not removed), else None.
    @ivar expires: the seconds granted (200), the minimum (423), else None.
    """

    status: int
    etag: str | None = None
    expires: int | None = None


class IPublicationClient(Interface):
    """What a service asks of its publication client child (each call returns at once)."""

    def new_publication(entity, event_package, document, content_type, expires):
        """Publish C{document} for C{entity} (an address of record): a L{PublicationResult}."""

    def refresh_publication(entity, event_package, etag, expires):
        """Make the publication C{etag} last C{expires} seconds more."""

    def modify_publication(entity, event_package, etag, document, content_type, expires):
        """Replace the document of the publication C{etag}."""

    def remove_publication(entity, event_package, etag):
        """End the publication C{etag}."""


@implementer(IPublicationClient)
class PublicationClientSbb(Sbb):
    """The child that carries a service's publications; see the module docstring."""

    local_interface = IPublicationClient
    environment = PUBLICATION_ENVIRONMENT

    def new_publication(self, entity, event_package, document, content_type, expires):
        return self._publish(entity, event_package, None, document, content_type, expires)

    def refresh_publication(self, entity, event_package, etag, expires):
        return self._publish(entity, event_package, etag, b"", None, expires)

    def modify_publication(self, entity, event_package, etag, document, content_type, expires):
        return self._publish(entity, event_package, etag, document, content_type, expires)

    def remove_publication(self, entity, event_package, etag):
        return self._publish(entity, event_package, etag, b"", None, 0)

    def _publish(self, entity, package, etag, document, content_type, expires):
        publisher = publisher_for(self.context, package)
        if publisher is None:
            return PublicationResult(489)
        if document:
            if content_type not in publisher.content_types:
                return PublicationResult(415)
            refusal = publisher.check_body(document, content_type)
            if refusal is not None:
                return PublicationResult(refusal.status)
        outcome = publish(self.context, package, publisher.expiry, entity, etag, document,
                          content_type, expires)
        return PublicationResult(outcome.status, outcome.etag, outcome.expires)
