#!/usr/bin/env bash
#
# Resource list subscriptions (RFC 4662, RFC 4826) over UDP: slee's resource
# list server against Kamailio's, in one run.
#
# Both servers run on 127.0.0.1, one after the other, with the same XCAP
# documents and the same load:
#
#   (a) Kamailio 5.6 with its rls, pua, presence, presence_xml, xcap_server and
#       xhttp modules (bench/rls/kamailio.cfg.in: list subscriptions,
#       presentities and watchers in memory, its tables in db_text's cache in
#       shared memory, NOTIFYs batched for waitn_time = 1 s, 2 UDP workers),
#       installed with apt-get when missing;
#   (b) twistd -n slee on its defaults (the integrated profile: presence
#       server, XDMS and RLS in one process; FileStorage in a temporary var
#       directory, so durable; rls-notify-interval 1 s), with the presence
#       server's default policy set to allow (a copy of the shipped units, as
#       bench/presence.sh does) and --xcap-auth trust-localhost, so that the
#       documents are PUT from 127.0.0.1 without Digest.
#
# For each server: start it, PUT the list owner's documents to its XCAP server
# (bench/rls/resource-lists.xml, and bench/rls/rls-services.xml: the service
# sip:list100@example.com of sip:owner@example.com, its 100 members
# sip:member0..99@example.com inline), run bench/rls_load.py against it (its
# docstring says how each figure is taken; its watchers are all the owner, a
# dialog each: Kamailio's rls serves a list to its owner only):
#
#   - (a) one watcher: the time from its SUBSCRIBE to the list until it knows
#     all 100 members active with their PIDF, the members published first
#     (the median of 5 watchers in turn, each starting a further fifth of a
#     second later: Kamailio's rls sends on a clock of its own, every
#     waitn_time, and one watcher alone would meet it at one phase of it);
#   - (b) 10 watchers, the members PUBLISHing again at 100/s in all for
#     --seconds: the NOTIFYs/s the watchers received, the resources per NOTIFY,
#     and the time from a PUBLISH to the watchers' NOTIFY part that carries it
#     (p50, p99);
#   - (c) 100 watchers subscribing at once (10,000 back-end subscriptions;
#     --window-c N: at most N at a time not yet complete): the time from the
#     first SUBSCRIBE until every watcher knows every member active, and the
#     server's memory before and after: VmRSS and Pss summed over its
#     processes (Kamailio's main process and its children);
#
# then stop it, and print the datagrams the kernel dropped at the server's UDP
# socket meanwhile (/proc/net/udp: a server that reads too slowly loses them,
# and waits for retransmissions).  Then a table: each figure for both servers
# and the ratio, made so that >= 1.0 means slee matches or beats Kamailio
# (slee/Kamailio for rates, Kamailio/slee for times, latencies and memory;
# resources per NOTIFY is shown without a ratio: fewer, larger NOTIFYs are a
# choice, not a merit).  A phase that did not complete within --timeout
# seconds reads "timeout".  When slee does not serve the list (its SUBSCRIBE
# answered other than 2xx, or NOTIFYs that are not RLMI), the script says so
# and why, and still prints Kamailio's figures.
#
# Usage, from the repository root (Kamailio's side needs only python3; slee's
# needs the virtualenv in .venv):
#
#   bench/rls.sh [--only kamailio|slee] [--seconds N] [--timeout N] [--window-c N]
#
# slee runs from the working tree (PYTHONPATH), not from the copy installed in
# .venv.  Every process the script starts is killed when it ends, however it
# ends.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=$ROOT/bench/rls
PYTHON=$ROOT/.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
TWISTD=$ROOT/.venv/bin/twistd
ONLY=
SECONDS_B=10         # length of phase (b)
TIMEOUT=120          # seconds each phase of rls_load.py may wait
WINDOW_C=100         # phase (c): most watchers subscribed and not yet complete at once
READY_TIMEOUT=60     # seconds a server may take to answer XCAP
OWNER=sip:owner@example.com
KAMAILIO_PACKAGES="kamailio kamailio-presence-modules"
KAMAILIO_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
DBTEXT=/usr/share/kamailio/dbtext/kamailio

# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

while [ $# -gt 0 ]; do
    case $1 in
        --only) ONLY=${2:?}; shift
                case $ONLY in kamailio|slee) ;; *) usage ;; esac ;;
        --seconds) SECONDS_B=${2:?}; shift ;;
        --timeout) TIMEOUT=${2:?}; shift ;;
        --window-c) WINDOW_C=${2:?}; shift ;;
        *) usage ;;
    esac
    shift
done

# apt_install PACKAGES...: apt-get install, after an apt-get update if it failed.
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "== installing $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
        "$@" >"$WORK/apt.log" 2>&1 \
        || { $sudo apt-get update -q >>"$WORK/apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q \
                --no-install-recommends "$@" >>"$WORK/apt.log" 2>&1; } \
        || { cat "$WORK/apt.log" >&2; exit 1; }
}

command -v curl >/dev/null || apt_install curl
if [ "$ONLY" != slee ]; then
    if ! command -v kamailio >/dev/null || [ ! -f "$KAMAILIO_MODULES/rls.so" ] \
            || [ ! -f "$KAMAILIO_MODULES/xcap_server.so" ] \
            || [ ! -f "$DBTEXT/rls_presentity" ]; then
        # shellcheck disable=SC2086
        apt_install $KAMAILIO_PACKAGES
    fi
fi

# -- the servers ---------------------------------------------------------------------

# start_kamailio: the reference, on free ports; sets SERVER_PID, SERVER_LOG, PORT, HTTP_PORT.
start_kamailio() {
    local dir=$WORK/kamailio
    mkdir -p "$dir/db"
    # db_text's tables: its files define them; db_mode 0 keeps them in shared memory.
    cp "$DBTEXT"/* "$dir/db/"
    PORT=$(free_port udp)
    HTTP_PORT=$(free_port)
    sed -e "s|@PORT@|$PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" -e "s|@DB@|$dir/db|g" \
        "$DATA/kamailio.cfg.in" >"$dir/kamailio.cfg"
    # -m: shared memory (MiB): the 10,000 back-end subscriptions, their states and the
    # transactions of their bursts take about 300 MiB.
    kamailio -f "$dir/kamailio.cfg" -DD -E -m 1024 -M 32 >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_LOG=$dir/server.log
}

# The shipped units a default start deploys (its profile's, the RLS among them), with the
# presence server's default policy set to allow: each member's presence is given to the
# list's owner at once, as Kamailio's force_active does.
make_deploy_dir() {
    DEPLOY=$WORK/deploy
    local policy_line='env = { default-policy = "confirm" }' name descriptor
    mkdir "$DEPLOY"
    for name in $(PYTHONPATH=$ROOT "$PYTHON" -c '
from slee.settings import DEFAULT_PROFILE, shipped_profiles
print(*shipped_profiles()[DEFAULT_PROFILE])'); do
        cp -r "$ROOT/deployables/$name" "$DEPLOY/$name"
    done
    descriptor=$DEPLOY/presence-server/deployable.toml
    grep -qxF "$policy_line" "$descriptor" || {
        echo "deployables/presence-server/deployable.toml has no line '$policy_line'" >&2
        return 1; }
    sed -i "s|^$policy_line\$|env = { default-policy = \"allow\" }|" "$descriptor"
}

start_slee() {
    local dir=$WORK/slee
    mkdir -p "$dir"
    PORT=$(free_port udp)
    HTTP_PORT=$(free_port)
    # PYTHONPATH: the working tree's slee, not the copy installed in .venv.
    PYTHONPATH=$ROOT "$TWISTD" -n --pidfile= slee --var "$dir/var" --deploy-dir "$DEPLOY" \
        --admin tcp:0:interface=127.0.0.1 --sip "udp:$PORT:interface=127.0.0.1" \
        --xcap "tcp:$HTTP_PORT:interface=127.0.0.1" --xcap-auth trust-localhost \
        >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    SERVER_LOG=$dir/server.log
}

# The server's processes: the one started and its children (Kamailio's workers).
server_pids() {
    echo "$SERVER_PID" $(ps -o pid= --ppid "$SERVER_PID")
}

# udp_drops: the datagrams the kernel dropped so far at the server's UDP socket.
udp_drops() {
    awk -v port="$(printf '%04X' "$PORT")" \
        '$2 == "0100007F:" port { drops += $NF } END { print drops + 0 }' /proc/net/udp
}

# wait_xcap NAME: until the server answers HTTP on $HTTP_PORT; fails (1) if it exits or
# does not within $READY_TIMEOUT seconds, its log on stderr.
wait_xcap() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' \
            "http://127.0.0.1:$HTTP_PORT/xcap-root/xcap-caps/global/index")" != 000 ]; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "   $1 did not answer XCAP within ${READY_TIMEOUT}s; the end of its log:" >&2
            tail -n 30 "$SERVER_LOG" >&2
            return 1
        fi
        sleep 0.2
    done
}

# put_documents: the owner's resource-lists and rls-services; fails (1) unless each gets
# 200 or 201.
put_documents() {
    local auid type status
    for auid in resource-lists rls-services; do
        type=application/$auid+xml
        status=$(curl -s -o "$WORK/put.out" -w '%{http_code}' -X PUT -H "Content-Type: $type" \
            --data-binary "@$DATA/$auid.xml" \
            "http://127.0.0.1:$HTTP_PORT/xcap-root/$auid/users/$OWNER/index")
        echo "   PUT $auid/users/$OWNER/index: $status"
        case $status in
            200|201) ;;
            *) echo "   the XCAP PUT of $auid got $status:" >&2
               cat "$WORK/put.out" >&2
               return 1 ;;
        esac
    done
}

# bench_server NAME START_FUNCTION: starts the server, loads the documents, runs the
# load; sets NAME_key=value for each figure of rls_load.py's RESULT line, or
# NAME_error to why it failed.
bench_server() {
    local name=$1 start=$2 output status=0 drops_before line pair
    echo "== $name"
    $start
    if ! wait_xcap "$name" || ! put_documents; then
        printf -v "${name}_error" '%s' "its XCAP server did not take the documents"
        stop_server
        return
    fi
    drops_before=$(udp_drops)
    # Each phase waits at most $TIMEOUT s; this bounds the whole run besides.
    timeout $((4 * TIMEOUT + SECONDS_B + 120)) "$PYTHON" "$ROOT/bench/rls_load.py" \
        --server "127.0.0.1:$PORT" --owner "$OWNER" --seconds "$SECONDS_B" \
        --timeout "$TIMEOUT" --window-c "$WINDOW_C" --pids "$(server_pids)" \
        2>"$WORK/$name.stderr" | tee "$WORK/$name.out" || status=$?
    output=$(cat "$WORK/$name.out")
    echo "   datagrams dropped at $name's UDP socket: $(($(udp_drops) - drops_before))"
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "   $name exited during the run; the end of its log:" >&2
        tail -n 30 "$SERVER_LOG" >&2
    fi
    stop_server
    line=$(grep '^RESULT ' <<<"$output" | tail -n 1 || true)
    for pair in ${line#RESULT }; do
        printf -v "${name}_${pair%%=*}" '%s' "${pair#*=}"
    done
    line=$(grep '^ERROR ' <<<"$output" | tail -n 1 || true)
    [ -z "$line" ] || printf -v "${name}_error" '%s' "${line#ERROR }"
    if [ $status -ne 0 ] && [ -z "$(get "$name" error)" ]; then
        printf -v "${name}_error" '%s' \
            "rls_load.py exited $status: $(tail -n 1 "$WORK/$name.stderr" 2>/dev/null)"
    fi
    if [ -n "$(get "$name" error)" ]; then
        echo "   $name's side failed: $(get "$name" error)"
    fi
    echo
}

# get NAME KEY: the figure KEY of server NAME, or nothing.
get() {
    local variable="${1}_$2"
    echo "${!variable:-}"
}

if [ "$ONLY" != slee ]; then
    bench_server kamailio start_kamailio
fi
if [ "$ONLY" != kamailio ]; then
    if [ ! -x "$TWISTD" ]; then
        slee_error="no $TWISTD (python3 -m venv .venv && .venv/bin/pip install -e '.[test]')"
        echo "== slee: skipped, $slee_error"
    elif ! make_deploy_dir; then
        slee_error="its shipped units could not be copied with default-policy allow"
    else
        bench_server slee start_slee
    fi
fi

# -- the table -------------------------------------------------------------------------------

echo "== resource list subscriptions over UDP, $(nproc) CPUs: 100-member list, 10 watchers" \
    "at 100 PUBLISH/s for ${SECONDS_B}s, then 100 watchers"
# row LABEL KEY KIND UNIT: one line of the table; KIND: time (Kamailio/slee), rate
# (slee/Kamailio), memory (a before-after pair of KiB, shown in MiB; Kamailio/slee), or
# info (no ratio).
row() {
    local label=$1 key=$2 kind=$3 unit=$4 k s
    if [ "$kind" = memory ]; then
        k=$(delta kamailio "$key"); s=$(delta slee "$key")
    else
        k=$(cell kamailio "$key"); s=$(cell slee "$key")
    fi
    awk -v label="$label" -v k="$k" -v s="$s" -v kind="$kind" -v unit="$unit" 'BEGIN {
        numeric = "^[0-9.]+$"
        if (kind == "memory") { if (k ~ numeric) k /= 1024; if (s ~ numeric) s /= 1024 }
        if (unit == "%") { if (k ~ numeric) k *= 100; if (s ~ numeric) s *= 100 }
        ratio = "-"
        if (k ~ numeric && s ~ numeric && k > 0 && s > 0) {
            if (kind == "time" || kind == "memory") ratio = sprintf("%.2f", k / s)
            if (kind == "rate") ratio = sprintf("%.2f", s / k)
        }
        fmt = (unit == "s") ? "%.3f" : "%.1f"
        kt = (k ~ numeric) ? sprintf(fmt, k) " " unit : k
        st = (s ~ numeric) ? sprintf(fmt, s) " " unit : s
        printf "   %-50s %14s %14s   %s\n", label, kt, st, ratio
    }'
}
# cell NAME KEY: the figure, "failed" if the server's side failed, "-" if it did not run.
cell() {
    local value
    value=$(get "$1" "$2")
    if [ -n "$value" ]; then echo "$value"
    elif [ -n "$(get "$1" error)" ]; then echo failed
    else echo "-"; fi
}
# delta NAME KIND: after - before of c_KIND_*_kib (read when phase (c) ended, completed or
# timed out), or what cell says.
delta() {
    local before after
    before=$(get "$1" "c_$2_before_kib"); after=$(get "$1" "c_$2_after_kib")
    if [ -n "$before" ] && [ -n "$after" ]; then
        echo $((after - before))
    else cell "$1" c_seconds; fi
}
printf '   %-50s %14s %14s   %s\n' "" Kamailio slee "ratio (>= 1: slee as good or better)"
row "(a) 1 watcher: SUBSCRIBE to all 100 active, median" a_seconds time s
row "(b) NOTIFYs/s received, 10 watchers" b_notifies_per_second rate /s
row "(b) resources per NOTIFY (mean)" b_resources_per_notify info ""
row "(b) PUBLISH to watcher's NOTIFY, p50" b_latency_p50 time s
row "(b) PUBLISH to watcher's NOTIFY, p99" b_latency_p99 time s
row "(b) (PUBLISH, watcher) notes seen" b_delivered info %
row "(c) 100 watchers: first SUBSCRIBE to all active" c_seconds time s
for name in kamailio slee; do
    if [ "$(get "$name" c_seconds)" = timeout ]; then
        echo "       $name: $(get "$name" c_complete) of 100 watchers complete after" \
            "${TIMEOUT}s (its memory below: when phase (c) gave up)"
    fi
done
row "(c) memory of 10,000 back-end subs, VmRSS sum" rss memory MiB
row "(c) memory of 10,000 back-end subs, Pss sum" pss memory MiB
echo "   (rates: slee/Kamailio; times and memory: Kamailio/slee)"
for name in kamailio slee; do
    if [ -n "$(get "$name" error)" ]; then
        echo "   $name's side failed: $(get "$name" error)"
    fi
done
