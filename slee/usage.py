"""
Usage parameters: counters and samples per service and SBB, read through
management.

They are statistics, not state: updated at once, outside any transaction
(a rolled-back delivery still counts), kept in memory, and reset by
management or a restart.
"""


class Sample:
    """Running count, minimum, maximum and sum of sampled values."""

    __slots__ = ("count", "minimum", "maximum", "total")

    def __init__(self):
        self.count = 0
        self.minimum = None
        self.maximum = None
        self.total = 0.0

    def add(self, value):
        self.count += 1
        self.total += value
        if self.minimum is None or value < self.minimum:
            self.minimum = value
        if self.maximum is None or value > self.maximum:
            self.maximum = value

    def as_dict(self):
        mean = self.total / self.count if self.count else None
        return {"count": self.count, "min": self.minimum, "max": self.maximum, "mean": mean}


class UsageParameters:
    """The usage parameters of one SBB within one service."""

    MAX_NAMES = 1000

    def __init__(self):
        self.counters = {}
        self.samples = {}

    def _check(self, name, table):
        if name not in table and len(self.counters) + len(self.samples) >= self.MAX_NAMES:
            raise ValueError(f"too many usage parameters (at most {self.MAX_NAMES})")

    def increment(self, name, amount=1):
        counters = self.counters
        if name not in counters:
            self._check(name, counters)
            counters[name] = 0
        counters[name] += amount

    def sample(self, name, value):
        samples = self.samples
        sample = samples.get(name)
        if sample is None:
            self._check(name, samples)
            sample = samples[name] = Sample()
        sample.add(value)


class UsageFacility:
    """Every service and SBB's usage parameters."""

    def __init__(self):
        self._parameters = {}

    def parameters(self, service, sbb):
        key = (service, sbb)
        parameters = self._parameters.get(key)
        if parameters is None:
            parameters = self._parameters[key] = UsageParameters()
        return parameters

    def report(self):
        return [
            {"service": service, "sbb": sbb, "counters": dict(p.counters),
             "samples": {name: s.as_dict() for name, s in p.samples.items()}}
            for (service, sbb), p in sorted(self._parameters.items())]

    def reset(self):
        self._parameters.clear()
