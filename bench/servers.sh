# Sourced by the bench scripts: one server at a time, started by the script
# (its pid in SERVER_PID), and a scratch directory (WORK); both are gone when
# the script ends, however it ends.  Also: usage (prints the script's
# "# Usage" block), free_port (a TCP port free on 127.0.0.1 now), and for
# the SIPp scripts cumulative and rising_rates.

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

# The cumulative value of a line of SIPp's statistics screen.
cumulative() {
    awk -F'|' -v name="$1" '$1 ~ "^ *" name " *$" { gsub(/[^0-9.]/, "", $3); print $3; exit }'
}

# rising_rates RUN_STEP: offers each rate of $RATES for $SECONDS_PER_STEP
# seconds; RUN_STEP RATE CALLS runs one step and prints SIPp's final screen.
# Prints a line per step, and sets BEST to the highest rate reached with
# < 0.1% failed calls (0 if none) and SATURATED to yes when some step failed,
# no when BEST is only a lower bound (the rates did not reach the server's
# limit).  After a failed step it calls STEP_FAILED RATE if the script has
# that function; it stops climbing after two failed steps in a row.  Then,
# up to $REFINE_STEPS times (default 3), it offers the rate halfway between
# the highest that passed and the lowest that failed, while they are more
# than 5% apart: the limit is found to an eighth of the gap between two
# rates of the list, not to the list's coarse steps.
rising_rates() {
    local run_step=$1 rate failing=0 passed=0 refused= refine
    BEST=0
    SATURATED=no
    printf '   %8s %10s %10s %9s %8s\n' asked/s reached/s calls failed failed%
    for rate in $RATES; do
        if _rate_step "$run_step" "$rate"; then
            failing=0
            passed=$rate
        else
            [ -n "$refused" ] || refused=$rate
            failing=$((failing + 1))
            [ $failing -lt 2 ] || break
        fi
    done
    for ((refine = 0; refine < ${REFINE_STEPS:-3}; refine++)); do
        [ -n "$refused" ] && [ $((20 * (refused - passed))) -gt "$refused" ] || break
        rate=$(((passed + refused) / 2))
        if _rate_step "$run_step" "$rate"; then passed=$rate; else refused=$rate; fi
    done
}

# _rate_step RUN_STEP RATE: one step of rising_rates; prints its line, keeps
# BEST and SATURATED, and succeeds when fewer than 0.1% of its calls failed.
_rate_step() {
    local run_step=$1 rate=$2 calls screen ok failed reached
    calls=$((rate * SECONDS_PER_STEP))
    screen=$("$run_step" "$rate" "$calls")
    ok=$(cumulative 'Successful call' <<<"$screen")
    reached=$(cumulative 'Call Rate' <<<"$screen")
    failed=$((calls - ${ok:-0}))
    printf '   %8d %10.0f %10d %9d %8.3f\n' "$rate" "${reached:-0}" "$calls" "$failed" \
        "$(awk -v f="$failed" -v c="$calls" 'BEGIN { print 100 * f / c }')"
    if [ $((failed * 1000)) -lt "$calls" ]; then
        BEST=$(awk -v a="$BEST" -v b="${reached:-0}" 'BEGIN { print (b > a) ? b : a }')
        return 0
    fi
    if declare -F STEP_FAILED >/dev/null; then STEP_FAILED "$rate"; fi
    SATURATED=yes
    return 1
}
