"""A test service for the subscriber child; what it hears goes to JOURNAL."""

from units import Journal

JOURNAL = Journal()
