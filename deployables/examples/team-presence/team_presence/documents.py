"""
The documents team presence reads and writes: pure functions, no I/O, so
that they are easy to try in a Python shell.

Both documents it reads come from this container's own servers, the
resource list from the XDMS (which has checked it against its schema) and
the PIDF from the presence server, but they were written by users: they
are still parsed without DTDs, entities or network access.
"""

from xml.sax.saxutils import escape, quoteattr

from lxml import etree

RESOURCE_LISTS = "urn:ietf:params:xml:ns:resource-lists"
PIDF = "urn:ietf:params:xml:ns:pidf"
PIDF_TYPE = "application/pidf+xml"

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _parse(content):
    """@return: the root element of C{content}, or None when it is no XML."""
    try:
        return etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError:
        return None


def contacts(resource_lists, name):
    """
    @return: the URIs of the entries of the list C{name} (at any depth) of
        a resource-lists document (RFC 4826), sorted, each once; () when
        there is no such list.
    """
    root = _parse(resource_lists)
    if root is None:
        return ()
    uris = root.xpath("//rl:list[@name=$name]/rl:entry/@uri",
                      namespaces={"rl": RESOURCE_LISTS}, name=name)
    return tuple(sorted(set(uris)))


def is_open(pidf):
    """@return: whether a PIDF document (RFC 3863) has a tuple whose basic status is open."""
    root = _parse(pidf) if pidf else None
    return root is not None and "open" in root.xpath(
        "p:tuple/p:status/p:basic/text()", namespaces={"p": PIDF})


def team_pidf(team, available, members):
    """
    @return: the PIDF document of the team: open while someone is
        available, with a note saying how many of how many.
    """
    basic = "open" if available else "closed"
    note = f"{available} of {members} available"
    return (f'<?xml version="1.0" encoding="UTF-8"?>'
            f'<presence xmlns="{PIDF}" entity={quoteattr(team)}>'
            f'<tuple id="team"><status><basic>{basic}</basic></status></tuple>'
            f'<note>{escape(note)}</note></presence>').encode()
