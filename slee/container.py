"""
The container: one database, the router, the engine, the facilities and
the installed components, with their life cycle and management.

    container = Container(db, var_dir)
    yield container.start()       # units, RA entities, timers, services
    ...
    yield container.stop()        # in-flight work finishes, database closed

Management operations (L{IContainerManagement}) run between deliveries,
each in a transaction of its own.  Deploying checks the whole unit first
(L{slee.deployment.load_unit}) and installs nothing if anything is wrong.
"""

import shutil
import time
import uuid
from pathlib import Path

import transaction
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from slee import acyclic_writer
from slee.alarms import AlarmFacility
from slee.components import Registry
from slee.deployment import load_unit, parse_descriptor, read_descriptor, unload_unit
from slee.activities import SERVICE_RA, ActivityInfo, EndActivity, activity_key
from slee.engine import Engine
from slee.errors import DeploymentError, ManagementError
from slee.events import BUILTIN_EVENT_TYPES
from slee.interfaces import IContainerManagement
from slee.naming import NamingFacility
from slee.object_cache import SWEEP_INTERVAL, sweep_empty_buckets
from slee.records import UnitRecord, container_state
from slee.router import EventRouter
from slee.timers import TimerFacility
from slee.trace import TraceFacility, TraceLevels, log_observer
from slee.usage import UsageFacility

@implementer(IContainerManagement)
class Container:
    """
    @ivar engine: the L{Engine} (SBB semantics).
    @ivar router: the L{EventRouter} (queue and transactions).
    @ivar registry: the installed components.
    @ivar reactor: what RA entities open sockets on (L{ISleeEndpoint.reactor}).
    @ivar clock: what timers, the router and RA entities measure time on:
        the reactor, or a C{task.Clock} a test drives.
    """

    log = Logger(namespace="slee.container", observer=log_observer)

    def __init__(self, db, var_dir, clock=None, batch_max=256, queue_max=100000,
                 trace_levels=None, ra_properties=None, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        if clock is None:
            clock = reactor
        self.reactor = reactor
        acyclic_writer.install()
        self.db = db
        self.var_dir = Path(var_dir)
        self.clock = clock
        #: RA entity name -> properties set over its unit's (RA options).
        self.ra_properties = ra_properties or {}
        self.transaction_manager = transaction.TransactionManager(explicit=True)
        self.registry = Registry()
        for event_type in BUILTIN_EVENT_TYPES:
            self.registry.event_types[event_type.id] = event_type
        self.router = EventRouter(self.transaction_manager, clock, batch_max=batch_max,
                                  queue_max=queue_max)
        self.levels = trace_levels or TraceLevels()
        self.usage_facility = UsageFacility()
        self.alarm_facility = AlarmFacility(clock)
        timers = TimerFacility(clock)
        naming = NamingFacility()
        self.engine = Engine(self.registry, self.router, clock, timers, naming,
                             self.usage_facility, self.alarm_facility,
                             TraceFacility(self.levels))
        self.engine.service_emptied = self._service_emptied
        timers.engine = naming.engine = self.engine
        self.deployed = {}
        self.connection = None
        self._sweeper = task.LoopingCall(self._sweep_object_cache)
        self._sweeper.clock = clock
        self.started_at = None
        self.state = "stopped"

    # -- life cycle --------------------------------------------------------

    @defer.inlineCallbacks
    def start(self):
        """
        Open the database, load the deployed units, activate RA entities,
        end the activities that did not survive, re-arm timers, start the
        active services' activities, and start routing.
        """
        self.state = "starting"
        self.connection = self.db.open(transaction_manager=self.transaction_manager)
        self.engine.state = self.router.run_in_transaction(
            lambda: container_state(self.connection.root()))
        records = self.router.run_in_transaction(
            lambda: sorted(self.engine.state.units.values(), key=lambda u: u.sequence))
        for record in records:
            try:
                unit = load_unit(record.path, self.registry, ra_properties=self.ra_properties)
            except DeploymentError as e:
                self.log.error("deployed unit {name} cannot be loaded again: {error}",
                               name=record.name, error=str(e))
                self.alarm_facility.raise_alarm("slee.container", "unit-load-failed",
                                                record.name, "major", str(e))
                continue
            self._install(unit)
            for service_id, state in record.services.items():
                if service_id in self.registry.services:
                    self.registry.services[service_id].state = state
        self.registry.reindex()
        self.router.run_in_transaction(self._recover_activities)
        for unit in self.deployed.values():
            yield self._activate_ra_entities(unit)
        self.router.run_in_transaction(self._restart_services)
        self.engine.timers.rearm_all()
        self.started_at = time.time()
        self.state = "running"
        self.router.resume()
        self._sweeper.start(SWEEP_INTERVAL, now=False)

    def _sweep_object_cache(self):
        sweep_empty_buckets(self.connection._cache)

    def _recover_activities(self):
        """Durable activities live on; the others end now."""
        engine = self.engine
        for record in list(engine.state.activities.values()):
            key = record.key
            engine.live[key] = info = ActivityInfo(record.ra, record.handle, record.durable)
            if not record.durable:
                info.ending = True
                self.router.enqueue(EndActivity(engine, key))

    def _restart_services(self):
        for service in self.registry.services.values():
            if service.state == "active":
                self.engine.start_service_activity(service.id)
            elif service.state == "stopping" and not self.engine.state.root_count(service.id):
                self._set_service_state(service, "inactive")

    @defer.inlineCallbacks
    def stop(self):
        """
        Stop: finish queued work, stop RA entities (their activities end),
        finish that too, and close the database.
        """
        if self.state != "running":
            return
        self.state = "stopping"
        self.router.pause()
        self.router.drain()
        for entity in list(self.registry.ra_entities.values()):
            if entity.state == "active":
                try:
                    yield entity.stop(self.engine)
                except Exception:
                    self.log.failure("RA entity {name} failed to stop", name=entity.name)
        self.router.drain()
        self.engine.timers.disarm_all()
        if self._sweeper.running:
            self._sweeper.stop()
        self.connection.close()
        self.db.close()
        for unit in self.deployed.values():
            unload_unit(unit)
        self.state = "stopped"

    # -- installing --------------------------------------------------------

    def _install(self, unit):
        registry = self.registry
        registry.event_types.update(unit.event_types)
        registry.sbbs.update(unit.sbbs)
        registry.services.update(unit.services)
        registry.ra_entities.update(unit.ra_entities)
        self.deployed[unit.name] = unit

    def _uninstall(self, unit):
        registry = self.registry
        for type_id in unit.event_types:
            registry.event_types.pop(type_id, None)
        for sbb_id in unit.sbbs:
            registry.sbbs.pop(sbb_id, None)
        for service_id in unit.services:
            registry.services.pop(service_id, None)
        for name in unit.ra_entities:
            registry.ra_entities.pop(name, None)
        self.deployed.pop(unit.name, None)
        registry.reindex()
        unload_unit(unit)

    @defer.inlineCallbacks
    def _activate_ra_entities(self, unit):
        for entity in unit.ra_entities.values():
            try:
                yield entity.activate(self.engine, self.reactor)
            except Exception as e:
                self.log.failure("RA entity {name} failed to activate", name=entity.name)
                self.alarm_facility.raise_alarm("slee.container", "ra-activation-failed",
                                                entity.name, "major", str(e))

    # -- management --------------------------------------------------------

    def _check_running(self):
        if self.state != "running":
            raise ManagementError(f"the container is {self.state}")

    def status(self):
        state = self.engine.state
        counts = self.router.run_in_transaction(lambda: {
            "units": len(self.deployed), "services": len(self.registry.services),
            "ra_entities": len(self.registry.ra_entities),
            "activities": len(self.engine.live),
            "sbb_entities": len(state.entities), "timers": len(state.timers)})
        return {"state": self.state,
                "uptime": 0 if self.started_at is None else time.time() - self.started_at,
                "database": self.db.getName(), "counts": counts,
                "events": {"delivered": self.router.delivered,
                           "rolled_back": self.router.rolled_back,
                           "queued": len(self.router)}}

    @defer.inlineCallbacks
    def deploy(self, path):
        """
        Check the unit at C{path}, keep a copy under the var directory,
        install it and activate its RA entities; its services stay
        inactive.
        """
        self._check_running()
        source = Path(path)
        if not source.is_absolute():
            raise ManagementError(f"deploy needs an absolute path, not {path!r}")
        descriptor = parse_descriptor(*read_descriptor(source))
        name = descriptor.get("unit", {}).get("name") if isinstance(
            descriptor.get("unit"), dict) else None
        if isinstance(name, str) and name in self.deployed:
            raise DeploymentError(f"unit {name!r} is deployed already; undeploy it first")
        stored = self._store_copy(source)
        try:
            unit = load_unit(stored, self.registry, source=source,
                             ra_properties=self.ra_properties)
            if unit.name in self.deployed:
                raise DeploymentError(f"unit {unit.name!r} is deployed already")
        except BaseException:
            _remove(stored)
            raise
        self._install(unit)
        try:
            self.router.run_in_transaction(self._record_unit, unit, source, stored)
        except BaseException:
            self._uninstall(unit)
            _remove(stored)
            raise
        yield self._activate_ra_entities(unit)
        self.log.info("deployed unit {name} from {source}", name=unit.name, source=str(source))
        return unit.describe()

    def _store_copy(self, source):
        units_dir = self.var_dir / "units"
        units_dir.mkdir(parents=True, exist_ok=True)
        stored = units_dir / f"{uuid.uuid4().hex}{'' if source.is_dir() else source.suffix}"
        if source.is_dir():
            shutil.copytree(source, stored, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, stored)
        return stored

    def _record_unit(self, unit, source, stored):
        units = self.engine.state.units
        sequence = max((u.sequence for u in units.values()), default=0) + 1
        record = UnitRecord(unit.name, str(stored), str(source), sequence)
        record.services = {service_id: "inactive" for service_id in unit.services}
        units[unit.name] = record

    @defer.inlineCallbacks
    def undeploy(self, name):
        """Remove a unit whose services are all inactive."""
        self._check_running()
        unit = self.deployed.get(name)
        if unit is None:
            raise ManagementError(f"no deployed unit named {name!r}")
        busy = [s.id for s in unit.services.values() if s.state != "inactive"]
        if busy:
            raise ManagementError(f"service {busy[0]} is {unit.services[busy[0]].state}; "
                                  f"deactivate it (and let it stop) first")
        users = self._dependents(unit)
        if users:
            raise ManagementError(f"unit {users[0]} uses components of {name}; undeploy it first")
        for entity in unit.ra_entities.values():
            if entity.state == "active":
                yield entity.stop(self.engine)
        record = self.router.run_in_transaction(self.engine.state.units.pop, name)
        self._uninstall(unit)
        _remove(Path(record.path))
        self.log.info("undeployed unit {name}", name=name)
        return {"name": name}

    def _dependents(self, unit):
        """@return: the names of other units whose SBBs use this unit's components."""
        users = []
        for other in self.deployed.values():
            if other is unit:
                continue
            for component in other.sbbs.values():
                uses_sbb = any(child.unit == unit.name for _, child in component.relations.values())
                uses_type = any(type_id in unit.event_types for type_id in component.handlers)
                if uses_sbb or uses_type:
                    users.append(other.name)
                    break
        return users

    def _service(self, name):
        service = self.registry.find_service(name)
        if service is None:
            raise ManagementError(f"no installed service named {name!r}")
        return service

    def activate(self, service):
        self._check_running()
        service = self._service(service)
        if service.state == "active":
            raise ManagementError(f"service {service.id} is active already")
        if service.state == "stopping":
            raise ManagementError(f"service {service.id} is still stopping")

        def activate():
            self._set_service_state(service, "active")
            self.engine.start_service_activity(service.id)

        self.router.run_in_transaction(activate)
        self.log.info("service {service} active", service=service.id)
        return {"service": service.id, "state": service.state}

    def deactivate(self, service):
        self._check_running()
        service = self._service(service)
        if service.state != "active":
            raise ManagementError(f"service {service.id} is {service.state}, not active")

        def deactivate():
            empty = not self.engine.state.root_count(service.id)
            self._set_service_state(service, "inactive" if empty else "stopping")
            key = activity_key(SERVICE_RA, service.id)
            if key in self.engine.live:
                self.engine.request_end(key)

        self.router.run_in_transaction(deactivate)
        self.log.info("service {service} {state}", service=service.id, state=service.state)
        return {"service": service.id, "state": service.state}

    def _set_service_state(self, service, state):
        """Record a service's new state; it takes effect at commit."""
        record = self.engine.state.units[service.unit]
        record.services[service.id] = state
        record._p_changed = True

        def apply():
            service.state = state
            self.registry.reindex()

        self.engine.after_commit(apply)

    def _service_emptied(self, service_id):
        service = self.registry.services.get(service_id)
        if service is not None and service.state == "stopping":
            self._set_service_state(service, "inactive")
            self.engine.after_commit(lambda: self.log.info(
                "service {service} inactive", service=service_id))

    def units(self):
        return [unit.describe() for unit in self.deployed.values()]

    def services(self):
        def list_services():
            return [{"id": s.id, "name": s.name, "unit": s.unit, "state": s.state,
                     "root_sbb": s.root.id, "priority": s.priority,
                     "root_entities": self.engine.state.root_count(s.id)}
                    for s in sorted(self.registry.services.values(), key=lambda s: s.id)]
        return self.router.run_in_transaction(list_services)

    def ra_entities(self):
        return [{"name": e.name, "type": e.type_name, "unit": e.unit, "state": e.state,
                 "properties": e.properties,
                 "activities": sum(1 for key in self.engine.live if key.startswith(e.name + "/")),
                 "status": e.adaptor.status() if e.state == "active" else {}}
                for e in sorted(self.registry.ra_entities.values(), key=lambda e: e.name)]

    def activities(self):
        def list_activities():
            stored = self.engine.state.activities
            answer = []
            for key, info in sorted(self.engine.live.items()):
                record = stored.get(key)
                answer.append({
                    "key": key, "ra": info.ra, "handle": info.handle, "durable": info.durable,
                    "attached": 0 if record is None else len(record.attached),
                    "names": [] if record is None else sorted(record.names),
                    "timers": 0 if record is None else len(record.timers),
                    "ending": info.ending})
            return answer
        return self.router.run_in_transaction(list_activities)

    def sbb_entities(self):
        def list_entities():
            return [{"id": e.id, "service": e.service, "sbb": e.sbb, "parent": e.parent,
                     "priority": e.priority, "attached": sorted(e.attached),
                     "children": {name: list(ids) for name, ids in e.children.items()},
                     "cmp": {} if e.cmp is None else
                            {name: repr(value) for name, value in e.cmp.fields().items()}}
                    for e in self.engine.state.entities.values()]
        return self.router.run_in_transaction(list_entities)

    def usage(self):
        return self.usage_facility.report()

    def reset_usage(self):
        self.usage_facility.reset()
        return {}

    def alarms(self):
        return self.alarm_facility.active()

    def clear_alarm(self, alarm_id):
        try:
            alarm_id = int(alarm_id)
        except (TypeError, ValueError):
            raise ManagementError(f"an alarm id is a number, not {alarm_id!r}") from None
        if not self.alarm_facility.clear_by_id(alarm_id):
            raise ManagementError(f"no active alarm {alarm_id}")
        return {"cleared": alarm_id}

    def trace_levels(self):
        return self.levels.configured()

    def set_trace_level(self, component, level):
        if not isinstance(component, str) or not component:
            raise ManagementError(f"a component is a non-empty namespace, not {component!r}")
        try:
            self.levels.set(component, level)
        except (ValueError, AttributeError) as e:
            raise ManagementError(str(e)) from None
        return {"component": component, "level": level}


def _remove(path):
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()

