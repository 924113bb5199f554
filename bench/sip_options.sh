#!/usr/bin/env bash
#
# OPTIONS per second over UDP: slee against the ceiling of one Python process.
#
# SIPp sends OPTIONS (tests/sip/scenarios/options_uac.xml: a call succeeds on a
# 200 with an Allow header field within 2 s, SIPp retransmitting meanwhile as a
# UDP client does) at rising rates, one step of --seconds per rate: -m (rate x
# seconds calls) and -timeout (the step's length plus a grace period) end the
# traffic, -recv_timeout ends each call (SIPp's -timeout alone would wait for
# every open call to run its retransmissions out, 32 s), first to
#
#   (a) twistd -n slee with --sip udp:PORT and its OPTIONS service, then to
#   (b) bench/udp_responder.py, which answers 200 without parsing: the ceiling.
#
# For each server it prints every step, then the highest rate with fewer than
# 0.1% failed calls, and the ratio slee / ceiling (target: at least 50%).  A
# server no step made fail has only a lower bound, which the script says: a
# --rates list that stops short of the ceiling's limit understates it (the
# responder with SIPp here goes past 40,000/s) and makes the ratio meaningless.  The
# rate counted is the one SIPp reached (its calls over the step's whole time):
# below the rate asked when the server, or SIPp itself, cannot keep up, since
# SIPp holds back new calls while too many are open.  The rates climb until two
# steps in a row fail.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/sip_options.sh [--only-ceiling] [--seconds N] [--rates "R1 R2 ..."]
#
# --only-ceiling measures the responder alone.  slee runs from the working tree
# (PYTHONPATH), not from the copy installed in .venv.  Every process the script
# starts is killed when it ends, however it ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIO=$ROOT/tests/sip/scenarios/options_uac.xml
PYTHON=$ROOT/.venv/bin/python
TWISTD=$ROOT/.venv/bin/twistd
RATES="2000 4000 6000 8000 10000 12000 15000 20000 25000 30000 40000 50000 60000"
SECONDS_PER_STEP=5
GRACE=5              # seconds SIPp may take past a step's length to start its calls
ANSWER_WITHIN=2000   # milliseconds a call may wait for its 200 before it counts as failed
READY_TIMEOUT=30     # seconds a server may take to answer its first OPTIONS
ONLY_CEILING=no

# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

while [ $# -gt 0 ]; do
    case $1 in
        --only-ceiling) ONLY_CEILING=yes ;;
        --seconds) SECONDS_PER_STEP=${2:?}; shift ;;
        --rates) RATES=${2:?}; shift ;;
        *) usage ;;
    esac
    shift
done

command -v sipp >/dev/null || { echo "sipp is not installed" >&2; exit 1; }

# sipp_run PORT RATE CALLS TIMEOUT: one SIPp run; its final screens on stdout.
# -nd: a call that times out just fails (no CANCEL or BYE sent for it).
sipp_run() {
    (cd "$WORK" && sipp "127.0.0.1:$1" -sf "$SCENARIO" -t u1 -r "$2" -m "$3" \
        -timeout "$4s" -recv_timeout "$ANSWER_WITHIN" -nd -nostdin </dev/null 2>&1) || true
}

# wait_ready NAME PORT: until the server answers one OPTIONS, or give up.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$1 exited before answering; its output:" >&2
            cat "$WORK/$1.log" >&2
            exit 1
        fi
        if [ "$(sipp_run "$2" 1 1 2 | cumulative 'Successful call')" = 1 ]; then
            return
        fi
    done
    echo "$1 did not answer OPTIONS within ${READY_TIMEOUT}s; its output:" >&2
    cat "$WORK/$1.log" >&2
    exit 1
}

start_responder() {
    "$PYTHON" "$ROOT/bench/udp_responder.py" >"$WORK/responder.log" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + READY_TIMEOUT))
    until [ -s "$WORK/responder.log" ] || [ $SECONDS -ge $deadline ]; do
        sleep 0.1
    done
    PORT=$(head -n 1 "$WORK/responder.log")
}

start_slee() {
    PORT=$(free_port udp)
    # PYTHONPATH: the working tree's slee, not the copy installed in .venv.
    PYTHONPATH=$ROOT "$TWISTD" -n --pidfile= slee --var "$WORK/var" --db memory:// \
        --admin tcp:0:interface=127.0.0.1 --sip "udp:$PORT:interface=127.0.0.1" \
        --xcap tcp:0:interface=127.0.0.1 \
        >"$WORK/slee.log" 2>&1 &
    SERVER_PID=$!
}

# options_step RATE CALLS: one step of OPTIONS against $PORT.
options_step() {
    sipp_run "$PORT" "$1" "$2" $((SECONDS_PER_STEP + GRACE))
}

# measure NAME: the steps against the running server on $PORT; sets BEST to
# the highest rate reached with < 0.1% failed calls (0 if none), and
# SATURATED to yes when some step failed, no when BEST is only a lower bound
# (every step passed: the rates did not reach the server's limit).
measure() {
    echo "== $1 (udp 127.0.0.1:$PORT)"
    rising_rates options_step
    printf '   highest rate with < 0.1%% failed calls: %.0f/s\n' "$BEST"
    if [ $SATURATED = no ]; then
        echo "   (a lower bound: no step failed; give --rates that go higher)"
    fi
    echo
}

SLEE_BEST=
if [ $ONLY_CEILING = no ]; then
    start_slee
    wait_ready slee "$PORT"
    measure slee
    SLEE_BEST=$BEST
    SLEE_SATURATED=$SATURATED
    stop_server
fi

start_responder
wait_ready responder "$PORT"
measure "udp_responder.py (ceiling)"
CEILING=$BEST
CEILING_SATURATED=$SATURATED
stop_server

echo "== OPTIONS over UDP, $(nproc) CPUs, ${SECONDS_PER_STEP}s steps"
printf '   ceiling (udp_responder.py): %.0f/s\n' "$CEILING"
if [ -n "$SLEE_BEST" ]; then
    printf '   slee:                       %.0f/s\n' "$SLEE_BEST"
    awk -v s="$SLEE_BEST" -v c="$CEILING" -v cs="$CEILING_SATURATED" -v ss="$SLEE_SATURATED" 'BEGIN {
        if (c == 0) { print "   slee / ceiling: n/a (no ceiling)"; exit }
        r = 100 * s / c
        if (cs == "no") {
            printf "   slee / ceiling:             %.0f%% (not comparable: the ceiling was not reached)\n", r
        } else {
            printf "   slee / ceiling:             %.0f%%%s (target >= 50%%: %s)\n", r,
                (ss == "no") ? " or more" : "", (r >= 50) ? "met" : "NOT met"
        }
    }'
fi
