"""
Deployable units: reading, checking and loading them.

A deployable unit (DU) is a directory, a zip file or a wheel whose top
level holds a C{deployable.toml} descriptor beside the Python packages it
names.  The descriptor (TOML):

    [unit]
    name = "counter-example"        # letters, digits, '.', '_', '-'
    vendor = "org.example"
    version = "1.0"

    [[event-types]]                 # the event types this unit defines
    name = "Ping"                   # vendor and version default to the unit's

    [[sbbs]]
    name = "CounterSbb"
    class = "counter_example.sbb:CounterSbb"
    env = { step = 2 }              # its environment entries (Sbb.environment)

    [[services]]
    name = "counter"
    root-sbb = "CounterSbb"         # an SBB of this unit, by name or full id
    priority = 0                    # -128 to 127

    [[ra-entities]]
    name = "line"
    class = "counter_example.line:LineResourceAdaptor"
    properties = { port = 0 }

L{load_unit} checks everything before anything is installed: every error
names the descriptor file and the field (C{sbbs[0].class: ...}), and a
unit that fails leaves no module imported and the container untouched.
"""

import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from zope.interface.exceptions import Invalid
from zope.interface.interface import InterfaceClass
from zope.interface.verify import verifyClass

from slee.components import SbbComponent, ServiceComponent
from slee.errors import ConfigurationError, DeploymentError
from slee.events import BUILTIN_EVENT_TYPES, EventType
from slee.interfaces import IResourceAdaptor
from slee.resources import ResourceAdaptorEntity, configured, sbb_env_target
from slee.sbb import Sbb, Select, handlers_of

DESCRIPTOR = "deployable.toml"
MAX_DESCRIPTOR_SIZE = 1 << 20
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass
class DeployableUnit:
    """
    A checked unit, ready to install.

    @ivar modules: the names of the modules imported from it.
    """

    name: str
    path: Path
    event_types: dict = field(default_factory=dict)
    sbbs: dict = field(default_factory=dict)
    services: dict = field(default_factory=dict)
    ra_entities: dict = field(default_factory=dict)
    modules: list = field(default_factory=list)

    def describe(self):
        return {"name": self.name, "path": str(self.path),
                "event_types": sorted(self.event_types), "sbbs": sorted(self.sbbs),
                "services": sorted(self.services), "ra_entities": sorted(self.ra_entities)}


def read_descriptor(path):
    """
    @return: (descriptor text, its display name) of the unit at C{path}.
    @raise DeploymentError: if there is none.
    """
    path = Path(path)
    if path.is_dir():
        descriptor = path / DESCRIPTOR
        if not descriptor.is_file():
            raise DeploymentError(f"{descriptor}: no descriptor: a deployable unit directory "
                                  f"holds {DESCRIPTOR} at its top level")
        if descriptor.stat().st_size > MAX_DESCRIPTOR_SIZE:
            raise DeploymentError(f"{descriptor}: larger than {MAX_DESCRIPTOR_SIZE} bytes")
        return descriptor.read_bytes(), str(descriptor)
    if path.is_file():
        display = f"{path}!{DESCRIPTOR}"
        try:
            with zipfile.ZipFile(path) as archive:
                try:
                    info = archive.getinfo(DESCRIPTOR)
                except KeyError:
                    raise DeploymentError(f"{display}: no descriptor in the archive") from None
                if info.file_size > MAX_DESCRIPTOR_SIZE:
                    raise DeploymentError(f"{display}: larger than {MAX_DESCRIPTOR_SIZE} bytes")
                return archive.read(info), display
        except zipfile.BadZipFile:
            raise DeploymentError(f"{path}: not a directory, zip file or wheel") from None
    raise DeploymentError(f"{path}: no such file or directory")


def parse_descriptor(data, display):
    """@return: the descriptor's table; @raise DeploymentError: if not TOML."""
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise DeploymentError(f"{display}: not UTF-8: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise DeploymentError(f"{display}: not valid TOML: {e}") from None


class _Checker:
    """Reads one descriptor; every error names the file and field."""

    def __init__(self, display):
        self.display = display

    def fail(self, where, message):
        raise DeploymentError(f"{self.display}: {where}: {message}")

    def table(self, value, where):
        if not isinstance(value, dict):
            self.fail(where, "must be a table")
        return value

    def tables(self, descriptor, key):
        value = descriptor.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, "must be an array of tables ([[" + key + "]])")
        return value

    def string(self, table, key, where, default=None, name=False):
        value = table.get(key, default)
        if value is None:
            self.fail(f"{where}.{key}", "is required")
        if not isinstance(value, str) or not value:
            self.fail(f"{where}.{key}", f"must be a non-empty string, not {value!r}")
        if name and not set(value) <= NAME_CHARACTERS:
            self.fail(f"{where}.{key}", f"{value!r} may hold only letters, digits, '.', '_', '-'")
        return value

    def known_keys(self, table, where, keys):
        unknown = sorted(set(table) - set(keys))
        if unknown:
            self.fail(f"{where}.{unknown[0]}", f"unknown field (known: {', '.join(keys)})")

    def import_object(self, spec, where):
        module_name, _, attribute = spec.partition(":")
        if not module_name or not attribute:
            self.fail(where, f"{spec!r} is not 'module:attribute'")
        try:
            module = import_module(module_name)
        except Exception as e:
            self.fail(where, f"cannot import {module_name!r}: {type(e).__name__}: {e}")
        obj = module
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                self.fail(where, f"module {module_name!r} has no attribute {attribute!r}")
        return obj


def load_unit(path, registry, source=None, ra_properties=None):
    """
    Read, import and check the unit at C{path} against the installed
    components in C{registry}.

    @param source: where the user deployed it from, when C{path} is the
        container's stored copy: errors name the user's file.
    @param ra_properties: RA entity name -> properties set over the ones
        the descriptor gives (the RA options of the command line).

    @return: a L{DeployableUnit}, not yet installed.
    @raise DeploymentError: naming the file and field of the first problem;
        the modules imported from the unit are forgotten again.
    """
    path = Path(path).resolve()
    data, display = read_descriptor(path)
    if source is not None:
        display = str(source) + display[len(str(path)):]
    descriptor = parse_descriptor(data, display)
    for name in _top_level_modules(path):
        module = sys.modules.get(name)
        if module is not None:
            raise DeploymentError(f"{display}: module {name!r} is imported already (from "
                                  f"{getattr(module, '__file__', None) or 'elsewhere'})")
    entry = str(path)
    before = set(sys.modules)
    sys.path.insert(0, entry)
    try:
        unit = _check(_Checker(display), descriptor, path, registry, ra_properties or {})
    except BaseException:
        _forget_modules(entry, before)
        raise
    unit.modules = sorted(name for name in set(sys.modules) - before
                          if _module_from(sys.modules[name], entry))
    return unit


def _top_level_modules(path):
    """@return: the names of the modules and packages at a unit's top level."""
    if path.is_dir():
        names = [p.name for p in path.iterdir()]
    else:
        with zipfile.ZipFile(path) as archive:
            names = {name.split("/", 1)[0] for name in archive.namelist()}
    found = set()
    for name in names:
        stem = name[:-3] if name.endswith(".py") else name
        if stem.isidentifier() and (name.endswith(".py") or "." not in name):
            found.add(stem)
    return sorted(found)


def unload_unit(unit):
    """Forget the modules of an undeployed unit and its sys.path entry."""
    for name in unit.modules:
        sys.modules.pop(name, None)
    entry = str(unit.path)
    if entry in sys.path:
        sys.path.remove(entry)


def _module_from(module, entry):
    filename = getattr(module, "__file__", None) or ""
    return filename.startswith(entry + "/") or filename.startswith(entry + "\\")


def _forget_modules(entry, before):
    for name in set(sys.modules) - before:
        if _module_from(sys.modules[name], entry):
            del sys.modules[name]
    if entry in sys.path:
        sys.path.remove(entry)


def _full_id(checker, table, where, unit_table):
    name = checker.string(table, "name", where)
    if ":" in name:
        checker.fail(f"{where}.name", f"{name!r} may not contain ':'")
    vendor = checker.string(table, "vendor", where, default=unit_table["vendor"])
    version = checker.string(table, "version", where, default=unit_table["version"])
    return f"{name}:{vendor}:{version}"


def _check(checker, descriptor, path, registry, ra_properties):
    checker.known_keys(descriptor, "descriptor", ("unit", "event-types", "sbbs", "services",
                                                  "ra-entities"))
    if "unit" not in descriptor:
        checker.fail("unit", "is required")
    unit_table = checker.table(descriptor["unit"], "unit")
    checker.known_keys(unit_table, "unit", ("name", "vendor", "version", "description"))
    unit = DeployableUnit(name=checker.string(unit_table, "name", "unit", name=True), path=path)
    unit_table = {"vendor": checker.string(unit_table, "vendor", "unit"),
                  "version": checker.string(unit_table, "version", "unit")}

    for i, table in enumerate(checker.tables(descriptor, "event-types")):
        where = f"event-types[{i}]"
        checker.known_keys(table, where, ("name", "vendor", "version"))
        type_id = _full_id(checker, table, where, unit_table)
        if type_id in registry.event_types or type_id in unit.event_types:
            checker.fail(where, f"event type {type_id} is installed already")
        unit.event_types[type_id] = EventType.parse(type_id)

    for i, table in enumerate(checker.tables(descriptor, "ra-entities")):
        where = f"ra-entities[{i}]"
        checker.known_keys(table, where, ("name", "class", "properties"))
        name = checker.string(table, "name", where, name=True)
        if name in registry.ra_entities or name in unit.ra_entities or name.startswith("slee."):
            checker.fail(f"{where}.name", f"RA entity {name!r} exists already")
        type_name = checker.string(table, "class", where)
        cls = checker.import_object(type_name, f"{where}.class")
        if not isinstance(cls, type) or not IResourceAdaptor.implementedBy(cls):
            checker.fail(f"{where}.class", f"{type_name} does not implement IResourceAdaptor")
        properties = checker.table(table.get("properties", {}), f"{where}.properties")
        properties = {**properties, **ra_properties.get(name, {})}
        adaptor = cls()
        try:
            adaptor.configure(dict(properties))
        except ConfigurationError as e:
            checker.fail(f"{where}.properties", str(e))
        for event_type in getattr(cls, "event_types", ()):
            if event_type.id not in registry.event_types:
                unit.event_types.setdefault(event_type.id, event_type)
        unit.ra_entities[name] = ResourceAdaptorEntity(name, type_name, unit.name, adaptor,
                                                       dict(properties))

    known_types = set(registry.event_types) | set(unit.event_types) | {
        t.id for t in BUILTIN_EVENT_TYPES}
    by_class = {}
    for i, table in enumerate(checker.tables(descriptor, "sbbs")):
        where = f"sbbs[{i}]"
        checker.known_keys(table, where, ("name", "vendor", "version", "class", "env"))
        sbb_id = _full_id(checker, table, where, unit_table)
        if sbb_id in registry.sbbs or sbb_id in unit.sbbs:
            checker.fail(f"{where}.name", f"SBB {sbb_id} is installed already")
        cls = checker.import_object(checker.string(table, "class", where), f"{where}.class")
        _check_sbb_class(checker, cls, f"{where}.class", known_types)
        env = {**checker.table(table.get("env", {}), f"{where}.env"),
               **ra_properties.get(sbb_env_target(table.get("name")), {})}
        try:
            env = configured(cls.environment, env)
        except ConfigurationError as e:
            checker.fail(f"{where}.env", str(e))
        component = unit.sbbs[sbb_id] = SbbComponent(sbb_id, cls, unit.name, env)
        by_class[cls] = component

    for i, (sbb_id, component) in enumerate(unit.sbbs.items()):
        for relation_name, relation in component.declared_relations().items():
            child = _resolve_child(relation.sbb, by_class, unit.sbbs, registry)
            if child is None:
                checker.fail(f"sbbs[{i}].class",
                             f"child relation {relation_name!r} names {relation.sbb!r}, "
                             f"which is not an SBB of this unit or an installed one")
            _check_priority(checker, relation.priority, f"sbbs[{i}].class: {relation_name}")
            component.relations[relation_name] = (relation, child)

    for i, table in enumerate(checker.tables(descriptor, "services")):
        where = f"services[{i}]"
        checker.known_keys(table, where, ("name", "vendor", "version", "root-sbb", "priority"))
        service_id = _full_id(checker, table, where, unit_table)
        if service_id in registry.services or service_id in unit.services:
            checker.fail(f"{where}.name", f"service {service_id} is installed already")
        root_name = checker.string(table, "root-sbb", where)
        root = unit.sbbs.get(root_name) or next(
            (c for c in unit.sbbs.values() if c.id.split(":")[0] == root_name), None)
        if root is None:
            checker.fail(f"{where}.root-sbb", f"{root_name!r} is not an SBB of this unit")
        priority = table.get("priority", 0)
        _check_priority(checker, priority, f"{where}.priority")
        unit.services[service_id] = ServiceComponent(service_id, root, priority, unit.name)
    return unit


def _check_priority(checker, priority, where):
    if not isinstance(priority, int) or isinstance(priority, bool) or not -128 <= priority <= 127:
        checker.fail(where, f"priority must be an integer from -128 to 127, not {priority!r}")


def _resolve_child(target, by_class, unit_sbbs, registry):
    if isinstance(target, str):
        for component in list(unit_sbbs.values()) + list(registry.sbbs.values()):
            if component.cls.__name__ == target or component.id == target:
                return component
        return None
    if target in by_class:
        return by_class[target]
    return next((c for c in registry.sbbs.values() if c.cls is target), None)


def _check_sbb_class(checker, cls, where, known_types):
    if not isinstance(cls, type) or not issubclass(cls, Sbb):
        checker.fail(where, f"{cls!r} is not a subclass of slee.sbb.Sbb")
    name = cls.__qualname__
    for type_id, spec in handlers_of(cls).items():
        if type_id not in known_types:
            checker.fail(where, f"{name}.{spec.method} handles event type {type_id}, which is "
                                f"neither defined by this unit nor installed")
        if not callable(getattr(cls, spec.method, None)):
            checker.fail(where, f"{name} has no method {spec.method!r} for {type_id}")
        if spec.selector is not None and not callable(getattr(cls, spec.selector, None)):
            checker.fail(where, f"{name}.{spec.method}: initial event selector method "
                                f"{spec.selector!r} does not exist")
        if spec.initial and cls.singleton and (spec.select != (Select.ACTIVITY_CONTEXT,)
                                               or spec.selector is not None):
            checker.fail(where, f"{name}.{spec.method}: a singleton SBB's initial events "
                                f"all go to its one entity: it declares no select or selector")
        if spec.initial and not spec.select and spec.selector is None:
            checker.fail(where, f"{name}.{spec.method}: an initial event needs select "
                                f"variables or a selector method")
    interface = cls.local_interface
    if not isinstance(interface, InterfaceClass):
        checker.fail(where, f"{name}.local_interface must be a zope.interface Interface")
    try:
        verifyClass(interface, cls, tentative=True)
    except Invalid as e:
        checker.fail(where, f"{name} does not implement its local interface "
                            f"{interface.__name__}: {' '.join(str(e).split())}")
