"""A unit for the tests of the SBB programming model (tests/test_sbb_model.py)."""

from slee.events import EventType

DO = EventType("Do", "slee.tests", "1.0")

#: What the SBBs answered, outside any transaction.
JOURNAL = []
