"""
The running container as a Twisted service: what C{twistd -n slee} starts.

L{SleeService} opens the database named by the settings, starts the
L{slee.container.Container}, deploys the units found in the deploy
directory (activating their services the first time), and serves
management on the admin endpoint, whose URL it writes to C{<var>/admin.url}
for the CLI.  Stopping it (SIGTERM) stops management,
lets queued deliveries finish and closes the database.

Once up, it has Python's garbage collector run at the end of the event
router's turns (see L{slee.collector}).

What cannot start stops the start (L{StartError}): an endpoint that cannot
be listened on (management's, or an RA entity's, such as C{--sip} and
C{--xcap}), an RA entity that fails to activate.  A server that does not
listen where it was told is of no use, and would otherwise run on with
only an alarm saying so.  The process then says why in one line, on
standard error and in the log, and exits with status 1.
"""

import atexit
import os
import sys

import ZODB
import zodburi
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.logger import Logger

from slee.collector import TurnCollector
from slee.container import Container
from slee.deployment import DESCRIPTOR, parse_descriptor, read_descriptor
from slee.errors import SleeError
from slee.management.api import make_site
from slee.pack_process import use_child_packer
from slee.packing import Packer
from slee.settings import DEFAULT_PROFILE, shipped_profiles, shipped_units
from slee.management.token import ensure_token
from slee.trace import LOG_LEVELS, log_observer

UNIT_SUFFIXES = (".zip", ".whl")

#: The exit status of a process whose start failed.
START_FAILED = 1
ADMIN_URL_FILE = "admin.url"


def open_database(uri, cache_size):
    """
    @return: a ZODB.DB for a zodburi URI; a FileStorage packs with the
        first phase in a child process (L{slee.pack_process}).
    """
    factory, db_options = zodburi.resolve_uri(uri)
    db_options = dict(db_options)
    db_options["cache_size"] = cache_size
    storage = factory()
    use_child_packer(storage)
    return ZODB.DB(storage, **db_options)


def units_in(directory, profile=DEFAULT_PROFILE):
    """
    @return: the paths of the deployable units in C{directory}, sorted; in
        the shipped directory, the ones of C{profile}
        (L{slee.settings.shipped_profiles}).
    """
    chosen = None
    if directory.resolve() == shipped_units().resolve():
        chosen = set(shipped_profiles()[profile])
    found = []
    for path in sorted(directory.iterdir()):
        if chosen is not None and path.name not in chosen:
            continue
        if (path.is_dir() and (path / DESCRIPTOR).is_file()) or path.suffix in UNIT_SUFFIXES:
            found.append(path)
    return found


class StartError(SleeError):
    """What stops the start, in one line."""


def cannot_listen(endpoint, error):
    """
    @param endpoint: the endpoint as the user wrote it.
    @param error: the C{CannotListenError} of listening there.
    @return: one line naming the endpoint and saying why:
        C{udp:5060: cannot listen: address already in use}.
    """
    reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
    return f"{endpoint}: cannot listen: {reason[:1].lower()}{reason[1:]}"


def _exit_failed():
    """
    Exit with L{START_FAILED} once twistd is done (its pid file removed):
    twistd has no way to set its exit status, and a SystemExit raised at
    this point would be ignored.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(START_FAILED)


class SleeService(Service):
    """
    @ivar container: the L{Container}, once started.
    @ivar admin_port: the management listening port, once started.
    @ivar ready: a Deferred that fires when everything is up.
    """

    log = Logger(namespace="slee.runtime", observer=log_observer)

    def __init__(self, settings, reactor=None):
        if reactor is None:
            from twisted.internet import reactor
        self.settings = settings
        self.reactor = reactor
        self.container = None
        self.admin_port = None
        self.packer = None
        self.ready = defer.Deferred()

    def startService(self):
        super().startService()
        d = defer.ensureDeferred(self._start())
        d.addCallbacks(self.ready.callback, self._failed)

    def _failed(self, failure):
        if failure.check(StartError):
            self.log.critical("slee cannot start: {error}", error=failure.value)
            # The terminal's, even when twistd sends standard error to the log.
            print(f"slee: {failure.value}", file=sys.__stderr__)
        else:
            self.log.failure("slee failed to start", failure)
        self.ready.errback(failure)
        self.reactor.callWhenRunning(self._stop_failed)

    def _stop_failed(self):
        atexit.register(_exit_failed)
        self.reactor.stop()

    async def _start(self):
        settings = self.settings
        settings.var.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(settings.var, 0o700)
        token = ensure_token(settings.var)
        # The process's levels: the container's and RAs' loggers obey them too.
        levels = LOG_LEVELS
        levels.replace(settings.log_levels)
        db = open_database(settings.db, settings.cache_size)
        self.container = Container(db, settings.var, reactor=self.reactor,
                                   batch_max=settings.batch_max, queue_max=settings.queue_max,
                                   trace_levels=levels, ra_properties=settings.ra_properties)
        await self.container.start()
        if settings.deploy_dir is not None:
            await self._deploy_directory(settings.deploy_dir, settings.profile)
        self._check_ra_entities()
        endpoint = serverFromString(self.reactor, settings.admin)
        try:
            self.admin_port = await endpoint.listen(make_site(self.container, token))
        except CannotListenError as error:
            raise StartError(f"--admin {cannot_listen(settings.admin, error)}") from None
        address = self.admin_port.getHost()
        host = f"[{address.host}]" if ":" in address.host else address.host
        (settings.var / ADMIN_URL_FILE).write_text(f"http://{host}:{address.port}\n")
        collector = TurnCollector()
        collector.install()
        self.container.router.collector = collector
        if settings.pack_interval or settings.pack_growth:
            self.packer = Packer(db, settings.pack_interval, self.reactor,
                                 growth=settings.pack_growth * 1024 * 1024)
            self.packer.start()
        self.log.info("slee running: database {db}, management on {host}:{port}",
                      db=settings.db, host=address.host, port=address.port)
        return self

    def _check_ra_entities(self):
        """
        @raise StartError: for an RA entity that failed to activate (the
            container raised an alarm for it, which says why).
        """
        for alarm in self.container.alarm_facility.active():
            if alarm["source"] == "slee.container" and alarm["type"] == "ra-activation-failed":
                raise StartError(f"RA entity {alarm['instance']}: {alarm['message']}")

    async def _deploy_directory(self, directory, profile):
        """
        Deploy the units of C{directory} not deployed yet and activate their
        services.  A unit may use what another one installs (the SIP RA's
        event types, say), whatever their names: units that fail are tried
        again after each round that deployed something.
        """
        container = self.container
        pending = {}
        for path in units_in(directory, profile):
            try:
                name = parse_descriptor(*read_descriptor(path)).get("unit", {}).get("name")
            except SleeError as e:
                pending[path] = e
                continue
            if name not in container.deployed:
                pending[path] = None
        progress = True
        while pending and progress:
            progress = False
            for path in list(pending):
                try:
                    unit = await container.deploy(str(path.resolve()))
                except SleeError as e:
                    pending[path] = e
                    continue
                del pending[path]
                progress = True
                for service in unit["services"]:
                    container.activate(service)
        for path, error in pending.items():
            self.log.error("cannot deploy {path}: {error}", path=str(path), error=str(error))
            container.alarm_facility.raise_alarm("slee.runtime", "deploy-failed",
                                                 str(path), "major", str(error))

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.admin_port is not None:
            yield self.admin_port.stopListening()
            self.admin_port = None
            (self.settings.var / ADMIN_URL_FILE).unlink(missing_ok=True)
        if self.packer is not None:
            yield self.packer.stop()
            self.packer = None
        if self.container is not None:
            yield self.container.stop()
        self.log.info("slee stopped")
