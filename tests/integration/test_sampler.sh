#!/usr/bin/env bash
# test_sampler.sh - the real ringtail-sampler between the agent load generator and a verifying
# sink, over OTLP on loopback: error, slow and debug-tenant traces are all kept whole, the
# probabilistic baseline keeps its percentage of the rest, nothing is duplicated and every
# exported span is signed with the sampler id; sending the same traffic again (every span late
# and a duplicate) changes nothing at the sink; a bad policy edit is rejected with its line and
# the running policies stay, a good one is applied without a restart; SIGTERM decides what is
# pending, flushes the exporter and exits 0; /metrics passes promtool and accounts every span.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
LG="$RT_BUILD_DIR/rt-bench-loadgen"
SINK="$RT_BUILD_DIR/rt-bench-sink"
SAMPLER="$RT_BUILD_DIR/ringtail-sampler"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
metric() { # metric NAME [LABELFILTER] -> sum of the samples of NAME whose labels contain FILTER
  curl -sf "http://127.0.0.1:$admin/metrics" |
    awk -v n="$1" -v f="${2:-}" '($1 == n || index($1, n "{") == 1) && index($1, f) {s += $2} END {print s + 0}'
}

"$SINK" --http 127.0.0.1:0 --report "$tmp/sink.json" --manifest "$tmp/manifest.jsonl" \
  > "$tmp/sink.out" 2> "$tmp/sink.err" &
sink_pid=$!
pids+=("$sink_pid")
for _ in $(seq 1 100); do
  sink_http=$(grep -o 'http_port=[0-9]*' "$tmp/sink.err" | cut -d= -f2 || true)
  [ -n "$sink_http" ] && break
  sleep 0.1
done
[ -n "$sink_http" ] || fail "sink did not start"

policies() { # policies PCT -> the policy list with a PCT % baseline
  cat <<EOP
  policies:
    - name: keep-errors
      type: status_code
      status_code: {status_codes: [ERROR]}
    - name: keep-slow
      type: latency
      latency: {threshold_ms: 10000}
    - name: keep-debug-tenants
      type: string_attribute
      string_attribute: {key: tenant.id, values: [acme-corp, big-bank-inc]}
    - name: baseline
      type: probabilistic
      probabilistic: {sampling_percentage: $1}
EOP
}
write_config() { # write_config PCT
  {
    cat <<EOC
workers: 2
node_id: sampler-a
admin: {listen: "127.0.0.1:0"}
listeners:
  http: {listen: "127.0.0.1:0"}
  grpc: {listen: "127.0.0.1:0"}
processors:
  tail_sampling:
    decision_wait: 1s
    num_traces: 100000
EOC
    policies "$1" | sed 's/^/  /'
    cat <<EOC
exporters:
  - name: sink
    type: otlp_http
    endpoint: 127.0.0.1:$sink_http
    batch: {timeout: 50ms}
EOC
  } > "$tmp/sampler.yaml.new"
  mv "$tmp/sampler.yaml.new" "$tmp/sampler.yaml"
}
write_config 10
"$SAMPLER" --config "$tmp/sampler.yaml" --check-config > /dev/null || fail "config rejected"
"$SAMPLER" --config "$tmp/sampler.yaml" 2> "$tmp/sampler.log" &
spid=$!
pids+=("$spid")
for _ in $(seq 1 100); do
  port=$(grep -o 'http_port=[0-9]*' "$tmp/sampler.log" | head -1 | cut -d= -f2 || true)
  admin=$(grep -o 'admin_port=[0-9]*' "$tmp/sampler.log" | head -1 | cut -d= -f2 || true)
  [ -n "$port" ] && [ -n "$admin" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$tmp/sampler.log"; fail "sampler did not start"; }
curl -sf "http://127.0.0.1:$admin/readyz" > /dev/null || fail "sampler not ready"

# A request malformed deep inside (its one span's attribute value has the wrong wire type, which
# only a full check sees) is refused with 400 and a message naming the place; nothing of it is
# counted as received (checked below), and the sampler serves on.
tid=$(printf '\\x%02x' $(seq 1 16)) # trace id 01..10, as printf escapes
printf "\\x0a\\x1f\\x12\\x1d\\x12\\x1b\\x0a\\x10$tid\\x4a\\x07\\x0a\\x01k\\x12\\x02\\x08\\x01" > "$tmp/bad.pb"
[ "$(stat -c %s "$tmp/bad.pb")" = 33 ] || fail "malformed request: built $(stat -c %s "$tmp/bad.pb") bytes"
code=$(curl -s -o "$tmp/bad.out" -w '%{http_code}' -H 'Content-Type: application/x-protobuf' \
  --data-binary @"$tmp/bad.pb" "http://127.0.0.1:$port/v1/traces")
[ "$code" = 400 ] || fail "malformed request answered $code"
grep -aq 'spans\[0\]: AnyValue: field string_value (1): wrong wire type' "$tmp/bad.out" \
  || fail "400 body does not say what is wrong: $(tr -c '[:print:]' . < "$tmp/bad.out")"

# 1,500 agent turns (about 115,000 spans) in many requests, spans of a turn spread over them.
"$LG" --endpoint "127.0.0.1:$port" --profile seed --turns 1500 --compressed-time \
  --batch-spans 200 --connections 4 --seed 7 --manifest "$tmp/manifest.jsonl" \
  --report "$tmp/lg1.json" > /dev/null || fail "loadgen: not every span was acknowledged"
sleep 2.5 # decision_wait 1 s, then the exporter's 50 ms batches

# The same traffic again: every span is now late (its trace decided) and a duplicate.
"$LG" --endpoint "127.0.0.1:$port" --profile seed --turns 1500 --compressed-time \
  --batch-spans 200 --connections 2 --seed 7 --report "$tmp/lg2.json" > /dev/null \
  || fail "loadgen (second run) failed"
sleep 1

# Reload: a bad edit is rejected with its line, a good one is applied.
cp "$tmp/sampler.yaml" "$tmp/good.yaml"
sed 's/sampling_percentage: 10/sampling_percentage: lots/' "$tmp/good.yaml" > "$tmp/sampler.yaml"
kill -HUP "$spid"
for _ in $(seq 1 50); do grep -q 'config reload rejected' "$tmp/sampler.log" && break; sleep 0.1; done
grep -q 'config reload rejected.*sampler.yaml:[0-9]*: processors.tail_sampling.policies\[3\]' \
  "$tmp/sampler.log" || { grep reload "$tmp/sampler.log"; fail "bad policy edit not rejected with its line"; }
write_config 20
for _ in $(seq 1 50); do grep -q 'policies reloaded' "$tmp/sampler.log" && break; sleep 0.1; done
grep -q 'policies reloaded' "$tmp/sampler.log" || fail "good policy edit (file watch) not applied"

curl -sf "http://127.0.0.1:$admin/metrics" > "$tmp/metrics.txt"
promtool check metrics < "$tmp/metrics.txt" || fail "promtool rejects /metrics"
received=$(metric ringtail_sampler_spans_received_total)
sent=$(( $(jq -r .spans_acked "$tmp/lg1.json") + $(jq -r .spans_acked "$tmp/lg2.json") ))
[ "$received" = "$sent" ] || fail "sampler received $received spans, loadgen sent $sent"
late=$(metric ringtail_sampler_late_spans_total)
[ "$late" -gt 0 ] || fail "no late spans counted"

# Stop: decide what is pending, flush, exit 0.
kill -TERM "$spid"
for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$spid" 2>/dev/null && fail "sampler still running 10 s after SIGTERM"
wait "$spid" || fail "sampler exit status $?"
grep -q 'drained' "$tmp/sampler.log" || fail "no drain line"
kill -TERM "$sink_pid"
wait "$sink_pid" || true
cat "$tmp/sink.out"

rep="$tmp/sink.json"
for cat in error slow debug_tenant; do
  [ "$(jq -r ".categories.$cat.recall_whole" "$rep")" = 1 ] || fail "$cat traces not all kept whole"
done
[ "$(jq -r .duplicates "$rep")" = 0 ] || fail "duplicated spans at the sink"
[ "$(jq -r .incomplete "$rep")" = 0 ] || fail "incomplete kept traces"
[ "$(jq -r .fragmented "$rep")" = 0 ] || fail "fragmentation should be 0 with one signed sampler"
[ "$(jq -r .unknown_traces "$rep")" = 0 ] || fail "the sink got traces the loadgen never sent"
# The baseline: normal traces (in no interesting category) are kept at about 10 %.
normal=$(jq -r .categories.normal.traces "$rep")
kept=$(jq -r .categories.normal.kept "$rep")
awk -v k="$kept" -v n="$normal" 'BEGIN {
  p = k / n; sd = sqrt(0.1 * 0.9 / n);
  printf "baseline: %d of %d normal traces kept (%.3f)\n", k, n, p;
  exit !(p > 0.1 - 4 * sd && p < 0.1 + 4 * sd) }' || fail "baseline rate off 10 %"
echo "ok: sampler end to end"
