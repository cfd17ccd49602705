#!/usr/bin/env bash
# sampler_cost.sh - callgrind instructions per span of the whole ringtail-sampler process
# (HTTP intake, validation, buffering, policy observation, decisions, export encode + gzip),
# user space only: loadgen sends TURNS seed-profile turns (compressed time) to one sampler
# (workers: 1) running callgrind, which exports to rt-bench-sink; SIGTERM decides what is left.
# Prints the total and the functions with the most inclusive and self instructions.
# Usage: bench/sampler_cost.sh [BUILD_DIR] [POLICY_FILE] [TURNS]
#   BUILD_DIR a RelWithDebInfo build (function names, release code); default build-relwd.
set -euo pipefail
build=${1:-build-relwd}
policies=${2:-config/policies-agent.yaml}
turns=${3:-1000}
out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "${KEEP_CG:-}" ] && cp "$out/cg.out" "$KEEP_CG"
  rm -rf "$out"
}
trap cleanup EXIT
# shellcheck source=bench/tier-lib.sh
. "$(dirname "$0")/tier-lib.sh"
decision_wait=1s
start_sink
pids+=("$sink_pid")
# A lone sampler (no ring: it neither forwards nor hands off) on 127.0.0.2.
sampler_config 1 | sed '/^ring:/d' > "$out/sampler.yaml"
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  "$build/ringtail-sampler" --config "$out/sampler.yaml" 2> "$out/sampler.log" &
sampler=$!
pids+=("$sampler")
wait_log "$out/sampler.log" "sampler ready" 600
"$build/rt-bench-loadgen" --endpoint "127.0.0.2:$base" --profile seed --turns "$turns" \
  --compressed-time --batch-spans 512 --connections 2 --seed 42 --manifest "$out/manifest.jsonl" \
  --report "$out/lg.json" > /dev/null
sleep 2
kill -TERM "$sampler"
wait "$sampler" || true
kill -TERM "$sink_pid"
wait "$sink_pid" || true
spans=$(jq -r .spans_acked "$out/lg.json")
kept=$(jq -r .spans_received "$out/sink.json")
total=$(awk '/Collected :/ {print $4}' "$out/sampler.log")
awk -v t="$total" -v s="$spans" -v k="$kept" -v p="$policies" 'BEGIN {
  printf "sampler: %d spans in, %d exported (%.1f %%), %.0f instructions, %.0f per span in (%s)\n",
    s, k, 100 * k / s, t, t / s, p }'
echo "--- inclusive (per span) ---"
callgrind_annotate --inclusive=yes "$out/cg.out" 2>/dev/null | awk -v s="$spans" '
  /^ *[0-9,]+ .*:/ { n = $1; gsub(",", "", n); if (++k <= 40) printf "%8.0f  %s\n", n / s, $0 }'
echo "--- self (per span) ---"
callgrind_annotate "$out/cg.out" 2>/dev/null | awk -v s="$spans" '
  /^ *[0-9,]+ .*:/ { n = $1; gsub(",", "", n); if (++k <= 30) printf "%8.0f  %s\n", n / s, $0 }'
