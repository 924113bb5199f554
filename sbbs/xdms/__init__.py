"""The XDMS: an XCAP server (RFC 4825) for users' XML documents, as SBBs."""
