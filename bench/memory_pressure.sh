#!/usr/bin/env bash
# memory_pressure.sh - recall when the buffer is too small for the load (issue: performance,
# item 6): one sampler with `max_buffer_bytes` well under what decision_wait needs, the
# recommended agent policies, real-time agent load; prints the sink's recall per category and
# how the early decisions were picked (ringtail_sampler_early_decision_picks_total).
# Usage: bench/memory_pressure.sh [BUILD_DIR] [OUT_DIR] [MAX_BUFFER_BYTES] [TURNS] [RATE]
#   defaults: build-rel, /tmp/memory-pressure, 16MiB, 6000 turns, 235 turns/s (~20 k spans/s),
#   decision_wait 8 s, a turn's spans spread over its duration x 0.11 (~6 s for a 47 s turn).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-rel}
out=${2:-/tmp/memory-pressure}
max_buffer=${3:-16MiB}
turns=${4:-6000}
rate=${5:-235}
policies=config/policies-agent.yaml
decision_wait=8s
rm -rf "$out"
mkdir -p "$out"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# shellcheck source=bench/tier-lib.sh
. bench/tier-lib.sh
start_sink
pids+=("$sink_pid")
sampler_config 1 | sed '/^ring:/d' |
  sed "s/^  num_traces: 200000/  num_traces: 200000\n  max_buffer_bytes: $max_buffer/" > "$out/sampler.yaml"
grep -q "max_buffer_bytes: $max_buffer" "$out/sampler.yaml" || { echo "config not written" >&2; exit 2; }
"$build/ringtail-sampler" --config "$out/sampler.yaml" 2> "$out/sampler.log" &
sampler=$!
pids+=("$sampler")
wait_log "$out/sampler.log" "sampler ready"
"$build/rt-bench-loadgen" --endpoint "127.0.0.2:$base" --profile seed --turns "$turns" \
  --rate "$rate" --real-time --time-scale 0.11 --connections 8 --seed 42 \
  --manifest "$out/manifest.jsonl" --report "$out/loadgen.json" > "$out/loadgen.out"
sleep 10 # decision_wait, then the exporter's batches
curl -sf "http://127.0.0.2:$((base + 2))/metrics" > "$out/metrics.txt"
kill -TERM "$sampler"
wait "$sampler" || true
kill -TERM "$sink_pid"
wait "$sink_pid" || true
pids=()
cat "$out/sink.out"
grep -E '^ringtail_sampler_(early_decision_picks_total|early_decisions_total|bytes_buffered|spans_export_dropped_total)' \
  "$out/metrics.txt" | grep -v ' 0$' || true
