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
#   scale-out, scale-in, rolling, kill, stale, slow-owner, dead-owner, steady
#             the tier while its membership changes, under real-time load: run by
#             bench/membership.sh (its header lists the scenarios and their options)
#   spike     the tier under the spike profile (10x the base --rate in the middle third of the
#             run), with each sampler's and the router's /metrics sampled every 0.5 s into
#             metrics.csv (t_s,node,traces_pending,bytes_buffered,spans_received) for the
#             memory-over-time chart (bench/charts.sh)
#
# Options:
#   --build DIR        build directory with the binaries (default: build)
#   --out DIR          where logs and reports go (default: build/bench/<scenario>)
#   --turns N          agent turns to send (default 5000)
#   --profile P        seed | mixed | spike (default seed; the spike scenario always uses spike)
#   --rate R           turns per second the load generator starts (default 0 = flat out; the
#                      spike scenario's default is 100, i.e. 1,000 during the spike)
#   --policies FILE    a sampler policy file (YAML list under `policies:`; default: the seed
#                      article's set, config/policies-seed.yaml)
#   --decision-wait D  sampler decision_wait (default 2s)
#   --connections N    loadgen connections (default 4)
#   --protocol P       http | grpc into the first hop (default http)
#   --fail-if LIST     passed to the sink (e.g. "recall.error<1,fragmented>0")
#   --price P          dollars per million indexed spans for the cost table (default 1.27)
#   --turns-per-day N  for the cost table (default 50000, the seed article's fleet)
#   --sample-interval S  the spike scenario's /metrics sampling period (default 0.5)
#   --results FILE     also write this run's figures into FILE (bench/RESULTS.md) between
#                      `<!-- driver:SCENARIO:begin -->` and `<!-- driver:SCENARIO:end -->`,
#                      replacing what was there (the block is appended if absent)
#
# Prints the sink's table, each process's CPU time and the cost arithmetic; writes run.json
# (what was run), sink.json, loadgen.json, cpu.csv (process,cpu_s,spans,spans_per_cpu_s),
# faults.csv (process,minor_faults: memory the process took from the kernel),
# cost.txt, each ringtail process's final /metrics and every process's log under --out.
# bench/charts.sh draws from these. Exit status: the sink's (non-zero when --fail-if trips).
set -euo pipefail
cd "$(dirname "$0")/.."
case "${*: -1}" in
scale-out | scale-in | rolling | kill | stale | slow-owner | dead-owner | steady) exec bash bench/membership.sh "$@" ;;
esac
cmdline="bench/driver.sh$(printf ' %q' "$@")"

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
rate=""
interval=0.5
results=""
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
  --rate) rate=$2; shift 2 ;;
  --sample-interval) interval=$2; shift 2 ;;
  --results) results=$2; shift 2 ;;
  *) echo "driver.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scenario=${1:?usage: bench/driver.sh [options] harness|sampler|router|tier|spike}
case "$scenario" in harness | sampler | router | tier | spike) ;; *)
  echo "driver.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
if [ "$scenario" = spike ]; then
  profile=spike
  rate=${rate:-100}
fi
rate=${rate:-0}
[ -f "$policies" ] || { echo "driver.sh: --policies $policies: no such file" >&2; exit 2; }
if [ -n "$results" ] && [ ! -f "$results" ]; then
  echo "driver.sh: --results $results: no such file" >&2
  exit 2
fi
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
poll_pid=""
# On any exit (also an error half-way), nothing of the run is left behind.
trap '[ -z "$poll_pid" ] || kill -TERM "$poll_pid" 2>/dev/null || true; stop_all
  [ -z "$sink_pid" ] || kill -TERM "$sink_pid" 2>/dev/null || true' EXIT

# Shared with bench/membership.sh: the port block ($base), wait_log, start_sink,
# sampler_config, check_sampler_config, ring_file, metric_sum.
# shellcheck source=bench/tier-lib.sh
. bench/tier-lib.sh

start_router() { # start_router HEALTH_CHECK
  launch_router "$out/ring.yaml" "{check: $1, admin_port: $((base + 2))}"
  pids+=("$router_pid")
  names+=(router)
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
  check_sampler_config "$out/sampler-1.yaml"
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
tier | spike)
  ring_file "$base" > "$out/ring.yaml"
  for i in 1 2 3; do
    sampler_config "$i" > "$out/sampler-$i.yaml"
    check_sampler_config "$out/sampler-$i.yaml"
  done
  for i in 1 2 3; do
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

# admin_urls: "NODE URL" of each ringtail process's /metrics in this scenario.
admin_urls() {
  case "$scenario" in
  sampler) echo "sampler-1 http://127.0.0.2:$((base + 2))/metrics" ;;
  router) echo "router http://127.0.0.1:$((base + 2))/metrics" ;;
  tier | spike)
    for i in 1 2 3; do echo "sampler-$i http://127.0.0.$((i + 1)):$((base + 2))/metrics"; done
    echo "router http://127.0.0.1:$((base + 2))/metrics"
    ;;
  esac
}

# poll_metrics CSV: every $interval s, one line per ringtail process:
# t_s (since the load generator started), node, traces_pending, bytes_buffered (samplers; 0 for
# the router) and spans_received (the counter, summed over its labels). Runs until killed.
poll_metrics() {
  local csv=$1 t0 next step node url m
  step=$(awk -v s="$interval" 'BEGIN {printf "%d", s * 1e9}')
  t0=$(date +%s%N)
  next=$t0
  echo "t_s,node,traces_pending,bytes_buffered,spans_received" > "$csv"
  while :; do
    while read -r node url; do
      m=$(curl -sf --max-time 1 "$url") || continue
      awk -v t="$(( $(date +%s%N) - t0 ))" -v node="$node" '
        { name = $1; sub(/\{.*/, "", name) }
        name ~ /_traces_pending$/ { tp += $NF }
        name ~ /_bytes_buffered$/ { bb += $NF }
        name ~ /_spans_received_total$/ { sr += $NF }
        END { printf "%.3f,%s,%d,%d,%d\n", t / 1e9, node, tp, bb, sr }' <<< "$m" >> "$csv"
    done < <(admin_urls)
    next=$((next + step))
    local wait_ns=$((next - $(date +%s%N)))
    [ "$wait_ns" -le 0 ] || sleep "$(awk -v n="$wait_ns" 'BEGIN {printf "%.3f", n / 1e9}')"
  done
}


if [ "$scenario" = spike ]; then
  poll_metrics "$out/metrics.csv" &
  poll_pid=$!
fi

lg_args=(--endpoint "$target" --protocol "$protocol" --profile "$profile" --turns "$turns"
  --compressed-time --batch-spans 512 --connections "$connections" --seed 42
  --manifest "$out/manifest.jsonl" --report "$out/loadgen.json")
[ "$rate" = 0 ] || lg_args+=(--rate "$rate")
load="$profile"
[ "$rate" = 0 ] || load="$profile, $rate turns/s"
echo "driver: $scenario, $turns turns ($load), $protocol into $target"
/usr/bin/time -f "loadgen cpu: %U user + %S system seconds" -o "$out/loadgen.cpu" \
  "$build/rt-bench-loadgen" "${lg_args[@]}" | tee "$out/loadgen.out"

# Let the samplers decide (decision_wait), then stop them: SIGTERM decides what is still pending
# and flushes the exporters, so nothing is cut off by the run's end.
if [ "$scenario" = sampler ] || [ "$scenario" = tier ]; then
  sleep 1
fi
# The spike's memory chart runs until the samplers have decided everything they hold (at most
# decision_wait + 20 s), and a little beyond, so the chart shows the buffer draining.
if [ "$scenario" = spike ]; then
  for _ in $(seq 1 400); do
    pending=0
    while read -r node url; do
      [ "$node" = router ] && continue
      p=$(curl -sf --max-time 1 "$url" | awk '$1 == "ringtail_sampler_traces_pending" {print $2}')
      pending=$((pending + ${p:-1}))
    done < <(admin_urls)
    [ "$pending" -gt 0 ] || break
    sleep 0.1
  done
  sleep 1
  kill -TERM "$poll_pid" 2>/dev/null || true
  wait "$poll_pid" 2>/dev/null || true
  poll_pid=""
fi
# Each ringtail process's /metrics as it stands at the end of the run.
for i in 1 2 3; do
  curl -sf "http://127.0.0.$((i + 1)):$((base + 2))/metrics" > "$out/metrics-sampler-$i.txt" 2>/dev/null ||
    rm -f "$out/metrics-sampler-$i.txt"
done
curl -sf "http://127.0.0.1:$((base + 2))/metrics" > "$out/metrics-router.txt" 2>/dev/null ||
  rm -f "$out/metrics-router.txt"
# CPU time of each process so far (user + system), for spans per CPU-second. A sampler of the
# tier handled only its share: the spans it received (its /metrics), not all that were sent.
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# Minor page faults per ringtail process (memory taken from and given back to the kernel).
echo "process,minor_faults" > "$out/faults.csv"
for i in "${!pids[@]}"; do
  awk -v n="${names[$i]}" '{print n "," $10}' "/proc/${pids[$i]}/stat" >> "$out/faults.csv" 2>/dev/null || true
done
spans=$(jq -r .spans_acked "$out/loadgen.json")
echo "process,cpu_s,spans,spans_per_cpu_s" > "$out/cpu.csv"
cpu_row() { # cpu_row NAME CPU_S SPANS [NOTE]
  awk -v n="$1" -v c="$2" -v s="$3" -v note="${4:-}" -v csv="$out/cpu.csv" 'BEGIN {
    r = (c > 0 ? s / c : 0)
    printf "  %-10s %6.2f s  %9.0f spans/s per core%s\n", n, c, r, note
    printf "%s,%.2f,%d,%.0f\n", n, c, s, r >> csv }'
}
{
  echo "cpu seconds (user+system) and spans per cpu-second, $spans spans sent:"
  for i in "${!pids[@]}"; do
    n=${names[$i]}
    s=$spans
    if [[ "$n" == sampler-* ]] && [ -f "$out/metrics-$n.txt" ]; then
      s=$(metric_sum "$out/metrics-$n.txt" ringtail_sampler_spans_received_total)
    fi
    cpu_row "$n" "$(cpu "${pids[$i]}")" "$s" "$([ "$s" = "$spans" ] || echo " ($s spans)")"
  done
  cpu_row sink "$(cpu "$sink_pid")" "$spans" " (all spans sent)"
} | tee "$out/cpu.txt"
stop_all
kill -TERM "$sink_pid"
set +e
wait "$sink_pid"
rc=$?
set -e
# The load generator has exited by now: its CPU time, from time(1).
lg_cpu=$(awk '{printf "%.2f", $3 + $6}' "$out/loadgen.cpu" 2>/dev/null || echo 0)
cpu_row loadgen "$lg_cpu" "$spans" | tee -a "$out/cpu.txt"
cat "$out/sink.out"

# The seed article's cost arithmetic on what this run kept (bench/compose-bench.sh has it, so
# the compose benchmark prints the same table).
bash bench/compose-bench.sh cost "$out/sink.json" "$price" "$turns_per_day" 2>/dev/null |
  tee "$out/cost.txt" || true

jq -n --arg scenario "$scenario" --arg profile "$profile" --arg policies "$policies" \
  --arg protocol "$protocol" --arg decision_wait "$decision_wait" --arg command "$cmdline" \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --argjson turns "$turns" --argjson rate "$rate" \
  --argjson connections "$connections" --argjson cores "$(nproc)" \
  '{scenario: $scenario, profile: $profile, policies: $policies, protocol: $protocol,
    decision_wait: $decision_wait, turns: $turns, rate: $rate, connections: $connections,
    command: $command, date: $date, cores: $cores}' > "$out/run.json"

# results_block: this run's figures as Markdown, for --results.
results_block() {
  local run="$out/run.json" sink="$out/sink.json" lg="$out/loadgen.json"
  jq -r '"Generated by `\(.command)` on \(.date) (\(.cores) cores shared by every process; " +
    "\(.profile) profile, \(.protocol), policies `\(.policies)`, decision_wait \(.decision_wait)" +
    (if .rate > 0 then ", \(.rate) turns/s base rate" else "" end) + ")."' "$run"
  echo
  jq -r '"Load: \(.turns) turns, \(.spans_acked) spans acknowledged (\(.spans_failed) failed) in " +
    "\(.requests) requests, \(.elapsed_s) s, \(.spans_per_s | floor) spans/s wall clock."' "$lg"
  echo
  echo "| process | CPU s | spans handled | spans per CPU-second |"
  echo "|---|---|---|---|"
  tail -n +2 "$out/cpu.csv" | awk -F, '{printf "| %s | %s | %d | %d |\n", $1, $2, $3, $4}'
  echo
  echo "| category | traces | kept | recall | kept whole |"
  echo "|---|---|---|---|---|"
  jq -r '.categories // {} | to_entries[] |
    "| \(.key) | \(.value.traces) | \(.value.kept) | \(.value.recall * 1000 | round / 10) % | " +
    "\(.value.recall_whole * 1000 | round / 10) % |"' "$sink"
  echo
  jq -r '"Retention: \(.retention.traces * 1000 | round / 10) % of traces, " +
    "\(.retention.spans * 1000 | round / 10) % of spans; completeness " +
    "\(.completeness * 1000 | round / 10) %; fragmented \(.fragmented); duplicates " +
    "\(.duplicates); unknown traces \(.unknown_traces)." +
    (if (.policies | length) > 0 then " Kept by policy (traces): " +
      ([.policies | to_entries[] | "\(.key) \(.value.traces)"] | join(", ")) + "." else "" end)' \
    "$sink"
  if [ -s "$out/cost.txt" ]; then
    echo
    echo '```'
    cat "$out/cost.txt"
    echo '```'
  fi
  if [ -f "$out/metrics.csv" ]; then
    echo
    echo "Memory during the spike (sampled every $interval s; chart: \`bench/charts/spike-memory.png\`" \
      "from \`bench/charts.sh\`):"
    echo
    echo "| sampler | peak traces_pending | peak bytes_buffered | at t (s) |"
    echo "|---|---|---|---|"
    awk -F, 'NR > 1 && $2 != "router" {
        if (!($2 in bb) || $4 > bb[$2]) { bb[$2] = $4; at[$2] = $1 }
        if ($3 > tp[$2]) tp[$2] = $3 }
      END { for (n in bb) printf "| %s | %d | %.1f MiB | %.1f |\n", n, tp[n], bb[n] / 1048576, at[n] }' \
      "$out/metrics.csv" | sort
  fi
}

# write_results FILE: replace (or append) this scenario's generated block in FILE.
write_results() {
  results_block > "$out/results.md"
  write_block "$1" "driver:$scenario" "$out/results.md"
}
[ -z "$results" ] || write_results "$results"
exit "$rc"
