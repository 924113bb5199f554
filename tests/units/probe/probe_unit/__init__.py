"""A unit for the router tests: a probe RA the tests drive and SBBs that obey commands."""

from slee.events import EventType

PING = EventType("Ping", "slee.tests", "1.0")
POKE = EventType("Poke", "slee.tests", "1.0")

# What was delivered, in order, outside any transaction: (sbb, event command).
JOURNAL = []

# The Child SBB objects, as (method, object), for the tests of their reuse.
OBJECTS = []
