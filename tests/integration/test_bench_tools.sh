#!/usr/bin/env bash
# test_bench_tools.sh - rt-bench-loadgen straight into rt-bench-sink: over HTTP and over gRPC
# (gzip) and in real-time mode, everything the manifest lists arrives once (100 % retention,
# recall 1 in every category, no duplicates, nothing incomplete); a manifest listing traces that
# were never sent gives recall < 1 and --fail-if exits 1; the same traffic sent twice is counted
# as duplicates; traffic "exported" under two sampler ids is counted as fragmented. Then
# bench/driver.sh: --results rewrites only its own block of a RESULTS file with the run's figures;
# the cost arithmetic is right; the spike scenario samples every process's /metrics over time
# (the buffer fills during the spike and drains after it); bench/charts.sh draws the three charts.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
LG="$RT_BUILD_DIR/rt-bench-loadgen"
SINK="$RT_BUILD_DIR/rt-bench-sink"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

ALL_OK="recall.error<1,recall.slow<1,recall.debug_tenant<1,recall.token_limit<1,recall.tool_heavy<1,recall_whole.all<1,incomplete>0,fragmented>0,duplicates>0,retention.traces<1,retention.spans<1,unknown_traces>0"

# start_sink NAME ARGS... : starts the sink in the background (pid in sink_pid), waits for its
# ports (sink_http, sink_grpc).
start_sink() {
  local name=$1; shift
  "$SINK" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --report "$tmp/$name.sink.json" "$@" \
    > "$tmp/$name.sink.out" 2> "$tmp/$name.sink.err" &
  sink_pid=$!
  pids+=("$sink_pid")
  for _ in $(seq 1 100); do
    sink_http=$(grep -o 'http_port=[0-9]*' "$tmp/$name.sink.err" | cut -d= -f2 || true)
    sink_grpc=$(grep -o 'grpc_port=[0-9]*' "$tmp/$name.sink.err" | cut -d= -f2 || true)
    [ -n "$sink_http" ] && [ -n "$sink_grpc" ] && return 0
    sleep 0.1
  done
  cat "$tmp/$name.sink.err" >&2
  fail "$name: sink did not start"
}

# wait_sink NAME: waits for the sink to exit; its exit code in sink_rc.
wait_sink() {
  set +e
  wait "$sink_pid"
  sink_rc=$?
  set -e
}

jq_num() { jq -r "$2" "$1"; }

# check_all_arrived NAME MANIFEST: the sink's report agrees with the manifest and the
# loadgen's report, and every category the workload has is present and recalled in full.
check_all_arrived() {
  local name=$1 manifest=$2 rep="$tmp/$1.sink.json" lg="$tmp/$1.lg.json"
  [ "$sink_rc" = 0 ] || { cat "$tmp/$name.sink.out"; fail "$name: sink exited $sink_rc"; }
  local turns spans
  turns=$(wc -l < "$manifest")
  spans=$(jq -s 'map(.spans) | add' "$manifest")
  [ "$turns" -gt 0 ] || fail "$name: empty manifest"
  [ "$(jq_num "$lg" .turns)" = "$turns" ] || fail "$name: loadgen turns != manifest lines"
  [ "$(jq_num "$lg" .spans_acked)" = "$spans" ] || fail "$name: loadgen acked != manifest spans"
  [ "$(jq_num "$lg" .spans_failed)" = 0 ] || fail "$name: loadgen failed spans"
  [ "$(jq_num "$rep" .spans_received)" = "$spans" ] || fail "$name: sink got $(jq_num "$rep" .spans_received) spans, manifest lists $spans"
  [ "$(jq_num "$rep" .traces_received)" = "$turns" ] || fail "$name: sink traces != manifest"
  [ "$(jq_num "$rep" .duplicates)" = 0 ] || fail "$name: duplicates"
  [ "$(jq_num "$rep" .incomplete)" = 0 ] || fail "$name: incomplete traces"
  [ "$(jq_num "$rep" .retention.traces)" = 1 ] || fail "$name: trace retention"
  [ "$(jq_num "$rep" .retention.spans)" = 1 ] || fail "$name: span retention"
  [ "$(jq_num "$rep" .fragmented)" = unknown ] || fail "$name: fragmentation should be unknown"
  for cat in error slow token_limit debug_tenant tool_heavy normal; do
    local n
    n=$(jq_num "$rep" ".categories.$cat.traces // 0")
    [ "$n" -gt 0 ] || fail "$name: no $cat traces in the manifest"
    [ "$(jq_num "$rep" ".categories.$cat.recall")" = 1 ] || fail "$name: recall of $cat"
    [ "$(jq_num "$rep" ".categories.$cat.recall_whole")" = 1 ] || fail "$name: whole $cat"
    # The sink's per-category count is the manifest's.
    [ "$(jq -s --arg c "$cat" 'map(select(.categories | index($c))) | length' "$manifest")" = "$n" ] \
      || fail "$name: $cat count differs from the manifest"
  done
  grep -q '^all ' "$tmp/$name.sink.out" || fail "$name: no human table"
}

# 1. HTTP, 4 connections, seed profile, compressed time.
start_sink http --manifest "$tmp/http.m.jsonl" --idle 2 --fail-if "$ALL_OK"
"$LG" --endpoint "127.0.0.1:$sink_http" --protocol http --connections 4 --turns 800 --seed 7 \
  --error-rate 0.05 --slow-rate 0.05 --token-limit-rate 0.05 --debug-tenant-rate 0.05 \
  --manifest "$tmp/http.m.jsonl" --report "$tmp/http.lg.json" || fail "http: loadgen failed"
wait_sink
check_all_arrived http "$tmp/http.m.jsonl"
echo "ok: http $(jq -r .spans_per_s "$tmp/http.lg.json") spans/s (debug build, not a figure)"

# 2. gRPC with gzip, mixed profile, small requests.
start_sink grpc --manifest "$tmp/grpc.m.jsonl" --idle 2 --fail-if "$ALL_OK"
"$LG" --endpoint "127.0.0.1:$sink_grpc" --protocol grpc --gzip --connections 2 --turns 800 \
  --profile mixed --seed 8 --batch-spans 100 --error-rate 0.05 --slow-rate 0.05 \
  --token-limit-rate 0.05 --debug-tenant-rate 0.05 --tool-heavy-rate 0.3 \
  --manifest "$tmp/grpc.m.jsonl" --report "$tmp/grpc.lg.json" || fail "grpc: loadgen failed"
wait_sink
check_all_arrived grpc "$tmp/grpc.m.jsonl"
[ "$(jq -r .gzip "$tmp/grpc.lg.json")" = true ] || fail "grpc: gzip not reported"
# Same seed and options, same manifest: the workload is deterministic end to end.
start_sink det --idle 1
"$LG" --endpoint "127.0.0.1:$sink_http" --turns 5 --profile mixed --seed 8 --batch-spans 100 \
  --error-rate 0.05 --slow-rate 0.05 --token-limit-rate 0.05 --debug-tenant-rate 0.05 \
  --tool-heavy-rate 0.3 --manifest "$tmp/again.jsonl" --report /dev/null || fail "det: loadgen"
wait_sink
[ "$(head -5 "$tmp/grpc.m.jsonl")" = "$(cat "$tmp/again.jsonl")" ] || fail "manifest not deterministic"

# 3. Real time: spans of each turn leave in per-service batches over the turn (shrunk 20x).
start_sink rt --manifest "$tmp/rt.m.jsonl" --idle 3 --fail-if "$ALL_OK"
"$LG" --endpoint "127.0.0.1:$sink_http" --real-time --rate 100 --time-scale 0.05 --turns 300 \
  --seed 9 --error-rate 0.1 --slow-rate 0.1 --token-limit-rate 0.1 --debug-tenant-rate 0.1 \
  --manifest "$tmp/rt.m.jsonl" --report "$tmp/rt.lg.json" || fail "real-time: loadgen failed"
wait_sink
check_all_arrived rt "$tmp/rt.m.jsonl"
reqs=$(jq -r .requests "$tmp/rt.lg.json")
[ "$reqs" -gt $((300 * 4)) ] || fail "real-time: only $reqs requests for 300 turns (not spread)"
# A slow turn (47 s, x0.05) keeps the run going for ~2 s after the last turn starts.
el=$(jq -r .elapsed_s "$tmp/rt.lg.json")
awk -v e="$el" 'BEGIN { exit !(e > 2.5) }' || fail "real-time: run took only $el s"

# 4. The sink sees only part of the manifest: recall < 1 and --fail-if exits 1.
start_sink part --manifest "$tmp/part.m.jsonl" --fail-if "$ALL_OK"
"$LG" --endpoint "127.0.0.1:$sink_http" --turns 200 --seed 10 \
  --manifest "$tmp/part.m.jsonl" --report "$tmp/part.lg.json" || fail "part: loadgen failed"
# Ten error traces and one slow trace that were never sent.
for i in $(seq 10 19); do
  echo "{\"trace_id\":\"00000000000000000000000000000a$i\",\"spans\":80,\"categories\":[\"error\"]}"
done >> "$tmp/part.m.jsonl"
echo '{"trace_id":"000000000000000000000000000bbbbb","spans":50,"categories":["slow","error"]}' \
  >> "$tmp/part.m.jsonl"
sleep 0.5
kill -TERM "$sink_pid"
wait_sink
[ "$sink_rc" = 1 ] || { cat "$tmp/part.sink.out"; fail "part: sink exited $sink_rc, want 1"; }
grep -q '^FAIL: recall.error' "$tmp/part.sink.out" || fail "part: no recall.error failure line"
grep -q '^FAIL: retention.traces' "$tmp/part.sink.out" || fail "part: no retention failure line"
grep -q '^FAIL: incomplete' "$tmp/part.sink.out" && fail "part: sent traces counted incomplete"
rep="$tmp/part.sink.json"
errs=$(jq -s 'map(select(.categories | index("error"))) | length' "$tmp/part.m.jsonl")
kept=$(jq -r .categories.error.kept "$rep")
[ "$kept" = $((errs - 11)) ] || fail "part: error kept $kept, want $((errs - 11))"
awk -v r="$(jq -r .categories.error.recall "$rep")" 'BEGIN { exit !(r < 1) }' \
  || fail "part: recall.error not below 1"
[ "$(jq -r .categories.slow.kept "$rep")" = "$(( $(jq -r .categories.slow.traces "$rep") - 1 ))" ] \
  || fail "part: slow kept"
[ "$(jq -r .traces_kept "$rep")" = 200 ] || fail "part: traces kept"
[ "$(jq -r .manifest.traces "$rep")" = 211 ] || fail "part: manifest traces"

# 5. The same traffic twice, labelled as exported by sampler s1 and then by s2: every span of
#    the second run is a duplicate, and every trace was exported by two samplers (fragmented).
start_sink dup --manifest "$tmp/dup.m.jsonl" --idle 2 --fail-if "duplicates>0,fragmented>0"
for s in s1 s2; do
  "$LG" --endpoint "127.0.0.1:$sink_http" --turns 100 --seed 11 --span-attr "ringtail.sampler.id=$s" \
    --manifest "$tmp/dup.m.jsonl" --report "$tmp/dup.lg.json" || fail "dup: loadgen failed"
done
wait_sink
[ "$sink_rc" = 1 ] || fail "dup: sink exited $sink_rc, want 1"
rep="$tmp/dup.sink.json"
spans=$(jq -s 'map(.spans) | add' "$tmp/dup.m.jsonl")
[ "$(jq -r .duplicates "$rep")" = "$spans" ] || fail "dup: duplicates $(jq -r .duplicates "$rep") != $spans"
[ "$(jq -r .spans_unique "$rep")" = "$spans" ] || fail "dup: distinct spans"
[ "$(jq -r .fragmented "$rep")" = 100 ] || fail "dup: fragmented $(jq -r .fragmented "$rep") != 100"
[ "$(jq -r .incomplete "$rep")" = 0 ] || fail "dup: incomplete"
grep -q '^FAIL: duplicates' "$tmp/dup.sink.out" || fail "dup: no duplicates failure line"
grep -q '^FAIL: fragmented' "$tmp/dup.sink.out" || fail "dup: no fragmented failure line"

# 6. Two samplers exporting disjoint traces is not fragmentation; per-exporter counts add up.
start_sink frag --manifest "$tmp/frag.m.jsonl" --idle 2 --fail-if "fragmented>0,duplicates>0"
"$LG" --endpoint "127.0.0.1:$sink_http" --turns 50 --seed 12 --span-attr "ringtail.sampler.id=s1" \
  --manifest "$tmp/frag.m.jsonl" --report /dev/null || fail "frag: loadgen 1"
"$LG" --endpoint "127.0.0.1:$sink_grpc" --protocol grpc --turns 50 --seed 13 \
  --span-attr "ringtail.sampler.id=s2" --manifest "$tmp/frag2.m.jsonl" --report /dev/null \
  || fail "frag: loadgen 2"
cat "$tmp/frag2.m.jsonl" >> "$tmp/frag.m.jsonl"
wait_sink
rep="$tmp/frag.sink.json"
[ "$sink_rc" = 0 ] || { cat "$tmp/frag.sink.out"; fail "frag: sink exited $sink_rc"; }
[ "$(jq -r .fragmented "$rep")" = 0 ] || fail "frag: disjoint exports counted fragmented"
[ "$(jq -r '.exporters.s1.traces' "$rep")" = 50 ] || fail "frag: s1 traces"
[ "$(jq -r '.exporters.s2.traces' "$rep")" = 50 ] || fail "frag: s2 traces"
[ "$(jq -r .retention.traces "$rep")" = 1 ] || fail "frag: retention"

# 7. The cost arithmetic on a known report: 80 spans a turn, a quarter kept, $1 per M spans.
echo '{"manifest": {"spans": 800, "traces": 10}, "retention": {"spans": 0.25}}' > "$tmp/cost.json"
bash "$RT_SOURCE_DIR/bench/compose-bench.sh" cost "$tmp/cost.json" 1 1000 > "$tmp/cost.txt"
# shellcheck disable=SC2016 # the dollar signs are literal
grep -qxF 'cost at 1000 turns/day, 80 spans/turn, $1 per M spans:' "$tmp/cost.txt" || fail "cost: header"
# shellcheck disable=SC2016
grep -qxF '  100 %  : 80000 spans/day, 2400000 spans/month, $2.4/month' "$tmp/cost.txt" ||
  fail "cost: 100 %"
# shellcheck disable=SC2016
grep -qxF '  kept   : 20000 spans/day, 600000 spans/month, $0.6/month (25 % of spans)' "$tmp/cost.txt" \
  || { cat "$tmp/cost.txt"; fail "cost: kept"; }

# 8. driver.sh --results: the block of its scenario is written, then replaced, and nothing else
#    in the file changes; the figures in it are the run's.
DRIVER=(bash "$RT_SOURCE_DIR/bench/driver.sh" --build "$RT_BUILD_DIR")
printf '# Results\n\nprose before\n\n<!-- driver:tier:begin -->\nold tier figures\n<!-- driver:tier:end -->\n\nprose after\n' \
  > "$tmp/RESULTS.md"
cp "$tmp/RESULTS.md" "$tmp/RESULTS.orig"
"${DRIVER[@]}" --out "$tmp/h1" --turns 120 --results "$tmp/RESULTS.md" harness > "$tmp/h1.out" ||
  fail "driver harness failed"
grep -c '^<!-- driver:harness:begin -->$' "$tmp/RESULTS.md" | grep -qx 1 || fail "results: no harness block"
head -9 "$tmp/RESULTS.md" | cmp -s - "$tmp/RESULTS.orig" || fail "results: text before the new block changed"
"${DRIVER[@]}" --out "$tmp/h2" --turns 150 --results "$tmp/RESULTS.md" harness > "$tmp/h2.out" ||
  fail "driver harness (2) failed"
[ "$(grep -c 'driver:harness:begin' "$tmp/RESULTS.md")" = 1 ] || fail "results: block duplicated"
[ "$(grep -c 'driver:harness:end' "$tmp/RESULTS.md")" = 1 ] || fail "results: end marker duplicated"
grep -q -- '--turns 150 ' "$tmp/RESULTS.md" || fail "results: second run's command line missing"
grep -q -- '--turns 120 ' "$tmp/RESULTS.md" && fail "results: first run's block not replaced"
grep -q '^old tier figures$' "$tmp/RESULTS.md" || fail "results: another scenario's block was touched"
grep -q '^prose after$' "$tmp/RESULTS.md" || fail "results: prose after the blocks lost"
spans=$(jq -r .spans_acked "$tmp/h2/loadgen.json")
grep -q "^| sink | [0-9.]* | $spans | [0-9]* |$" "$tmp/RESULTS.md" || fail "results: sink row"
grep -q "^| all | 150 | 150 | 100 % | 100 % |$" "$tmp/RESULTS.md" || fail "results: recall row"
grep -q '^  kept   : ' "$tmp/RESULTS.md" || fail "results: cost table"
[ "$(head -1 "$tmp/h2/cpu.csv")" = "process,cpu_s,spans,spans_per_cpu_s" ] || fail "cpu.csv header"
[ "$(jq -r .scenario "$tmp/h2/run.json")" = harness ] || fail "run.json scenario"

# 9. The spike scenario: each process's /metrics every 0.2 s; the samplers' buffers fill while
#    the load runs and are empty at the end. A sampler run for the policy chart.
"${DRIVER[@]}" --out "$tmp/spike" --turns 600 --rate 150 --decision-wait 1s --sample-interval 0.2 \
  --policies "$RT_SOURCE_DIR/config/policies-no-span-count.yaml" \
  --fail-if "recall.error<1,fragmented>0,duplicates>0" spike > "$tmp/spike.out" ||
  { cat "$tmp/spike.out"; fail "driver spike failed"; }
csv="$tmp/spike/metrics.csv"
[ "$(head -1 "$csv")" = "t_s,node,traces_pending,bytes_buffered,spans_received" ] || fail "spike: csv header"
for n in router sampler-1 sampler-2 sampler-3; do
  [ "$(grep -c ",$n," "$csv")" -ge 5 ] || fail "spike: fewer than 5 samples of $n"
done
[ "$(jq -r .profile "$tmp/spike/loadgen.json")" = spike ] || fail "spike: loadgen profile"
awk -F, 'NR > 1 && $2 != "router" && $3 > 0 && $4 > 0 { found = 1 } END { exit !found }' "$csv" ||
  fail "spike: no sample shows buffered traces"
for n in sampler-1 sampler-2 sampler-3; do
  last=$(grep ",$n," "$csv" | tail -1 | cut -d, -f3)
  [ "$last" = 0 ] || fail "spike: $n still holds $last traces at the end"
done
rsp=$(grep ',router,' "$csv" | tail -1 | cut -d, -f5)
[ "$rsp" = "$(jq -r .spans_acked "$tmp/spike/loadgen.json")" ] || fail "spike: router counter $rsp"
"${DRIVER[@]}" --out "$tmp/sampler" --turns 300 --decision-wait 1s sampler > "$tmp/sampler.out" ||
  fail "driver sampler failed"

# 10. charts.sh draws the three charts (PNG) from those runs.
if command -v gnuplot > /dev/null; then
  bash "$RT_SOURCE_DIR/bench/charts.sh" --out "$tmp/charts" "$tmp/h2" "$tmp/spike" "$tmp/sampler" \
    > "$tmp/charts.out" || fail "charts.sh failed"
  for c in policies throughput spike-memory; do
    [ "$(head -c 4 "$tmp/charts/$c.png" | tail -c 3)" = PNG ] || fail "charts: $c.png not a PNG"
  done
  # The policy chart's table is the sink's figures.
  [ "$(awk -F'\t' '$1 == "error" { print $2 }' "$tmp/charts/data/policies.tsv")" = 100 ] ||
    fail "charts: error recall of the seed set"
  grep -q $'^0\tharness\\\\nsink\t' "$tmp/charts/data/throughput.tsv" || fail "charts: harness row"
else
  echo "skip: no gnuplot (scripts/setup.sh installs gnuplot-nox), charts not drawn"
fi
echo "ok: all bench tool checks passed"
