"""A test service for the XDM client; its answers go to JOURNAL."""

from units import Journal

JOURNAL = Journal()
