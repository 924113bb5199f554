# Sourced by the bench scripts: one server at a time, started by the script
# (its pid in SERVER_PID), and a scratch directory (WORK); both are gone when
# the script ends, however it ends.  Also: usage (prints the script's
# "# Usage" block), free_port (a TCP port free on 127.0.0.1 now).

WORK=$(mktemp -d)
SERVER_PID=

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

usage() {
    sed -n '/^# Usage/,/^#   bench/p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

# free_port [udp]: a port free on 127.0.0.1 now (TCP unless udp is asked).
free_port() {
    "$PYTHON" -c 'import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1:] == ["udp"] else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$@"
}
