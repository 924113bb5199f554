"""
Settings: defaults, the config file, the command line, and the errors that
name what to fix.  Also `twistd slee`'s Options, parsed in-process.
"""

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_twisted
import zodburi
from twisted.python import usage

from slee.errors import ConfigurationError, SleeError
from slee.settings import Settings, load_settings, shipped_units
from slee.tap import Options


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    """Run the test from an empty temporary directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(directory: Path, text: str, name: str = "slee.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(cli=None, config=None) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_settings(cli or {}, config)
    return str(info.value)


# -- defaults ---------------------------------------------------------------


def test_defaults(cwd):
    settings = load_settings({}, None)
    assert settings.var == cwd / "var"
    assert settings.var.is_absolute()
    assert settings.db == f"file://{cwd}/var/slee.fs"
    assert settings.deploy_dir == shipped_units()
    assert (settings.deploy_dir / "sip" / "deployable.toml").is_file()
    assert settings.ra_properties == {}
    assert settings.admin == "tcp:8787:interface=127.0.0.1"
    assert settings.log_levels == {}
    assert settings.batch_max == 256
    assert settings.queue_max == 100000
    assert settings.cache_size == 100000
    assert settings.pack_interval == 3600
    assert settings.pack_growth == 64


def test_defaults_match_plain_settings(cwd):
    assert load_settings({}, None) == Settings()
    assert load_settings(None) == Settings()


def test_checking_creates_and_opens_nothing(cwd):
    load_settings({"var": "state", "db": f"file://{cwd}/state/x.fs"}, None)
    assert list(cwd.iterdir()) == []


def test_settings_are_frozen(cwd):
    settings = load_settings({}, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.batch_max = 1


def test_settings_made_directly_derive_the_database_from_var(tmp_path):
    settings = Settings(var=tmp_path)
    assert settings.db == f"file://{tmp_path}/slee.fs"
    assert Settings(var=str(tmp_path)).var == tmp_path
    assert Settings(var=tmp_path, db="memory://").db == "memory://"


@pytest.mark.parametrize("dirname", ["var", "state dir with spaces", "ünïcode"])
def test_default_database_uri_names_the_file_in_var(cwd, dirname):
    """zodburi takes the path after file:// literally: check that the
    default URI really makes a FileStorage at var/slee.fs."""
    settings = load_settings({"var": dirname}, None)
    settings.var.mkdir()
    factory, dbkw = zodburi.resolve_uri(settings.db)
    storage = factory()
    try:
        assert Path(storage.getName()) == cwd / dirname / "slee.fs"
    finally:
        storage.close()
    assert (cwd / dirname / "slee.fs").is_file()


def test_a_var_with_a_question_mark_needs_an_explicit_db(cwd):
    message = error_of({"var": "what?"})
    assert message.startswith("--var: ")
    assert "--db" in message
    settings = load_settings({"var": "what?", "db": "memory://"}, None)
    assert settings.var == cwd / "what?"


# -- command line -----------------------------------------------------------


def test_command_line_values(cwd):
    (cwd / "dus").mkdir()
    settings = load_settings(
        {
            "var": "state",
            "db": "memory://",
            "deploy_dir": "dus",
            "admin": "tcp:0:interface=127.0.0.1",
            "batch_max": "10000",
            "cache_size": "100",
            "log_levels": ["slee.router=debug", "sbbs=WARN"],
        },
        None,
    )
    assert settings == Settings(
        var=cwd / "state",
        db="memory://",
        deploy_dir=cwd / "dus",
        admin="tcp:0:interface=127.0.0.1",
        batch_max=10000,
        cache_size=100,
        log_levels={"slee.router": "debug", "sbbs": "warn"},
    )


def test_none_means_not_given(cwd):
    assert load_settings({"var": None, "db": None, "log_levels": None}, None) == Settings()


def test_typed_values_and_dashed_names_are_accepted(cwd):
    settings = load_settings(
        {"batch-max": 7, "cache-size": 1000, "pack-interval": 0, "pack-growth": 0,
         "log-levels": {"slee": "error"}},
        None
    )
    assert (settings.batch_max, settings.cache_size, settings.pack_interval,
            settings.pack_growth) == (7, 1000, 0, 0)
    assert settings.log_levels == {"slee": "error"}


@pytest.mark.parametrize(
    "db",
    [
        "memory://",
        "zeo://127.0.0.1:8100",
        "zeo://127.0.0.1:8100?storage=main&cache_size=100MB",
        "file:///srv/slee/slee.fs?blobstorage_dir=/srv/slee/blobs",
    ],
)
def test_database_uris_accepted(cwd, db):
    assert load_settings({"db": db}, None).db == db


def test_relative_file_uri_is_made_absolute(cwd):
    assert load_settings({"db": "file://data/slee.fs"}, None).db == f"file://{cwd}/data/slee.fs"


@pytest.mark.parametrize(
    "admin",
    ["tcp:8787", "tcp:0:interface=127.0.0.1", r"tcp6:8787:interface=\:\:1", "unix:/tmp/slee.sock"],
)
def test_admin_endpoints_accepted(cwd, admin):
    assert load_settings({"admin": admin}, None).admin == admin


BAD_COMMAND_LINE = [
    ("var", "/dev/null", "--var: not a directory"),
    ("var", "", "--var: must not be empty"),
    ("db", "bogus://x", "--db: unknown URI scheme 'bogus'"),
    ("db", "/srv/slee.fs", "--db: not a database URI"),
    ("db", "file://", "--db: no file name"),
    ("db", "file:///srv/", "--db: 'file:///srv/' names a directory"),
    ("db", "file:///srv/slee.fs?colour=blue", "--db: unknown database parameter(s) colour"),
    ("db", "zeo://h:8100?wait=soon", "--db: bad database URI"),
    ("db", "MEMORY://", "--db: URI scheme must be lower case"),
    ("deploy_dir", "no/such/dir", "--deploy-dir: no such directory"),
    ("deploy_dir", "/dev/null", "--deploy-dir: not a directory"),
    ("admin", "tcp:http", "--admin: not a valid server endpoint: 'tcp:http'"),
    ("admin", "tcp:99999", "--admin: not a valid server endpoint: 'tcp:99999': port 99999"),
    ("admin", "tcp:-1", "--admin: not a valid server endpoint"),
    ("admin", "tcp:8787:colour=blue", "--admin: not a valid server endpoint: 'tcp:8787:colour=blue': unknown parameter 'colour'"),
    ("admin", "nosuch:1", "--admin: not a valid server endpoint: 'nosuch:1': Unknown endpoint type"),
    ("admin", "8787", "--admin: not a valid server endpoint"),
    ("admin", "  ", "--admin: must not be empty"),
    ("batch_max", "0", "--batch-max: must be an integer from 1 to 10000"),
    ("batch_max", "10001", "--batch-max: must be an integer from 1 to 10000"),
    ("batch_max", "many", "--batch-max: must be an integer from 1 to 10000"),
    ("batch_max", "2.5", "--batch-max: must be an integer from 1 to 10000"),
    ("queue_max", "99", "--queue-max: must be an integer from 100 to 10000000"),
    ("queue_max", "lots", "--queue-max: must be an integer from 100 to 10000000"),
    ("cache_size", "99", "--cache-size: must be an integer of at least 100"),
    ("cache_size", "big", "--cache-size: must be an integer of at least 100"),
    ("pack_interval", "-1", "--pack-interval: must be an integer from 0 to 2592000"),
    ("pack_interval", "hourly", "--pack-interval: must be an integer from 0 to 2592000"),
    ("pack_growth", "-1", "--pack-growth: must be an integer from 0 to 1048576"),
    ("pack_growth", "1.5", "--pack-growth: must be an integer from 0 to 1048576"),
    ("log_levels", ["slee"], "--log-level: expected COMPONENT=LEVEL, not 'slee'"),
    ("log_levels", ["slee=loud"], "--log-level: unknown log level 'loud' for 'slee'"),
    ("log_levels", ["=debug"], "--log-level: bad component ''"),
    ("log_levels", ["slee router=debug"], "--log-level: bad component"),
]


@pytest.mark.parametrize("name, value, expected", BAD_COMMAND_LINE)
def test_bad_command_line_value_names_its_option(cwd, name, value, expected):
    message = error_of({name: value})
    assert message.startswith(expected), message
    assert "\n" not in message


def test_configuration_error_is_a_slee_error():
    assert issubclass(ConfigurationError, SleeError)


def test_checking_the_admin_endpoint_neither_listens_nor_installs_a_reactor(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from slee.settings import load_settings
        load_settings({"admin": "tcp:8787:interface=127.0.0.1"}, None)
        assert "twisted.internet.reactor" not in sys.modules, "reactor installed"
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True, timeout=60)


# -- config file ------------------------------------------------------------


FULL_CONFIG = """\
    var = "state"
    db = "memory://"
    deploy-dir = "dus"
    admin = "tcp:9999:interface=127.0.0.1"
    batch-max = 32
    cache-size = 5000

    [log-levels]
    "slee.router" = "debug"
    sbbs.presence = "warn"
    """


def test_config_file(tmp_path, cwd):
    confdir = tmp_path / "etc"
    (confdir / "dus").mkdir(parents=True)
    config = write_config(confdir, FULL_CONFIG)
    settings = load_settings({}, config)
    assert settings == Settings(
        # relative paths in the file are relative to the file's directory
        var=confdir / "state",
        db="memory://",
        deploy_dir=confdir / "dus",
        admin="tcp:9999:interface=127.0.0.1",
        batch_max=32,
        cache_size=5000,
        log_levels={"slee.router": "debug", "sbbs.presence": "warn"},
    )


def test_config_file_relative_database_path(tmp_path, cwd):
    confdir = tmp_path / "etc"
    confdir.mkdir()
    config = write_config(confdir, 'db = "file://data/slee.fs"\n')
    assert load_settings({}, config).db == f"file://{confdir}/data/slee.fs"


def test_config_file_var_moves_the_default_database(tmp_path, cwd):
    config = write_config(tmp_path, 'var = "/srv/slee"\n')
    settings = load_settings({}, str(config))
    assert settings.var == Path("/srv/slee")
    assert settings.db == "file:///srv/slee/slee.fs"


def test_command_line_wins_over_config_file(tmp_path, cwd):
    confdir = tmp_path / "etc"
    (confdir / "dus").mkdir(parents=True)
    (cwd / "mine").mkdir()
    config = write_config(confdir, FULL_CONFIG)
    settings = load_settings(
        {
            "var": "here",
            "db": None,
            "deploy_dir": "mine",
            "admin": "tcp:0",
            "batch_max": "1",
            "cache_size": None,
            "log_levels": ["slee.router=error", "resource_adaptors.sip=info"],
        },
        config,
    )
    assert settings.var == cwd / "here"
    assert settings.db == "memory://"  # not given on the command line
    assert settings.deploy_dir == cwd / "mine"
    assert settings.admin == "tcp:0"
    assert settings.batch_max == 1
    assert settings.cache_size == 5000
    assert settings.log_levels == {
        "slee.router": "error",
        "sbbs.presence": "warn",
        "resource_adaptors.sip": "info",
    }


def test_var_on_command_line_moves_default_database_even_with_config(tmp_path, cwd):
    config = write_config(tmp_path, 'var = "/srv/slee"\n')
    assert load_settings({"var": "here"}, config).db == f"file://{cwd}/here/slee.fs"


def test_empty_config_file_gives_defaults(tmp_path, cwd):
    config = write_config(tmp_path, "# nothing\n")
    assert load_settings({}, config) == Settings()


BAD_CONFIG = [
    ('var = 3', "slee.toml: var: must be a string"),
    ('db = "bogus://x"', "slee.toml: db: unknown URI scheme 'bogus'"),
    ('deploy-dir = "nowhere"', "slee.toml: deploy-dir: no such directory"),
    ('admin = "tcp:http"', "slee.toml: admin: not a valid server endpoint: 'tcp:http'"),
    ('batch-max = 0', "slee.toml: batch-max: must be an integer from 1 to 10000"),
    ('batch-max = "12"', "slee.toml: batch-max: must be an integer from 1 to 10000"),
    ('batch-max = true', "slee.toml: batch-max: must be an integer from 1 to 10000"),
    ('batch-max = 2.0', "slee.toml: batch-max: must be an integer from 1 to 10000"),
    ('queue-max = 10', "slee.toml: queue-max: must be an integer from 100 to 10000000"),
    ('cache-size = 10', "slee.toml: cache-size: must be an integer of at least 100"),
    ('log-levels = "debug"', "slee.toml: log-levels: must be a table"),
    ('[log-levels]\nslee = "loud"', "slee.toml: log-levels: unknown log level 'loud' for 'slee'"),
    ('[log-levels]\nslee = 1', "slee.toml: log-levels: unknown log level 1 for 'slee'"),
]


@pytest.mark.parametrize("text, expected", BAD_CONFIG)
def test_bad_config_value_names_file_and_key(tmp_path, cwd, text, expected):
    config = write_config(tmp_path, text + "\n")
    message = error_of({}, config)
    assert message.startswith(f"{tmp_path}/{expected}"), message


def test_error_shows_the_config_path_as_given(tmp_path, cwd):
    write_config(cwd, "batch-max = 0\n")
    assert error_of({}, Path("slee.toml")).startswith("slee.toml: batch-max: ")


def test_bad_config_value_is_reported_even_if_command_line_overrides_it(tmp_path, cwd):
    config = write_config(cwd, 'admin = "tcp:http"\n')
    assert error_of({"admin": "tcp:0"}, config).startswith(f"{config}: admin: ")


@pytest.mark.parametrize(
    "key, hint",
    [
        ("deploy_dir", "did you mean 'deploy-dir'?"),
        ("log-level", "did you mean 'log-levels'?"),
        ("batch_max", "did you mean 'batch-max'?"),
        ("registrar", "known keys: admin, batch-max, cache-size, db, deploy-dir, log-levels, "
                      "max-publications, max-publications-per-resource, max-subscriptions, "
                      "max-subscriptions-per-watcher, "
                      "pack-growth, pack-interval, profile, queue-max, rls-local-domain, "
                      "rls-max-list-size, rls-notify-interval, rls-outbound-proxy, "
                      "rls-request-contained-lists, sip, sip-auth, sip-client-password, "
                      "sip-client-user, sip-digest-algorithm, sip-identity, sip-max-queue-delay, "
                      "sip-proxy-auth, sip-trusted-peer, users, var, xcap, xcap-access-log, "
                      "xcap-auth, xcap-root, xdms-password, xdms-sip-uri, xdms-url, xdms-user"),
    ],
)
def test_unknown_config_key(tmp_path, cwd, key, hint):
    config = write_config(cwd, f'{key} = "x"\n')
    message = error_of({}, config)
    assert message.startswith(f"{config}: unknown key '{key}'"), message
    assert hint in message


def test_bad_toml_names_the_file(tmp_path, cwd):
    config = write_config(cwd, "admin = tcp:8787\n", name="broken.toml")
    message = error_of({}, config)
    assert message.startswith(f"{config}: not valid TOML: "), message
    assert "line 1" in message


def test_config_file_not_utf8(tmp_path, cwd):
    config = cwd / "latin1.toml"
    config.write_bytes('var = "caf\xe9"\n'.encode("latin-1"))
    assert error_of({}, config).startswith(f"{config}: not valid TOML")


def test_missing_config_file(cwd):
    assert error_of({}, cwd / "nope.toml") == f"--config: no such file: {cwd / 'nope.toml'}"


def test_config_file_is_a_directory(cwd):
    assert error_of({}, cwd).startswith("--config: is a directory")


# -- twistd slee's Options --------------------------------------------------


def parse(*argv) -> Options:
    options = Options()
    options.parseOptions(list(argv))
    return options


def test_options_defaults(cwd):
    assert parse().settings == Settings()


def test_options_all(cwd):
    (cwd / "dus").mkdir()
    config = write_config(cwd, 'cache-size = 4242\n[log-levels]\nsbbs = "error"\n')
    settings = parse(
        "--var", "state",
        "--db", "memory://",
        "--deploy-dir", "dus",
        "--admin", "tcp:0:interface=127.0.0.1",
        "--config", str(config),
        "--batch-max", "12",
        "--log-level", "slee=debug",
        "--log-level=slee.router=warn",
    ).settings
    assert settings == Settings(
        var=cwd / "state",
        db="memory://",
        deploy_dir=cwd / "dus",
        admin="tcp:0:interface=127.0.0.1",
        batch_max=12,
        cache_size=4242,
        log_levels={"sbbs": "error", "slee": "debug", "slee.router": "warn"},
    )


@pytest.mark.parametrize("name, value, expected", BAD_COMMAND_LINE)
def test_options_bad_value_is_a_usage_error_naming_the_option(cwd, name, value, expected):
    option = "--" + {"log_levels": "log_level"}.get(name, name).replace("_", "-")
    argv = []
    for item in value if isinstance(value, list) else [value]:
        argv += [option, item]
    with pytest.raises(usage.UsageError) as info:
        parse(*argv)
    assert str(info.value).startswith(expected), str(info.value)


def test_options_bad_config_is_a_usage_error(cwd):
    config = write_config(cwd, "nonsense = 1\n")
    with pytest.raises(usage.UsageError, match=r"slee\.toml: unknown key 'nonsense'"):
        parse("--config", str(config))


def test_options_help_documents_every_option():
    text = " ".join(Options().__str__().split())        # however the help wraps
    for option in [
        "--var=", "--db=", "--deploy-dir=", "--admin=", "--config=",
        "--batch-max=", "--cache-size=", "--log-level=",
    ]:
        assert option in text
    assert "[default: ./var]" in text
    assert "[default: tcp:8787:interface=127.0.0.1]" in text
    assert "[default: 256]" in text
    assert "[default: 100000]" in text


# -- options resource adaptors add (--sip) --------------------------------------


def test_sip_option_sets_the_sip_entity_endpoints(cwd):
    options = parse("--sip", "udp:0:interface=127.0.0.1", "--sip", "tcp:5070")
    assert options.settings.ra_properties == {
        "sip": {"endpoints": ["udp:0:interface=127.0.0.1", "tcp:5070"]}}


def test_sip_option_in_the_config_file(cwd):
    config = write_config(cwd, 'sip = ["ws:8088", "udp:5062"]\n')
    settings = load_settings({}, config)
    assert settings.ra_properties == {"sip": {"endpoints": ["ws:8088", "udp:5062"]}}
    # The command line wins.
    assert load_settings({"sip": ["tcp:5071"]}, config).ra_properties == {
        "sip": {"endpoints": ["tcp:5071"]}}


@pytest.mark.parametrize("value", ["carrier-pigeon:5060", "udp:notaport", "udp:70000",
                                   "tls:5061"])
def test_sip_option_bad_value_names_the_option(cwd, value):
    with pytest.raises(usage.UsageError) as info:
        parse("--sip", value)
    assert str(info.value).startswith("--sip: "), str(info.value)


def test_sip_option_bad_value_in_the_file_names_the_file_and_key(cwd):
    config = write_config(cwd, 'sip = ["udp:5060", 7]\n')
    with pytest.raises(ConfigurationError, match=r"slee\.toml: sip: "):
        load_settings({}, config)


def test_sip_option_is_in_the_help():
    assert "--sip=" in Options().__str__()


def test_xcap_options(cwd):
    users = cwd / "users.toml"
    users.write_text('realm = "example.com"\n[users.joe]\npassword = "x"\n')
    options = parse("--xcap", "tcp:0:interface=127.0.0.1", "--xcap-root", "/x",
                    "--xcap-auth", "trust-localhost", "--users", "users.toml")
    assert options.settings.ra_properties == {
        "xcap": {"endpoint": "tcp:0:interface=127.0.0.1", "root": "/x",
                 "auth": "trust-localhost", "users": str(users)},
        "sip": {"users": str(users)}}       # one user store for XCAP and SIP
    for option in ("--xcap=", "--xcap-root=", "--xcap-auth=", "--users="):
        assert option in Options().__str__()


def test_sip_authentication_options(cwd):
    options = parse("--sip-auth", "digest", "--sip-trusted-peer", "192.0.2.7",
                    "--sip-trusted-peer", "10.0.0.0/8", "--sip-proxy-auth", "yes")
    assert options.settings.ra_properties == {"sip": {
        "auth": "digest", "trusted-peers": ["192.0.2.7", "10.0.0.0/8"], "proxy-auth": True}}
    for option in ("--sip-auth=", "--sip-trusted-peer=", "--sip-proxy-auth="):
        assert option in Options().__str__()


def test_sip_client_account_options(cwd):
    options = parse("--sip-client-user", "rls", "--sip-client-password", "secret")
    assert options.settings.ra_properties == {"sip": {
        "client-username": "rls", "client-password": "secret"}}
    for option in ("--sip-client-user=", "--sip-client-password="):
        assert option in Options().__str__()


@pytest.mark.parametrize("option, value, message", [
    ("--sip-auth", "basic", "--sip-auth: expected one of digest, trust-localhost, none"),
    ("--sip-trusted-peer", "proxy.example.com", "--sip-trusted-peer: expected an IP address"),
    ("--sip-proxy-auth", "maybe", "--sip-proxy-auth: expected yes or no"),
])
def test_bad_sip_authentication_options(cwd, option, value, message):
    with pytest.raises(usage.UsageError, match=re.escape(message)):
        parse(option, value)


@pytest.mark.parametrize("option, value, message", [
    ("--xcap", "tcp:http", "--xcap: "),
    ("--xcap-root", "xcap-root", "--xcap-root: "),
    ("--xcap-auth", "basic", "--xcap-auth: expected one of digest, trust-localhost"),
    ("--users", "no-such-file.toml", "--users: "),
])
def test_xcap_option_bad_values_name_the_option(cwd, option, value, message):
    with pytest.raises(usage.UsageError) as info:
        parse(option, value)
    assert str(info.value).startswith(message), str(info.value)


def test_the_profile_picks_shipped_units_and_a_bad_one_is_named(tmp_path, cwd):
    assert load_settings({}).profile == "integrated"
    assert load_settings({"profile": "presence-server"}).profile == "presence-server"
    message = error_of({"profile": "everything"})
    assert message.startswith("--profile: no profile 'everything'") and "xdms" in message


# -- options services add to their SBBs' environments (--rls-...) -------------------


def test_rls_options_set_the_list_servers_environment(cwd):
    options = parse("--rls-outbound-proxy", "sip:proxy.example.com:5070",
                    "--rls-notify-interval", "0.25", "--rls-max-list-size", "50",
                    "--rls-request-contained-lists", "no",
                    "--rls-local-domain", "Example.com", "--rls-local-domain", "example.org")
    assert options.settings.ra_properties == {"sbb:ResourceListNotifierSbb": {
        "outbound-proxy": "sip:proxy.example.com:5070", "notify-interval": 0.25,
        "max-list-size": 50, "request-contained-lists": False,
        "local-domains": ["example.com", "example.org"]}}


@pytest.mark.parametrize("argv, named", [
    (("--rls-outbound-proxy", "proxy.example.com"), "--rls-outbound-proxy"),
    (("--rls-notify-interval", "0"), "--rls-notify-interval"),
    (("--rls-max-list-size", "lots"), "--rls-max-list-size"),
    (("--rls-request-contained-lists", "maybe"), "--rls-request-contained-lists"),
    (("--rls-local-domain", "a@b"), "--rls-local-domain"),
    (("--sip-max-queue-delay", "0"), "--sip-max-queue-delay"),
    (("--sip-max-queue-delay", "soon"), "--sip-max-queue-delay"),
    (("--max-publications", "0"), "--max-publications"),
    (("--max-publications-per-resource", "lots"), "--max-publications-per-resource"),
    (("--max-subscriptions", "-1"), "--max-subscriptions"),
    (("--max-subscriptions-per-watcher", "1e3"), "--max-subscriptions-per-watcher"),
])
def test_bad_service_options_are_refused_naming_them(cwd, argv, named):
    with pytest.raises(usage.UsageError, match=f"^{named}: "):
        parse(*argv)


def test_quota_options_set_every_publisher_and_notifier_alike(cwd):
    options = parse("--max-publications", "10", "--max-subscriptions-per-watcher", "3")
    publishers = {"max-publications": 10}
    notifiers = {"max-subscriptions-per-watcher": 3}
    assert options.settings.ra_properties == {
        "sbb:CompositorSbb": publishers, "sbb:PublicationClientSbb": publishers,
        **{f"sbb:{name}": notifiers for name in ("PresenceNotifierSbb", "WinfoNotifierSbb",
                                                  "ResourceListNotifierSbb",
                                                  "XcapDiffNotifierSbb")}}


@pytest_twisted.ensureDeferred
async def test_an_sbb_env_option_is_applied_when_its_unit_is_deployed(tmp_path):
    from slee.settings import shipped_units
    from units import LOCAL_RAS, started_container
    container = await started_container(
        tmp_path, [shipped_units() / unit for unit in ("sip", "sipevent", "xcap", "xdms", "rls")],
        ra_properties={**LOCAL_RAS, "sbb:ResourceListNotifierSbb": {
            "notify-interval": 0.25, "max-list-size": 7}})
    try:
        [notifier] = [sbb for sbb in container.registry.sbbs.values()
                      if sbb.id.startswith("ResourceList")]
        assert notifier.env["notify-interval"] == 0.25 and notifier.env["max-list-size"] == 7
        assert notifier.env["outbound-proxy"] == ""             # the descriptor's
    finally:
        await container.stop()


def test_the_digest_algorithms_sip_challenges_offer(cwd):
    options = parse("--sip-digest-algorithm", "md5")
    assert options.settings.ra_properties == {"sip": {"digest-algorithms": ["MD5"]}}
    with pytest.raises(usage.UsageError, match="^--sip-digest-algorithm: "):
        parse("--sip-digest-algorithm", "SHA-1")
