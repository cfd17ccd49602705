#!/usr/bin/env bash
# router_cost.sh - callgrind instructions per routed span (walk + trace-id check + ring lookup +
# grouping + per-owner encoding, and with the client's copy of each part) on a 512-span
# agent-shaped request, set-up subtracted; beside a plain copy of the same bytes. Also
# wall-clock spans/s on one core.
# Usage: bench/router_cost.sh [BUILD_DIR]   (a RelWithDebInfo build; needs valgrind)
set -euo pipefail
build=${1:-build}
exe="$build/rt-bench-router-cost"
iters=200
ir() { # total instructions of one run
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$exe" --mode "$1" --iters "$2" 2>&1 \
    | awk '/Collected :/ {print $4}'
}
base=$(ir none "$iters")
printf '| mode | instructions per span (callgrind) | spans/s, one core (wall clock) |\n|---|---|---|\n'
for m in copy check split split_send; do
  total=$(ir "$m" "$iters")
  per=$(awk -v t="$total" -v b="$base" -v n="$iters" 'BEGIN {printf "%.1f", (t - b) / (n * 512)}')
  rate=$("$exe" --mode "$m" --iters 4000 | sed 's/.*spans_per_s=\([0-9]*\).*/\1/')
  printf '| %s | %s | %s |\n' "$m" "$per" "$rate"
done
