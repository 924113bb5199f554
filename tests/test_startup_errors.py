"""
An endpoint that cannot be listened on stops the start: C{twistd -n slee}
says which in one line and exits non-zero, whether it is an RA entity's
(C{--sip}, C{--xcap}) or management's (C{--admin}).  Real sockets: the
test holds the busy ports itself.
"""

import socket
import subprocess
import sys

import pytest

from test_restart import child_env, venv_script

LOCAL = "interface=127.0.0.1"


@pytest.fixture
def busy():
    """Ports in use on 127.0.0.1: {"udp": port, "tcp": port}."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        yield {"udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1]}


def start(tmp_path, sip, xcap=f"tcp:0:{LOCAL}", admin=f"tcp:0:{LOCAL}"):
    """Run C{twistd -n slee} until it ends: (exit status, its standard error)."""
    argv = [sys.executable, str(venv_script("twistd")), "-n", "--pidfile=",
            "--logfile", str(tmp_path / "twistd.log"),
            "slee", "--var", str(tmp_path / "var"), "--profile", "xdms",
            "--sip", sip, "--xcap", xcap, "--admin", admin]
    done = subprocess.run(argv, cwd=tmp_path, env=child_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr


@pytest.mark.parametrize("option, transport, named", [
    ("sip", "udp", "RA entity sip: "), ("xcap", "tcp", "RA entity xcap: "),
    ("admin", "tcp", "--admin "),
])
def test_a_busy_port_stops_the_start(tmp_path, busy, option, transport, named):
    endpoint = f"{transport}:{busy[transport]}:{LOCAL}"
    status, stderr = start(tmp_path, **{"sip": f"udp:0:{LOCAL}", option: endpoint})
    error = f"{named}{endpoint}: cannot listen: address already in use"
    assert status != 0
    assert stderr.strip() == "slee: " + error
    assert "slee cannot start: " + error in (tmp_path / "twistd.log").read_text()


def test_an_address_not_the_machines_stops_the_start(tmp_path):
    status, stderr = start(tmp_path, sip="udp:0:interface=203.0.113.254")
    assert status != 0
    assert stderr.strip() == ("slee: RA entity sip: udp:0:interface=203.0.113.254: cannot listen: "
                              "cannot assign requested address")
