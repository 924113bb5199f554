#!/usr/bin/env bash
#
# Overload: slee offered twice its capacity in PUBLISHes over UDP for a
# minute, against that capacity measured in the same run.
#
# The server is twistd -n slee on its defaults (the integrated profile,
# FileStorage in a temporary var directory: a 200 means the change is on
# disk).  The load is SIPp with bench/overload/publish.xml: a call
# publishes the state of a new presentity and removes it again (two
# PUBLISHes, each expecting 200; a 503 fails the call at once, as a real
# client's transaction ends on it), so the server's state stays the same
# size however long the load lasts and any growth of its memory is the
# overload's doing.
#
#   1. capacity: SIPp at rising rates, --seconds per step; the highest call
#      rate SIPp reached with fewer than 0.1% failed calls
#      (bench/servers.sh, rising_rates).  Each step, and each overload run,
#      has a server just started and warmed up by 20 s of calls at 500/s:
#      every call leaves records in the FileStorage and its index until the
#      hourly pack, so a server is slower the longer it ran, and each
#      measurement must meet one of the same age;
#   2. overload: on a server warmed up as the capacity's were, SIPp offers
#      twice that rate for --overload seconds (-timeout stops it then,
#      abruptly, as a load that ends), while
#      bench/overload_probe.py publishes every 20 ms and samples the
#      server's VmRSS every second;
#   3. the same overload on a server started again with the door open
#      (--sip-max-queue-delay 60: nothing is shed), unless --door-only: what
#      the server did before it had admission control.
#
# It prints, for each overload run:
#
#   - goodput: calls that succeeded per second of load (SIPp's successful
#     calls over the time its calls were started in), and its ratio to the
#     capacity (the goal: >= 0.90);
#   - the rate SIPp reached, and the share of calls refused (503);
#   - the share of a CPU the server used, against its share at the
#     capacity, and the goodput per CPU second against the capacity's: SIPp
#     needs more of the machine's two CPUs at twice the rate, and what it
#     takes the server does not have;
#   - the probe's answers during the load: the share answered 200, and
#     the latency (p50, p99) of those;
#   - memory: VmRSS 10 s into the load, halfway and at its end, and the
#     growth over the second half (the goal: none beyond noise: in the
#     first half the server still fills what a steady load keeps, such as
#     the 32 s an answered UDP request lingers to absorb retransmissions);
#   - recovery: from the end of the load, the time until the first probe
#     after which every probe is answered 200 within 0.5 s (the goal: < 2 s).
#
# The server runs on the first CPU, SIPp and the probe on the others
# (taskset), so that SIPp, which needs more CPU at twice the rate, does not
# take it from the server; on one CPU they share it.  Compare ratios, not
# absolute figures, across machines.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/overload.sh [--seconds N] [--overload N] [--rates "R1 R2 ..."] [--door-only]
#
# slee runs from the working tree (PYTHONPATH), not from the copy installed
# in .venv.  Every process the script starts is killed when it ends, however
# it ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIO=$ROOT/bench/overload/publish.xml
PYTHON=$ROOT/.venv/bin/python
TWISTD=$ROOT/.venv/bin/twistd
RATES="1000 1500 2000 2500 3000 4000"
SECONDS_PER_STEP=20
OVERLOAD_SECONDS=60
WARM_SECONDS=20      # of calls at WARM_RATE before each measurement
WARM_RATE=500
GRACE=5              # seconds SIPp may take past a step's length to start its calls
ANSWER_WITHIN=2000   # milliseconds a call may wait for each message before it fails
READY_TIMEOUT=120    # seconds the server may take to answer a PUBLISH after its start
RECOVERED_LATENCY=0.5
DOOR_ONLY=no

. "$ROOT/bench/servers.sh"

# The server on the first CPU, SIPp and the probe on the others (taskset),
# when there are two or more: at twice the rate SIPp needs more CPU, and
# without this it takes it from the server, whose capacity was measured
# with less load beside it.
SERVER_CPU=
LOAD_CPU=
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    SERVER_CPU="taskset -c 0"
    LOAD_CPU="taskset -c 1-$(($(nproc) - 1))"
fi

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER_STEP=${2:?}; shift ;;
        --overload) OVERLOAD_SECONDS=${2:?}; shift ;;
        --rates) RATES=${2:?}; shift ;;
        --door-only) DOOR_ONLY=yes ;;
        *) usage ;;
    esac
    shift
done

command -v sipp >/dev/null \
    || { echo "sipp is not installed (apt-get install sip-tester)" >&2; exit 1; }

# start_slee [OPTION...]: a server just started, in a directory of its own.
# Its pid goes to $WORK/server.pid too: the capacity steps start theirs in
# the subshell rising_rates runs them in (see restart_slee).
start_slee() {
    local dir
    dir=$(mktemp -d "$WORK/slee-XXXX")
    PORT=$(free_port udp)
    echo "$PORT" >"$WORK/server.port"
    PYTHONPATH=$ROOT $SERVER_CPU "$TWISTD" -n --pidfile= slee --var "$dir/var" \
        --admin tcp:0:interface=127.0.0.1 --sip "udp:$PORT:interface=127.0.0.1" \
        --xcap tcp:0:interface=127.0.0.1 "$@" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    echo "$SERVER_PID" >"$WORK/server.pid"
    SERVER_LOG=$dir/server.log
}

# restart_slee: stops the server $WORK/server.pid names (whichever shell
# started it), waits until it is gone, and starts one anew.
restart_slee() {
    local pid
    pid=$(cat "$WORK/server.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    start_slee
    wait_ready
}

sipp_run() {
    local step=$1 rate=$2 calls=$3 timeout=$4
    (cd "$WORK" && $LOAD_CPU sipp "127.0.0.1:$PORT" -sf "$SCENARIO" -key step "$step" \
        -t u1 -i 127.0.0.1 -r "$rate" -m "$calls" -timeout "${timeout}s" \
        -recv_timeout "$ANSWER_WITHIN" -nd -nostdin </dev/null 2>&1) || true
}

wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) attempt=0
    while [ $SECONDS -lt $deadline ]; do
        kill -0 "$SERVER_PID" 2>/dev/null \
            || { echo "slee exited; its output:" >&2; cat "$SERVER_LOG" >&2; exit 1; }
        attempt=$((attempt + 1))
        [ "$(sipp_run "ready$PORT-$attempt" 1 1 2 | cumulative 'Successful call')" = 1 ] \
            && return
    done
    echo "slee did not answer PUBLISH within ${READY_TIMEOUT}s; its output:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
}

# The CPU time the server has used, in clock ticks.
server_ticks() {
    sed 's/^.*) //' "/proc/$SERVER_PID/stat" | awk '{ print $12 + $13 }'
}

# warm_up: WARM_SECONDS of calls at WARM_RATE on the server just started,
# so that every measurement meets a server of the same age: each call leaves
# records in the FileStorage and its index until the hourly pack, and a
# server that ran longer is slower.
warm_up() {
    sipp_run "w$PORT" "$WARM_RATE" $((WARM_RATE * WARM_SECONDS)) $((WARM_SECONDS + GRACE)) \
        >/dev/null
}

# A step of the capacity search, on a server just started and warmed up;
# notes the share of a CPU the server used at the rate SIPp reached, in
# $WORK/capacity.cpu.
capacity_step() {
    local before screen reached elapsed
    restart_slee
    warm_up
    before=$(server_ticks)
    elapsed=$(date +%s.%N)
    screen=$(sipp_run "c$PORT-$1" "$1" "$2" $((SECONDS_PER_STEP + GRACE)))
    reached=$(cumulative 'Call Rate' <<<"$screen")
    awk -v reached="${reached:-0}" -v ticks=$(($(server_ticks) - before)) -v hz="$(getconf CLK_TCK)" \
        -v started="$elapsed" -v ended="$(date +%s.%N)" \
        'BEGIN { printf "%s %.3f\n", reached, ticks / hz / (ended - started) }' \
        >>"$WORK/capacity.cpu"
    echo "$screen"
}

# overload NAME RATE: the overload run on the server started; prints its figures.
overload() {
    local name=$1 rate=$2 screen started ended
    $LOAD_CPU "$PYTHON" "$ROOT/bench/overload_probe.py" --server "127.0.0.1:$PORT" \
        --pids "$SERVER_PID" \
        --seconds $((OVERLOAD_SECONDS + 10)) >"$WORK/$name.probe" &
    local probe=$!
    local ticks
    ticks=$(server_ticks)
    started=$(date +%s.%N)
    screen=$(sipp_run "o$PORT" "$rate" $((rate * OVERLOAD_SECONDS * 2)) "$OVERLOAD_SECONDS")
    ticks=$(($(server_ticks) - ticks))
    local loaded
    loaded=$(date +%s.%N)
    # The load ends when SIPp's -timeout stops it, not when SIPp is done exiting.
    ended=$(awk -v started="$started" -v seconds="$OVERLOAD_SECONDS" \
        'BEGIN { printf "%.3f", started + seconds }')
    wait "$probe"
    local ok failed reached
    ok=$(cumulative 'Successful call' <<<"$screen")
    failed=$(cumulative 'Failed call' <<<"$screen")
    reached=$(cumulative 'Call Rate' <<<"$screen")
    refused=$(awk '$1 == "503" { n += $3 } END { print n + 0 }' <<<"$screen")
    # The latencies of the probe's 200s during the load, sorted (mawk has no asort).
    awk -v ended="$ended" '$1 == "probe" && $2 < ended && $3 == 200 { print $4 }' \
        "$WORK/$name.probe" | sort -g >"$WORK/$name.latencies"
    awk -v name="$name" -v ok="${ok:-0}" -v failed="${failed:-0}" -v reached="${reached:-0}" \
        -v refused="$refused" -v asked="$rate" -v capacity="$CAPACITY" -v started="$started" \
        -v cpu="$(awk -v ticks="$ticks" -v hz="$(getconf CLK_TCK)" -v started="$started" \
            -v now="$loaded" 'BEGIN { print ticks / hz / (now - started) }')" \
        -v capacity_cpu="$CAPACITY_CPU" \
        -v ended="$ended" -v recovered="$RECOVERED_LATENCY" -v half=$((OVERLOAD_SECONDS / 2)) '
        function pct(p) { return (n > 0) ? lat[int((n - 1) * p) + 1] : -1 }
        FILENAME ~ /latencies$/ { lat[++n] = $1; next }
        $1 == "rss" { t = $2 - started; if (t >= 10 && rss10 == "") rss10 = $3
                      if (t >= half && rss_half == "") rss_half = $3
                      if ($2 <= ended) rss_end = $3 }
        $1 == "probe" && $2 < ended { sent++; if ($3 == 200) good++ }
        $1 == "probe" && $2 >= ended { after++; t_after[after] = $2
                      bad_after[after] = ($3 != 200 || $4 > recovered) }
        END {
            calls = ok + failed
            seconds = (reached > 0) ? calls / reached : 0
            goodput = (seconds > 0) ? ok / seconds : 0
            recovery = 0
            for (i = after; i >= 1; i--) if (bad_after[i]) { recovery = t_after[i] - ended; break }
            printf "   %-40s %s\n", "offered / reached (calls/s)", asked " / " int(reached)
            printf "   %-40s %.0f /s = %.2f of capacity %s /s\n", "goodput", goodput,
                goodput / capacity, capacity
            printf "   %-40s %.1f%%\n", "calls refused 503", (calls > 0) ? 100 * refused / calls : 0
            printf "   %-40s %.0f%% of a CPU (at capacity %.0f%%): %.2f of capacity per CPU second\n",
                "server CPU", 100 * cpu, 100 * capacity_cpu,
                (cpu > 0 && capacity_cpu > 0) ? (goodput / cpu) / (capacity / capacity_cpu) : 0
            printf "   %-40s %.1f%% answered 200; p50 %.3f s, p99 %.3f s\n", "probe during the load",
                (sent > 0) ? 100 * good / sent : 0, pct(0.5), pct(0.99)
            printf "   %-40s %.1f MiB at 10 s, %.1f at %d s, %.1f at the end: %+.1f MiB\n",
                "VmRSS", rss10 / 1024, rss_half / 1024, half, rss_end / 1024,
                (rss_end - rss_half) / 1024
            printf "   %-40s %.2f s (%d probes after the load)\n", "recovery", recovery, after
            printf "%s_goodput=%.0f %s_ratio=%.2f %s_growth=%.1f %s_recovery=%.2f\n", name, goodput,
                name, goodput / capacity, name, (rss_end - rss_half) / 1024, name, recovery \
                > "/dev/stderr"
        }' "$WORK/$name.latencies" "$WORK/$name.probe" 2>"$WORK/$name.figures"
    eval "$(cat "$WORK/$name.figures")"
}

echo "== slee, $(nproc) CPUs: capacity (${SECONDS_PER_STEP}s steps, calls of two PUBLISHes)"
rising_rates capacity_step
SERVER_PID=$(cat "$WORK/server.pid")
stop_server
CAPACITY=${BEST%.*}
CAPACITY_CPU=$(awk -v best="$BEST" '$1 == best { print $2; exit }' "$WORK/capacity.cpu")
[ "$SATURATED" = yes ] \
    || echo "   no step failed: the capacity is a lower bound, give --rates that go higher"
[ "$CAPACITY" -gt 0 ] || { echo "no step passed" >&2; exit 1; }
OFFERED=$((2 * CAPACITY))

# warm: a server just started, and warmed up as the capacity's were.
warm() {
    start_slee "$@"
    wait_ready
    warm_up
}

echo "== overload: $OFFERED calls/s (twice $CAPACITY) for ${OVERLOAD_SECONDS}s, admission control on"
warm
overload door "$OFFERED"
stop_server

if [ "$DOOR_ONLY" = no ]; then
    echo "== the same without admission control (--sip-max-queue-delay 60)"
    warm --sip-max-queue-delay 60
    overload open "$OFFERED"
    stop_server
fi

echo "== summary (goals: goodput >= 0.90 of capacity, no memory growth, recovery < 2 s)"
printf '   %-22s %10s %10s %16s %10s\n' "" "goodput/s" "ratio" "VmRSS 2nd half" "recovery"
printf '   %-22s %10s %10s %12s MiB %8s s\n' "admission control" "$door_goodput" "$door_ratio" \
    "$door_growth" "$door_recovery"
if [ "$DOOR_ONLY" = no ]; then
    printf '   %-22s %10s %10s %12s MiB %8s s\n' "none (door open)" "$open_goodput" \
        "$open_ratio" "$open_growth" "$open_recovery"
fi
