#!/usr/bin/env bash
# tier_sampler_cost.sh - callgrind instructions per span of one sampler of a tier: loadgen ->
# router -> three samplers (sampler-1 under callgrind) -> sink, compressed time. What a sampler
# of a tier does per span beyond a lone one: check that it owns each trace it is sent (it does:
# the router sent it there), on top of everything bench/sampler_cost.sh counts.
# Usage: bench/tier_sampler_cost.sh [SAMPLER_BUILD_DIR] [POLICY_FILE] [TURNS]
#   SAMPLER_BUILD_DIR: where sampler-1's binary comes from (e.g. an older commit's build, to
#   compare); the rest of the tier runs from build/. Prints sampler-1's spans and instructions.
set -euo pipefail
cd "$(dirname "$0")/.."
sbuild=${1:-build}
policies=${2:-config/policies-agent.yaml}
turns=${3:-1000}
build=build
decision_wait=1s
out=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -z "${KEEP_CG:-}" ] || cp "$out/cg.out" "$KEEP_CG" 2>/dev/null || true
  rm -rf "$out"
}
trap cleanup EXIT
# shellcheck source=bench/tier-lib.sh
. bench/tier-lib.sh
start_sink
pids+=("$sink_pid")
ring_file "$base" 3 > "$out/ring.yaml"
for i in 1 2 3; do sampler_config "$i" > "$out/sampler-$i.yaml"; done
# A build from before peers existed refuses the section: leave it out for that one.
"$sbuild/ringtail-sampler" --help-config | grep -q '^peers' || sed -i '/^peers:/,+1d' "$out/sampler-1.yaml"
valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  "$sbuild/ringtail-sampler" --config "$out/sampler-1.yaml" 2> "$out/sampler-1.log" &
s1=$!
pids+=("$s1")
for i in 2 3; do
  "$build/ringtail-sampler" --config "$out/sampler-$i.yaml" 2> "$out/sampler-$i.log" &
  pids+=($!)
done
for i in 1 2 3; do wait_log "$out/sampler-$i.log" "sampler ready" 600; done
# A sampler under callgrind is slow: the router waits for it rather than route around it.
launch_router "$out/ring.yaml" "{check: none}" "{timeout: 30s, request_deadline: 60s, retry_budget: 10s}"
pids+=("$router_pid")
"$build/rt-bench-loadgen" --endpoint "127.0.0.1:$base" --profile seed --turns "$turns" \
  --compressed-time --batch-spans 512 --connections 2 --seed 42 --report "$out/lg.json" > /dev/null
sleep 3
spans=$(curl -sf "http://127.0.0.2:$((base + 2))/metrics" |
  awk '$1 == "ringtail_sampler_spans_received_total" { print $2 }')
kill -TERM "$s1"
wait "$s1" || true
total=$(awk '/Collected :/ {print $4}' "$out/sampler-1.log")
awk -v t="$total" -v s="$spans" -v b="$sbuild" 'BEGIN {
  printf "sampler-1 (%s): %d spans in, %.0f instructions, %.0f per span\n", b, s, t, t / s }'
