# tier-lib.sh - what bench/driver.sh, bench/membership.sh and the cost scripts share: the port
# block of a run, waiting for a log line, the verifying sink, sampler configs, ring files.
# Sourced, not run; the caller sets build, out, policies, decision_wait (and fail_if, health_ms
# if it wants them).

# A free port block for this run (OTLP http = base, grpc = base+1, admin = base+2 on each
# address, the sink at base+10/11), so parallel runs and a running tier do not collide.
# Below the kernel's ephemeral range (32768 and up by default), where outgoing connections of
# this or other runs could already hold a port.
low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$((low - 10000 - 100))
[ "$span" -gt 1000 ] || span=1000
base=$((10000 + ($$ * 7 + RANDOM) % span))
# Health checks of the router and of the samplers' peers: every health_ms (timeout 4/5 of it).
health_ms=${health_ms:-2000}

wait_log() { # wait_log FILE PATTERN [TRIES]: up to TRIES (200) twentieths of a second
  for _ in $(seq 1 "${3:-200}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "${0##*/}: timed out waiting for '$2' in $1" >&2
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

# health_yaml: the health section both the router (health:) and the samplers (peers.health:)
# use, on the admin port of each address.
health_yaml() {
  echo "{check: readyz, admin_port: $((base + 2)), interval: ${health_ms}ms," \
    "timeout: $((health_ms * 4 / 5))ms, unhealthy_after: 2, healthy_after: 2}"
}

sampler_config() { # sampler_config I [RING] -> config of sampler I on 127.0.0.(I+1)
  local ip="127.0.0.$(($1 + 1))"
  cat <<EOC
log_level: info
workers: ${sampler_workers:-1}
node_id: sampler-$1
admin: {listen: "$ip:$((base + 2))"}
ring: {file: "${2:-$out/ring.yaml}"}
listeners:
  http: {listen: "$ip:$base"}
  grpc: {listen: "$ip:$((base + 1))"}
peers:
  health: $(health_yaml)
${peers_extra:-}
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

# launch_router RING HEALTH [SAMPLERS]: write the router's config (on 127.0.0.1, admin at
# base+2) with ring file RING, `health:` HEALTH and, if given, `samplers:` SAMPLERS (YAML flow
# mappings), start it with its log in $out/router.log, wait until it listens; its pid in
# $router_pid.
launch_router() {
  {
    cat <<EOC
workers: 1
admin: {listen: "127.0.0.1:$((base + 2))"}
ring: {file: "$1"}
listeners:
  http: {listen: "127.0.0.1:$base"}
  grpc: {listen: "127.0.0.1:$((base + 1))"}
health: $2
EOC
    [ -z "${3:-}" ] || echo "samplers: $3"
  } > "$out/router.yaml"
  "$build/ringtail-router" --config "$out/router.yaml" 2> "$out/router.log" &
  router_pid=$!
  wait_log "$out/router.log" "OTLP listeners open"
}

# check_sampler_config FILE: a policy file the sampler refuses stops the run here, with the
# sampler's own message (file, line, key), not as a sampler that never becomes ready.
check_sampler_config() {
  "$build/ringtail-sampler" --config "$1" --check-config > /dev/null 2> "$1.check" || {
    echo "${0##*/}: the sampler refuses $1 (policies from $policies):" >&2
    cat "$1.check" >&2
    exit 2
  }
  rm -f "$1.check"
}

ring_file() { # ring_file PORT [N] -> nodes sampler-1..N (default 3) on 127.0.0.2..(N+1):PORT
  echo "protocol: http"
  echo "nodes:"
  for i in $(seq 1 "${2:-3}"); do echo "  - {id: sampler-$i, endpoint: \"127.0.0.$((i + 1)):$1\"}"; done
}

# write_block FILE NAME BLOCK: replace the lines between `<!-- NAME:begin -->` and
# `<!-- NAME:end -->` in FILE (bench/RESULTS.md) with the file BLOCK, or append them.
write_block() {
  local file=$1 begin="<!-- $2:begin -->" end="<!-- $2:end -->"
  awk -v b="$begin" -v e="$end" -v blk="$3" '
    function emit(   l) { print b; while ((getline l < blk) > 0) print l; close(blk); print e }
    $0 == b { emit(); skip = 1; done = 1; next }
    skip && $0 == e { skip = 0; next }
    !skip { print }
    END { if (!done) { print ""; emit() } }' "$file" > "$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
  echo "${0##*/}: figures written to $file ($begin)"
}

# metric_sum FILE NAME: the sum over labels of metric NAME in a saved /metrics page.
metric_sum() {
  awk -v n="$2" '{ name = $1; sub(/\{.*/, "", name) } name == n { s += $NF } END { printf "%d", s }' \
    "$1" 2>/dev/null || echo 0
}
