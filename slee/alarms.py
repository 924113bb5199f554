"""
The alarm facility: components raise alarms that stay until cleared, and
management lists them.

An alarm is keyed by its source, type and instance: raising the same one
again updates it rather than adding a second.  Alarms are kept in memory;
each raise and clear is logged.
"""

import itertools

from twisted.logger import Logger

from slee.trace import log_observer

LEVELS = ("critical", "major", "minor", "warning", "indeterminate")


class AlarmSource:
    """The alarm facility as one component sees it."""

    __slots__ = ("_facility", "_source")

    def __init__(self, facility, source):
        self._facility = facility
        self._source = source

    def raise_alarm(self, alarm_type, instance, level, message):
        """@return: the alarm id."""
        return self._facility.raise_alarm(self._source, alarm_type, instance, level, message)

    def clear_alarm(self, alarm_type, instance):
        """@return: whether such an alarm was active."""
        return self._facility.clear(self._source, alarm_type, instance)


class AlarmFacility:
    log = Logger(namespace="slee.alarms", observer=log_observer)

    MAX_ALARMS = 10000

    def __init__(self, clock):
        self._clock = clock
        self._ids = itertools.count(1)
        self._alarms = {}

    def source(self, name):
        return AlarmSource(self, name)

    def raise_alarm(self, source, alarm_type, instance, level, message):
        if level not in LEVELS:
            raise ValueError(f"alarm level must be one of {', '.join(LEVELS)}, not {level!r}")
        key = (source, str(alarm_type), str(instance))
        alarm = self._alarms.get(key)
        if alarm is None:
            if len(self._alarms) >= self.MAX_ALARMS:
                raise ValueError(f"too many active alarms (at most {self.MAX_ALARMS})")
            alarm = self._alarms[key] = {"id": next(self._ids), "source": source,
                                         "type": key[1], "instance": key[2]}
        alarm.update(level=level, message=str(message), raised=self._clock.seconds())
        # "level" is the logger's own argument: the alarm's goes as "alarm_level".
        self.log.warn("alarm {id} raised by {source}: {type} {instance} [{alarm_level}] "
                      "{message}", id=alarm["id"], source=source, type=key[1],
                      instance=key[2], alarm_level=level, message=alarm["message"])
        return alarm["id"]

    def clear(self, source, alarm_type, instance):
        alarm = self._alarms.pop((source, str(alarm_type), str(instance)), None)
        if alarm is not None:
            self.log.info("alarm {id} cleared", id=alarm["id"])
        return alarm is not None

    def clear_by_id(self, alarm_id):
        for key, alarm in self._alarms.items():
            if alarm["id"] == alarm_id:
                del self._alarms[key]
                self.log.info("alarm {id} cleared by management", id=alarm_id)
                return True
        return False

    def active(self):
        return sorted((dict(a) for a in self._alarms.values()), key=lambda a: a["id"])
