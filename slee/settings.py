"""
The container's settings: defaults, a TOML config file and the command line.

`load_settings` merges the three (command line over config file over
defaults), checks every value and returns a frozen `Settings`.  A bad value
raises `slee.errors.ConfigurationError` whose message starts with where the
value came from, so the user knows what to fix::

    --batch-max: must be an integer from 1 to 10000, not 'lots'
    slee.toml: admin: not a valid server endpoint 'tcp:http': ...

The config file uses the long option names without their dashes::

    var = "/srv/slee/var"          # --var
    db = "zeo://127.0.0.1:8100"    # --db
    deploy-dir = "deploy"          # --deploy-dir
    profile = "integrated"         # --profile
    admin = "tcp:8787:interface=127.0.0.1"   # --admin
    batch-max = 256                # --batch-max
    queue-max = 100000             # --queue-max
    cache-size = 100000            # --cache-size
    pack-interval = 3600           # --pack-interval
    pack-growth = 64               # --pack-growth

    [log-levels]                   # --log-level COMPONENT=LEVEL
    "slee.router" = "debug"

Resource adaptor packages add options of their own (`slee.resources.RaOption`,
found through the ``slee.ra_options`` entry point group), such as the SIP
RA's ``--sip ENDPOINT``; in the file they are keys too (``sip = ["udp:5060"]``).
They end up in `Settings.ra_properties`.

The default deploy directory is the one holding the units that ship with
slee (the ``deployables`` package): a bare ``twistd -n slee`` runs the ones
of its profile (``--profile``, `shipped_profiles`), by default the
integrated presence service.

Relative paths on the command line are taken from the current directory;
relative paths in a config file (``var``, ``deploy-dir`` and the path of a
``file://`` database URI) from the directory that holds the file.  Every path
in the returned `Settings` is absolute.

Checking never has side effects: nothing is created, opened or bound.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Mapping

from slee.errors import ConfigurationError

DEFAULT_VAR = "var"
DEFAULT_ADMIN = "tcp:8787:interface=127.0.0.1"
DEFAULT_BATCH_MAX = 256
BATCH_MAX_RANGE = (1, 10000)
DEFAULT_QUEUE_MAX = 100000
QUEUE_MAX_RANGE = (100, 10000000)
DEFAULT_PACK_INTERVAL = 3600
PACK_INTERVAL_RANGE = (0, 30 * 86400)
DEFAULT_PACK_GROWTH = 64
PACK_GROWTH_RANGE = (0, 1024 * 1024)
DEFAULT_CACHE_SIZE = 100000
MIN_CACHE_SIZE = 100
DB_FILE_NAME = "slee.fs"

LOG_LEVEL_NAMES = ("debug", "info", "warn", "error", "critical")

# Settings field -> (command-line option, config-file key).
OPTION_NAMES: dict[str, tuple[str, str]] = {
    "var": ("--var", "var"),
    "db": ("--db", "db"),
    "deploy_dir": ("--deploy-dir", "deploy-dir"),
    "profile": ("--profile", "profile"),
    "admin": ("--admin", "admin"),
    "batch_max": ("--batch-max", "batch-max"),
    "queue_max": ("--queue-max", "queue-max"),
    "cache_size": ("--cache-size", "cache-size"),
    "pack_interval": ("--pack-interval", "pack-interval"),
    "pack_growth": ("--pack-growth", "pack-growth"),
    "log_levels": ("--log-level", "log-levels"),
}
CONFIG_KEYS = {key: name for name, (_, key) in OPTION_NAMES.items()}


def _absolute(path: os.PathLike | str, base: Path | None = None) -> Path:
    path = Path(path).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    return Path(os.path.abspath(path))


def shipped_units() -> Path:
    """
    The directory of the deployable units that ship with slee: the package
    the ``slee.units`` entry point ``shipped`` names, located without being
    imported.  The units are data to the container, which sits below them.
    """
    (point,) = entry_points(group="slee.units", name="shipped")
    spec = find_spec(point.value)
    return Path(next(iter(spec.submodule_search_locations)))


#: The profile a bare ``twistd slee`` runs.
DEFAULT_PROFILE = "integrated"


def shipped_profiles() -> dict[str, list[str]]:
    """
    The profiles of the shipped units (``deployables/profiles.toml``):
    name -> the directory names of the units it deploys.  Some shipped units
    stand in for others (the XCAP client of a remote XDMS makes the RA
    entity ``xcap`` as the XCAP server's unit does): a profile picks.
    """
    with open(shipped_units() / "profiles.toml", "rb") as file:
        return {name: list(table["units"]) for name, table in tomllib.load(file).items()}


def ra_options() -> dict[str, Any]:
    """
    The options installed RA packages offer: name -> `slee.resources.RaOption`
    (entry point group ``slee.ra_options``).
    """
    found = {}
    for entry_point in entry_points(group="slee.ra_options"):
        option = entry_point.load()
        found[option.name] = option
    return found


def default_db_uri(var: Path) -> str:
    """
    The default database: a FileStorage ``slee.fs`` in the var directory,
    as a zodburi URI (``file:///abs/path/var/slee.fs``).

    zodburi takes everything after ``file://`` up to a ``?`` literally as the
    file name (no percent-decoding), so the path is not quoted.
    """
    return "file://" + str(_absolute(var) / DB_FILE_NAME)


@dataclass(frozen=True)
class Settings:
    """
    What the container needs to start.  Build it with `load_settings`, which
    checks everything; constructing it directly (in tests) checks nothing.
    An empty ``db`` means the default FileStorage under ``var``.
    """

    #: State directory: database, admin token, ... (``--var``).
    var: Path = field(default_factory=lambda: _absolute(DEFAULT_VAR))
    #: zodburi URI of the database (``--db``).
    db: str = ""
    #: Directory whose deployable units are deployed at start (``--deploy-dir``).
    deploy_dir: Path | None = field(default_factory=shipped_units)
    #: Which of the shipped units, when ``deploy_dir`` is theirs (``--profile``).
    profile: str = DEFAULT_PROFILE
    #: Twisted server endpoint of the management API (``--admin``).
    admin: str = DEFAULT_ADMIN
    #: twisted.logger namespace -> level name (``--log-level``).
    log_levels: dict[str, str] = field(default_factory=dict)
    #: Most event deliveries committed in one group commit (``--batch-max``).
    batch_max: int = DEFAULT_BATCH_MAX
    #: Most events resource adaptors may have queued (``--queue-max``).
    queue_max: int = DEFAULT_QUEUE_MAX
    #: ZODB connection cache size, in objects (``--cache-size``).
    cache_size: int = DEFAULT_CACHE_SIZE
    #: Seconds between two packs of the database, 0 for never (``--pack-interval``).
    pack_interval: int = DEFAULT_PACK_INTERVAL
    #: MiB the database may grow by before a pack, 0 for no pack on growth
    #: (``--pack-growth``; see `slee.packing`).
    pack_growth: int = DEFAULT_PACK_GROWTH
    #: RA entity name -> {property: value}, from the RA options (``--sip``...).
    ra_properties: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.var, Path):
            object.__setattr__(self, "var", Path(self.var))
        if self.deploy_dir is not None and not isinstance(self.deploy_dir, Path):
            object.__setattr__(self, "deploy_dir", Path(self.deploy_dir))
        if not self.db:
            object.__setattr__(self, "db", default_db_uri(self.var))


class _Origin:
    """Where a value came from, for error messages."""

    def __init__(self, config_file: str | None = None, base: Path | None = None):
        self.config_file = config_file
        self.base = base

    def label(self, name: str) -> str:
        cli_option, config_key = OPTION_NAMES.get(name, (f"--{name}", name))
        if self.config_file is None:
            return cli_option
        return f"{self.config_file}: {config_key}"

    def error(self, name: str, message: str) -> ConfigurationError:
        return ConfigurationError(f"{self.label(name)}: {message}")


# -- checks, one per setting ------------------------------------------------


def _check_string(value: Any, name: str, origin: _Origin) -> str:
    if not isinstance(value, str):
        raise origin.error(name, f"must be a string, not {value!r}")
    if not value.strip():
        raise origin.error(name, "must not be empty")
    return value


def _check_var(value: Any, origin: _Origin) -> Path:
    path = _absolute(_check_string(value, "var", origin), origin.base)
    if path.exists() and not path.is_dir():
        raise origin.error("var", f"not a directory: {path}")
    return path


def _check_deploy_dir(value: Any, origin: _Origin) -> Path:
    path = _absolute(_check_string(value, "deploy_dir", origin), origin.base)
    if not path.exists():
        raise origin.error("deploy_dir", f"no such directory: {path}")
    if not path.is_dir():
        raise origin.error("deploy_dir", f"not a directory: {path}")
    return path


def _check_profile(value: Any, origin: _Origin) -> str:
    name = _check_string(value, "profile", origin)
    profiles = shipped_profiles()
    if name not in profiles:
        raise origin.error("profile", f"no profile {name!r} (known: {', '.join(profiles)})")
    return name


def _zodburi_schemes() -> list[str]:
    return sorted({ep.name for ep in entry_points(group="zodburi.resolvers")})


_URI_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def _check_db(value: Any, origin: _Origin) -> str:
    import zodburi

    uri = _check_string(value, "db", origin).strip()
    match = _URI_SCHEME.match(uri)
    if match is None:
        hint = ""
        if "://" not in uri and (uri.startswith(("/", ".")) or uri.endswith(".fs")):
            hint = f"; for a FileStorage write file://{_absolute(uri, origin.base)}"
        raise origin.error(
            "db",
            f"not a database URI: {uri!r} (expected e.g. "
            f"file:///abs/path/{DB_FILE_NAME}, memory://, zeo://host:port){hint}",
        )
    scheme = match.group(1)
    if scheme.lower() != scheme:
        raise origin.error("db", f"URI scheme must be lower case: {scheme!r}")
    if scheme == "file":
        # zodburi: file://PATH[?query], PATH taken literally.
        rest = uri[len("file://"):]
        path, sep, query = rest.partition("?")
        if not path:
            raise origin.error("db", f"no file name in {uri!r}")
        if path.endswith("/"):
            raise origin.error("db", f"{uri!r} names a directory, not a file")
        uri = "file://" + str(_absolute(path, origin.base)) + sep + query
    try:
        zodburi.resolve_uri(uri)  # returns a storage factory; opens nothing
    except zodburi.NoResolverForScheme:
        raise origin.error(
            "db",
            f"unknown URI scheme {scheme!r} in {uri!r} "
            f"(known: {', '.join(_zodburi_schemes())})",
        ) from None
    except zodburi.UnknownDatabaseKeywords as e:
        raise origin.error(
            "db", f"unknown database parameter(s) {', '.join(sorted(e.kw))} in {uri!r}"
        ) from None
    except Exception as e:
        raise origin.error("db", f"bad database URI {uri!r}: {e}") from None
    return uri


class _NoReactor:
    """Stands in for the reactor while an endpoint string is parsed."""


def check_switch(value: Any) -> bool:
    """
    A yes-or-no option's value, for the options packages add: a boolean,
    or C{yes}/C{no}, C{true}/C{false}, C{on}/C{off} in any case.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("yes", "no", "true", "false", "on", "off"):
        return value.lower() in ("yes", "true", "on")
    raise ValueError(f"expected yes or no, not {value!r}")


def check_number(low, high, kind):
    """
    @return: the check of a number option's value, for the options packages
        add: C{kind} (C{int} or C{float}) of the value (a string from the
        command line, a number from a config file), from C{low} to C{high}.
    """
    def check(value):
        try:
            number = kind(value)
        except (TypeError, ValueError):
            number = None
        if number is None or isinstance(value, bool) or not low <= number <= high:
            raise ValueError(f"expected a number from {low} to {high}, not {value!r}")
        return number
    return check


def check_server_endpoint(description: str) -> str:
    """
    Check a Twisted server endpoint description without listening (the
    management API's, an RA's).

    @return: the description.
    @raise ValueError: saying what is wrong with it.
    """
    from twisted.internet import endpoints

    try:
        # Builds the endpoint object; nothing listens until .listen().
        endpoint = endpoints.serverFromString(_NoReactor(), description)
    except Exception as e:
        raise ValueError(f"not a valid server endpoint: {description!r}: "
                         f"{_endpoint_reason(e)}") from None
    port = getattr(endpoint, "_port", None)
    if isinstance(port, int) and not 0 <= port <= 65535:
        raise ValueError(f"not a valid server endpoint: {description!r}: "
                         f"port {port} is out of range 0-65535")
    return description


def _check_admin(value: Any, origin: _Origin) -> str:
    description = _check_string(value, "admin", origin).strip()
    try:
        return check_server_endpoint(description)
    except ValueError as e:
        raise origin.error("admin", f"{e} (expected e.g. {DEFAULT_ADMIN})") from None


def _endpoint_reason(e: Exception) -> str:
    # Twisted's parsers report bad parameters as TypeErrors of their own
    # functions; say it in the user's terms.
    text = str(e)
    if isinstance(e, TypeError):
        unexpected = re.search(r"unexpected keyword argument '([^']*)'", text)
        if unexpected:
            return f"unknown parameter {unexpected.group(1)!r}"
        missing = re.search(r"missing \d+ required positional arguments?: (.*)", text)
        if missing:
            return f"missing {missing.group(1)}"
    return text or type(e).__name__


def _check_int(value: Any, name: str, origin: _Origin, low: int, high: int | None) -> int:
    if high is None:
        expected = f"must be an integer of at least {low}"
    else:
        expected = f"must be an integer from {low} to {high}"
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and origin.config_file is None:
        try:
            number = int(value.strip())
        except ValueError:
            pass
    if number is None or number < low or (high is not None and number > high):
        raise origin.error(name, f"{expected}, not {value!r}")
    return number


def _check_log_level(component: Any, level: Any, origin: _Origin) -> tuple[str, str]:
    if not isinstance(component, str) or not component.strip() or any(
        c.isspace() for c in component
    ):
        raise origin.error(
            "log_levels",
            f"bad component {component!r} (expected a logger namespace such as slee.router)",
        )
    if not isinstance(level, str) or level.strip().lower() not in LOG_LEVEL_NAMES:
        raise origin.error(
            "log_levels",
            f"unknown log level {level!r} for {component!r} "
            f"(one of {', '.join(LOG_LEVEL_NAMES)})",
        )
    return component, level.strip().lower()


def _check_log_levels_cli(value: Any, origin: _Origin) -> dict[str, str]:
    """Command line: a mapping, or an iterable of 'COMPONENT=LEVEL'."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        if isinstance(value, str):
            value = [value]
        pairs = []
        for item in value:
            component, sep, level = str(item).partition("=")
            if not sep:
                raise origin.error("log_levels", f"expected COMPONENT=LEVEL, not {item!r}")
            pairs.append((component.strip(), level))
    return dict(_check_log_level(c, lv, origin) for c, lv in pairs)


def _check_ra_option(option: Any, value: Any, origin: _Origin) -> Any:
    """
    An RA option's value: a list of checked values for a repeatable option
    (the command line gives a list of strings, the file a string or a list),
    else one checked value.
    """
    if option.repeatable:
        values = value if isinstance(value, list) else [value]
        if not values:
            raise origin.error(option.name, "needs at least one value")
    else:
        values = [value]
    checked = []
    for item in values:
        try:
            checked.append(option.check(item))
        except ValueError as e:
            raise origin.error(option.name, str(e)) from None
    return checked if option.repeatable else checked[0]


def _flatten(table: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    # [log-levels] slee.router = "debug" is a nested table in TOML terms.
    items = []
    for key, value in table.items():
        if isinstance(value, dict):
            items.extend(_flatten(value, f"{prefix}{key}."))
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _check_log_levels_file(value: Any, origin: _Origin) -> dict[str, str]:
    if not isinstance(value, dict):
        raise origin.error(
            "log_levels", 'must be a table of COMPONENT = "LEVEL", e.g. [log-levels]'
        )
    return dict(_check_log_level(c, lv, origin) for c, lv in _flatten(value))


# -- reading and merging -----------------------------------------------------


def _read_config(config_path: Path) -> tuple[dict[str, Any], _Origin]:
    shown = str(config_path)
    try:
        with open(config_path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigurationError(f"--config: no such file: {shown}") from None
    except IsADirectoryError:
        raise ConfigurationError(f"--config: is a directory, not a file: {shown}") from None
    except OSError as e:
        raise ConfigurationError(f"--config: cannot read {shown}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigurationError(f"{shown}: not valid TOML: not UTF-8 ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigurationError(f"{shown}: not valid TOML: {e}") from None
    origin = _Origin(shown, _absolute(config_path).parent)
    known = list(CONFIG_KEYS) + list(ra_options())
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key.replace("_", "-"), known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"{shown}: unknown key {key!r}{hint}; "
                f"known keys: {', '.join(sorted(known))}"
            )
    return data, origin


def _cli_name(key: str, options: Mapping[str, Any]) -> str:
    if key in options:
        return key
    name = key.replace("-", "_")
    if name == "log_level":
        name = "log_levels"
    if name not in OPTION_NAMES:
        raise TypeError(f"load_settings: unknown command-line setting {key!r}")
    return name


def load_settings(cli: Mapping[str, Any] | None = None, config_path: Path | str | None = None) -> Settings:
    """
    Merge defaults, the config file at *config_path* (if any) and the
    command-line values in *cli*, check them all and return `Settings`.

    *cli* maps setting names (``var``, ``db``, ``deploy_dir``, ``admin``,
    ``batch_max``, ``cache_size``, ``pack_interval``, ``pack_growth``, ``log_levels``; dashes are accepted for
    underscores) to the values as given on the command line (strings, or
    already-typed values); ``None`` means "not given".  ``log_levels`` is a
    mapping or a list of ``COMPONENT=LEVEL`` strings; its entries are added
    to the config file's ``[log-levels]``, the command line winning for the
    same component.

    Raises `ConfigurationError` naming the option or the file and key.
    """
    values: dict[str, Any] = {}
    labels: dict[str, str] = {}  # where each value in `values` came from
    log_levels: dict[str, str] = {}
    options = ra_options()
    ra_properties: dict[str, dict[str, Any]] = {}

    def take(name, raw, origin, log_levels_check):
        if name in options:
            option = options[name]
            value = _check_ra_option(option, raw, origin)
            for entity in option.entities:
                ra_properties.setdefault(entity, {})[option.property] = value
        elif name == "log_levels":
            log_levels.update(log_levels_check(raw, origin))
        else:
            values[name] = _CHECKS[name](raw, origin)
            labels[name] = origin.label(name)

    if config_path is not None:
        data, origin = _read_config(Path(config_path))
        for key, raw in data.items():
            take(key if key in options else CONFIG_KEYS[key], raw, origin,
                 _check_log_levels_file)

    cli_origin = _Origin()
    for key, raw in (cli or {}).items():
        if raw is not None:
            take(_cli_name(key, options), raw, cli_origin, _check_log_levels_cli)

    var = values.get("var", _absolute(DEFAULT_VAR))
    if "db" not in values:
        if "?" in str(var):
            # zodburi would read what follows '?' as parameters.
            raise ConfigurationError(
                f"{labels.get('var', '--var')}: {var} contains '?', which cannot be part of the "
                "default file:// database URI; give --db explicitly"
            )
        values["db"] = default_db_uri(var)
    values["var"] = var
    return Settings(log_levels=log_levels, ra_properties=ra_properties, **values)


_CHECKS = {
    "var": _check_var,
    "db": _check_db,
    "deploy_dir": _check_deploy_dir,
    "profile": _check_profile,
    "admin": _check_admin,
    "batch_max": lambda v, o: _check_int(v, "batch_max", o, *BATCH_MAX_RANGE),
    "queue_max": lambda v, o: _check_int(v, "queue_max", o, *QUEUE_MAX_RANGE),
    "cache_size": lambda v, o: _check_int(v, "cache_size", o, MIN_CACHE_SIZE, None),
    "pack_interval": lambda v, o: _check_int(v, "pack_interval", o, *PACK_INTERVAL_RANGE),
    "pack_growth": lambda v, o: _check_int(v, "pack_growth", o, *PACK_GROWTH_RANGE),
}
