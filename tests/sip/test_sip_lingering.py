"""
The lingering record (L{resource_adaptors.sip.lingering}): what it holds,
how it is told from a live transaction, and that the garbage collector
lets it be.
"""

import gc
from collections import namedtuple

from resource_adaptors.sip import lingering

# A prepared UDP response, as SipTransports.prepare_response makes it.
PREPARED = (b"SIP/2.0 200 OK\r\n\r\n", "udp", "192.0.2.1", 5060, "192.0.2.2", 5060, None, False)


def test_a_record_reads_back_what_it_was_made_of():
    entry = lingering.record(32.5, True, "tag-1", PREPARED)
    assert lingering.is_record(entry)
    assert (lingering.deadline(entry), lingering.accepted(entry), lingering.to_tag(entry),
            lingering.resend(entry)) == (32.5, True, "tag-1", PREPARED)


def test_a_live_transaction_is_not_a_record():
    class Transaction:
        to_tag = "tag-1"
    assert not lingering.is_record(Transaction())
    assert not lingering.is_record(namedtuple("Like", "a b c d")(1, 2, 3, 4))


def test_a_record_is_untracked_by_the_garbage_collector():
    entry = lingering.record(32.5 + 0.0, False, None, tuple(PREPARED))
    gc.collect()
    assert not gc.is_tracked(entry)


def test_a_tuple_subclass_would_not_be():
    """Why a record is a plain tuple: the same values in a namedtuple stay tracked."""
    entry = namedtuple("Record", "deadline accepted to_tag resend")(32.5, False, None,
                                                                    tuple(PREPARED))
    gc.collect()
    assert gc.is_tracked(entry)
