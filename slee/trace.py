"""
Trace: component loggers (twisted.logger) with per-component levels.

Every SBB gets a L{Tracer} named C{slee.sbb.<service>.<sbb>}; the container
and RAs log under C{slee.*}.  A L{Tracer} checks the level configured for
its namespace (or the nearest configured parent namespace) before it
emits anything, so a quiet component costs one lookup and no formatting,
whatever observer twistd installed.  Levels are set from the command line
(C{--log-level}) and changed at run time through management.

The container's and the RAs' own loggers send their events to
L{log_observer}, which drops those below the level of their namespace in
L{LOG_LEVELS}, the process's levels (C{info} unless configured), before they
reach whatever observer twistd installed: a debug line about each stray
datagram must not reach the log of a server under a flood.
"""

from twisted.logger import (
    LogLevel, LogLevelFilterPredicate, Logger, PredicateResult, globalLogPublisher)


def parse_level(name):
    """
    @return: the L{LogLevel} named C{name}.
    @raise ValueError: naming the valid levels.
    """
    try:
        return LogLevel.levelWithName(name.lower())
    except Exception:
        names = ", ".join(level.name for level in LogLevel.iterconstants())
        raise ValueError(f"unknown log level {name!r} (one of {names})") from None


class TraceLevels:
    """The configured level of each component namespace."""

    def __init__(self, default="info"):
        self._default = parse_level(default)
        self.replace({})

    def replace(self, levels):
        """Forget the levels set so far; then set C{levels} (namespace -> level name)."""
        self._predicate = LogLevelFilterPredicate(defaultLogLevel=self._default)
        self._configured = {}
        for namespace, level in levels.items():
            self.set(namespace, level)

    def set(self, namespace, level):
        self._predicate.setLogLevelForNamespace(namespace, parse_level(level))
        self._configured[namespace] = parse_level(level).name

    def enabled(self, namespace, level):
        return level >= self._predicate.logLevelForNamespace(namespace)

    def configured(self):
        return dict(sorted(self._configured.items()))

    def predicate(self, event):
        """A predicate for twisted.logger's FilteringLogObserver."""
        if self.enabled(event.get("log_namespace") or "", event["log_level"]):
            return PredicateResult.maybe
        return PredicateResult.no


#: The log levels of the process: what C{twistd slee} configures, and what
#: L{log_observer} applies.
LOG_LEVELS = TraceLevels()


def log_observer(event):
    """
    The observer of the container's and the RAs' loggers
    (C{Logger(namespace=..., observer=log_observer)}): the global log
    publisher, for the events at or above their namespace's level.
    """
    if LOG_LEVELS.enabled(event.get("log_namespace") or "", event["log_level"]):
        globalLogPublisher(event)


class Tracer(Logger):
    """A Logger that drops events below its namespace's configured level."""

    def __init__(self, namespace, levels):
        super().__init__(namespace=namespace)
        self._levels = levels

    def emit(self, level, format=None, **kwargs):
        if self._levels.enabled(self.namespace, level):
            super().emit(level, format, **kwargs)


class TraceFacility:
    """Hands out tracers."""

    def __init__(self, levels):
        self.levels = levels
        self._tracers = {}

    def tracer(self, service, sbb):
        key = (service, sbb)
        tracer = self._tracers.get(key)
        if tracer is None:
            namespace = f"slee.sbb.{service.split(':', 1)[0]}.{sbb.split(':', 1)[0]}"
            tracer = self._tracers[key] = Tracer(namespace, self.levels)
        return tracer
