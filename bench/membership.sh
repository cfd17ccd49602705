#!/usr/bin/env bash
# membership.sh - the tier while its membership changes: processes on 127.0.0.x, the agent load
# generator in real time in front (so turns are in flight across the change), the verifying sink
# behind. bench/driver.sh runs these scenarios too.
#
#   bench/membership.sh [options] SCENARIO
#
# Scenarios (samplers sampler-1..4 on 127.0.0.2-5, one router on 127.0.0.1):
#   steady      three samplers, no change: the figures to compare the others with
#   scale-out   three samplers; sampler-4 runs from the start without being listed; at --change-at
#               the ring file (read by everyone) lists it
#   scale-in    four samplers; at --change-at the ring file drops sampler-4, which gets SIGTERM
#               a second later
#   rolling     three samplers; from --change-at each in turn gets SIGTERM, is started again once
#               it has exited, and the next follows --restart-gap seconds after it is ready
#   kill        three samplers; at --change-at sampler-2 gets SIGKILL right after its /metrics
#               are read, and is started again 3 s later
#   stale       the router reads a ring file of three samplers for the whole run, the four
#               samplers one that also lists sampler-4: spans of sampler-4's keys take one hop
#   slow-owner  scale-out to a sampler-4 that is stopped (SIGSTOP) as the ring file lists it, and
#               continued 3 s later: hand-offs to it and forwards fail, and stay where they were
#   dead-owner  scale-out to a sampler-4 that is not running: the ring file lists it, and it is
#               started only 3 s later
#
# Options (defaults in brackets):
#   --build DIR  [build]   --out DIR [build/bench/SCENARIO]   --turns N [2000]
#   --rate R     turns started per second [100]
#   --time-scale F  real time: a turn's spans leave over its duration times F [0.11: the ~47 s
#                slow turns over ~5 s, most turns well under a second]
#   --decision-wait D [4s]   --change-at S  seconds into the load [8]
#   --restart-gap S  rolling: seconds between a sampler being ready again and the next SIGTERM [4]
#   --health-ms MS  health check interval of the router and the samplers' peers [500]
#   --policies FILE  [config/policies-seed.yaml: keeps every agent turn, so every span counts]
#   --protocol P  http | grpc between every hop [http]
#   --workers N  worker threads of each sampler [1]
#   --fail-if LIST  passed to the sink, plus this script's own checks (below)
#   --results FILE  write the figures into FILE between <!-- membership:SCENARIO:begin/end -->
#
# Writes under --out: sink.json, loadgen.json, latency.csv (every request's acknowledgement
# latency), timeline.csv (every 0.5 s: t_s,node,pid,spans_received,handoff_traces_sent,
# handoff_bytes_sent,spans_forwarded_sent,cpu_s), events.csv (t_s,event: what was done when),
# metrics-<node>.<n>.txt (each sampler's /metrics at the end of its run n), figures.json (the
# summary below), each process's log. bench/charts.sh draws the rolling restart from these.
# Prints the sink's table and the figures: incomplete and fragmented kept traces, recall,
# missing spans, duplicates, traces and bytes handed off, spans forwarded, hand-offs failed,
# client p99 before the change and during it, sampler CPU per second before and during it.
# kill also checks that every trace that did not arrive whole is one sampler-2 held (owned, with
# every node up) and that the spans missing are at most what its /metrics said it held.
# Exit status: non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
cmdline="bench/membership.sh$(printf ' %q' "$@")"

build=build
out=""
turns=2000
rate=100
time_scale=0.11
decision_wait=4s
change_at=8
restart_gap=4
health_ms=500
policies=config/policies-seed.yaml
protocol=http
fail_if=""
results=""
while [ $# -gt 1 ]; do
  case "$1" in
  --build) build=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --turns) turns=$2; shift 2 ;;
  --rate) rate=$2; shift 2 ;;
  --time-scale) time_scale=$2; shift 2 ;;
  --decision-wait) decision_wait=$2; shift 2 ;;
  --change-at) change_at=$2; shift 2 ;;
  --restart-gap) restart_gap=$2; shift 2 ;;
  --health-ms) health_ms=$2; shift 2 ;;
  --policies) policies=$2; shift 2 ;;
  --protocol) protocol=$2; shift 2 ;;
  --workers) sampler_workers=$2; shift 2 ;;
  --fail-if) fail_if=$2; shift 2 ;;
  --results) results=$2; shift 2 ;;
  *) echo "membership.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scenario=${1:?usage: bench/membership.sh [options] steady|scale-out|scale-in|rolling|kill|stale|slow-owner|dead-owner}
case "$scenario" in steady | scale-out | scale-in | rolling | kill | stale | slow-owner | dead-owner) ;; *)
  echo "membership.sh: unknown scenario $scenario" >&2; exit 2 ;;
esac
[ -f "$policies" ] || { echo "membership.sh: --policies $policies: no such file" >&2; exit 2; }
out=${out:-$build/bench/$scenario}
rm -rf "$out"
mkdir -p "$out"
for exe in ringtail-router ringtail-sampler rt-bench-loadgen rt-bench-sink; do
  [ -x "$build/$exe" ] || { echo "membership.sh: $build/$exe missing (build first)" >&2; exit 2; }
done
# shellcheck source=bench/tier-lib.sh
. bench/tier-lib.sh

declare -A spid runs # sampler pid and number of runs, by index
bad_exit=0
router_pid=""
sink_pid=""
lg_pid=""
poll_pid=""
cleanup() {
  for p in "$poll_pid" "$lg_pid" "${spid[@]}" "$router_pid"; do
    [ -z "$p" ] || kill -CONT "$p" 2>/dev/null || true
    [ -z "$p" ] || kill -TERM "$p" 2>/dev/null || true
  done
  [ -z "$sink_pid" ] || kill -TERM "$sink_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

now_s() { awk -v t="$(date +%s%N)" -v z="$t0" 'BEGIN { printf "%.3f", (t - z) / 1e9 }'; }
log() { # the line, and an event for the charts (events.csv: t_s,event)
  local t
  t=$(now_s)
  echo "membership: [${t}s] $*"
  echo "$t,$*" >> "$out/events.csv"
}

ip_of() { echo "127.0.0.$(($1 + 1))"; }
admin_of() { echo "http://$(ip_of "$1"):$((base + 2))"; }
otlp_port() { if [ "$protocol" = grpc ]; then echo $((base + 1)); else echo "$base"; fi; }

# write_ring FILE N: the ring of sampler-1..N, replaced atomically (as an editor's save or a
# ConfigMap update would), so no reader sees half a file.
write_ring() {
  ring_file "$(otlp_port)" "$2" | sed "s/^protocol: http/protocol: $protocol/" > "$1.tmp"
  mv "$1.tmp" "$1"
}

start_sampler() { # start_sampler I [RING]
  local i=$1
  runs[$i]=$((${runs[$i]:-0} + 1))
  sampler_config "$i" "${2:-$out/ring.yaml}" > "$out/sampler-$i.yaml"
  check_sampler_config "$out/sampler-$i.yaml"
  echo "--- run ${runs[$i]} ---" >> "$out/sampler-$i.log"
  "$build/ringtail-sampler" --config "$out/sampler-$i.yaml" 2>> "$out/sampler-$i.log" &
  spid[$i]=$!
  echo "${spid[$i]}" > "$out/sampler-$i.pid" # for the poller, a subshell that cannot see spid
}

wait_ready() { # wait_ready I: its /readyz answers 200
  for _ in $(seq 1 200); do
    curl -sf --max-time 1 "$(admin_of "$1")/readyz" > /dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "membership.sh: sampler-$1 did not become ready" >&2
  tail -20 "$out/sampler-$1.log" >&2
  exit 2
}

# scrape I: save sampler I's /metrics as metrics-sampler-I.<run>.txt.
scrape() {
  curl -sf --max-time 2 "$(admin_of "$1")/metrics" > "$out/metrics-sampler-$1.${runs[$1]}.txt" ||
    rm -f "$out/metrics-sampler-$1.${runs[$1]}.txt"
}

stop_sampler() { # stop_sampler I [final]: SIGTERM, wait for the exit (its drain)
  [ -n "${2:-}" ] || scrape "$1"
  kill -TERM "${spid[$1]}"
  # Its admin port serves until the end of the drain: the last reading counts what it handed
  # over while draining - except when the tier is stopped at the end of the run (final),
  # which is not part of the scenario.
  local f="$out/metrics-sampler-$1.${runs[$1]}.txt"
  while [ -z "${2:-}" ] && kill -0 "${spid[$1]}" 2>/dev/null; do
    curl -sf --max-time 0.5 "$(admin_of "$1")/metrics" > "$f.new" 2>/dev/null && mv "$f.new" "$f"
    sleep 0.1
  done
  rm -f "$f.new"
  local rc=0
  wait "${spid[$1]}" || rc=$?
  # A drain that does not end cleanly (or a sanitizer's report at exit) is a failure.
  [ "$rc" = 0 ] || { echo "FAIL: sampler-$1 exited with status $rc after SIGTERM" >&2; bad_exit=1; }
  unset "spid[$1]"
  rm -f "$out/sampler-$1.pid"
}

start_router() { # start_router RING
  # The router gives up on a part no later than its health checks mark the node down (two
  # checks), as its defaults do (timeout 5 s, checks 2 s x 3): a part waiting on a stalled
  # sampler is then re-routed, and that sampler refuses it when it wakes (mark_deadline).
  launch_router "$1" "$(health_yaml)" "{protocol: $protocol, timeout: $((health_ms * 2))ms}"
}

# metric FILE NAME [LABELS]: the sum of series NAME whose labels contain LABELS.
metric() {
  awk -v n="$2" -v l="${3:-}" '{ name = $1; sub(/\{.*/, "", name) }
    name == n && index($1, l) { s += $NF } END { printf "%d", s }' "$1" 2>/dev/null || echo 0
}
# metric_all NAME [LABELS]: summed over every saved /metrics of every sampler run.
metric_all() {
  local f total=0
  for f in "$out"/metrics-sampler-*.txt; do
    [ -f "$f" ] || continue
    total=$((total + $(metric "$f" "$1" "${2:-}")))
  done
  echo "$total"
}

tck=$(getconf CLK_TCK)
cpu_of() { awk -v t="$tck" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# poll: every 0.5 s, one line per live sampler for the timeline chart.
poll() {
  echo "t_s,node,pid,spans_received,handoff_traces_sent,handoff_bytes_sent,spans_forwarded_sent,cpu_s" \
    > "$out/timeline.csv"
  while :; do
    for i in 1 2 3 4; do
      local p
      p=$(cat "$out/sampler-$i.pid" 2>/dev/null) || continue
      local m
      m=$(curl -sf --max-time 0.4 "$(admin_of "$i")/metrics") || continue
      awk -v t="$(now_s)" -v node="sampler-$i" -v pid="$p" -v cpu="$(cpu_of "$p")" '
        { name = $1; sub(/\{.*/, "", name) }
        name == "ringtail_sampler_spans_received_total" { sr += $NF }
        name == "ringtail_sampler_handoff_traces_total" && index($1, "sent") { ht += $NF }
        name == "ringtail_sampler_handoff_bytes_total" && index($1, "sent") { hb += $NF }
        name == "ringtail_sampler_spans_forwarded_total" && index($1, "sent") { fw += $NF }
        END { printf "%s,%s,%s,%d,%d,%d,%d,%s\n", t, node, pid, sr, ht, hb, fw, cpu }' <<< "$m" \
        >> "$out/timeline.csv"
    done
    sleep 0.5
  done
}

# ---- the run ----------------------------------------------------------------------------------
echo "t_s,event" > "$out/events.csv"
t0=$(date +%s%N) # (reset when the load starts)
start_sink --missing "$out/missing.txt"
initial=3
[ "$scenario" = scale-in ] && initial=4
[ "$scenario" = stale ] && initial=4
write_ring "$out/ring.yaml" "$initial"
router_ring="$out/ring.yaml"
if [ "$scenario" = stale ]; then
  router_ring="$out/ring-router.yaml"
  write_ring "$router_ring" 3
fi
members=$(seq 1 "$initial")
[ "$scenario" = scale-out ] || [ "$scenario" = slow-owner ] && members="1 2 3 4"
for i in $members; do start_sampler "$i"; done
for i in $members; do wait_ready "$i"; done
start_router "$router_ring"
target="127.0.0.1:$(otlp_port)"

t0=$(date +%s%N)
poll &
poll_pid=$!
"$build/rt-bench-loadgen" --endpoint "$target" --protocol "$protocol" --profile seed \
  --turns "$turns" --rate "$rate" --real-time --time-scale "$time_scale" --connections 8 \
  --seed 42 --manifest "$out/manifest.jsonl" --report "$out/loadgen.json" \
  --latency "$out/latency.csv" > "$out/loadgen.out" 2> "$out/loadgen.log" &
lg_pid=$!
log "$scenario: $turns turns at $rate turns/s (time scale $time_scale), decision_wait $decision_wait"
sleep "$change_at"
change_start=$(now_s)
held=0
status=0
case "$scenario" in
scale-out)
  # Started before the ring lists it: it runs, and says it is waiting.
  state=$(curl -sf "$(admin_of 4)/ring" | jq -r .self.state)
  [ "$state" = waiting ] || { echo "FAIL: scale-out: unlisted sampler-4 is \"$state\", not waiting" >&2; status=1; }
  [ "$(metric <(curl -sf "$(admin_of 4)/metrics") ringtail_sampler_ring_state 'state="waiting"')" = 1 ] ||
    { echo "FAIL: scale-out: ringtail_sampler_ring_state{state=\"waiting\"} is not 1" >&2; status=1; }
  log "ring file lists sampler-4"
  write_ring "$out/ring.yaml" 4
  for _ in $(seq 1 30); do # (curl and grep only: the change is what is being measured)
    curl -sf "$(admin_of 4)/ring" | grep -q '"state":"member"' && { state=member; break; }
    sleep 0.1
  done
  [ "$state" = member ] || { echo "FAIL: scale-out: sampler-4 did not join (\"$state\")" >&2; status=1; }
  log "sampler-4 joined"
  ;;
scale-in)
  log "ring file drops sampler-4"
  write_ring "$out/ring.yaml" 3
  sleep 1
  log "SIGTERM sampler-4"
  stop_sampler 4
  ;;
rolling)
  for i in 1 2 3; do
    log "SIGTERM sampler-$i"
    stop_sampler "$i"
    log "sampler-$i exited; starting it again"
    start_sampler "$i"
    wait_ready "$i"
    [ "$i" = 3 ] || sleep "$restart_gap"
  done
  ;;
kill)
  scrape 2
  m="$out/metrics-sampler-2.${runs[2]}.txt"
  kill -KILL "${spid[2]}"
  wait "${spid[2]}" 2>/dev/null || true
  unset "spid[2]"
  rm -f "$out/sampler-2.pid"
  held=$(($(metric "$m" ringtail_sampler_spans_buffered) + $(metric "$m" ringtail_sampler_export_queue_spans)))
  rate2=$(awk -v r="$rate" 'BEGIN { printf "%d", r * 90 / 3 }') # its spans per second, roughly
  log "SIGKILL sampler-2 (it held $held spans)"
  sleep 3
  log "starting sampler-2 again"
  start_sampler 2
  wait_ready 2
  ;;
slow-owner)
  kill -STOP "${spid[4]}"
  log "sampler-4 stopped (SIGSTOP); ring file lists it"
  write_ring "$out/ring.yaml" 4
  sleep 3
  kill -CONT "${spid[4]}"
  log "sampler-4 continued"
  ;;
dead-owner)
  log "ring file lists sampler-4, which is not running"
  write_ring "$out/ring.yaml" 4
  sleep 3
  log "starting sampler-4"
  start_sampler 4
  wait_ready 4
  ;;
steady | stale) ;;
esac
change_end=$(now_s)
set +e
wait "$lg_pid"
lg_rc=$?
set -e
lg_pid=""
log "load done (loadgen exit $lg_rc); waiting for the decisions"
# Spans still arriving late are acknowledged by now; decision_wait later every trace is decided.
dw_s=$(awk -v d="$decision_wait" 'BEGIN { v = d + 0; if (d ~ /ms$/) v /= 1000; else if (d ~ /m$/) v *= 60; print v }')
sleep "$(awk -v d="$dw_s" 'BEGIN { print d + 2 }')"
kill -TERM "$poll_pid" 2>/dev/null || true
wait "$poll_pid" 2>/dev/null || true
poll_pid=""
# Every sampler's counters first, then the stops: the hand-offs of the tier's own shutdown are
# not the scenario's.
for i in "${!spid[@]}"; do scrape "$i"; done
for i in "${!spid[@]}"; do
  stop_sampler "$i" final
done
kill -TERM "$router_pid"
wait "$router_pid" || { echo "FAIL: the router exited with status $? after SIGTERM" >&2; bad_exit=1; }
router_pid=""
kill -TERM "$sink_pid"
set +e
wait "$sink_pid"
sink_rc=$?
set -e
sink_pid=""
cat "$out/sink.out"

# ---- figures ------------------------------------------------------------------------------------
# p99 of acknowledgement latency over requests sent in [A, B) seconds.
p99() {
  awk -F, -v a="$1" -v b="$2" 'NR > 1 && $1 >= a && $1 < b { print $2 }' "$out/latency.csv" |
    sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "null"; else print v[int((NR - 1) * 0.99) + 1] }'
}
steady_from=2
during_to=$(awk -v e="$change_end" 'BEGIN { print e + 2 }')
p99_steady=$(p99 "$steady_from" "$change_start")
p99_during=$(p99 "$change_start" "$during_to")
# Sampler CPU per second of wall clock: before the change, and from its start to 2 s after its
# end (from the timeline, per process: one restarted in the window counts from its first sample,
# and what a process spent after its last sample is not seen).
cpu_rate() {
  awk -F, -v a="$1" -v b="$2" 'NR > 1 && $1 >= a && $1 <= b {
      k = $2 "/" $3; if (!(k in first)) first[k] = $8; last[k] = $8 }
    END { for (k in first) s += last[k] - first[k]; w = b - a; printf "%.3f", (w > 0 ? s / w : 0) }' \
    "$out/timeline.csv"
}
cpu_steady=$(cpu_rate "$steady_from" "$change_start")
cpu_during=$(cpu_rate "$change_start" "$during_to")
jq -n --arg scenario "$scenario" --arg command "$cmdline" \
  --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --argjson turns "$turns" --arg rate "$rate" \
  --arg time_scale "$time_scale" --arg decision_wait "$decision_wait" --arg protocol "$protocol" \
  --arg policies "$policies" \
  --argjson change_start "$change_start" --argjson change_end "$change_end" \
  --argjson p99_steady "$p99_steady" --argjson p99_during "$p99_during" \
  --argjson cpu_steady "$cpu_steady" --argjson cpu_during "$cpu_during" \
  --argjson held_at_kill "$held" \
  --argjson handed_traces "$(metric_all ringtail_sampler_handoff_traces_total 'direction="received"')" \
  --argjson handed_spans "$(metric_all ringtail_sampler_handoff_spans_total 'direction="received"')" \
  --argjson handed_bytes "$(metric_all ringtail_sampler_handoff_bytes_total 'direction="received"')" \
  --argjson handed_decisions "$(metric_all ringtail_sampler_handoff_decisions_total 'direction="received"')" \
  --argjson handoff_failed "$(metric_all ringtail_sampler_handoff_failed_traces_total)" \
  --argjson forwarded "$(metric_all ringtail_sampler_spans_forwarded_total 'direction="sent"')" \
  --argjson forwarded_in "$(metric_all ringtail_sampler_spans_forwarded_total 'direction="received"')" \
  --argjson forward_failed "$(metric_all ringtail_sampler_forward_failed_spans_total)" \
  --argjson discarded "$(metric_all ringtail_sampler_spans_discarded_total)" \
  --argjson export_dropped "$(metric_all ringtail_sampler_spans_export_dropped_total)" \
  --slurpfile sink "$out/sink.json" --slurpfile lg "$out/loadgen.json" '
  {scenario: $scenario, command: $command, date: $date, turns: $turns, rate: $rate,
   time_scale: $time_scale, decision_wait: $decision_wait, protocol: $protocol,
   policies: $policies, change: {start_s: $change_start, end_s: $change_end},
   spans_acked: $lg[0].spans_acked, spans_failed: $lg[0].spans_failed,
   incomplete: $sink[0].incomplete, fragmented: $sink[0].fragmented,
   missing_spans: $sink[0].missing_spans, duplicates: $sink[0].duplicates,
   traces: $sink[0].manifest.traces, traces_kept: $sink[0].traces_kept,
   recall: ($sink[0].categories | with_entries(.value = .value.recall)),
   handed_off: {traces: $handed_traces, spans: $handed_spans, bytes: $handed_bytes,
     decisions: $handed_decisions, failed_traces: $handoff_failed},
   forwarded: {spans_sent: $forwarded, spans_received: $forwarded_in,
     failed_spans: $forward_failed},
   spans_discarded: $discarded, spans_export_dropped: $export_dropped,
   held_at_kill: $held_at_kill,
   client_p99_ms: {steady: $p99_steady, during_change: $p99_during},
   sampler_cpu_per_s: {steady: $cpu_steady, during_change: $cpu_during}}' > "$out/figures.json"
jq -r '"figures: incomplete \(.incomplete), fragmented \(.fragmented), missing spans " +
  "\(.missing_spans), duplicates \(.duplicates), kept \(.traces_kept) of \(.traces) traces; " +
  "handed off \(.handed_off.traces) traces (\(.handed_off.spans) spans, \(.handed_off.bytes) " +
  "bytes, \(.handed_off.decisions) decisions, \(.handed_off.failed_traces) failed); forwarded " +
  "\(.forwarded.spans_sent) spans (\(.forwarded.failed_spans) kept after a failed forward); " +
  "client p99 \(.client_p99_ms.steady) ms steady, \(.client_p99_ms.during_change) ms during the " +
  "change; sampler CPU \(.sampler_cpu_per_s.steady) -> \(.sampler_cpu_per_s.during_change) s/s"' \
  "$out/figures.json"

[ "$bad_exit" = 0 ] || status=1
if grep -l -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$out"/*.log > "$out/sanitizer.txt" 2>/dev/null; then
  echo "FAIL: $scenario: sanitizer reports in $(tr '\n' ' ' < "$out/sanitizer.txt")" >&2
  status=1
fi
[ "$sink_rc" = 0 ] || { echo "FAIL: $scenario: the sink's checks (--fail-if $fail_if)" >&2; status=1; }
[ "$lg_rc" = 0 ] || { echo "FAIL: $scenario: the load generator saw spans refused" >&2; status=1; }
if [ "$scenario" = kill ]; then
  # Every trace that did not arrive whole is owned by sampler-2 (with every node up), and the
  # spans missing are at most what sampler-2 held when it was killed, plus what it can have
  # acknowledged between that reading and the kill (a tenth of a second of its share).
  ring_all="$out/ring-all.yaml"
  write_ring "$ring_all" 3
  others=$(awk '{ print $1 }' "$out/missing.txt" | "$build/rt-route-check" owners --ring "$ring_all" |
    awk '$2 != "sampler-2"' | wc -l)
  lost=$(awk '{ s += $2 - $3 } END { printf "%d", s }' "$out/missing.txt")
  bound=$((held + rate2 / 10))
  # Turn n of the manifest started n / rate seconds into the load: one that started after the
  # kill never had a span on the killed sampler, so it must have arrived whole.
  after=$(awk -v r="$rate" -v k="$change_start" 'NR == FNR { miss[$1] = 1; next }
    { id = $0; sub(/.*"trace_id":"/, "", id); id = substr(id, 1, 32) }
    (id in miss) && (FNR - 1) / r > k + 0.05 { n++ } END { printf "%d", n }'     "$out/missing.txt" "$out/manifest.jsonl")
  echo "kill: $lost spans of $(wc -l < "$out/missing.txt") traces missing; sampler-2 held $held (bound $bound); traces of other owners among them: $others; traces started after the kill among them: $after"
  [ "$others" = 0 ] || { echo "FAIL: kill: traces owned by other samplers were hurt" >&2; status=1; }
  [ "$after" = 0 ] || { echo "FAIL: kill: traces started while sampler-2 was away were hurt" >&2; status=1; }
  [ "$lost" -le "$bound" ] || { echo "FAIL: kill: $lost spans lost, more than sampler-2 held ($bound)" >&2; status=1; }
fi

# results_block: this run's figures as Markdown, for --results.
if [ -n "$results" ]; then
  jq -r '"Generated by `\(.command)` on \(.date) (\(.turns) turns at \(.rate) turns/s, time " +
    "scale \(.time_scale), decision_wait \(.decision_wait), \(.protocol), policies " +
    "`\(.policies)`).\n\n" +
    "| incomplete | fragmented | missing spans | duplicates | kept | handed off (traces / " +
    "spans / KiB / decisions / failed) | forwarded spans | client p99 steady -> change | " +
    "sampler CPU s/s steady -> change |\n|---|---|---|---|---|---|---|---|---|\n" +
    "| \(.incomplete) | \(.fragmented) | \(.missing_spans) | \(.duplicates) | " +
    "\(.traces_kept) / \(.traces) | \(.handed_off.traces) / \(.handed_off.spans) / " +
    "\(.handed_off.bytes / 1024 | floor) / \(.handed_off.decisions) / " +
    "\(.handed_off.failed_traces) | \(.forwarded.spans_sent) | " +
    "\(.client_p99_ms.steady) -> \(.client_p99_ms.during_change) ms | " +
    "\(.sampler_cpu_per_s.steady) -> \(.sampler_cpu_per_s.during_change) |\n\n" +
    "Recall: " + ([.recall | to_entries[] | "\(.key) \(.value * 1000 | round / 10) %"] | join(", ")) +
    "."' "$out/figures.json" > "$out/results.md"
  write_block "$results" "membership:$scenario" "$out/results.md"
fi
exit "$status"
