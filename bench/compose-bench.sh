#!/usr/bin/env bash
# compose-bench.sh - the benchmark's entrypoint in docker-compose.yml (installed in the image as
# rt-compose-bench), and the seed article's cost arithmetic that bench/driver.sh prints too.
#
#   compose-bench.sh sink      run rt-bench-sink until the load generator is done and every
#                              sampler has decided and exported what it held; then print the
#                              sink's table, the load generator's figures and the cost table
#   compose-bench.sh loadgen   wait for the router, send the agent load, mark the run done, and
#                              exit once the sink has reported
#   compose-bench.sh cost SINK_JSON [PRICE] [TURNS_PER_DAY]
#                              the cost table for a sink report (default $1.27 per million
#                              spans, 50,000 turns a day)
#
# The loadgen and sink services share a volume at $BENCH_DIR (manifest, reports, the done mark).
# Settings come from the environment (docker-compose.yml sets them):
#   BENCH_DIR (/bench)  TURNS (5000)  PROFILE (seed)  PROTOCOL (http)  CONNECTIONS (4)
#   RATE (0 = flat out, turns/s)  ROUTER (router:4318; router:4317 for grpc)
#   ROUTER_ADMIN (router:8888)  SAMPLERS_ADMIN ("sampler-1:8888 sampler-2:8888 sampler-3:8888")
#   SINK_LISTEN (0.0.0.0:4318)  FAIL_IF (sink assertions)  PRICE (1.27)  TURNS_PER_DAY (50000)
#   DRAIN_TIMEOUT (120 s: the longest the sink waits for the samplers after the load is sent)
# Exit status of `sink`: the sink's (1 when a FAIL_IF assertion holds).
set -euo pipefail

BENCH_DIR=${BENCH_DIR:-/bench}
PRICE=${PRICE:-1.27}
TURNS_PER_DAY=${TURNS_PER_DAY:-50000}

die() { echo "compose-bench: $*" >&2; exit 2; }

# cost SINK_JSON PRICE TURNS_PER_DAY: the seed article's arithmetic on what a run kept.
cost() {
  jq -r --argjson price "$2" --argjson tpd "$3" '
    .manifest.spans as $sent
    | .retention.spans as $keep
    | .manifest.traces as $turns
    | ($sent / $turns) as $spt
    | ($tpd * $spt) as $day
    | "cost at \($tpd) turns/day, \($spt * 100 | floor / 100) spans/turn, $\($price) per M spans:",
      "  100 %  : \($day | floor) spans/day, \($day * 30 | floor) spans/month, $\($day * 30 / 1e6 * $price * 100 | floor / 100)/month",
      "  kept   : \($day * $keep | floor) spans/day, \($day * 30 * $keep | floor) spans/month, $\($day * 30 * $keep / 1e6 * $price * 100 | floor / 100)/month (\($keep * 1000 | floor / 10) % of spans)"
  ' "$1"
}

# metric TEXT NAME: the sum of every sample of metric NAME in Prometheus text TEXT.
metric() {
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' <<< "$1"
}

# drained HOST:PORT...: every sampler holds no pending trace and no queued export batch.
drained() {
  local a m
  for a in "$@"; do
    m=$(curl -sf --max-time 2 "http://$a/metrics") || return 1
    [ "$(metric "$m" ringtail_sampler_traces_pending)" = 0 ] || return 1
    [ "$(metric "$m" ringtail_sampler_export_queue_batches)" = 0 ] || return 1
  done
}

run_sink() {
  local listen=${SINK_LISTEN:-0.0.0.0:4318} samplers=${SAMPLERS_ADMIN:-sampler-1:8888 sampler-2:8888 sampler-3:8888}
  local timeout=${DRAIN_TIMEOUT:-120}
  mkdir -p "$BENCH_DIR"
  # A previous run's files would end this run early or be read as its ground truth.
  rm -f "$BENCH_DIR"/loadgen.done "$BENCH_DIR"/manifest.jsonl "$BENCH_DIR"/loadgen.json \
    "$BENCH_DIR"/sink.json "$BENCH_DIR"/report.done /tmp/rt-sink.up
  rt-bench-sink --http "$listen" --manifest "$BENCH_DIR/manifest.jsonl" \
    --report "$BENCH_DIR/sink.json" ${FAIL_IF:+--fail-if "$FAIL_IF"} > /tmp/rt-sink.out \
    2> >(tee /tmp/rt-sink.log >&2) &
  local pid=$!
  trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
  for _ in $(seq 1 100); do grep -q 'http_port=' /tmp/rt-sink.log 2>/dev/null && break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null || die "rt-bench-sink did not start"
  touch /tmp/rt-sink.up # the service's health check: the load generator may start
  echo "compose-bench: sink on $listen, waiting for the load generator"
  while [ ! -f "$BENCH_DIR/loadgen.done" ]; do
    kill -0 "$pid" 2>/dev/null || die "rt-bench-sink exited early"
    sleep 0.5
  done
  echo "compose-bench: load sent; waiting for the samplers ($samplers) to decide and export"
  local waited=0
  # shellcheck disable=SC2086 # the list is split on purpose
  until drained $samplers; do
    sleep 0.5
    waited=$((waited + 1))
    if [ "$waited" -ge $((timeout * 2)) ]; then
      echo "compose-bench: samplers not drained after ${timeout} s; reporting what arrived" >&2
      break
    fi
  done
  sleep 1 # an export batch in flight is no longer queued but not yet at the sink
  kill -TERM "$pid"
  local rc=0
  wait "$pid" || rc=$?
  echo
  echo "==== ringtail benchmark (docker compose) ===="
  jq -r '"loadgen: \(.turns) turns (\(.profile), \(.protocol), \(.mode)), \(.spans_acked) spans " +
         "acked, \(.spans_failed) failed, \(.elapsed_s) s, \(.spans_per_s | floor) spans/s"' \
    "$BENCH_DIR/loadgen.json" 2>/dev/null || echo "loadgen: no report"
  cat /tmp/rt-sink.out
  cost "$BENCH_DIR/sink.json" "$PRICE" "$TURNS_PER_DAY" 2>/dev/null || echo "cost: no manifest"
  touch "$BENCH_DIR/report.done"
  return "$rc"
}

run_loadgen() {
  local proto=${PROTOCOL:-http} admin=${ROUTER_ADMIN:-router:8888}
  local target=${ROUTER:-}
  if [ -z "$target" ]; then
    target=router:4318
    [ "$proto" = grpc ] && target=router:4317
  fi
  mkdir -p "$BENCH_DIR"
  rm -f "$BENCH_DIR/loadgen.done" "$BENCH_DIR/report.done"
  for _ in $(seq 1 120); do
    curl -sf --max-time 2 "http://$admin/readyz" > /dev/null && break
    sleep 0.5
  done
  curl -sf --max-time 2 "http://$admin/readyz" > /dev/null || die "router $admin is not ready"
  local args=(--endpoint "$target" --protocol "$proto" --profile "${PROFILE:-seed}"
    --turns "${TURNS:-5000}" --connections "${CONNECTIONS:-4}" --batch-spans 512 --seed 42
    --manifest "$BENCH_DIR/manifest.jsonl" --report "$BENCH_DIR/loadgen.json")
  [ "${RATE:-0}" = 0 ] || args+=(--rate "$RATE")
  echo "compose-bench: ${TURNS:-5000} turns (${PROFILE:-seed}) over $proto into $target"
  local rc=0
  rt-bench-loadgen "${args[@]}" || rc=$?
  touch "$BENCH_DIR/loadgen.done"
  # Stay until the sink has reported, so `docker compose up --exit-code-from sink` (which stops
  # everything when the first container exits) ends with the sink, not with us.
  local waited=0
  while [ ! -f "$BENCH_DIR/report.done" ] && [ "$waited" -lt $((${DRAIN_TIMEOUT:-120} * 2 + 60)) ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
  return "$rc"
}

case "${1:-}" in
sink) run_sink ;;
loadgen) run_loadgen ;;
cost)
  [ $# -ge 2 ] || die "usage: compose-bench.sh cost SINK_JSON [PRICE] [TURNS_PER_DAY]"
  cost "$2" "${3:-$PRICE}" "${4:-$TURNS_PER_DAY}"
  ;;
*) die "usage: compose-bench.sh sink | loadgen | cost SINK_JSON [PRICE] [TURNS_PER_DAY]" ;;
esac
