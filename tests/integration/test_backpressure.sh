#!/usr/bin/env bash
# test_backpressure.sh - a sampler whose exporter falls behind a backend that answers slows its
# clients down instead of dropping what it kept:
#  1. loadgen -> router -> sampler (2 workers) -> a sink that answers every request 40 ms late,
#     the exporter allowed one batch in flight per worker: the clients offer about twice what
#     that backend takes, for several decision_waits, every span is kept (always_sample), and every span reaches the sink, whole
#     and once; the sampler refused spans with 429 (export_backlog), the router passed them on
#     to the client, which sent them again, and nothing was dropped;
# 1b. SIGTERM while all of that load is still pending (decision_wait 60 s): the drain decides
#     no faster than the exporter takes it, and every span still arrives;
#  2. the same load with queue.backpressure off, straight into the sampler: kept spans are
#     dropped (queue_full) while every request got 200 - the loss the back-pressure prevents;
#  3. a backend that is down does not stop the intake: every request is still answered 200,
#     nothing is refused for export_backlog, and the overflow is counted as queue_full.
# The export capacity is set by the sink's delay, not by this machine's speed, so the counts
# hold on a faster or slower CI.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
LG="$RT_BUILD_DIR/rt-bench-loadgen"
SINK="$RT_BUILD_DIR/rt-bench-sink"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$tmp"/*.log; do echo "--- $f" >&2; tail -5 "$f" >&2; done; exit 1; }
wait_port() { # wait_port LOG KEY -> the port printed as KEY=N
  for _ in $(seq 1 100); do
    local p
    p=$(grep -o "$2=[0-9]*" "$1" 2>/dev/null | head -1 | cut -d= -f2 || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}
metric() { # metric ADMIN_PORT NAME [LABELFILTER] -> sum of the samples of NAME matching FILTER
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk -v n="$2" -v f="${3:-}" '($1 == n || index($1, n "{") == 1) && index($1, f) {s += $2} END {print s + 0}'
}

# 900 turns (~69,000 spans) started at 300 a second: ~23,000 spans/s for 3 s, past several
# decision_waits, against ~12,800 spans/s the backend takes (2 workers x 256 spans / 40 ms).
TURNS=900
RATE=300
start_sink() { # start_sink NAME [ARGS]: its port in $sink_port
  local name=$1; shift
  "$SINK" --http 127.0.0.1:0 --report "$tmp/$name.json" --manifest "$tmp/$name.manifest" "$@" \
    > "$tmp/$name.out" 2> "$tmp/$name.log" &
  sink_pid=$!
  pids+=("$sink_pid")
  sink_port=$(wait_port "$tmp/$name.log" http_port) || fail "sink $name did not start"
}
launch() { # launch BINARY NAME: runs it on $tmp/NAME.yaml; $l_pid, $l_port, $l_admin
  "$RT_BUILD_DIR/$1" --config "$tmp/$2.yaml" 2> "$tmp/$2.log" &
  l_pid=$!
  pids+=("$l_pid")
  l_port=$(wait_port "$tmp/$2.log" http_port) || fail "$2 did not start"
  l_admin=$(wait_port "$tmp/$2.log" admin_port) || fail "$2: no admin port"
}
start_sampler() { # start_sampler NAME ENDPOINT BACKPRESSURE [DECISION_WAIT]: ports in $s_port $s_admin
  local name=$1
  cat > "$tmp/$name.yaml" <<EOF
workers: 2
node_id: $name
admin: {listen: "127.0.0.1:0"}
listeners:
  http: {listen: "127.0.0.1:0"}
  grpc: {listen: ""}
processors:
  tail_sampling:
    decision_wait: ${4:-500ms}
    policies:
      - {name: everything, type: always_sample}
exporters:
  - name: backend
    type: otlp_http
    endpoint: $2
    max_inflight: 1
    batch: {max_spans: 256, timeout: 20ms}
    queue: {max_bytes: 2MiB, backpressure: $3}
    retry: {initial_interval: 50ms, max_interval: 200ms, max_elapsed: 2s}
EOF
  launch ringtail-sampler "$name"
  s_pid=$l_pid s_port=$l_port s_admin=$l_admin
}
stop() { # stop PID: SIGTERM, wait for the exit
  kill -TERM "$1"
  for _ in $(seq 1 300); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  fail "process $1 still running 30 s after SIGTERM"
}
load() { # load ENDPOINT NAME MANIFEST: every span acknowledged or fail
  "$LG" --endpoint "$1" --profile seed --turns "$TURNS" --rate "$RATE" --compressed-time --batch-spans 256 \
    --connections 4 --seed 11 --manifest "$3" --report "$tmp/$2-lg.json" > /dev/null \
    || fail "$2: loadgen: not every span was acknowledged ($(jq -c '{spans_acked, spans_failed}' "$tmp/$2-lg.json"))"
}
drained() { # drained ADMIN: nothing left buffered or queued for export
  [ "$(metric "$1" ringtail_sampler_spans_buffered)" = 0 ] &&
    [ "$(metric "$1" ringtail_sampler_export_queue_spans)" = 0 ]
}
wait_drained() {
  for _ in $(seq 1 600); do drained "$1" && return 0; sleep 0.1; done
  fail "sampler $1 still holds spans after 60 s"
}

# ---- 1. router -> sampler -> slow sink, back-pressure on -----------------------------------
start_sink slow --delay-ms 40
slow_pid=$sink_pid
start_sampler s1 "127.0.0.1:$sink_port" true
s1_pid=$s_pid s1_admin=$s_admin
cat > "$tmp/ring.yaml" <<EOF
nodes:
  - {id: s1, endpoint: "127.0.0.1:$s_port"}
EOF
cat > "$tmp/router.yaml" <<EOF
workers: 1
admin: {listen: "127.0.0.1:0"}
ring: {file: $tmp/ring.yaml}
health: {check: tcp, interval: 200ms, timeout: 150ms}
listeners:
  http: {listen: "127.0.0.1:0"}
  grpc: {listen: ""}
EOF
launch ringtail-router router
router_pid=$l_pid r_port=$l_port r_admin=$l_admin

load "127.0.0.1:$r_port" bp "$tmp/slow.manifest"
wait_drained "$s1_admin"
refused=$(metric "$s1_admin" ringtail_sampler_spans_refused_total 'reason="export_backlog"')
dropped=$(metric "$s1_admin" ringtail_sampler_spans_export_dropped_total)
exported=$(metric "$s1_admin" ringtail_sampler_spans_exported_total)
holds=$(metric "$s1_admin" ringtail_sampler_decision_holds_total)
passed_on=$(metric "$r_admin" ringtail_router_spans_rejected_total 'reason="throttled"')
sent=$(jq -r .spans_generated "$tmp/bp-lg.json")
echo "back-pressure on: $sent spans sent, $exported exported, $refused refused (429) by the" \
  "sampler, $passed_on passed on by the router, $holds decision holds, $dropped dropped"
[ "$refused" -gt 0 ] || fail "the sampler never pushed back: the load did not outrun the backend"
[ "$passed_on" -gt 0 ] || fail "the router did not pass the 429s on to its client"
[ "$dropped" = 0 ] || fail "$dropped kept spans dropped with back-pressure on"
[ "$exported" = "$sent" ] || fail "exported $exported of $sent kept spans"
stop "$s1_pid"
stop "$slow_pid"
jq -e '.spans_unique == .manifest.spans and .duplicates == 0 and .incomplete == 0' \
  "$tmp/slow.json" > /dev/null ||
  fail "sink: $(jq -c '{spans_unique, manifest, duplicates, incomplete}' "$tmp/slow.json")"
stop "$router_pid"

# ---- 1b. SIGTERM with everything still pending: the drain decides no faster than it exports --
start_sink slow3 --delay-ms 40
slow3_pid=$sink_pid
start_sampler s1b "127.0.0.1:$sink_port" true 60s
load "127.0.0.1:$s_port" term "$tmp/slow3.manifest"
pending=$(metric "$s_admin" ringtail_sampler_spans_buffered)
sent=$(jq -r .spans_generated "$tmp/term-lg.json")
[ "$pending" = "$sent" ] || fail "expected all $sent spans pending before SIGTERM, $pending are"
kill -TERM "$s_pid"
for _ in $(seq 1 300); do kill -0 "$s_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$s_pid" 2>/dev/null && fail "sampler still draining 30 s after SIGTERM"
grep -q 'spans dropped' "$tmp/s1b.log" && fail "the drain dropped spans: $(grep -m1 'spans dropped' "$tmp/s1b.log")"
stop "$slow3_pid"
jq -e '.spans_unique == .manifest.spans and .incomplete == 0' "$tmp/slow3.json" > /dev/null ||
  fail "sink after the drain: $(jq -c '{spans_unique, manifest, incomplete}' "$tmp/slow3.json")"
echo "drain: $sent pending spans at SIGTERM, all delivered"

# ---- 2. the same without back-pressure: 200 for everything, kept spans dropped -------------
start_sink slow2 --delay-ms 40
slow2_pid=$sink_pid
start_sampler s2 "127.0.0.1:$sink_port" false
load "127.0.0.1:$s_port" nobp "$tmp/slow2.manifest"
wait_drained "$s_admin"
full=$(metric "$s_admin" ringtail_sampler_spans_export_dropped_total 'reason="queue_full"')
refused=$(metric "$s_admin" ringtail_sampler_spans_refused_total)
echo "back-pressure off: $full kept spans dropped (queue_full), $refused refused"
[ "$full" -gt 0 ] || fail "without back-pressure nothing was dropped: the load did not outrun the backend"
[ "$refused" = 0 ] || fail "without back-pressure $refused spans were refused"
stop "$s_pid"
stop "$slow2_pid"

# ---- 3. a backend that is down: the intake goes on, the overflow is counted ----------------
dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_sampler s3 "127.0.0.1:$dead" true
load "127.0.0.1:$s_port" down "$tmp/down.manifest"
wait_drained "$s_admin"
full=$(metric "$s_admin" ringtail_sampler_spans_export_dropped_total 'reason="queue_full"')
gave_up=$(metric "$s_admin" ringtail_sampler_spans_export_dropped_total 'reason="gave_up"')
refused=$(metric "$s_admin" ringtail_sampler_spans_refused_total 'reason="export_backlog"')
received=$(metric "$s_admin" ringtail_sampler_spans_received_total)
sent=$(jq -r .spans_generated "$tmp/down-lg.json")
echo "backend down: $received received, $full queue_full, $gave_up gave_up, $refused refused"
[ "$refused" = 0 ] || fail "a dead backend made the sampler refuse $refused spans"
[ "$full" -gt 0 ] || fail "nothing counted queue_full with the backend down"
[ $((full + gave_up)) = "$sent" ] || fail "$full + $gave_up dropped, $sent sent: not all accounted"
stop "$s_pid"
echo "PASS"
