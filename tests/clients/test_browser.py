"""
A browser presence client: SIP.js 0.21 in Debian's Chromium, over
WebSocket, against a real C{twistd -n slee} with Digest authentication.

The server runs the shipped units on free ports of 127.0.0.1 (SIP on
WebSocket and UDP, XCAP, both authenticating against a users.toml with
alice and bob); alice's pres-rules allowing bob are PUT with
C{curl --digest} as alice.  A Twisted static web server serves
tests/clients/browser, where presence.html loads SIP.js from its
node_modules; drive.mjs (playwright-core) opens it in Chromium and runs its
scenario: both REGISTER, alice PUBLISHes open, bob SUBSCRIBEs to her
presence and gets a NOTIFY with it, alice PUBLISHes closed with a note and
bob gets that too; then all is undone (unsubscribe, unpublish, unregister).

Chromium, Node.js and curl come from Debian and the npm packages from
tests/clients/browser/package-lock.json (C{npm ci}): .ci/run installs them
all; the test fails, not skips, without them.
"""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import pytest_twisted

from documents import quick_start_rules
from test_restart import processes, ra_status  # noqa: F401

BROWSER = Path(__file__).parent / "browser"
CHROMIUM = "/usr/bin/chromium"
REALM = "example.com"
USERS = {"alice": "alice-secret", "bob": "bob-secret"}
NOTE = "Gone to lunch"

#: Milliseconds the page and the browser may take (drive.mjs), and seconds
#: for the whole driver process.
SCENARIO_TIMEOUT_MS = 60000
DRIVER_TIMEOUT = SCENARIO_TIMEOUT_MS / 1000 + 30



def run(argv, timeout, **kwargs):
    """Run C{argv} in a thread; @return: a Deferred of its CompletedProcess."""
    from twisted.internet.threads import deferToThread
    return deferToThread(subprocess.run, argv, capture_output=True, text=True,
                         timeout=timeout, **kwargs)


def port_of(endpoint):
    """@return: the port of a listening endpoint as ra-entities shows it (C{ws:127.0.0.1:PORT})."""
    return int(endpoint.rsplit(":", 1)[1])


@pytest.fixture
def tools():
    """Fail at once, saying what to install, when a tool the test drives is missing."""
    missing = [what for what, present in [
        ("chromium (apt-get install chromium)", Path(CHROMIUM).exists()),
        ("node (apt-get install nodejs)", shutil.which("node")),
        ("curl (apt-get install curl)", shutil.which("curl")),
        ("the npm packages (cd tests/clients/browser && npm ci --no-audit --no-fund)",
         (BROWSER / "node_modules" / "sip.js" / "lib" / "index.js").exists()
         and (BROWSER / "node_modules" / "playwright-core").is_dir()),
    ] if not present]
    assert not missing, "missing: " + ", ".join(missing) + " (.ci/run installs them)"


@pytest_twisted.async_yield_fixture
async def web_server():
    """tests/clients/browser over HTTP on a free port of 127.0.0.1: @return: its port."""
    from twisted.internet import reactor
    from twisted.web.server import Site
    from twisted.web.static import File

    site = Site(File(str(BROWSER)))
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    yield port.getHost().port
    await port.stopListening()


# twisted.web.static makes its error pages with a deprecated class when imported.
@pytest.mark.filterwarnings("ignore:twisted.web.resource._Unsafe:DeprecationWarning")
@pytest_twisted.ensureDeferred
async def test_browser_client_publishes_and_watches_over_websocket(
        tmp_path, processes, tools, web_server):  # noqa: F811
    users = tmp_path / "users.toml"
    users.write_text(f'realm = "{REALM}"\n' + "".join(
        f'\n[users."{name}@{REALM}"]\npassword = "{password}"\n'
        for name, password in USERS.items()))
    process = processes(tmp_path, tmp_path / "var",
                        sip=("ws:0:interface=127.0.0.1", "udp:0:interface=127.0.0.1"),
                        extra=["--users", str(users), "--sip-auth", "digest",
                               "--xcap-auth", "digest"])
    await process.start().ready()
    sip = (await ra_status(process, "sip"))["listening"]
    [ws] = [port_of(endpoint) for endpoint in sip if endpoint.startswith("ws:")]
    xcap = (await ra_status(process, "xcap"))["listening"]

    # alice lets bob see her.
    document = tmp_path / "pres-rules.xml"
    document.write_bytes(quick_start_rules())
    uri = (f"http://127.0.0.1:{port_of(xcap)}/xcap-root/pres-rules/users/"
           f"sip:alice@{REALM}/index")
    put = await run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30",
                     "--digest", "-u", f"alice@{REALM}:{USERS['alice']}", "-X", "PUT",
                     "-H", "Content-Type: application/auth-policy+xml",
                     "--data-binary", f"@{document}", uri], timeout=60)
    assert put.returncode == 0 and put.stdout in ("200", "201"), \
        f"curl PUT {uri}: exit {put.returncode}, status {put.stdout!r}\n{put.stderr}"

    config = {"ws": f"ws://127.0.0.1:{ws}", "domain": REALM, "note": NOTE,
              "alice": {"name": "alice", "password": USERS["alice"]},
              "bob": {"name": "bob", "password": USERS["bob"]},
              "timeout": SCENARIO_TIMEOUT_MS}
    driven = await run(["node", str(BROWSER / "drive.mjs"),
                        f"http://127.0.0.1:{web_server}/presence.html", json.dumps(config)],
                       timeout=DRIVER_TIMEOUT, cwd=BROWSER)
    lines = driven.stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines else {}
    trace = "\n".join(result.get("trace", []))
    context = (f"drive.mjs: exit {driven.returncode}, error {result.get('error')}\n"
               f"--- stderr ---\n{driven.stderr[-3000:]}\n--- SIP trace ---\n{trace[-12000:]}\n"
               f"{process.output()}")
    assert driven.returncode == 0 and result.get("ok"), context
    assert "Authorization: Digest algorithm=MD5" in trace, context  # SIP.js's only algorithm

    assert result["registered"] == [f"sip:alice@{REALM}", f"sip:bob@{REALM}"], context
    assert result["published"] == ["open", "closed"], context
    bodies = [notify["body"] or "" for notify in result["notifies"]]
    # bob saw alice open first, then closed with her note; never pending.
    first_open = next(i for i, body in enumerate(bodies) if "<basic>open</basic>" in body)
    [closed] = [i for i, body in enumerate(bodies) if "<basic>closed</basic>" in body]
    assert first_open < closed, context
    assert NOTE in bodies[closed], context
    for notify in result["notifies"][:closed + 1]:
        assert notify["state"].startswith("active"), context
        assert notify["type"] == "application/pidf+xml" or not notify["body"], context
    assert "Traceback" not in process.log(), process.output()
