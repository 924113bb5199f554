"""
``twistd slee``: command-line options and the service maker.

The twistd drop-in (twistd_plugins/slee_plugin.py) only points here.
Options are checked in `Options.postOptions` through
`slee.settings.load_settings`; a bad value makes twistd print the usage and
the error (naming the option) and exit non-zero.
"""

from pathlib import Path

from twisted.python import usage

from slee import settings as _settings
from slee.errors import ConfigurationError


class Options(usage.Options):
    synopsis = "[options]"

    longdesc = (
        "Run the slee container: the management API, the resource adaptors and the "
        "services of the deployable units found in --deploy-dir.  Every option can "
        "also be set in a TOML file given with --config, under the option's long "
        "name (var, db, deploy-dir, profile, admin, batch-max, queue-max, cache-size, pack-interval, pack-growth, a [log-levels] "
        "table of COMPONENT = LEVEL, and the resource adaptors' options such as sip); "
        "options on the command line win.  Relative "
        "paths in the file are taken from the file's directory."
    )

    optParameters = [
        [
            "var",
            None,
            None,
            "State directory: the default database, admin.token, ... "
            f"[default: ./{_settings.DEFAULT_VAR}]",
        ],
        [
            "db",
            None,
            None,
            "Database as a zodburi URI: file:///abs/path/slee.fs (FileStorage), "
            "zeo://host:port (ZEO server), memory:// (nothing kept). "
            f"[default: file://VAR/{_settings.DB_FILE_NAME}]",
        ],
        [
            "deploy-dir",
            None,
            None,
            "Directory whose deployable units are deployed at start. "
            "[default: the units that ship with slee, those of --profile]",
        ],
        [
            "profile",
            None,
            None,
            "Which of the units that ship with slee run: integrated (the presence server, "
            "the XDMS and the resource list server in one container), presence-server "
            "(alone, with a remote XDMS: --xdms-url...), xdms (alone), rls (the resource "
            "list server alone: --xdms-url..., --rls-outbound-proxy). [default: integrated]",
        ],
        [
            "admin",
            None,
            None,
            "Twisted server endpoint of the management HTTP API. "
            f"[default: {_settings.DEFAULT_ADMIN}]",
        ],
        [
            "config",
            None,
            None,
            "TOML file with the same settings (keys: var, db, deploy-dir, profile, admin, "
            "batch-max, queue-max, cache-size, pack-interval, pack-growth, [log-levels]); command-line options "
            "win. "
            "[default: none]",
        ],
        [
            "batch-max",
            None,
            None,
            "Most event deliveries committed together in one group commit "
            f"({_settings.BATCH_MAX_RANGE[0]}-{_settings.BATCH_MAX_RANGE[1]}). "
            f"[default: {_settings.DEFAULT_BATCH_MAX}]",
        ],
        [
            "queue-max",
            None,
            None,
            "Most events resource adaptors may have waiting in the queue; beyond it "
            "they are refused (overload) "
            f"({_settings.QUEUE_MAX_RANGE[0]}-{_settings.QUEUE_MAX_RANGE[1]}). "
            f"[default: {_settings.DEFAULT_QUEUE_MAX}]",
        ],
        [
            "cache-size",
            None,
            None,
            "ZODB connection cache size, in objects "
            f"(at least {_settings.MIN_CACHE_SIZE}). "
            f"[default: {_settings.DEFAULT_CACHE_SIZE}]",
        ],
        [
            "pack-interval",
            None,
            None,
            "Seconds between two packs of the database (its history and unreachable objects "
            "dropped), 0 for never "
            f"({_settings.PACK_INTERVAL_RANGE[0]}-{_settings.PACK_INTERVAL_RANGE[1]}). "
            f"[default: {_settings.DEFAULT_PACK_INTERVAL}]",
        ],
        [
            "pack-growth",
            None,
            None,
            "MiB the database may grow by (and by at least its size after the last pack) "
            "before it is packed, whatever the interval; 0 for never "
            f"({_settings.PACK_GROWTH_RANGE[0]}-{_settings.PACK_GROWTH_RANGE[1]}). "
            f"[default: {_settings.DEFAULT_PACK_GROWTH}]",
        ],
    ]

    def __init__(self):
        super().__init__()
        self.log_levels: list[str] = []
        self.ra_values: dict[str, object] = {}
        self.settings: _settings.Settings | None = None

    def opt_log_level(self, value):
        # twistd prints this docstring as the help text, so it is one line.
        "COMPONENT=LEVEL: log level of a logger namespace and those below it (e.g. slee.router=debug); LEVEL is one of debug, info, warn, error, critical. Repeatable. [default: info]"  # noqa: E501
        self.log_levels.append(value)

    def postOptions(self):
        cli = {
            "var": self["var"],
            "db": self["db"],
            "deploy_dir": self["deploy-dir"],
            "profile": self["profile"],
            "admin": self["admin"],
            "batch_max": self["batch-max"],
            "queue_max": self["queue-max"],
            "cache_size": self["cache-size"],
            "pack_interval": self["pack-interval"],
            "pack_growth": self["pack-growth"],
            "log_levels": self.log_levels or None,
            **self.ra_values,
        }
        config = self["config"]
        try:
            self.settings = _settings.load_settings(
                cli, Path(config) if config is not None else None
            )
        except ConfigurationError as e:
            raise usage.UsageError(str(e)) from None


def _ra_option_handler(option):
    """The C{opt_NAME} method of an RA option (see L{slee.resources.RaOption})."""
    def handle(self, value):
        if option.repeatable:
            self.ra_values.setdefault(option.name, []).append(value)
        else:
            self.ra_values[option.name] = value
    handle.__doc__ = option.doc
    return handle


for _option in _settings.ra_options().values():
    setattr(Options, "opt_" + _option.name.replace("-", "_"), _ra_option_handler(_option))


def makeService(options):
    from slee.runtime import SleeService

    return SleeService(options.settings)
