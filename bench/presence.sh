#!/usr/bin/env bash
#
# Presence over UDP: slee's presence server against Kamailio's, in one run.
#
# Both servers run on 127.0.0.1, one after the other, on the same load:
#
#   (a) Kamailio 5.6 with its presence and presence_xml modules
#       (bench/presence/kamailio.cfg.in, from ../shared/bench/presence/:
#       presentities and subscriptions in memory, 2 UDP workers, watchers
#       always accepted), installed with apt-get when missing;
#   (a') the same Kamailio with its state in its SQLite database
#       (publ_cache=0, subs_db_mode=3: each PUBLISH and SUBSCRIBE written
#       before it is answered, durable as slee's), for the two rates only:
#       the reference with the durability slee has;
#   (b) twistd -n slee on its defaults (the units of the integrated profile:
#       presence server and XDMS in one process; FileStorage in a temporary
#       var directory, so a 200 means the change is on disk), but for the
#       presence server's default policy, set to allow (a copy of those
#       units with the environment entry default-policy of
#       PresenceNotifierSbb rewritten), so that watchers are accepted at
#       once as Kamailio's are.
#
# For each server it measures:
#
#   - PUBLISH/s: SIPp (bench/presence/publish.xml, an initial PUBLISH for
#     a new presentity per call, expecting 200) at rising rates, one step of
#     --seconds per rate; the highest rate SIPp reached (its calls over the
#     step's whole time) with fewer than 0.1% failed calls;
#   - SUBSCRIBE/s: the same with bench/presence/subscribe.xml (a new watcher
#     per call subscribes to one of 1,000 presentities published first,
#     expects 200 and the first NOTIFY, answers it), a call being the
#     SUBSCRIBE, its 200, the NOTIFY and its 200;
#   - the fan-out to 1,000 and to 10,000 watchers, with
#     bench/presence_fanout.py on a server just started: N watchers of one
#     presentity subscribe (each keeps its dialog and answers every NOTIFY),
#     then the time from sending one PUBLISH that changes the presentity's
#     state until the N-th watcher received the NOTIFY that carries it;
#   - memory per 10,000 active subscriptions: the server's processes'
#     VmRSS (/proc/PID/status), and their Pss (/proc/PID/smaps_rollup),
#     each summed over the processes (Kamailio's main process and its
#     children), before and after the 10,000 watchers of the fan-out
#     subscribed (after the 1,000 of the first fan-out: both servers are
#     warm).  Kamailio keeps subscriptions in shared memory, which VmRSS
#     counts once in every process that touched it, and Pss shares out.
#
# Each SIPp step: -m (rate x seconds calls) and -timeout (the step's length
# plus a grace period) end the traffic, -recv_timeout fails a call whose
# next message does not come within 2 s; the rates climb until two steps in
# a row fail, then up to three steps halve the gap between the highest rate
# that passed and the lowest that failed (bench/servers.sh, rising_rates).
# A failed step prints the commonest errors SIPp reported.  SIPp's own
# figure of a failed step (calls over a time that includes the 2 s its last
# calls wait) says nothing of the server's limit; the steps that pass do.  It
# then prints a table: each figure for both servers and the ratio, made so
# that >= 1.0 means slee matches or beats Kamailio (slee/Kamailio for rates,
# Kamailio/slee for times and memory), then the two rates against (a').  A
# rate no step made fail is only a lower bound (">="): give --rates that go
# higher.  The servers share the machine's CPUs with SIPp and the fan-out
# tool; compare the ratios, not the absolute figures, across machines.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/presence.sh [--seconds N] [--rates "R1 R2 ..."] [--slee-only]
#
# --slee-only measures slee alone (no Kamailio) and prints its figures: for
# comparing two builds of slee, run in turn (see bench/README.md).
#
# slee runs from the working tree (PYTHONPATH), not from the copy installed
# in .venv.  Every process the script starts is killed when it ends, however
# it ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SCENARIOS=$ROOT/bench/presence
PYTHON=$ROOT/.venv/bin/python
TWISTD=$ROOT/.venv/bin/twistd
RATES="100 200 300 500 700 1000 1500 2000 3000 5000 7000 10000 15000 20000 30000"
SECONDS_PER_STEP=5
GRACE=5              # seconds SIPp may take past a step's length to start its calls
ANSWER_WITHIN=2000   # milliseconds a call may wait for each message before it fails
READY_TIMEOUT=120    # seconds a server may take to answer a PUBLISH (after a start or a step)
PRESENTITIES=1000    # published before the SUBSCRIBE steps, which subscribe to them
SEED_RATE=200        # PUBLISHes/s that publish them (Kamailio with SQLite takes 300/s)
KAMAILIO_PACKAGES="kamailio kamailio-presence-modules kamailio-sqlite-modules sqlite3"
SLEE_ONLY=no

# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

while [ $# -gt 0 ]; do
    case $1 in
        --seconds) SECONDS_PER_STEP=${2:?}; shift ;;
        --rates) RATES=${2:?}; shift ;;
        --slee-only) SLEE_ONLY=yes ;;
        *) usage ;;
    esac
    shift
done

command -v sipp >/dev/null \
    || { echo "sipp is not installed (apt-get install sip-tester)" >&2; exit 1; }
if [ "$SLEE_ONLY" = no ] && { ! command -v kamailio >/dev/null || ! command -v sqlite3 >/dev/null \
        || [ ! -f /usr/lib/x86_64-linux-gnu/kamailio/modules/presence_xml.so ] \
        || [ ! -f /usr/share/kamailio/db_sqlite/presence-create.sql ]; }; then
    echo "== installing $KAMAILIO_PACKAGES"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        $KAMAILIO_PACKAGES >"$WORK/apt.log" 2>&1 \
        || { $sudo apt-get update -q >>"$WORK/apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
                --no-install-recommends $KAMAILIO_PACKAGES >>"$WORK/apt.log" 2>&1; } \
        || { cat "$WORK/apt.log" >&2; exit 1; }
fi

# -- the servers ---------------------------------------------------------------------

RUNS=0               # servers started so far: each gets its own files in $WORK

# start_kamailio [SED EXPRESSIONS...]: the reference, its configuration
# rewritten by the sed expressions given.
start_kamailio() {
    RUNS=$((RUNS + 1))
    local dir=$WORK/kamailio-$RUNS
    mkdir "$dir"
    PORT=$(free_port udp)
    cat /usr/share/kamailio/db_sqlite/standard-create.sql \
        /usr/share/kamailio/db_sqlite/presence-create.sql | sqlite3 "$dir/pres.db"
    sed -e "s|@PORT@|$PORT|g" -e "s|@DIR@|$dir|g" "$@" "$SCENARIOS/kamailio.cfg.in" \
        >"$dir/kamailio.cfg"
    kamailio -f "$dir/kamailio.cfg" -DD -E -m 512 -M 32 >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_LOG=$dir/server.log
}

# start_kamailio_db: the reference with presentities and subscriptions in
# its SQLite database only, each written before it is answered.
start_kamailio_db() {
    local line
    for line in 'modparam("presence", "subs_db_mode", 0)' 'modparam("presence", "publ_cache", 2)'; do
        grep -qxF "$line" "$SCENARIOS/kamailio.cfg.in" || {
            echo "bench/presence/kamailio.cfg.in has no line '$line'" >&2; exit 1; }
    done
    start_kamailio -e 's/"subs_db_mode", 0)/"subs_db_mode", 3)/' \
        -e 's/"publ_cache", 2)/"publ_cache", 0)/'
}

# The shipped units a default start deploys (its profile's), with the
# presence server's default policy set to allow.
DEPLOY=$WORK/deploy
POLICY_LINE='env = { default-policy = "confirm" }'
mkdir "$DEPLOY"
for name in $(PYTHONPATH=$ROOT "$PYTHON" -c '
from slee.settings import DEFAULT_PROFILE, shipped_profiles
print(*shipped_profiles()[DEFAULT_PROFILE])'); do
    cp -r "$ROOT/deployables/$name" "$DEPLOY/$name"
done
DESCRIPTOR=$DEPLOY/presence-server/deployable.toml
grep -qxF "$POLICY_LINE" "$DESCRIPTOR" || {
    echo "deployables/presence-server/deployable.toml has no line '$POLICY_LINE'" >&2; exit 1; }
sed -i "s|^$POLICY_LINE\$|env = { default-policy = \"allow\" }|" "$DESCRIPTOR"

start_slee() {
    RUNS=$((RUNS + 1))
    local dir=$WORK/slee-$RUNS
    mkdir "$dir"
    PORT=$(free_port udp)
    # PYTHONPATH: the working tree's slee, not the copy installed in .venv.
    PYTHONPATH=$ROOT "$TWISTD" -n --pidfile= slee --var "$dir/var" --deploy-dir "$DEPLOY" \
        --admin tcp:0:interface=127.0.0.1 --sip "udp:$PORT:interface=127.0.0.1" \
        --xcap tcp:0:interface=127.0.0.1 >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_LOG=$dir/server.log
}

# The server's processes: the one started and its children (Kamailio's workers).
server_pids() {
    echo "$SERVER_PID" $(ps -o pid= --ppid "$SERVER_PID")
}

# -- SIPp ------------------------------------------------------------------------------

# sipp_run SCENARIO STEP RATE CALLS TIMEOUT [SIPP OPTIONS...]: one SIPp run
# against $PORT; its final screens on stdout, its errors in $WORK/STEP.errors.
# -nd: a call that times out just fails (no CANCEL or BYE sent for it).
sipp_run() {
    local scenario=$1 step=$2 rate=$3 calls=$4 timeout=$5
    shift 5
    rm -f "$WORK/$step.errors"
    (cd "$WORK" && sipp "127.0.0.1:$PORT" -sf "$SCENARIOS/$scenario" -key step "$step" \
        -t u1 -i 127.0.0.1 -r "$rate" -m "$calls" -timeout "${timeout}s" \
        -recv_timeout "$ANSWER_WITHIN" -nd -nostdin -trace_err -error_file "$WORK/$step.errors" \
        "$@" </dev/null 2>&1) || true
}

# The three commonest kinds of errors in a SIPp error file, counted: its
# records start with a timestamp; their first lines, call ids left out.
error_summary() {
    [ -f "$1" ] || return 0
    awk 'BEGIN { RS = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]\t[0-9:.]+\t[0-9.]+: " }
        NR > 1 { sub(/\n.*/, ""); sub(/^Call-Id: [^,]*, /, ""); gsub(/[0-9]+-[0-9]+@[0-9.]+/, "ID")
                 print substr($0, 1, 120) }' "$1" | sort | uniq -c | sort -rn | head -3 \
        | sed 's/^ */        /'
}

# wait_ready NAME: until the server answers a PUBLISH, or give up.
wait_ready() {
    local deadline=$((SECONDS + READY_TIMEOUT)) attempt=0 screen
    while [ $SECONDS -lt $deadline ]; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$1 exited before answering; its output:" >&2
            cat "$SERVER_LOG" >&2
            exit 1
        fi
        attempt=$((attempt + 1))
        screen=$(sipp_run publish.xml "ready$attempt" 1 1 2)
        if [ "$(cumulative 'Successful call' <<<"$screen")" = 1 ]; then
            return
        fi
    done
    echo "$1 did not answer PUBLISH within ${READY_TIMEOUT}s; its output:" >&2
    cat "$SERVER_LOG" >&2
    exit 1
}

# wait_settled: until the server's processes use less than a tenth of a CPU
# over a second, or $READY_TIMEOUT seconds: a step that failed leaves work
# behind (NOTIFYs retransmitted to the calls SIPp gave up, for 32 s), and the
# next step must not pay for it.
wait_settled() {
    local deadline=$((SECONDS + READY_TIMEOUT)) before after
    before=$(server_cpu_ticks)
    while [ $SECONDS -lt $deadline ]; do
        sleep 1
        after=$(server_cpu_ticks)
        [ $((10 * (after - before))) -lt "$(getconf CLK_TCK)" ] && return
        before=$after
    done
}

# server_cpu_ticks: the CPU time the server's processes used so far, in clock ticks.
server_cpu_ticks() {
    local pid total=0
    for pid in $(server_pids); do
        # utime and stime: fields 14 and 15, 12 and 13 after "PID (NAME) ".
        total=$((total + $(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null \
            | awk '{ print $12 + $13 } END { if (NR == 0) print 0 }')))
    done
    echo "$total"
}

# measure LABEL SCENARIO [SIPP OPTIONS...]: the steps against the running
# server ($name); sets BEST to the highest rate reached with < 0.1% failed calls (0
# if none) and SATURATED to yes when some step failed, no when BEST is only
# a lower bound.
measure() {
    echo "   $1"
    STEP_SCENARIO=$2
    shift 2
    STEP_OPTIONS=("$@")
    rising_rates presence_step
}

# presence_step RATE CALLS: one step of $STEP_SCENARIO, once what the step
# before left behind is done.
presence_step() {
    local step="${STEP_SCENARIO%.xml}$1"
    wait_ready "$name"
    wait_settled
    sipp_run "$STEP_SCENARIO" "$step" "$1" "$2" $((SECONDS_PER_STEP + GRACE)) "${STEP_OPTIONS[@]}"
}

# STEP_FAILED RATE: what went wrong, from SIPp's error file of the step.
STEP_FAILED() {
    error_summary "$WORK/${STEP_SCENARIO%.xml}$1.errors"
}

# -- one server, all figures -------------------------------------------------------------

# bench_server NAME START_FUNCTION: sets NAME_publish, NAME_publish_saturated,
# NAME_subscribe, NAME_subscribe_saturated, NAME_fanout1000, NAME_fanout10000,
# NAME_rss and NAME_pss (KiB per 10,000 subscriptions).
bench_server() {
    local name=$1 start=$2 result
    echo "== $name"

    $start
    wait_ready "$name"
    for watchers in 1000 10000; do
        result=$("$PYTHON" "$ROOT/bench/presence_fanout.py" --server "127.0.0.1:$PORT" \
            --watchers "$watchers" --presentity "sip:fanout$watchers@example.com" \
            --pids "$(server_pids)") || { echo "   fan-out to $watchers failed" >&2; exit 1; }
        echo "   fan-out to $watchers watchers: $result"
        eval "${name}_fanout$watchers=$(sed -E 's/.*fanout_seconds=([0-9.]+).*/\1/' <<<"$result")"
    done
    # The memory of the last fan-out's 10,000 subscriptions.
    eval "$(awk '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
        END { printf "%s_rss=%d %s_pss=%d\n", name, v["rss_after_kib"] - v["rss_before_kib"],
              name, v["pss_after_kib"] - v["pss_before_kib"] }' name="$name" <<<"$result")"
    stop_server
    bench_rates "$name" "$start"
}

# bench_rates NAME START_FUNCTION: on a server just started, sets NAME_publish,
# NAME_publish_saturated, NAME_subscribe and NAME_subscribe_saturated.
bench_rates() {
    local name=$1 start=$2 result
    $start
    wait_ready "$name"
    # The presentities the SUBSCRIBE steps watch, in turn.
    result=$(sipp_run publish.xml 0 "$SEED_RATE" "$PRESENTITIES" \
        $((PRESENTITIES / SEED_RATE + 2 * GRACE)))
    if [ "$(cumulative 'Successful call' <<<"$result")" != "$PRESENTITIES" ]; then
        echo "   publishing the $PRESENTITIES presentities to watch failed:" >&2
        error_summary "$WORK/0.errors" >&2
        exit 1
    fi
    { echo SEQUENTIAL; seq -f 'p0-%.0f' "$PRESENTITIES"; } >"$WORK/presentities.csv"
    measure "PUBLISH (a new presentity per call)" publish.xml
    eval "${name}_publish=$BEST ${name}_publish_saturated=$SATURATED"
    measure "SUBSCRIBE + NOTIFY (a new watcher per call)" subscribe.xml \
        -inf "$WORK/presentities.csv"
    eval "${name}_subscribe=$BEST ${name}_subscribe_saturated=$SATURATED"
    stop_server
    echo
}

if [ "$SLEE_ONLY" = no ]; then
    bench_server kamailio start_kamailio
    echo "== kamailio_db (its state in SQLite)"
    bench_rates kamailio_db start_kamailio_db
fi
bench_server slee start_slee

if [ "$SLEE_ONLY" = yes ]; then
    echo "== slee, presence over UDP, $(nproc) CPUs, ${SECONDS_PER_STEP}s steps"
    awk -v p="$slee_publish" -v s="$slee_subscribe" -v f1="$slee_fanout1000" \
        -v f10="$slee_fanout10000" -v rss="$slee_rss" -v pss="$slee_pss" 'BEGIN {
        printf "   %-46s %s /s\n", "PUBLISH/s, highest with < 0.1% failed", p
        printf "   %-46s %s /s\n", "SUBSCRIBE+NOTIFY/s, highest, < 0.1% failed", s
        printf "   %-46s %.3f s\n", "one PUBLISH to 1,000 watchers", f1
        printf "   %-46s %.3f s\n", "one PUBLISH to 10,000 watchers", f10
        printf "   %-46s %.1f MiB\n", "memory per 10,000 subscriptions, VmRSS", rss / 1024
        printf "   %-46s %.1f MiB\n", "memory per 10,000 subscriptions, Pss", pss / 1024
    }'
    exit 0
fi

# -- the table -------------------------------------------------------------------------------

echo "== presence over UDP, $(nproc) CPUs, ${SECONDS_PER_STEP}s steps"
# row LABEL KAMAILIO SLEE HIGHER_IS_BETTER UNIT [KAMAILIO_SATURATED SLEE_SATURATED]:
# one line of the table; memory comes in KiB and is shown in MiB.
row() {
    awk -v label="$1" -v k="$2" -v s="$3" -v higher="$4" -v unit="$5" -v ks="${6:-yes}" \
        -v ss="${7:-yes}" 'BEGIN {
        if (unit == "MiB") { k /= 1024; s /= 1024 }
        if (higher == "yes") ratio = (k > 0) ? s / k : 0; else ratio = (s > 0) ? k / s : 0
        note = ""
        if (ks == "yes" && ss == "no") note = " or more"
        if (ks == "no" && ss == "yes") note = " or less"
        if (ks == "no" && ss == "no") note = " (both bounds)"
        fmt = (unit == "s") ? "%.3f" : (unit == "MiB") ? "%.1f" : "%.0f"
        printf "   %-46s %13s %13s   %s\n", label,
            ((ks == "no") ? ">=" : "") sprintf(fmt, k) " " unit,
            ((ss == "no") ? ">=" : "") sprintf(fmt, s) " " unit, sprintf("%.2f", ratio) note
    }'
}
printf '   %-46s %13s %13s   %s\n' "" Kamailio slee "ratio (>= 1: slee as good or better)"
row "PUBLISH/s, highest with < 0.1% failed" "$kamailio_publish" "$slee_publish" yes /s \
    "$kamailio_publish_saturated" "$slee_publish_saturated"
row "SUBSCRIBE+NOTIFY/s, highest, < 0.1% failed" "$kamailio_subscribe" "$slee_subscribe" yes /s \
    "$kamailio_subscribe_saturated" "$slee_subscribe_saturated"
row "one PUBLISH to 1,000 watchers" "$kamailio_fanout1000" "$slee_fanout1000" no s
row "one PUBLISH to 10,000 watchers" "$kamailio_fanout10000" "$slee_fanout10000" no s
row "memory per 10,000 subscriptions, VmRSS sum" "$kamailio_rss" "$slee_rss" no MiB
row "memory per 10,000 subscriptions, Pss sum" "$kamailio_pss" "$slee_pss" no MiB
echo "   (rates: slee/Kamailio; times and memory: Kamailio/slee;" \
    "\">=\": a lower bound, no step failed)"
echo
echo "== the rates against Kamailio with its state in SQLite (durable, as slee's)"
printf '   %-46s %13s %13s   %s\n' "" "Kamailio+DB" slee "ratio (>= 1: slee as good or better)"
row "PUBLISH/s, highest with < 0.1% failed" "$kamailio_db_publish" "$slee_publish" yes /s \
    "$kamailio_db_publish_saturated" "$slee_publish_saturated"
row "SUBSCRIBE+NOTIFY/s, highest, < 0.1% failed" "$kamailio_db_subscribe" "$slee_subscribe" \
    yes /s "$kamailio_db_subscribe_saturated" "$slee_subscribe_saturated"
