#!/usr/bin/env bash
# test_router_split.sh - the real ringtail-router in front of three rt-otlp-dump sinks on
# loopback. Thousands of traces whose spans are spread over many requests, sent as OTLP/HTTP
# protobuf, OTLP/HTTP JSON and OTLP/gRPC: every span arrives exactly once, every trace at one
# sink only (its owner on the ring), and the sinks' shares of traces match the ring's shares.
# Then membership: a good edit of the ring file takes effect without a restart (inotify), and
# each kind of bad edit (duplicate id, bad weight, unreadable YAML, empty list) is rejected with
# its message while the previous ring keeps routing.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$tmp/router.log" ] && tail -20 "$tmp/router.log" >&2; exit 1; }
check="$RT_BUILD_DIR/rt-route-check"

wait_for() { # wait_for SECONDS CMD... : retry CMD every 0.1 s
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}
log_has() { grep -q -- "$2" "$1" 2>/dev/null; }

# --- three sinks standing in for samplers ---
declare -A port
for s in a b c; do
  "$RT_BUILD_DIR/rt-otlp-dump" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --out "$tmp/sink-$s.jsonl" \
    --ports "$tmp/sink-$s.ports" 2>"$tmp/sink-$s.log" &
  pids+=($!)
done
for s in a b c; do
  wait_for 10 test -s "$tmp/sink-$s.ports" || fail "sink $s did not start"
  port[$s]=$(sed -n 's/^http=//p' "$tmp/sink-$s.ports")
done
cat > "$tmp/ring.yaml" <<EOF
protocol: http
nodes:
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}"}
  - {id: sink-b, endpoint: "127.0.0.1:${port[b]}", weight: 2}
  - {id: sink-c, endpoint: "127.0.0.1:${port[c]}"}
EOF
cp "$tmp/ring.yaml" "$tmp/ring3.yaml"
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
    listen: 127.0.0.1:0
samplers:
  retry_budget: 300ms
  request_deadline: 5s
health:
  check: tcp
  interval: 200ms
  timeout: 150ms
EOF
"$RT_BUILD_DIR/ringtail-router" --config "$tmp/router.yaml" --check-config >/dev/null ||
  fail "router config rejected"
"$RT_BUILD_DIR/ringtail-router" --config "$tmp/router.yaml" 2>"$tmp/router.log" &
router=$!
pids+=($router)
wait_for 10 log_has "$tmp/router.log" "router listening" || fail "router did not start"
http=$(grep -o 'http_port=[0-9]*' "$tmp/router.log" | head -1 | cut -d= -f2)
grpc=$(grep -o 'grpc_port=[0-9]*' "$tmp/router.log" | head -1 | cut -d= -f2)
admin=$(grep -o 'admin_port=[0-9]*' "$tmp/router.log" | head -1 | cut -d= -f2)
ready() { curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null; }
wait_for 10 ready || fail "router not ready"

sinks=(--sink "sink-a=$tmp/sink-a.jsonl" --sink "sink-b=$tmp/sink-b.jsonl"
       --sink "sink-c=$tmp/sink-c.jsonl")

# --- the split: three protocols, 3000 traces each, 4 spans per trace over 120 requests ---
"$check" send --http "127.0.0.1:$http" --phase 1 --traces 3000 --spans 12000 --per-request 100 \
  --concurrency 8 --acks "$tmp/acks1" || fail "send http"
"$check" send --grpc "127.0.0.1:$grpc" --phase 2 --traces 3000 --spans 12000 --per-request 100 \
  --concurrency 8 --acks "$tmp/acks2" || fail "send grpc"
"$check" send --json "127.0.0.1:$http" --phase 3 --traces 3000 --spans 12000 --per-request 100 \
  --acks "$tmp/acks3" || fail "send json"
for p in 1 2 3; do
  grep -qv ' 200$' "$tmp/acks$p" && fail "phase $p: some requests were not answered 200"
  "$check" verify --ring "$tmp/ring3.yaml" "${sinks[@]}" --phase $p --acks "$tmp/acks$p" --exact \
    || fail "phase $p: routing check failed"
done

# Metrics say the same: 36000 spans received and forwarded.
metric() { curl -sf "http://127.0.0.1:$admin/metrics" | awk -v n="$1" '$1 == n {print $2}'; }
received=0
for proto in http_protobuf http_json grpc; do
  v=$(metric "ringtail_router_spans_received_total{protocol=\"$proto\"}")
  [ "$v" = 12000 ] || fail "spans_received_total{protocol=$proto} is $v, want 12000"
done
fwd=0
for s in a b c; do
  v=$(metric "ringtail_router_spans_forwarded_total{node=\"sink-$s\"}")
  fwd=$((fwd + v))
done
[ "$fwd" = 36000 ] || fail "spans_forwarded_total sums to $fwd, want 36000"

# --- membership: a good edit (sink-c leaves) takes effect without a restart ---
cat > "$tmp/ring2.yaml" <<EOF
protocol: http
nodes:
  - {id: sink-b, endpoint: "127.0.0.1:${port[b]}", weight: 2}
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}"}
EOF
cp "$tmp/ring2.yaml" "$tmp/ring.yaml.new" && mv "$tmp/ring.yaml.new" "$tmp/ring.yaml"
wait_for 10 log_has "$tmp/router.log" "nodes=2 up=2" || fail "good ring edit not applied"
curl -sf "http://127.0.0.1:$admin/ring" | grep -q sink-c && fail "/ring still lists sink-c"
c_before=$(wc -l < "$tmp/sink-c.jsonl")
"$check" send --http "127.0.0.1:$http" --phase 4 --traces 1000 --spans 4000 --acks "$tmp/acks4" \
  >/dev/null || fail "send after edit"
"$check" verify --ring "$tmp/ring2.yaml" --sink "sink-a=$tmp/sink-a.jsonl" \
  --sink "sink-b=$tmp/sink-b.jsonl" --phase 4 --acks "$tmp/acks4" --exact --tolerance 0.04 \
  || fail "routing after the good edit"
[ "$(wc -l < "$tmp/sink-c.jsonl")" = "$c_before" ] || fail "sink-c still received data"

# --- each kind of bad edit is rejected with its reason; the 2-node ring keeps routing ---
bad_edit() { # bad_edit NAME EXPECTED-MESSAGE <<< content
  local name=$1 want=$2
  cat > "$tmp/ring.yaml.new"
  mv "$tmp/ring.yaml.new" "$tmp/ring.yaml"
  wait_for 10 log_has "$tmp/router.log" "$want" || fail "bad edit ($name): no log line with: $want"
}
bad_edit duplicate 'duplicate node id \\"sink-a\\"' <<EOF
nodes:
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}"}
  - {id: sink-a, endpoint: "127.0.0.1:${port[b]}"}
EOF
bad_edit weight 'weight: 0 is below the minimum 1' <<EOF
nodes:
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}", weight: 0}
EOF
bad_edit yaml 'YAML syntax error' <<EOF
nodes:
  - {id: sink-a, endpoint: "127.0.0.1:${port[a]}"
EOF
bad_edit empty 'the ring has no nodes' <<EOF
nodes: []
EOF
n_rejected=$(grep -c 'ring file rejected' "$tmp/router.log" || true)
[ "$n_rejected" -ge 4 ] || fail "expected 4 rejected ring files, log shows $n_rejected"
grep -q 'nodes=3 up=3' <(grep 'ring view installed' "$tmp/router.log" | tail -1) &&
  fail "a bad edit changed the ring"
"$check" send --http "127.0.0.1:$http" --phase 5 --traces 1000 --spans 4000 --acks "$tmp/acks5" \
  >/dev/null || fail "send after bad edits"
"$check" verify --ring "$tmp/ring2.yaml" --sink "sink-a=$tmp/sink-a.jsonl" \
  --sink "sink-b=$tmp/sink-b.jsonl" --phase 5 --acks "$tmp/acks5" --exact --tolerance 0.04 \
  || fail "routing after the bad edits (the old ring must keep serving)"

# --- SIGTERM: drains and exits 0 ---
kill -TERM "$router"
wait "$router" || fail "router exit status $?"
grep -q 'drained' "$tmp/router.log" || fail "no drain on SIGTERM"
echo "PASS test_router_split"
