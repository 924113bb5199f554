"""
Event types, and the events the container itself fires.

An event type is named by (name, vendor, version), as in JAIN SLEE.  Its
string form ``name:vendor:version`` is the key everything else uses: SBB
handler tables, event masks, the persistent records.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EventType:
    """
    The name of a kind of event.  Equal names mean the same type, wherever
    the objects were made.
    """

    name: str
    vendor: str
    version: str
    #: ``name:vendor:version``, made once: every delivery looks it up.
    id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "id", f"{self.name}:{self.vendor}:{self.version}")

    def __str__(self):
        return self.id

    @classmethod
    def parse(cls, text):
        """
        Read ``name:vendor:version``.

        @raise ValueError: if C{text} does not have three non-empty parts.
        """
        parts = text.split(":")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"not an event type id (name:vendor:version): {text!r}")
        return cls(*parts)


CONTAINER_VENDOR = "slee"
CONTAINER_VERSION = "1.1"

ACTIVITY_END = EventType("ActivityEndEvent", CONTAINER_VENDOR, CONTAINER_VERSION)
TIMER = EventType("TimerEvent", CONTAINER_VENDOR, CONTAINER_VERSION)
SERVICE_STARTED = EventType("ServiceStartedEvent", CONTAINER_VENDOR, CONTAINER_VERSION)

BUILTIN_EVENT_TYPES = (ACTIVITY_END, TIMER, SERVICE_STARTED)


@dataclass(frozen=True, slots=True)
class ActivityEndEvent:
    """Delivered last on an activity; then every SBB entity is detached."""

    activity_key: str


@dataclass(frozen=True, slots=True)
class TimerEvent:
    """
    A timer expired.

    @ivar timer_id: what L{slee.timers.TimerFacility.set_timer} returned.
    @ivar scheduled_time: when it was due (seconds since the epoch).
    @ivar expiry_time: when it fired; later than scheduled after a restart.
    @ivar remaining: repetitions still to come (C{None}: endless).
    """

    timer_id: int
    scheduled_time: float
    expiry_time: float
    remaining: object


@dataclass(frozen=True, slots=True)
class ServiceStartedEvent:
    """Fired on a service's own activity when the service is activated."""

    service: str
