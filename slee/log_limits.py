"""
Limits on what a flood can make the log say: a process facing the network
must not let its peers write its log faster than they write to it.

- L{RateLimitedWarning}: one warning per interval for what no one peer
  causes (a full table), with the count of those held back;
- L{PeerLogLimit}: what peers cause (input dropped, connections refused, a
  service failing on their message), held back per source (L{source_key})
  and in all.
"""

import ipaddress
from collections import OrderedDict


def source_key(host):
    """
    What counts as one source of connections and of log lines: an IPv4
    address (also when written as an IPv4-mapped IPv6 one), or an IPv6
    /64, one subscriber's network, whose addresses are the subscriber's
    to choose.
    """
    if ":" not in host:
        return host
    try:
        address = ipaddress.IPv6Address(host.strip("[]"))
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


class _Allowance:
    """
    A token bucket of log lines: C{burst} at once, then one more every
    C{period} seconds; and the count of the lines held back since the
    last one logged.
    """

    __slots__ = ("burst", "period", "tokens", "updated", "held_back")

    def __init__(self, burst, period, now):
        self.burst = burst
        self.period = period
        self.tokens = burst
        self.updated = now
        self.held_back = 0

    def take(self, now):
        """Whether a line may be logged now (it spends a token)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) / self.period)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _emit(method, format, allowance, suffix, kwargs):
    """Log a line with C{method}, telling how many like it were held back."""
    held_back, allowance.held_back = allowance.held_back, 0
    if held_back:
        format += suffix
    method(format, held_back=held_back, **kwargs)


class RateLimitedWarning:
    """
    A warning logged at most once per C{interval} seconds, with a count of
    those held back since: for what no one peer causes (a full table), so
    that a flood does not flood the log too.  What peers cause goes
    through a L{PeerLogLimit}.
    """

    def __init__(self, clock, interval=60.0):
        self._clock = clock
        self._allowance = _Allowance(1, interval, clock.seconds())

    def __call__(self, logger, format, /, **kwargs):
        if self._allowance.take(self._clock.seconds()):
            _emit(logger.warn, format, self._allowance,
                  " ({held_back} more like this were not logged)", kwargs)
        else:
            self._allowance.held_back += 1


class PeerLogLimit:
    """
    The log lines that peers cause (input dropped, connections refused, the
    receiver failing on their message), held back so that no input makes
    the log grow faster than itself: each source (L{source_key}) may cause
    C{burst} lines at once, then one every C{interval} seconds, and all
    sources together C{total} lines per C{interval}.  A source's next line
    tells how many of its lines were held back.  Only the C{peers} sources
    heard from last are tracked (the least recent forgotten first), so the
    memory it takes is bounded whatever the addresses.
    """

    def __init__(self, clock, burst=5, interval=60.0, total=100, peers=1024):
        self._clock = clock
        self._burst = burst
        self._interval = interval
        self._peers = peers
        self._allowances = OrderedDict()    # source -> its _Allowance, the least recent first
        self._everyone = _Allowance(total, interval / total, clock.seconds())

    def warn(self, logger, address, format, /, **kwargs):
        """Log a warning caused by the peer at C{address}, unless held back."""
        self._log(logger.warn, address, format, kwargs)

    def failure(self, logger, address, format, /, **kwargs):
        """Log the exception being handled (with its traceback), caused by
        the peer at C{address}, unless held back."""
        self._log(logger.failure, address, format, kwargs)

    def _log(self, method, address, format, kwargs):
        now = self._clock.seconds()
        allowance = self._allowance(source_key(address), now)
        if allowance.take(now) and self._everyone.take(now):
            _emit(method, format, allowance,
                  " ({held_back} more lines about this peer were not logged)", kwargs)
        else:
            allowance.held_back += 1

    def _allowance(self, source, now):
        allowances = self._allowances
        allowance = allowances.get(source)
        if allowance is not None:
            allowances.move_to_end(source)
            return allowance
        if len(allowances) >= self._peers:
            allowances.popitem(last=False)
        allowance = allowances[source] = _Allowance(self._burst, self._interval, now)
        return allowance
