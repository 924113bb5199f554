"""The XCAP resource adaptor (RFC 4825): HTTP requests on XCAP URIs as events."""
