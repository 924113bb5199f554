"""
Shared fixtures.

The reactor is imported inside fixtures, never at module top level, so
that pytest-twisted installs it first.  Every test is checked for what it
leaves behind in the reactor: delayed calls, listening ports, connections.
"""

import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parent / "units"

# The bare SIP peer (tests/sip/sipclient.py) serves the XDMS tests too.
sys.path.insert(0, str(Path(__file__).parent / "sip"))


def _reactor_state(reactor):
    readers = {r for r in reactor.getReaders() if not _internal(reactor, r)}
    writers = {w for w in reactor.getWriters() if not _internal(reactor, w)}
    calls = {c for c in reactor.getDelayedCalls() if c.active()}
    return readers | writers, calls


def _internal(reactor, selectable):
    return selectable in (getattr(reactor, "waker", None), getattr(reactor, "_internalReaders", ())) \
        or type(selectable).__name__ in ("_SocketWaker", "_UnixWaker", "_SIGCHLDWaker")


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fail a test that leaves timers, ports or connections in the reactor."""
    from twisted.internet import reactor
    before_selectables, before_calls = _reactor_state(reactor)
    yield
    after_selectables, after_calls = _reactor_state(reactor)
    leaked = after_selectables - before_selectables
    late = after_calls - before_calls
    for call in late:
        call.cancel()
    assert not leaked, f"the test left these open: {leaked}"
    assert not late, f"the test left these delayed calls: {late}"
