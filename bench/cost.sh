#!/usr/bin/env bash
#
# The server's CPU time per operation, at a fixed load below its capacity:
# the figure to compare two builds of slee with (bench/paired.sh).
#
# A rate search (bench/sip_options.sh, bench/presence.sh) finds the rate at
# which calls start to fail, in steps: on this machine's shared CPUs two runs
# of the same build land a step apart (+-15%), far more than the few percent
# a change of the code makes.  The CPU time the server spends per operation
# under the same load is steadier: the load is the same whatever the
# server's speed, and what the neighbours take is not counted.
#
# On one server (twistd -n slee on its defaults: the integrated profile,
# FileStorage; watchers allowed by default as in bench/presence.sh; XCAP
# trusting 127.0.0.1, for wrk), one after the other:
#
#   - OPTIONS: SIPp, tests/sip/scenarios/options_uac.xml, --options-rate/s;
#   - PUBLISH: SIPp, bench/presence/publish.xml (a new presentity per
#     call), --publish-rate/s;
#   - SUBSCRIBE: SIPp, bench/presence/subscribe.xml (a new watcher of one
#     of 200 presentities published first, its 200 and first NOTIFY),
#     --subscribe-rate/s;
#   - XCAP GET and PUT (If-Match: *) of 200 users' 2 KiB resource-lists,
#     wrk with 4 connections (as fast as the server answers: wrk has no
#     fixed rate; the CPU per request is counted all the same);
#
# each for --seconds, after the server went quiet.  For each it prints the
# operations that succeeded, those that failed, and the server's CPU time
# (user + system, from /proc) per successful operation, in microseconds.
# A run with failures measured something else: lower the rates.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/cost.sh [--seconds N] [--options-rate R] [--publish-rate R] [--subscribe-rate R]
#
# slee runs from the working tree (PYTHONPATH).  Every process the script
# starts is killed when it ends, however it ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=$ROOT/.venv/bin/python
TWISTD=$ROOT/.venv/bin/twistd
SECONDS_PER_RUN=15
OPTIONS_RATE=2000
PUBLISH_RATE=300
SUBSCRIBE_RATE=200
PRESENTITIES=200
ANSWER_WITHIN=2000
READY_TIMEOUT=60

# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER_RUN=${2:?}; shift ;;
        --options-rate) OPTIONS_RATE=${2:?}; shift ;;
        --publish-rate) PUBLISH_RATE=${2:?}; shift ;;
        --subscribe-rate) SUBSCRIBE_RATE=${2:?}; shift ;;
        *) usage ;;
    esac
    shift
done
command -v sipp >/dev/null || { echo "sipp is not installed (apt-get install sip-tester)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# The shipped units of a default start, watchers allowed by default (see
# bench/presence.sh, which does the same).
DEPLOY=$WORK/deploy
mkdir "$DEPLOY"
for name in $(PYTHONPATH=$ROOT "$PYTHON" -c '
from slee.settings import DEFAULT_PROFILE, shipped_profiles
print(*shipped_profiles()[DEFAULT_PROFILE])'); do
    cp -r "$ROOT/deployables/$name" "$DEPLOY/$name"
done
sed -i 's|^env = { default-policy = "confirm" }$|env = { default-policy = "allow" }|' \
    "$DEPLOY/presence-server/deployable.toml"

SIP_PORT=$(free_port udp)
XCAP_PORT=$(free_port)
PYTHONPATH=$ROOT "$TWISTD" -n --pidfile= slee --var "$WORK/var" --deploy-dir "$DEPLOY" \
    --admin tcp:0:interface=127.0.0.1 --sip "udp:$SIP_PORT:interface=127.0.0.1" \
    --xcap "tcp:$XCAP_PORT:interface=127.0.0.1" --xcap-auth trust-localhost \
    >"$WORK/slee.log" 2>&1 &
SERVER_PID=$!
XCAP=http://127.0.0.1:$XCAP_PORT

# sipp_run SCENARIO KEY RATE CALLS [SIPP OPTIONS...]: SIPp's final screen.
sipp_run() {
    local scenario=$1 key=$2 rate=$3 calls=$4
    shift 4
    (cd "$WORK" && sipp "127.0.0.1:$SIP_PORT" -sf "$scenario" -key step "$key" -t u1 \
        -i 127.0.0.1 -r "$rate" -m "$calls" -timeout "$((calls / rate + 10))s" \
        -recv_timeout "$ANSWER_WITHIN" -nd -nostdin "$@" </dev/null 2>&1) || true
}

server_ticks() {
    sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}

# wait_quiet: until the server used less than a tenth of a CPU over a second.
wait_quiet() {
    local before after
    before=$(server_ticks)
    for _ in $(seq "$READY_TIMEOUT"); do
        sleep 1
        after=$(server_ticks)
        [ $((10 * (after - before))) -lt "$(getconf CLK_TCK)" ] && return
        before=$after
    done
}

# report LABEL OK FAILED TICKS
report() {
    awk -v label="$1" -v ok="$2" -v failed="$3" -v ticks="$4" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "   %-10s %8d ok %6d failed %10.1f us of server CPU per operation\n", label, ok,
            failed, (ok > 0) ? 1e6 * ticks / hz / ok : 0 }'
}

# sip_cost LABEL SCENARIO KEY RATE [SIPP OPTIONS...]
sip_cost() {
    local label=$1 scenario=$2 key=$3 rate=$4 before screen
    shift 4
    wait_quiet
    before=$(server_ticks)
    screen=$(sipp_run "$scenario" "$key" "$rate" $((rate * SECONDS_PER_RUN)) "$@")
    report "$label" "$(cumulative 'Successful call' <<<"$screen")" \
        "$(cumulative 'Failed call' <<<"$screen")" $(($(server_ticks) - before))
}

# xcap_cost LABEL MODE
xcap_cost() {
    local before report
    wait_quiet
    before=$(server_ticks)
    report=$(wrk -t1 -c4 -d"${SECONDS_PER_RUN}s" -s "$ROOT/bench/xcap_wrk.lua" "$XCAP" \
        -- "$2" "$PRESENTITIES" "$WORK/document.xml")
    report "$1" "$(awk '/ requests in / { print $1 }' <<<"$report")" \
        "$(awk '/Non-2xx or 3xx responses:/ { print $5 } END { if (!NR) print 0 }' <<<"$report" \
            | tail -n 1)" $(($(server_ticks) - before))
}

for _ in $(seq "$READY_TIMEOUT"); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/slee.log" >&2; exit 1; }
    [ "$(sipp_run "$ROOT/bench/presence/publish.xml" "ready" 1 1 | cumulative 'Successful call')" \
        = 1 ] && break
done

echo "== seeding: $PRESENTITIES presentities, $PRESENTITIES resource-lists documents"
sipp_run "$ROOT/bench/presence/publish.xml" 0 100 "$PRESENTITIES" >/dev/null
{ echo SEQUENTIAL; seq -f 'p0-%.0f' "$PRESENTITIES"; } >"$WORK/presentities.csv"
"$PYTHON" - "$XCAP" "$PRESENTITIES" "$WORK/document.xml" <<'PY'
import sys
import urllib.request
base, users, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
entries = "".join(f'  <entry uri="sip:friend{n:03d}@example.com"><display-name>Friend number '
                  f'{n:03d}</display-name></entry>\n' for n in range(20))
document = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<resource-lists xmlns="urn:ietf:params:xml:ns:resource-lists">\n'
            f'<list name="friends">\n{entries}</list>\n</resource-lists>\n')
document += "<!-- " + "x" * max(0, 2048 - len(document) - 9) + " -->\n"
open(path, "w").write(document)
for n in range(users):
    request = urllib.request.Request(
        f"{base}/xcap-root/resource-lists/users/sip:user{n}@example.com/index",
        data=document.encode(), method="PUT",
        headers={"Content-Type": "application/resource-lists+xml"})
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201), response.status
PY

echo "== server CPU per operation, ${SECONDS_PER_RUN}s each"
sip_cost OPTIONS "$ROOT/tests/sip/scenarios/options_uac.xml" o "$OPTIONS_RATE"
sip_cost PUBLISH "$ROOT/bench/presence/publish.xml" 1 "$PUBLISH_RATE"
sip_cost SUBSCRIBE "$ROOT/bench/presence/subscribe.xml" s "$SUBSCRIBE_RATE" \
    -inf "$WORK/presentities.csv"
xcap_cost "XCAP GET" get
xcap_cost "XCAP PUT" put
