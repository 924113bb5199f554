"""
The log's limits against floods (L{slee.log_limits}), on a fake clock.
"""

import pytest
from twisted.internet.task import Clock

from slee.log_limits import PeerLogLimit, RateLimitedWarning, source_key


class Lines:
    """A logger's lines, formatted, and its failures' exceptions."""

    def __init__(self):
        from twisted.logger import Logger
        self.events = []
        self.logger = Logger(observer=self.events.append)

    @property
    def texts(self):
        from twisted.logger import formatEvent
        return [formatEvent(event) for event in self.events]


def test_each_peer_gets_a_burst_then_one_line_per_interval():
    clock, lines = Clock(), Lines()
    limit = PeerLogLimit(clock, burst=3, interval=60)
    for n in range(10):
        limit.warn(lines.logger, "192.0.2.1", "garbage {n} from {host}", n=n, host="192.0.2.1")
    limit.warn(lines.logger, "192.0.2.2", "garbage from another")
    assert lines.texts == ["garbage 0 from 192.0.2.1", "garbage 1 from 192.0.2.1",
                           "garbage 2 from 192.0.2.1", "garbage from another"]
    clock.advance(59)
    limit.warn(lines.logger, "192.0.2.1", "still")
    assert len(lines.texts) == 4
    clock.advance(1)
    limit.warn(lines.logger, "192.0.2.1", "again")
    limit.warn(lines.logger, "192.0.2.1", "and again")
    assert lines.texts[4:] == ["again (8 more lines about this peer were not logged)"]
    clock.advance(120)
    limit.warn(lines.logger, "192.0.2.1", "later")
    assert lines.texts[5:] == ["later (1 more lines about this peer were not logged)"]


def test_all_peers_together_are_held_back_too():
    clock, lines = Clock(), Lines()
    limit = PeerLogLimit(clock, burst=2, interval=60, total=10)
    for n in range(100):
        limit.warn(lines.logger, f"192.0.2.{n}", "garbage")
    assert len(lines.texts) == 10
    clock.advance(6)    # the total allows one line every interval / total seconds
    limit.warn(lines.logger, "198.51.100.1", "garbage")
    assert len(lines.texts) == 11


def test_only_the_peers_heard_from_last_are_remembered():
    clock, lines = Clock(), Lines()
    limit = PeerLogLimit(clock, burst=1, interval=60, peers=2)
    for host in ("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.3"):
        limit.warn(lines.logger, host, "from {host}", host=host)
    assert limit._allowances.keys() == {"192.0.2.1", "192.0.2.3"}
    limit.warn(lines.logger, "192.0.2.2", "from 192.0.2.2, forgotten")
    assert lines.texts == ["from 192.0.2.1", "from 192.0.2.2", "from 192.0.2.3",
                           "from 192.0.2.2, forgotten"]


def test_a_peers_failure_is_logged_with_its_traceback_and_held_back():
    clock, lines = Clock(), Lines()
    limit = PeerLogLimit(clock, burst=1)
    for _ in range(2):
        try:
            raise RuntimeError("a bug")
        except RuntimeError:
            limit.failure(lines.logger, "192.0.2.1", "the receiver failed")
    [event] = lines.events
    assert event["log_failure"].check(RuntimeError)


def test_a_global_warning_is_logged_once_per_interval():
    clock, lines = Clock(), Lines()
    warning = RateLimitedWarning(clock, interval=60)
    for _ in range(5):
        warning(lines.logger, "full")
    clock.advance(60)
    warning(lines.logger, "full")
    assert lines.texts == ["full", "full (4 more like this were not logged)"]


@pytest.mark.parametrize("host, source", [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("[2001:db8:1:2::9]", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("not:an:address", "not:an:address"),
])
def test_sources_are_ipv4_addresses_and_ipv6_networks(host, source):
    assert source_key(host) == source
