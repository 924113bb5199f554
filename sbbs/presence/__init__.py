"""The presence event package (RFC 3856) on the SIP event engine."""
