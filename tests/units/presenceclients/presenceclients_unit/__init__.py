"""A test service for the publication and subscription clients; what it hears goes to JOURNAL."""

from units import Journal

JOURNAL = Journal()
