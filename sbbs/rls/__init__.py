"""The resource list server (RFC 4662, 4826, 5367): one subscription for a whole list."""
