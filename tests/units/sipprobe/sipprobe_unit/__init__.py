"""SBBs that use the SIP RA's provider the way the tests script them."""

from units import Journal

JOURNAL = Journal()
