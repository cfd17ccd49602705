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
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
base=$((10000 + ($$ * 7 + RANDOM) % (low - 10100)))
wait_log() {
  for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "sampler_cost.sh: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}
"$build/rt-bench-sink" --http "127.0.0.1:$((base + 10))" --grpc "127.0.0.1:$((base + 11))" \
  --report "$out/sink.json" > "$out/sink.out" 2> "$out/sink.log" &
sink=$!
pids+=($sink)
wait_log "$out/sink.log" "grpc_port="
{
  cat <<EOC
log_level: info
workers: 1
node_id: cost
admin: {listen: "127.0.0.1:$((base + 2))"}
listeners:
  http: {listen: "127.0.0.1:$base"}
  grpc: {listen: "127.0.0.1:$((base + 1))"}
tail_sampling:
  decision_wait: 1s
  num_traces: 200000
EOC
  sed 's/^/  /' "$policies"
  cat <<EOC
exporters:
  - name: sink
    type: otlp_http
    endpoint: 127.0.0.1:$((base + 10))
    batch: {timeout: 100ms}
EOC
} > "$out/sampler.yaml"
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  "$build/ringtail-sampler" --config "$out/sampler.yaml" 2> "$out/sampler.log" &
sampler=$!
pids+=($sampler)
wait_log "$out/sampler.log" "sampler ready"
"$build/rt-bench-loadgen" --endpoint "127.0.0.1:$base" --profile seed --turns "$turns" \
  --compressed-time --batch-spans 512 --connections 2 --seed 42 --report "$out/lg.json" > /dev/null
sleep 2
kill -TERM "$sampler"
wait "$sampler" || true
kill -TERM "$sink"
wait "$sink" || true
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
