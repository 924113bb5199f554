"""
The C{slee} command line (slee.management.cli) and the admin token file
(slee.management.token).

No server runs here: the HTTP call is replaced where a test needs an
answer, and the connection errors are produced with real sockets on which
nothing answers.  End-to-end tests against a running container live
elsewhere.
"""

import json
import os
import re
import socket
import stat

import pytest

from slee.management import cli
from slee.management.token import (
    TOKEN_FILE,
    TokenFileWarning,
    ensure_token,
    read_token,
)

SERVICE_ID = "presence:org.example:1.0"


@pytest.fixture
def var(tmp_path):
    d = tmp_path / "var"
    d.mkdir()
    (d / TOKEN_FILE).write_text("file-token\n")
    os.chmod(d / TOKEN_FILE, 0o600)
    return d


class FakeCall:
    """
    Stands for Client.call: records (base_url, token, method, path, body)
    and answers C{answer} (or raises it if it is an exception).
    """

    def __init__(self, answer=None):
        self.answer = answer
        self.requests = []

    def __call__(self, client, method, path, body=None):
        self.requests.append((client.base_url, client.token, method, path, body))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def fake(monkeypatch):
    call = FakeCall({})
    monkeypatch.setattr(cli.Client, "call", lambda self, *a, **kw: call(self, *a, **kw))
    return call


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- requests ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, method, path, body",
    [
        (["status"], "GET", "/status", None),
        (["undeploy", "my unit"], "DELETE", "/units/my%20unit", None),
        (["activate", SERVICE_ID], "POST",
         "/services/presence%3Aorg.example%3A1.0/activate", None),
        (["deactivate", "a/b"], "POST", "/services/a%2Fb/deactivate", None),
        (["services"], "GET", "/services", None),
        (["units"], "GET", "/units", None),
        (["ra-entities"], "GET", "/ra-entities", None),
        (["activities"], "GET", "/activities", None),
        (["sbb-entities"], "GET", "/sbb-entities", None),
        (["usage"], "GET", "/usage", None),
        (["usage", "--reset"], "POST", "/usage/reset", None),
        (["alarms"], "GET", "/alarms", None),
        (["clear-alarm", "7"], "DELETE", "/alarms/7", None),
        (["trace"], "GET", "/trace", None),
        (["trace", "slee.sbb", "debug"], "PUT", "/trace",
         {"component": "slee.sbb", "level": "debug"}),
    ],
)
def test_requests(capsys, fake, var, argv, method, path, body):
    code, _, err = run(capsys, "--var", str(var), *argv)
    assert (code, err) == (0, "")
    assert fake.requests == [("http://127.0.0.1:8787", "file-token", method, path, body)]


def test_deploy_sends_an_absolute_path(capsys, fake, var, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake.answer = {"name": "demo"}
    code, out, _ = run(capsys, "--var", str(var), "deploy", "units/demo")
    assert code == 0
    assert fake.requests[0][2:] == ("POST", "/units", {"path": str(tmp_path / "units/demo")})
    assert out == "deployed unit demo\n"


def test_global_options_after_the_command(capsys, fake, tmp_path):
    code, _, _ = run(
        capsys, "status", "--admin", "http://127.0.0.1:9999/", "--token", "tok", "--json"
    )
    assert code == 0
    assert fake.requests == [("http://127.0.0.1:9999", "tok", "GET", "/status", None)]


def test_global_options_before_the_command_survive(capsys, fake, tmp_path):
    code, out, _ = run(
        capsys, "--admin", "http://localhost:1", "--token", "tok", "--json", "status"
    )
    assert code == 0
    assert fake.requests[0][:2] == ("http://localhost:1", "tok")
    assert json.loads(out) == {}


def test_token_option_overrides_the_file(capsys, fake, var):
    run(capsys, "--var", str(var), "--token", "given", "status")
    assert fake.requests[0][1] == "given"


def test_default_var_is_relative_to_cwd(capsys, fake, var, monkeypatch):
    monkeypatch.chdir(var.parent)
    code, _, _ = run(capsys, "status")
    assert code == 0
    assert fake.requests[0][1] == "file-token"


def test_json_output(capsys, fake, var):
    fake.answer = [{"id": SERVICE_ID, "state": "active", "extra": {"x": [1, 2]}}]
    code, out, _ = run(capsys, "--var", str(var), "--json", "services")
    assert code == 0
    assert json.loads(out) == fake.answer


def test_server_error_message(capsys, fake, var):
    fake.answer = cli.CliError("no such service: nope")
    code, out, err = run(capsys, "--var", str(var), "activate", "nope")
    assert (code, out, err) == (1, "", "slee: no such service: nope\n")


# -- errors before or instead of an answer ----------------------------------------------


def test_unreachable_container(capsys, var):
    port = free_port()
    code, out, err = run(
        capsys, "--var", str(var), "--admin", f"http://127.0.0.1:{port}", "status"
    )
    assert (code, out) == (1, "")
    assert err == (
        f"slee: cannot reach the container at http://127.0.0.1:{port}: "
        "connection refused\n"
    )


def test_container_that_does_not_answer(capsys, var):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)  # the kernel accepts; nobody answers
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        code, _, err = run(
            capsys, "--var", str(var), "--admin", url, "--timeout", "0.2", "status"
        )
    assert code == 1
    assert err == f"slee: cannot reach the container at {url}: timed out\n"


def test_missing_token_file(capsys, tmp_path):
    var = tmp_path / "nowhere"
    code, out, err = run(capsys, "--var", str(var), "status")
    assert (code, out) == (1, "")
    assert err == (
        f"slee: no token: {var}/admin.token not found "
        f"(is the container running with --var {var}?)\n"
    )


def test_empty_token_file(capsys, var):
    (var / TOKEN_FILE).write_text("")
    code, _, err = run(capsys, "--var", str(var), "status")
    assert code == 1
    assert err == f"slee: no token: {var}/admin.token is empty\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["deploy"], "the following arguments are required: PATH"),
        (["trace", "slee"], "trace takes COMPONENT and LEVEL"),
        (["--admin", "ftp://host", "status"], "--admin must be an http:// or https:// URL"),
        (["--admin", "127.0.0.1:8787", "status"], "--admin must be an http://"),
        (["--timeout", "0", "status"], "--timeout must be a positive"),
        (["--timeout", "soon", "status"], "invalid float value"),
        (["--token", "two words", "status"], "--token must be printable ASCII"),
    ],
)
def test_usage_errors(capsys, fake, var, argv, message):
    code, out, err = run(capsys, "--var", str(var), *argv)
    assert (code, out) == (2, "")
    assert err.startswith("slee: ") and message in err
    assert err.count("\n") == 1
    assert fake.requests == []


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in ("status", "deploy", "ra-entities", "clear-alarm", "trace"):
        assert command in out


# -- answers from the server ---------------------------------------------------------


@pytest.mark.parametrize(
    "status, raw, message",
    [
        (401, b'{"error": "bad token"}', "401 unauthorized: bad token"),
        (400, b'{"error": "no such unit: x"}', "no such unit: x"),
        (404, b'{"error": "no such resource: /v2"}', "no such resource: /v2"),
        (413, b'{"error": "the request body is over 65536 bytes"}',
         "the request body is over 65536 bytes"),
        (500, b'{"error": "internal error; see the container log"}',
         "server error 500: internal error; see the container log"),
        (502, b"<html>Bad gateway</html>", "HTTP 502 from http://h/x"),
        (200, b"<html>hello</html>", "unexpected answer from http://h/x: not JSON"),
        (400, b"[]", "HTTP 400"),
    ],
)
def test_decode_answer_errors(status, raw, message):
    with pytest.raises(cli.CliError) as e:
        cli.decode_answer(status, raw, "http://h/x")
    assert e.value.message.startswith(message)
    assert e.value.code == 1


def test_decode_answer_ok():
    assert cli.decode_answer(200, b'{"a": [1]}', "http://h/x") == {"a": [1]}


# -- human output ---------------------------------------------------------------------


def lines(text):
    return text.split("\n")


def test_render_status():
    out = cli.render("status", {
        "state": "running",
        "uptime": 93784.2,
        "database": "file:///srv/var/Data.fs",
        "counts": {"services": 3, "units": 1, "ra_entities": 2,
                   "activities": 5, "sbb_entities": 7},
        "events": {"delivered": 10, "rolled_back": 1, "queued": 0},
    })
    assert lines(out) == [
        "state:        running",
        "uptime:       1d 02:03:04",
        "database:     file:///srv/var/Data.fs",
        "services:     3",
        "units:        1",
        "ra entities:  2",
        "activities:   5",
        "sbb entities: 7",
        "events:       delivered 10, rolled back 1, queued 0",
    ]


def test_render_services_is_an_aligned_table():
    out = cli.render("services", [
        {"id": SERVICE_ID, "name": "presence", "unit": "ps", "state": "active",
         "root_sbb": "PresenceSbb", "priority": 10, "root_entities": 12},
        {"id": "rls:org.example:1.0", "name": "rls", "unit": "rls",
         "state": "stopping", "root_sbb": "RlsSbb", "priority": 0, "root_entities": 0},
    ])
    assert lines(out) == [
        "ID                        STATE     PRIORITY  ROOT SBB     ENTITIES  UNIT",
        "presence:org.example:1.0  active    10        PresenceSbb  12        ps",
        "rls:org.example:1.0       stopping  0         RlsSbb       0         rls",
    ]


@pytest.mark.parametrize(
    "command, empty",
    [
        ("services", "(no services)"),
        ("units", "(no deployed units)"),
        ("ra-entities", "(no RA entities)"),
        ("activities", "(no activities)"),
        ("sbb-entities", "(no SBB entities)"),
        ("usage", "(no usage parameters)"),
        ("alarms", "(no active alarms)"),
    ],
)
def test_render_empty_lists(command, empty):
    assert cli.render(command, []) == empty


def test_render_units():
    out = cli.render("units", [{
        "name": "presence-server",
        "services": [{"id": SERVICE_ID}],
        "sbbs": ["A", "B", "C"],
        "event_types": ["x", "y"],
        "ra_entities": ["sip"],
    }])
    assert lines(out)[1].split() == [
        "presence-server", SERVICE_ID, "3", "2", "sip"
    ]


def test_render_deployed_unit():
    out = cli.render("deploy", {
        "name": "demo", "services": [SERVICE_ID, "b:x:1"], "sbbs": ["Root"],
        "event_types": [], "ra_entities": ["clock"],
    })
    assert lines(out) == [
        "deployed unit demo",
        "services:    presence:org.example:1.0, b:x:1",
        "sbbs:        Root",
        "event types: -",
        "ra entities: clock",
    ]


def test_render_ra_entities_and_activities_and_entities():
    ra = cli.render("ra-entities", [{
        "name": "sip", "type": "sip", "unit": "ps", "state": "active",
        "properties": {"port": 5060}, "activities": 4,
        "status": {"listening": ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"], "connections": 3},
    }])
    assert lines(ra)[1].split() == ["sip", "sip", "active", "4", "ps",
                                    "listening=udp:127.0.0.1:5060,tcp:127.0.0.1:5060",
                                    "connections=3"]
    acts = cli.render("activities", [{
        "key": "sip:abc", "ra": "sip", "handle": "abc", "durable": True,
        "attached": 2, "names": ["alice", "bob"], "ending": False,
    }])
    assert re.split(r"\s{2,}", lines(acts)[1]) == [
        "sip:abc", "sip", "abc", "yes", "2", "alice, bob", "no"
    ]
    ents = cli.render("sbb-entities", [{
        "id": "e1", "service": SERVICE_ID, "sbb": "Root", "parent": None,
        "priority": 0, "attached": ["sip:abc"], "children": ["e2", "e3"],
        "cmp": {"n": "1"},
    }])
    assert lines(ents)[1].split() == ["e1", SERVICE_ID, "Root", "-", "0", "1", "2"]


def test_render_usage():
    out = cli.render("usage", [{
        "service": "ps", "sbb": "Root",
        "counters": {"publications": 12},
        "samples": {"latency": {"count": 3, "min": 1, "max": 5, "mean": 2.3333333}},
    }])
    assert lines(out) == [
        "SERVICE  SBB   PARAMETER     KIND     VALUE",
        "ps       Root  publications  counter  12",
        "ps       Root  latency       sample   count=3 min=1 max=5 mean=2.33333",
    ]


def test_render_alarms():
    out = cli.render("alarms", [{
        "id": "a1", "source": "sip", "type": "tls", "instance": "cert",
        "level": "major", "message": "certificate expires\nsoon", "raised": 0,
    }])
    row = re.split(r"\s{2,}", lines(out)[1])
    assert row[0:2] == ["a1", "major"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[2])
    assert row[3:] == ["sip", "tls", "cert", "certificate expires soon"]


def test_render_trace():
    out = cli.render("trace", {"slee.sbb": "debug", "slee": "info"})
    assert lines(out) == ["COMPONENT  LEVEL", "slee       info", "slee.sbb   debug"]


@pytest.mark.parametrize(
    "argv, answer, expected",
    [
        (["undeploy", "demo"], {"undeployed": "demo"}, "undeployed unit demo"),
        (["activate", "ps"], {"activated": "ps"}, "activated service ps"),
        (["deactivate", "ps"], {"deactivated": "ps"}, "deactivated service ps"),
        (["deactivate", "ps"], {"deactivated": "ps", "state": "stopping"},
         "deactivated service ps (stopping: no new initial events; existing SBB entities finish)"),
        (["usage", "--reset"], {"reset": True}, "usage parameters reset"),
        (["clear-alarm", "a1"], {"cleared": "a1"}, "cleared alarm a1"),
        (["trace", "slee", "warn"], {"component": "slee", "level": "warn"},
         "trace level of slee set to warn"),
    ],
)
def test_action_output(capsys, fake, var, argv, answer, expected):
    fake.answer = answer
    code, out, _ = run(capsys, "--var", str(var), *argv)
    assert code == 0
    assert out.startswith(expected)


# -- the token file ------------------------------------------------------------------------


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_ensure_token_creates_a_private_file(tmp_path):
    var = tmp_path / "var" / "deeper"
    token = ensure_token(var)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43,}", token)
    assert mode(var / TOKEN_FILE) == 0o600
    assert (var / TOKEN_FILE).read_text().strip() == token
    assert read_token(var) == token


def test_ensure_token_reuses_the_file(tmp_path):
    first = ensure_token(tmp_path)
    assert ensure_token(tmp_path) == first
    assert ensure_token(str(tmp_path)) == first


def test_tokens_differ(tmp_path):
    assert ensure_token(tmp_path / "a") != ensure_token(tmp_path / "b")


def test_ensure_token_replaces_a_readable_file(tmp_path):
    path = tmp_path / TOKEN_FILE
    path.write_text("leaked-token\n")
    os.chmod(path, 0o644)
    with pytest.warns(TokenFileWarning, match="readable by group or others"):
        token = ensure_token(tmp_path)
    assert token != "leaked-token"
    assert mode(path) == 0o600
    assert read_token(tmp_path) == token
    assert [p.name for p in tmp_path.iterdir()] == [TOKEN_FILE]


@pytest.mark.parametrize("content", ["", "\n", "not a token\n"])
def test_ensure_token_replaces_a_bad_file(tmp_path, content):
    path = tmp_path / TOKEN_FILE
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.warns(TokenFileWarning):
        token = ensure_token(tmp_path)
    assert read_token(tmp_path) == token
    assert mode(path) == 0o600


def test_ensure_token_refuses_a_directory(tmp_path):
    (tmp_path / TOKEN_FILE).mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        ensure_token(tmp_path)


def test_ensure_token_refuses_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("x")
    (tmp_path / TOKEN_FILE).symlink_to(target)
    with pytest.raises(ValueError, match="not a regular file"):
        ensure_token(tmp_path)


def test_read_token_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_token(tmp_path)
    (tmp_path / TOKEN_FILE).write_text("  \n")
    with pytest.raises(ValueError, match="is empty"):
        read_token(tmp_path)
