"""
XML that every service reads: parsing what the network sends, safely
(L{sbbs.xml.safe}), and the namespaces of the documents they share
(L{sbbs.xml.namespaces}).  The XDMS, the presence server and the resource
list server all depend on this package, and none on another for it.
"""
