#!/usr/bin/env bash
#
# XCAP GET and conditional PUT rates on 1,000 users' resource-lists (2 KiB
# documents), with wrk (Debian package wrk), against:
#
#   (a) twistd -n slee with its shipped units (the XCAP RA and the XDMS), on
#       its default database: a FileStorage, so that a 200 to a PUT means the
#       document is on disk (fsync'd, group commit);
#   (b) bench/xcap_static.py, a twisted.web resource that answers every GET
#       with the same document: the ceiling for GETs in one Python process.
#
# The XDMS runs with --xcap-auth trust-localhost: wrk cannot answer Digest
# challenges.  Documents are made first (one PUT per user), then wrk GETs a
# random user's document for --seconds, then PUTs it with If-Match: * (the
# document must exist: a conditional write) for --seconds.  Prints each
# rate, the non-2xx answers wrk saw, and the figures against the targets:
# GET at least 50% of the ceiling, durable PUT at least 1,000/s.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/xcap.sh [--seconds N] [--connections N]
#
# slee runs from the working tree (PYTHONPATH).  Every process the script
# starts is killed when it ends, however it ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=$ROOT/.venv/bin/python
TWISTD=$ROOT/.venv/bin/twistd
USERS=1000
SECONDS_PER_RUN=10
CONNECTIONS=16
READY_TIMEOUT=30

# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER_RUN=${2:?}; shift ;;
        --connections) CONNECTIONS=${2:?}; shift ;;
        *) usage ;;
    esac
    shift
done

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# A 2 KiB resource-lists document.
"$PYTHON" - "$WORK/document.xml" <<'PY'
import sys
entries = "".join(f'  <entry uri="sip:friend{n:03d}@example.com"><display-name>Friend number {n:03d}</display-name></entry>\n'
                  for n in range(20))
document = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">\n'
            f'<list name="friends">\n{entries}</list>\n</resource-lists>\n')
document += "<!-- " + "x" * max(0, 2048 - len(document) - 9) + " -->\n"
open(sys.argv[1], "w").write(document)
PY

# run_wrk URL MODE: wrk's report; sets RATE and ERRORS.
run_wrk() {
    local report
    report=$(wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s "$ROOT/bench/xcap_wrk.lua" "$1" \
        -- "$2" "$USERS" "$WORK/document.xml")
    RATE=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' <<<"$report")
    ERRORS=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' <<<"$report")
    ERRORS=${ERRORS:-0}
}

# -- (a) the XDMS ----------------------------------------------------------------
PORT=$(free_port)
PYTHONPATH=$ROOT "$TWISTD" -n --pidfile= slee --var "$WORK/var" \
    --admin tcp:0:interface=127.0.0.1 --sip udp:0:interface=127.0.0.1 \
    --xcap "tcp:$PORT:interface=127.0.0.1" --xcap-auth trust-localhost \
    >"$WORK/slee.log" 2>&1 &
SERVER_PID=$!
BASE=http://127.0.0.1:$PORT
deadline=$((SECONDS + READY_TIMEOUT))
until curl -s -o /dev/null "$BASE/xcap-root/xcap-caps/global/index"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "slee did not answer XCAP within ${READY_TIMEOUT}s:" >&2
        cat "$WORK/slee.log" >&2
        exit 1
    fi
    sleep 0.2
done

echo "== making $USERS documents"
"$PYTHON" - "$BASE" "$USERS" "$WORK/document.xml" <<'PY'
import sys
import urllib.request
base, users, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
document = open(path, "rb").read()
for n in range(users):
    request = urllib.request.Request(
        f"{base}/xcap-root/resource-lists/users/sip:user{n}@example.com/index", data=document,
        method="PUT", headers={"Content-Type": "application/resource-lists+xml"})
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201), response.status
PY

echo "== XDMS (twistd -n slee, FileStorage), ${SECONDS_PER_RUN}s each, $CONNECTIONS connections"
run_wrk "$BASE" get
GET_RATE=$RATE
printf '   GET:                  %8d/s   non-2xx: %s\n' "$GET_RATE" "$ERRORS"
run_wrk "$BASE" put
PUT_RATE=$RATE
PUT_ERRORS=$ERRORS
printf '   PUT (If-Match: *):    %8d/s   non-2xx: %s\n' "$PUT_RATE" "$PUT_ERRORS"
stop_server

# -- (b) the ceiling ---------------------------------------------------------------
"$PYTHON" "$ROOT/bench/xcap_static.py" "$WORK/document.xml" >"$WORK/static.log" 2>&1 &
SERVER_PID=$!
deadline=$((SECONDS + READY_TIMEOUT))
until [ -s "$WORK/static.log" ] || [ $SECONDS -ge $deadline ]; do sleep 0.1; done
STATIC=http://127.0.0.1:$(head -n 1 "$WORK/static.log")
run_wrk "$STATIC" get
CEILING=$RATE
printf '== static twisted.web resource (ceiling)\n   GET:                  %8d/s   non-2xx: %s\n' \
    "$CEILING" "$ERRORS"
stop_server

echo "== XCAP, $(nproc) CPUs"
awk -v g="$GET_RATE" -v c="$CEILING" -v p="$PUT_RATE" -v e="$PUT_ERRORS" 'BEGIN {
    r = (c > 0) ? 100 * g / c : 0
    printf "   GET / ceiling:        %.0f%% (target >= 50%%: %s)\n", r, (r >= 50) ? "met" : "NOT met"
    printf "   durable PUT:          %d/s (target >= 1,000/s: %s)\n", p,
        (p >= 1000 && e == 0) ? "met" : "NOT met"
}'
