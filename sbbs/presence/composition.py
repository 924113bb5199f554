"""
Presence composition (RFC 3903 §4): the one PIDF document the watchers of
a presentity are sent, made from its live publications (one per client or
device) and its pidf-manipulation document (RFC 4827: the state the user
keeps in the XDMS, which publications override).

The policy, element by element (RFC 4479 gives the model, not the rules):

 - Tuples (services) are merged by id: of the publications that have a
   tuple id, the one published last wins (the same client publishing
   again without its ETag, after a restart); a manipulation tuple stays
   unless a publication has its id.  Published tuples come first, newest
   first by their C{<timestamp>} (else their publication's time), then
   the manipulation's in its order: a watcher that reads only the first
   tuple sees the latest change.
 - One C{<dm:person>} (RFC 4479 §3.3: the presentity is one person,
   whichever device or client said what about it), made of layers: the
   manipulation's persons, in document order, then the published
   persons, least recent first (by their C{<dm:timestamp>}, else their
   publication's time; the later publication on a tie).  Each kind of
   child (an element name: C{rpid:activities}, C{rpid:mood},
   C{rpid:place-type}, C{dm:note}...) comes from the most recent layer
   that has it, all of that layer's children of that kind, and none of
   the layers below: device A's note and device B's later activities
   are both kept, and A's later note replaces its earlier one.  The
   person's notes are one kind, whatever their C{xml:lang} (translations
   of one text: a newer English note must not sit beside an older French
   one).  A client that stops saying something (a publication modified
   without it) stops counting for it; what another live publication
   says stays until that one changes or expires.  The composed person
   has the id, other attributes and C{<dm:timestamp>} of the top layer
   (none if that has none).  Should the kinds not all fit the bounds
   below, the most recent are kept.
 - Devices are merged by C{<dm:deviceID>} (by id for one without), as
   tuples are, and come after the person.
 - The notes of C{<presence>}: those of every publication (the latest
   published first), then the manipulation's, without repeating the same
   text in the same C{xml:lang}.
 - The other children of C{<presence>} (extensions): likewise, without
   repeats (same names, attributes and text, whatever the prefixes).
   Extensions inside tuples, persons and devices travel with them
   untouched.  Attributes of other namespaces on C{<presence>} are not
   kept; its C{entity} is the presentity's, whatever the documents say.
 - Ids are unique in a document (C{xs:ID}): a person or device whose id
   a tuple or another of them has is renamed (C{p1-2}).
 - Time: a publication's time is the POSIX time its body was last set (a
   refresh changes no state, so it must not reorder anything); a
   timestamp later than its publication's time counts as that time, so
   that a client whose clock runs ahead cannot stay first.
 - Bounds: the document stays within what L{parse_pidf} accepts by
   default (L{MAX_SIZE} bytes, L{MAX_ELEMENTS} elements, L{MAX_TUPLES}
   tuples), so that a watcher with the same limits takes it.  Each
   element is kept if it still fits, in this order: the person, the
   tuples in their order, the devices, the notes, the extensions.  Sizes
   are measured with some slack (each element with the namespace
   declarations it inherits), never short.

Namespace prefixes are kept: each element is rebuilt with the bindings
it had, declared again where the composed document does not have them.
"""

from hashlib import sha256

from lxml import etree

from sbbs.presence.pidf import (
    DEVICE, DEVICE_ID, DM_TIMESTAMP, MAX_ELEMENTS, MAX_SIZE, MAX_TUPLES, NOTE, PERSON, PREFIXES,
    PRESENCE, TIMESTAMP, TUPLE, XML_LANG, instant, ordered_copy, parse_pidf, serialize)


def compose(entity, publications, manipulation=None):
    """
    @param entity: the presentity's URI.
    @param publications: its live publications, as (document, published_at)
        pairs: the document as bytes (read with L{parse_pidf}) or as the
        root element L{parse_pidf} returned (left unchanged), published_at
        in POSIX seconds (see the module's docstring).
    @param manipulation: its pidf-manipulation document (bytes), or None.
    @return: the composed document (bytes), or None when there is no
        publication and no manipulation document: the presentity has no
        state.
    @raise PidfError: when a document given as bytes is not acceptable.
    """
    published = [(_root(document), published_at) for document, published_at in publications]
    if not published and manipulation is None:
        return None
    base = [] if manipulation is None else [_root(manipulation)]
    root = etree.Element(PRESENCE, nsmap=PREFIXES, entity=entity)
    room = MAX_SIZE - len(serialize(root)) - len(b"</presence>")
    tuples = [ordered_copy(tuple_, root) for tuple_ in _tuples(published, base)]
    notes = [ordered_copy(note, root) for note in _notes(published, base)]
    layers = _person_layers(published, base)
    persons = [_person(root, layers, room)] if layers else []
    devices = [ordered_copy(device, root) for device in _devices(published, base)]
    extensions = [ordered_copy(extension, root) for extension in _extensions(published, base)]
    taken = {tuple_.get("id") for tuple_ in tuples}
    for component in persons + devices:
        _rename(component, taken)
    _trim(root, persons + tuples + devices + notes + extensions, room)
    etree.cleanup_namespaces(root)
    return serialize(root)


def presentity_state_etag(document):
    """
    @param document: a composed document (bytes).
    @return: a short hash of it: composition is deterministic, so an equal
        tag means the watchers need not be told again.
    """
    return sha256(document).hexdigest()[:16]


def _root(document):
    return parse_pidf(document) if isinstance(document, (bytes, bytearray)) else document


def _tuples(published, base):
    return _merged(_each(published, TUPLE), _all(base, TUPLE), TIMESTAMP,
                   key=lambda tuple_: tuple_.get("id"))


def _devices(published, base):
    return _merged(_each(published, DEVICE), _all(base, DEVICE), DM_TIMESTAMP, key=_device_key)


def _person_layers(published, base):
    """The manipulation's persons, then the published ones, least recent first."""
    ranked = sorted(_each(published, PERSON),     # stable: the later publication on a tie
                    key=lambda pair: (_when(pair[0], DM_TIMESTAMP, pair[1]), pair[1]))
    return _all(base, PERSON) + [person for person, _ in ranked]


def _notes(published, base):
    return _distinct(_all(_latest_first(published) + base, NOTE),
                     key=lambda note: (note.get(XML_LANG), (note.text or "").strip()))


def _extensions(published, base):
    return _distinct((child for root in _latest_first(published) + base for child in root
                      if child.tag not in (TUPLE, NOTE, PERSON, DEVICE)),
                     key=_signature)


def _signature(element):
    """What C{element} says: its names, attributes and text, whatever its prefixes."""
    return (element.tag, tuple(sorted(element.attrib.items())), element.text,
            tuple((_signature(child), child.tail) for child in element))


def _latest_first(published):
    return [root for root, _ in sorted(published, key=lambda pair: pair[1], reverse=True)]


def _each(published, tag):
    """(element, published_at) for each C{tag} child of each (root, published_at)."""
    return [(element, published_at) for root, published_at in published
            for element in root.iterfind(tag)]


def _all(roots, tag):
    return [element for root in roots for element in root.iterfind(tag)]


def _when(element, stamp, published_at):
    """When C{element} was last true: its timestamp, at most its publication's time."""
    timestamp = element.find(stamp)
    moment = None if timestamp is None else instant(timestamp.text or "")
    return published_at if moment is None else min(moment, published_at)


def _merged(published, base, stamp, key):
    """
    @param published: (element, published_at) pairs, in publication and
        document order.
    @param base: the manipulation's elements.
    @return: for each key, the element of the latest publication (of the
        later one in C{published} on a tie), newest first by their
        C{stamp}; then the base's elements whose keys no publication has.
    """
    winners = {}
    for element, published_at in published:
        held = winners.get(key(element))
        if held is None or published_at >= held[1]:
            winners[key(element)] = (element, published_at)
    newest_first = sorted(winners.values(), reverse=True,
                          key=lambda pair: (_when(pair[0], stamp, pair[1]), pair[1]))
    return [element for element, _ in newest_first] + \
        [element for element in base if key(element) not in winners]


def _device_key(device):
    device_id = device.find(DEVICE_ID)
    if device_id is None:
        return ("id", device.get("id"))
    return ("deviceID", (device_id.text or "").strip())


def _person(root, layers, room):
    """
    The composed person, as the last child of C{root}: each kind (element
    name) of child from the top-most of C{layers} (persons) that has it;
    the timestamp only from the top layer.  Kinds are taken from the top
    down while they fit in C{room} bytes and in the element limit, each
    measured as L{_trim} does (alone, with the declarations it inherits),
    the person's own tags twice over: L{_trim} then keeps the person.
    """
    top = layers[-1]
    room -= 2 * len(etree.tostring(ordered_copy(top, None, [])))
    elements = MAX_ELEMENTS - 2                   # the root and the person
    taken = set()
    kept = []                                     # per layer, from the top down
    for layer in reversed(layers):
        kinds = {}
        for child in layer:
            if child.tag not in taken and (child.tag != DM_TIMESTAMP or layer is top):
                kinds.setdefault(child.tag, []).append(child)
        taken.update(kinds)
        fitting = set()
        for tag, children in kinds.items():
            size = sum(len(etree.tostring(child)) for child in children)
            count = sum(1 for child in children for _ in child.iter())
            if size <= room and count <= elements:
                room -= size
                elements -= count
                fitting.add(tag)
        kept.append([child for child in layer if child.tag in fitting])
    return ordered_copy(top, root, [child for children in reversed(kept) for child in children])


def _distinct(elements, key):
    seen = set()
    kept = []
    for element in elements:
        if key(element) not in seen:
            seen.add(key(element))
            kept.append(element)
    return kept


def _rename(element, taken):
    identifier = element.get("id")
    unique, number = identifier, 1
    while unique in taken:
        number += 1
        unique = f"{identifier}-{number}"
    taken.add(unique)
    element.set("id", unique)


def _trim(root, children, room):
    """
    Remove from C{root} those of its C{children} that do not fit, the
    first in C{children} kept first.  A child serialized alone (with the
    declarations it inherits) is never shorter than in the document, so
    the document stays within C{room} bytes more than its empty root.
    """
    elements = MAX_ELEMENTS - 1
    tuples = MAX_TUPLES
    for child in children:
        size = len(etree.tostring(child))
        count = sum(1 for _ in child.iter())
        if size <= room and count <= elements and (child.tag != TUPLE or tuples > 0):
            room -= size
            elements -= count
            tuples -= child.tag == TUPLE
        else:
            root.remove(child)
