#!/usr/bin/env bash
# test_router_failover.sh - the real ringtail-router in front of three rt-otlp-dump sinks:
#  1. kill one sink under load: no span the client got 200 for is lost, the dead sink's keys go
#     to their successors on the ring and no other key moves; the node is marked down;
#  2. restart it on the same port: the active check marks it up and its keys return to it;
#  3. no sink reachable: clients get 503 with Retry-After, /readyz says not ready; when the
#     sinks return the router is ready again and routes as before.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
tmp=$(mktemp -d)
pids=()
declare -A sink_pid port gen
cleanup() {
  for p in "${pids[@]}" "${sink_pid[@]}"; do
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/router.log" ] && tail -20 "$tmp/router.log" >&2; exit 1; }
check="$RT_BUILD_DIR/rt-route-check"
wait_for() {
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
log_has() { grep -q -- "$2" "$1" 2>/dev/null; }

# Each start of a sink writes a new file: a sink killed mid-write leaves a partial last line.
start_sink() { # start_sink NAME [PORT]
  local s=$1 addr="127.0.0.1:${2:-0}"
  gen[$s]=$((${gen[$s]:-0} + 1))
  rm -f "$tmp/sink-$s.ports"
  "$RT_BUILD_DIR/rt-otlp-dump" --http "$addr" --out "$tmp/sink-$s.${gen[$s]}.jsonl" \
    --ports "$tmp/sink-$s.ports" 2>>"$tmp/sink-$s.log" &
  sink_pid[$s]=$!
  wait_for 10 test -s "$tmp/sink-$s.ports" || fail "sink $s did not start"
  port[$s]=$(sed -n 's/^http=//p' "$tmp/sink-$s.ports")
}
stop_sink() {
  kill -9 "${sink_pid[$1]}"
  wait "${sink_pid[$1]}" 2>/dev/null || true
}
for s in a b c; do start_sink $s; done
cat > "$tmp/ring.yaml" <<EOF
nodes:
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}"}
  - {id: sink-b, endpoint: "127.0.0.1:${port[b]}"}
  - {id: sink-c, endpoint: "127.0.0.1:${port[c]}"}
EOF
cat > "$tmp/router.yaml" <<EOF
workers: 2
admin:
  listen: 127.0.0.1:0
ring:
  file: $tmp/ring.yaml
listeners:
  http:
    listen: 127.0.0.1:0
  grpc:
    listen: ""
samplers:
  retry_budget: 300ms
  request_deadline: 5s
  retry_after: 3
health:
  check: tcp
  interval: 200ms
  timeout: 150ms
  unhealthy_after: 2
  healthy_after: 3
EOF
"$RT_BUILD_DIR/ringtail-router" --config "$tmp/router.yaml" 2>"$tmp/router.log" &
router=$!
pids+=($router)
wait_for 10 log_has "$tmp/router.log" "router listening" || fail "router did not start"
http=$(grep -o 'http_port=[0-9]*' "$tmp/router.log" | head -1 | cut -d= -f2)
admin=$(grep -o 'admin_port=[0-9]*' "$tmp/router.log" | head -1 | cut -d= -f2)
ready() { curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null; }
not_ready() { ! ready; }
metric() { curl -sf "http://127.0.0.1:$admin/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
node_up_is() { [ "$(metric "ringtail_router_node_up{node=\"$1\"}")" = "$2" ]; }
wait_for 10 ready || fail "router not ready"
sink_args() { # every dump file of every sink, for rt-route-check verify
  local f
  for f in "$tmp"/sink-*.jsonl; do
    [ -e "$f" ] || continue
    local b=${f##*/}
    printf -- '--sink\n%s=%s\n' "${b%%.*}" "$f"
  done
}

# --- 1. kill sink-b under load ---
# --rate makes the load last 5 s however fast the machine is, so the kill lands in the middle
# of it (flat out, a fast machine finished all 150 k spans before the kill).
"$check" send --http "127.0.0.1:$http" --phase 10 --traces 5000 --spans 150000 --per-request 100 \
  --rate 30000 --concurrency 8 --acks "$tmp/acks10" > "$tmp/send10.out" &
sender=$!
pids+=($sender)
wait_for 20 test -s "$tmp/acks10" || fail "load did not start"
sleep 0.3
stop_sink b
wait_for 10 node_up_is sink-b 0 || fail "sink-b not marked down"
b_lines=$(cat "$tmp"/sink-b.*.jsonl | wc -l)
wait "$sender" || fail "sender failed"
cat "$tmp/send10.out"
acked=$(awk '$3 == 200 {n += $2} END {print n + 0}' "$tmp/acks10")
[ "$acked" -gt 100000 ] || fail "only $acked spans acknowledged while one sink was down"
grep -q 'sampler node down' "$tmp/router.log" || fail "no 'sampler node down' log line"
"$check" verify --ring "$tmp/ring.yaml" $(sink_args) --phase 10 --acks "$tmp/acks10" \
  --allow-down sink-b > "$tmp/verify10.out" || { cat "$tmp/verify10.out"; fail "kill: routing check"; }
cat "$tmp/verify10.out"
grep -q 'lost=0 ' "$tmp/verify10.out" || fail "acknowledged spans were lost"
moved=$(sed -n 's/.*moved_to_successor=\([0-9]*\).*/\1/p' "$tmp/verify10.out")
[ "$moved" -gt 0 ] || fail "no span of sink-b's keys went to a successor"
[ "$(cat "$tmp"/sink-b.*.jsonl | wc -l)" = "$b_lines" ] || fail "dead sink-b received data"
v=$(metric 'ringtail_router_forward_retries_total{node="sink-b"}')
[ "${v:-0}" -gt 0 ] || fail "forward_retries_total{node=sink-b} is ${v:-0}"

# --- 2. sink-b returns: after healthy_after good checks its keys come back ---
start_sink b "${port[b]}"
wait_for 10 node_up_is sink-b 1 || fail "sink-b not marked up again"
"$check" send --http "127.0.0.1:$http" --phase 11 --traces 2000 --spans 8000 --acks "$tmp/acks11" \
  >/dev/null || fail "send after restart"
"$check" verify --ring "$tmp/ring.yaml" $(sink_args) --phase 11 --acks "$tmp/acks11" --exact \
  --tolerance 0.04 || fail "sink-b's keys did not return"

# --- 3. no sink reachable: 503 + Retry-After, not ready; recovery ---
for s in a b c; do stop_sink $s; done
body='{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}'
post() {
  curl -s -D "$tmp/headers" -o "$tmp/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$body" "http://127.0.0.1:$http/v1/traces"
}
code=$(post)
[ "$code" = 503 ] || fail "with no sink reachable the answer is $code, want 503"
grep -qi '^Retry-After: 3' "$tmp/headers" || fail "503 without Retry-After: 3"
wait_for 10 not_ready || fail "router still ready with every sink down"
curl -s "http://127.0.0.1:$admin/readyz" | grep -q 'no sampler node is up' || fail "readyz reason"
code=$(post)
[ "$code" = 503 ] || fail "with every node down the answer is $code, want 503"
v=$(metric 'ringtail_router_spans_rejected_total{reason="unavailable"}')
[ "${v:-0}" -ge 2 ] || fail "spans_rejected_total{reason=unavailable} is ${v:-0}"
for s in a b c; do start_sink $s "${port[$s]}"; done
wait_for 15 ready || fail "router not ready after the sinks returned"
for s in a b c; do wait_for 15 node_up_is "sink-$s" 1 || fail "sink-$s not marked up again"; done
code=$(post)
[ "$code" = 200 ] || fail "after recovery the answer is $code, want 200"
"$check" send --http "127.0.0.1:$http" --phase 12 --traces 1000 --spans 4000 --acks "$tmp/acks12" \
  >/dev/null || fail "send after recovery"
"$check" verify --ring "$tmp/ring.yaml" $(sink_args) --phase 12 --acks "$tmp/acks12" --exact \
  --tolerance 0.05 || fail "routing after recovery"

# --- SIGTERM: drains and exits 0 (under ASan this also fails on leaks) ---
kill -TERM "$router"
wait "$router" || fail "router exit status $?"
grep -q 'drained' "$tmp/router.log" || fail "no drain on SIGTERM"
echo "PASS test_router_failover"
