"""A test service for the location client; what it finds and hears goes to JOURNAL."""

from units import Journal

JOURNAL = Journal()
