#!/usr/bin/env bash
# driver.sh - run a benchmark scenario on this machine without Docker: processes on
# 127.0.0.x, the agent load generator in front, the verifying sink behind.
#
#   bench/driver.sh [options] SCENARIO
#
# Scenarios:
#   harness   loadgen -> sink                          (the harness ceiling)
#   sampler   loadgen -> one ringtail-sampler -> sink
#   router    loadgen -> ringtail-router -> 3 sinks standing in for samplers
#   tier      loadgen -> ringtail-router -> 3 ringtail-samplers -> sink
#
# Options:
#   --build DIR        build directory with the binaries (default: build)
#   --out DIR          where logs and reports go (default: build/bench/<scenario>)
#   --turns N          agent turns to send (default 5000)
#   --profile P        seed | mixed | spike (default seed)
#   --policies FILE    a sampler policy file (YAML list under `policies:`; default: the seed
#                      article's set, config/policies-seed.yaml)
#   --decision-wait D  sampler decision_wait (default 2s)
#   --connections N    loadgen connections (default 4)
#   --protocol P       http | grpc into the first hop (default http)
#   --fail-if LIST     passed to the sink (e.g. "recall.error<1,fragmented>0")
#   --price P          dollars per million indexed spans for the cost table (default 1.27)
#   --turns-per-day N  for the cost table (default 50000, the seed article's fleet)
#
# Prints the sink's table and the cost arithmetic; writes sink.json, loadgen.json and every
# process's log under --out. Exit status: the sink's (non-zero when --fail-if trips).
set -euo pipefail
cd "$(dirname "$0")/.."

build=build
out=""
turns=5000
profile=seed
policies=config/policies-seed.yaml
decision_wait=2s
connections=4
protocol=http
fail_if=""
price=1.27
turns_per_day=50000
while [ $# -gt 1 ]; do
  case "$1" in
  --build) build=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --turns) turns=$2; shift 2 ;;
  --profile) profile=$2; shift 2 ;;
  --policies) policies=$2; shift 2 ;;
  --decision-wait) decision_wait=$2; shift 2 ;;
  --connections) connections=$2; shift 2 ;;
  --protocol) protocol=$2; shift 2 ;;
  --fail-if) fail_if=$2; shift 2 ;;
  --price) price=$2; shift 2 ;;
  --turns-per-day) turns_per_day=$2; shift 2 ;;
  *) echo "driver.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scenario=${1:?usage: bench/driver.sh [options] harness|sampler|router|tier}
case "$scenario" in harness | sampler | router | tier) ;; *)
  echo "driver.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
out=${out:-$build/bench/$scenario}
rm -rf "$out"
mkdir -p "$out"
for exe in ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink; do
  [ -x "$build/$exe" ] || { echo "driver.sh: $build/$exe missing (build first)" >&2; exit 2; }
done

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
sink_pid=""
# On any exit (also an error half-way), nothing of the run is left behind.
trap 'stop_all; [ -z "$sink_pid" ] || kill -TERM "$sink_pid" 2>/dev/null || true' EXIT

# A free port block for this run (OTLP http = base, grpc = base+1, admin = base+2 on each
# address), so parallel runs and a running tier do not collide.
# Below the kernel's ephemeral range (32768 and up by default), where outgoing connections of
# this or other runs could already hold a port.
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$((low - 10000 - 100))
[ "$span" -gt 1000 ] || span=1000
base=$((10000 + ($$ * 7 + RANDOM) % span))
wait_log() { # wait_log FILE PATTERN
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "driver.sh: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  return 1
}

start_sink() { # start_sink [EXTRA SINK ARGS]
  "$build/rt-bench-sink" --http "127.0.0.1:$((base + 10))" --grpc "127.0.0.1:$((base + 11))" "$@" \
    --manifest "$out/manifest.jsonl" --report "$out/sink.json" \
    ${fail_if:+--fail-if "$fail_if"} > "$out/sink.out" 2> "$out/sink.log" &
  sink_pid=$!
  wait_log "$out/sink.log" "grpc_port="
  kill -0 "$sink_pid" 2>/dev/null || { cat "$out/sink.log" >&2; exit 2; }
}

sampler_config() { # sampler_config I -> config of sampler I (1..3) on 127.0.0.(I+1)
  local ip="127.0.0.$(($1 + 1))"
  cat <<EOC
log_level: info
workers: 1
node_id: sampler-$1
admin: {listen: "$ip:$((base + 2))"}
ring: {file: "$out/ring.yaml"}
listeners:
  http: {listen: "$ip:$base"}
  grpc: {listen: "$ip:$((base + 1))"}
tail_sampling:
  decision_wait: $decision_wait
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
}

ring_file() { # ring_file PORT -> three nodes on 127.0.0.2-4:PORT
  echo "protocol: http"
  echo "nodes:"
  for i in 1 2 3; do echo "  - {id: sampler-$i, endpoint: \"127.0.0.$((i + 1)):$1\"}"; done
}

start_router() { # start_router HEALTH_CHECK
  cat > "$out/router.yaml" <<EOC
workers: 1
admin: {listen: "127.0.0.1:$((base + 2))"}
ring: {file: "$out/ring.yaml"}
listeners:
  http: {listen: "127.0.0.1:$base"}
  grpc: {listen: "127.0.0.1:$((base + 1))"}
health: {check: $1, admin_port: $((base + 2))}
EOC
  "$build/ringtail-router" --config "$out/router.yaml" 2> "$out/router.log" &
  pids+=($!)
  names+=(router)
  wait_log "$out/router.log" "OTLP listeners open"
}

names=() # process names, parallel to pids, for the CPU table
if [ "$scenario" = router ]; then
  # The sink also stands in for the three samplers (one process, three addresses), so the
  # router's output is verified like the tier's.
  start_sink --http "127.0.0.2:$((base + 20))" --http "127.0.0.3:$((base + 20))" \
    --http "127.0.0.4:$((base + 20))"
else
  start_sink
fi
target="127.0.0.1:$((base + 10))"
[ "$protocol" = grpc ] && target="127.0.0.1:$((base + 11))"
case "$scenario" in
sampler)
  sampler_config 1 | sed '/^ring:/d' > "$out/sampler-1.yaml"
  "$build/ringtail-sampler" --config "$out/sampler-1.yaml" 2> "$out/sampler-1.log" &
  pids+=($!)
  names+=(sampler-1)
  wait_log "$out/sampler-1.log" "sampler ready"
  target="127.0.0.2:$base"
  [ "$protocol" = grpc ] && target="127.0.0.2:$((base + 1))"
  ;;
router)
  ring_file "$((base + 20))" > "$out/ring.yaml"
  start_router tcp
  target="127.0.0.1:$base"
  [ "$protocol" = grpc ] && target="127.0.0.1:$((base + 1))"
  ;;
tier)
  ring_file "$base" > "$out/ring.yaml"
  for i in 1 2 3; do
    sampler_config "$i" > "$out/sampler-$i.yaml"
    "$build/ringtail-sampler" --config "$out/sampler-$i.yaml" 2> "$out/sampler-$i.log" &
    pids+=($!)
    names+=("sampler-$i")
  done
  for i in 1 2 3; do wait_log "$out/sampler-$i.log" "sampler ready"; done
  start_router readyz
  target="127.0.0.1:$base"
  [ "$protocol" = grpc ] && target="127.0.0.1:$((base + 1))"
  ;;
esac

echo "driver: $scenario, $turns turns ($profile), $protocol into $target"
/usr/bin/time -f "loadgen cpu: %U user + %S system seconds" -o "$out/loadgen.cpu" \
"$build/rt-bench-loadgen" --endpoint "$target" --protocol "$protocol" --profile "$profile" \
  --turns "$turns" --compressed-time --batch-spans 512 --connections "$connections" --seed 42 \
  --manifest "$out/manifest.jsonl" --report "$out/loadgen.json" | tee "$out/loadgen.out"

# Let the samplers decide (decision_wait), then stop them: SIGTERM decides what is still pending
# and flushes the exporters, so nothing is cut off by the run's end.
if [ "$scenario" = sampler ] || [ "$scenario" = tier ]; then
  sleep 1
fi
# Each ringtail process's /metrics as it stands at the end of the run.
for i in 1 2 3; do
  curl -sf "http://127.0.0.$((i + 1)):$((base + 2))/metrics" > "$out/metrics-sampler-$i.txt" 2>/dev/null ||
    rm -f "$out/metrics-sampler-$i.txt"
done
curl -sf "http://127.0.0.1:$((base + 2))/metrics" > "$out/metrics-router.txt" 2>/dev/null ||
  rm -f "$out/metrics-router.txt"
# CPU time of each process so far (user + system), for spans/s per core.
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
spans=$(jq -r .spans_acked "$out/loadgen.json")
{
  echo "cpu seconds (user+system) and spans per cpu-second, $spans spans sent:"
  for i in "${!pids[@]}"; do
    c=$(cpu "${pids[$i]}")
    awk -v n="${names[$i]}" -v c="$c" -v s="$spans" \
      'BEGIN {printf "  %-10s %6.2f s  %9.0f spans/s per core\n", n, c, (c > 0 ? s / c : 0)}'
  done
  c=$(cpu "$sink_pid")
  awk -v c="$c" -v s="$spans" 'BEGIN {printf "  %-10s %6.2f s  %9.0f spans/s per core (all spans sent)\n", "sink", c, (c > 0 ? s / c : 0)}'
} | tee "$out/cpu.txt"
stop_all
kill -TERM "$sink_pid"
set +e
wait "$sink_pid"
rc=$?
set -e
cat "$out/sink.out"

# The seed article's cost arithmetic on what this run kept.
jq -r --argjson price "$price" --argjson tpd "$turns_per_day" '
  .manifest.spans as $sent
  | .retention.spans as $keep
  | .manifest.traces as $turns
  | ($sent / $turns) as $spt
  | ($tpd * $spt) as $day
  | "cost at \($tpd) turns/day, \($spt * 100 | floor / 100) spans/turn, $\($price) per M spans:",
    "  100 %  : \($day | floor) spans/day, \($day * 30 | floor) spans/month, $\($day * 30 / 1e6 * $price * 100 | floor / 100)/month",
    "  kept   : \($day * $keep | floor) spans/day, \($day * 30 * $keep | floor) spans/month, $\($day * 30 * $keep / 1e6 * $price * 100 | floor / 100)/month (\($keep * 1000 | floor / 10) % of spans)"
' "$out/sink.json" 2>/dev/null | tee "$out/cost.txt" || true
exit "$rc"
