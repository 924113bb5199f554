"""
Watcher information (RFC 3857) and its document format (RFC 3858): pure
building and parsing, no I/O.

A presentity learns who watches it by subscribing to C{presence.winfo}.
Each watcher is one subscription to the presentity, in one of four states:

 - C{pending}: subscribed, waiting for the presentity to decide;
 - C{active}: subscribed and authorized;
 - C{waiting}: a pending subscription that ended before any decision, kept
   so that the presentity still learns someone asked;
 - C{terminated}: the subscription is over.

Its C{event} says what made it enter that state: C{subscribe}, C{approved},
C{deactivated}, C{probation}, C{rejected}, C{timeout}, C{giveup} or
C{noresource}.  Which event goes with which state is the notifier's state
machine, not the format's: both are checked against the RFC's values, the
pair is not.

An C{application/watcherinfo+xml} document::

    <watcherinfo xmlns="urn:ietf:params:xml:ns:watcherinfo" version="0" state="full">
      <watcher-list resource="sip:alice@example.com" package="presence">
        <watcher id="..." status="pending" event="subscribe">sip:bob@example.com</watcher>
      </watcher-list>
    </watcherinfo>

C{version} is 0 in the first document sent on a winfo subscription and
grows by one with each further document sent on it, so that the
subscriber sees a lost or reordered one.  A C{full} document lists every
watcher; a C{partial} one only the watchers that changed since the previous
document, each replacing the one of the same C{id}: a subscriber applies it
only on top of the version just before, and otherwise asks again for full
state.  So a watcher's C{id} is unique in its list and stays the same for
the whole life of its subscription (L{watcher_id}).

Parsing goes through L{sbbs.xml.safe} (no DTD, no entity, no network,
bounded depth, UTF-8 only) and bounds the number of watchers: the documents
come from peers, an RLS reads them from other servers.
"""

import base64
import hashlib
import re
from xml.sax.saxutils import escape
from dataclasses import dataclass

from sbbs.xml.safe import BadXml, parse_document
from slee.compact import Compact
from sbbs.xml.namespaces import WATCHERINFO as WATCHERINFO_NAMESPACE

WINFO_TYPE = "application/watcherinfo+xml"

#: A watcher's states (RFC 3857's watcher state machine).
STATUSES = ("pending", "active", "waiting", "terminated")
#: What made a watcher enter its state (the transitions of that machine).
EVENTS = ("subscribe", "approved", "deactivated", "probation", "rejected", "timeout",
          "giveup", "noresource")

#: The most watchers L{parse_watcherinfo} reads from one document.
MAX_WATCHERS = 10_000


class WatcherInfoError(ValueError):
    """A watcherinfo document that cannot be read; the reason never quotes it."""


def watcher_id(subscription_key):
    """
    The C{id} of the watcher a subscription is.

    A hash, rather than the key itself: a subscription's key names its
    dialog (Call-ID, tags) or the server's own records, neither of which
    the presentity should learn; a dialog's identifiers are what a forged
    in-dialog request needs.  The same key always
    gives the same id, in every document and across restarts, with nothing
    stored; 96 bits make two subscriptions of one presentity share an id
    practically never.

    @param subscription_key: what identifies the subscription, unique among
        the presentity's watchers.  Text decoded with C{surrogateescape},
        as SIP headers are, hashes as the bytes received.
    @return: 16 characters of URL-safe base64.
    """
    digest = hashlib.blake2b(subscription_key.encode("utf-8", "surrogateescape"),
                             digest_size=12, person=b"sbbs winfo id").digest()
    return base64.urlsafe_b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Watcher(Compact):
    """
    One watcher, as a C{<watcher>} reports it (stored in the presence
    server's watcher lists: compact).

    Everything is checked when it is made, so that a watcher, once made,
    always serializes: a document being built never fails half-way.

    @ivar id: unique in its watcher list and stable (L{watcher_id}).
    @ivar uri: who watches: the URI of the subscription's From.
    @ivar status: one of L{STATUSES}.
    @ivar event: one of L{EVENTS}.
    @ivar display_name: the watcher's display name, or None.
    @ivar expiration: seconds until the subscription expires, or None.
    @ivar duration_subscribed: seconds it has been subscribed, or None.
    @raise ValueError: a status or event the RFC does not define, an empty
        id or URI, whitespace around the URI (a reader drops it), a number
        of seconds that is not an C{unsignedLong}, or text that XML cannot
        carry (control characters, and the lone surrogates
        C{surrogateescape} leaves for bytes that were not UTF-8).
    """

    id: str
    uri: str
    status: str
    event: str
    display_name: str | None = None
    expiration: int | None = None
    duration_subscribed: int | None = None

    def __post_init__(self):
        _check_text(self.id, "a watcher's id")
        _check_text(self.uri, "a watcher's URI")
        if self.uri != self.uri.strip(_XML_SPACE):
            raise ValueError("a watcher's URI has whitespace around it")
        if self.status not in STATUSES:
            raise ValueError(f"a watcher's status is one of {', '.join(STATUSES)}")
        if self.event not in EVENTS:
            raise ValueError(f"a watcher's event is one of {', '.join(EVENTS)}")
        if self.display_name is not None:
            _check_text(self.display_name, "a watcher's display name", empty=True)
        for seconds, name in ((self.expiration, "expiration"),
                              (self.duration_subscribed, "duration-subscribed")):
            if seconds is not None and not _is_unsigned_long(seconds):
                raise ValueError(f"a watcher's {name} is a number of seconds, 0 to 2**64 - 1")


def watcherinfo_document(resource, package, watchers, version, full=True):
    """
    The document that reports C{watchers} of one resource.

    A presentity may have many watchers and gets a full document on every
    refresh of its winfo subscription, so the document is written as text
    in one pass, each value escaped on the way, rather than built as a tree
    and serialized.  The L{Watcher}s are already checked; what is left to
    escape is C{&}, C{<}, C{>} and C{"}, and the tab, line feed and carriage
    return a parser would otherwise turn into spaces or line feeds.

    @param resource: the watched resource's URI (the presentity).
    @param package: the event package watched (C{presence}).
    @param watchers: L{Watcher}s, in the order to report them: all of them
        for a full document, those that changed for a partial one.
    @param version: 0 for the first document sent on the winfo
        subscription, one more for each further one.
    @param full: a full document, or a partial one.
    @return: the document, UTF-8 with an XML declaration.
    @raise ValueError: an empty C{resource} or C{package}, or one with text
        XML cannot carry; a C{version} that is not an C{unsignedLong}; two
        watchers with one id.  L{TypeError}: a watcher that is not a
        L{Watcher}.
    """
    _check_text(resource, "the resource")
    _check_text(package, "the package")
    if not _is_unsigned_long(version):
        raise ValueError("a watcherinfo version is an integer, 0 to 2**64 - 1")
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<watcherinfo xmlns="{WATCHERINFO_NAMESPACE}" version="{version}" '
             f'state="{"full" if full else "partial"}">',
             f'<watcher-list resource="{_escaped(resource)}" package="{_escaped(package)}">']
    ids = set()
    for watcher in watchers:
        if not isinstance(watcher, Watcher):
            raise TypeError("watchers are Watcher instances")
        if watcher.id in ids:
            raise ValueError("two watchers of one list have the same id")
        ids.add(watcher.id)
        parts.append(_watcher_element(watcher))
    parts.append("</watcher-list>\n</watcherinfo>\n")
    return "\n".join(parts).encode("utf-8")


def parse_watcherinfo(body, max_watchers=MAX_WATCHERS):
    """
    Read a watcherinfo document.

    Elements in other namespaces are extensions (RFC 3858's schema allows
    them beside watcher lists and watchers) and are skipped; an element of
    the watcherinfo namespace where the format has none is refused.  So is
    what would make a watcher list ambiguous: two watchers with one id.

    @param body: the document (C{application/watcherinfo+xml}).
    @param max_watchers: the most watchers accepted, all lists together,
        and the most watcher lists.
    @return: C{(version, state, lists)}: the version (int), C{"full"} or
        C{"partial"}, and for each C{<watcher-list>}, in document order, a
        C{(resource, package, watchers)} tuple, C{watchers} a list of
        L{Watcher}s in document order.
    @raise WatcherInfoError: the body is not UTF-8, not well-formed, has a
        document type declaration, is not a watcherinfo document, has more
        than C{max_watchers} watchers or lists, or a version, state, list or
        watcher that does not follow RFC 3858.
    """
    root = _parse(body)
    if root.tag != _WI + "watcherinfo":
        raise WatcherInfoError("the body is not a watcherinfo document")
    version = _unsigned_long(root.get("version"), "version")
    if version is None:
        raise WatcherInfoError("the watcherinfo document has no version")
    state = root.get("state")
    if state not in ("full", "partial"):
        raise WatcherInfoError("a watcherinfo document's state is full or partial")
    lists = []
    budget = max_watchers
    for element in _own_children(root, "watcher-list"):
        if len(lists) == max_watchers:
            raise WatcherInfoError(f"more than {max_watchers} watcher lists")
        resource, package = _required(element, "resource"), _required(element, "package")
        watchers = []
        for watcher in _own_children(element, "watcher"):
            if budget == 0:
                raise WatcherInfoError(f"more than {max_watchers} watchers")
            budget -= 1
            watchers.append(_watcher(watcher))
        if len({watcher.id for watcher in watchers}) < len(watchers):
            raise WatcherInfoError("two watchers of one list have the same id")
        lists.append((resource, package, watchers))
    return version, state, lists


def _watcher_element(watcher):
    """@return: the C{<watcher>} of a L{Watcher}, as text."""
    optional = ""
    if watcher.display_name is not None:
        optional += f' display-name="{_escaped(watcher.display_name)}"'
    if watcher.expiration is not None:
        optional += f' expiration="{watcher.expiration}"'
    if watcher.duration_subscribed is not None:
        optional += f' duration-subscribed="{watcher.duration_subscribed}"'
    return (f'<watcher id="{_escaped(watcher.id)}" status="{watcher.status}" '
            f'event="{watcher.event}"{optional}>{_escaped(watcher.uri)}</watcher>')


def _watcher(element):
    """
    @return: the L{Watcher} a C{<watcher>} reports.  Its content is a URI,
        whitespace around it dropped (an C{anyURI} collapses it).
    """
    if any(isinstance(child.tag, str) for child in element):
        raise WatcherInfoError("a watcher's content is a URI, not elements")
    try:
        return Watcher(element.get("id"), "".join(element.itertext()).strip(_XML_SPACE),
                       element.get("status"), element.get("event"),
                       element.get("display-name"),
                       _unsigned_long(element.get("expiration"), "expiration"),
                       _unsigned_long(element.get("duration-subscribed"), "duration-subscribed"))
    except ValueError as error:
        raise WatcherInfoError(str(error)) from None


def _required(element, name):
    """@return: the attribute C{name} of a watcher list, which must not be empty."""
    value = element.get(name)
    if not value:
        raise WatcherInfoError(f"a watcher-list has no {name}")
    return value


def _own_children(element, name):
    """
    @return: the children of C{element} in the watcherinfo namespace, all
        of which must be named C{name}.
    """
    for child in element:
        if isinstance(child.tag, str) and child.tag.startswith(_WI):
            if child.tag != _WI + name:
                raise WatcherInfoError(f"a <{child.tag[len(_WI):]}> has no place there")
            yield child


def _unsigned_long(text, name):
    """
    @return: the C{unsignedLong} an attribute holds (surrounding whitespace
        and a leading C{+} allowed, as XML Schema does), None if absent.
    """
    if text is None:
        return None
    if not _UNSIGNED.fullmatch(text.strip(_XML_SPACE)) or not _is_unsigned_long(int(text)):
        raise WatcherInfoError(f"{name} is an integer, 0 to 2**64 - 1")
    return int(text)


def _is_unsigned_long(value):
    """@return: whether C{value} is an int an C{unsignedLong} holds (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2 ** 64


def _check_text(value, name, empty=False):
    """
    @raise ValueError: C{value} is not a string, is empty (unless C{empty}),
        or has a character XML 1.0 cannot carry.
    """
    if not isinstance(value, str) or not (value or empty):
        raise ValueError(f"{name} is a non-empty string")
    if _NOT_XML.search(value):
        raise ValueError(f"{name} has a character XML cannot carry")


#: What L{escape} adds to C{&}, C{<} and C{>}: the quote around attribute
#: values, and the white space a reader would otherwise fold into spaces.
_ALSO_ESCAPED = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


def _escaped(text):
    """@return: C{text}, checked by L{_check_text}, as an attribute value or element content."""
    return escape(text, _ALSO_ESCAPED)


def _parse(body):
    """
    @return: the root element of C{body}, parsed by L{parse_document}.
    @raise WatcherInfoError: what it refused, and why.
    """
    try:
        return parse_document(body)
    except BadXml as conflict:
        raise WatcherInfoError(str(conflict)) from None


_WI = f"{{{WATCHERINFO_NAMESPACE}}}"
_XML_SPACE = " \t\n\r"
_UNSIGNED = re.compile(r"\+?[0-9]{1,20}")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
