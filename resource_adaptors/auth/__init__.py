"""
Who is asking: the user store and HTTP/SIP Digest authentication (RFC 7616,
RFC 3261 §22), shared by the XCAP RA and the SIP RA
(L{resource_adaptors.sip.authentication}).
"""
