"""
The ceiling for XCAP GETs in one Python process: a twisted.web server that
answers every GET with the same document, as a static resource would,
without looking at the path.  Whatever the XDMS does on top (the XCAP RA,
the URI, authorization, the event and its transaction, the store) is the
price bench/xcap.sh measures.

Usage: python bench/xcap_static.py DOCUMENT [--port N]

Prints the port it listens on (one line) and serves until killed.
"""

import argparse
import sys

from twisted.internet import reactor
from twisted.web import resource, server


class Document(resource.Resource):
    isLeaf = True

    def __init__(self, content):
        super().__init__()
        self.content = content

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/resource-lists+xml")
        request.setHeader(b"etag", b'"static"')
        return self.content


class QuietSite(server.Site):
    def log(self, request):
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("document", help="the file every GET gets")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args(argv)
    with open(options.document, "rb") as file:
        site = QuietSite(Document(file.read()))
    port = reactor.listenTCP(options.port, site, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
