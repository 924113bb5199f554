#!/usr/bin/env bash
#
# Paired runs: one benchmark on two builds of slee, in turn, in one session.
#
# This machine's noise (its two CPUs are shared: +-10% and more from one
# minute to the next) hides a change of a few percent between two runs made
# apart.  Run in turn, A B B A..., the two builds meet the same noise, and
# the spread of each build's runs shows how much of a difference is real.
#
#   A: the tree at REVISION, checked out in a temporary git worktree that
#      uses this tree's .venv; this tree's bench scripts and the load tools
#      that import nothing of the product are copied into it, so that both
#      builds are driven alike (the tools that import the product stay its
#      own);
#   B: this working tree.
#
# For each run it prints the run's summary (the lines after its last "=="
# heading), labelled with its build and round; every run's whole output
# stays in the work directory it names.
#
# Usage, from the repository root, with the virtualenv in .venv:
#
#   bench/paired.sh [--rounds N] REVISION BENCHMARK [ARGUMENTS...]
#
# for instance bench/paired.sh --rounds 3 4e0922f bench/xcap.sh --seconds 10.

set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=2

usage() {
    sed -n '/^# Usage/,/^# for instance/p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=${2:?}; shift ;;
        -*) usage ;;
        *) break ;;
    esac
    shift
done
[ $# -ge 2 ] || usage
REVISION=$1
BENCHMARK=$2
shift 2
[ -x "$ROOT/$BENCHMARK" ] || { echo "no benchmark $BENCHMARK in $ROOT" >&2; exit 2; }

WORK=$(mktemp -d)
BEFORE=$WORK/tree
cleanup() {
    git -C "$ROOT" worktree remove --force "$BEFORE" 2>/dev/null || true
}
trap cleanup EXIT

git -C "$ROOT" worktree add --detach -q "$BEFORE" "$REVISION"
ln -s "$ROOT/.venv" "$BEFORE/.venv"
cp "$ROOT"/bench/*.sh "$BEFORE/bench/"
# The Python tools that import the product put the tree's root on sys.path.
for tool in "$ROOT"/bench/*.py; do
    grep -q "sys.path.insert" "$tool" || cp "$tool" "$BEFORE/bench/"
done

# summary FILE: the lines after the last "==" heading of a run's output.
summary() {
    awk '/^==/ { n = 0; delete lines } { lines[++n] = $0 } END { for (i = 1; i <= n; i++) print lines[i] }' "$1"
}

echo "== $BENCHMARK $*: A = $REVISION, B = this tree, $ROUNDS rounds (outputs in $WORK)"
# Rounds alternate which build goes first (A B, B A, A B...): whatever
# drifts over the session (the neighbours' load, the page cache, the CPU's
# clock) weighs on both alike.
for round in $(seq "$ROUNDS"); do
    order="A B"
    [ $((round % 2)) -eq 0 ] && order="B A"
    for build in $order; do
        tree=$ROOT
        [ "$build" = A ] && tree=$BEFORE
        output=$WORK/$build-$round.out
        (cd "$tree" && "./$BENCHMARK" "$@") >"$output" 2>&1 \
            || echo "   ($build, round $round: the benchmark failed; see $output)"
        echo "-- $build, round $round"
        summary "$output"
    done
done
