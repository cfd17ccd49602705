#!/usr/bin/env bash
# test_binaries.sh - both binaries as an operator runs them: --check-config names the line of
# an error, the admin port serves /healthz /readyz /ring and /metrics that promtool accepts,
# SIGHUP applies a good ring edit and rejects a bad one (the old ring keeps serving), SIGTERM
# stops the process cleanly.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
trap 'echo "FAIL: command at line $LINENO exited $?" >&2' ERR

ring3='nodes:
  - {id: s1, endpoint: "127.0.0.2:4318"}
  - {id: s2, endpoint: "127.0.0.3:4318"}
  - {id: s3, endpoint: "127.0.0.4:4318", weight: 2}'

# Wait until the process logs its admin port; print it.
admin_port() {
  local log=$1
  for _ in $(seq 1 100); do
    local p
    p=$(grep -o 'admin_port=[0-9]*' "$log" 2>/dev/null | head -1 | cut -d= -f2 || true)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}

metric() { # metric PORT NAME -> value of the first sample of NAME
  # awk reads to the end: leaving early would fail curl's write (exit 23) under pipefail.
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk -v n="$2" '!done && ($1 == n || index($1, n "{") == 1) {print $2; done = 1}'
}

# ring_nodes_become PORT BIN N TRIES: wait up to TRIES tenths of a second for BIN's ring to
# have N nodes; 0 when it does.
ring_nodes_become() {
  for _ in $(seq 1 "$4"); do
    [ "$(metric "$1" "ringtail_${2}_ring_nodes")" = "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

for bin in router sampler; do
  exe="$RT_BUILD_DIR/ringtail-$bin"
  printf '%s\n' "$ring3" > "$tmp/ring.yaml"
  cat > "$tmp/$bin.yaml" <<EOC
log_level: info
workers: 2
admin:
  listen: 127.0.0.1:0
ring:
  file: $tmp/ring.yaml
listeners:
  http: {listen: "127.0.0.1:0"}
  grpc: {listen: "127.0.0.1:0"}
EOC
  if [ "$bin" = sampler ]; then
    echo "default_export_file: $tmp/kept.jsonl" >> "$tmp/$bin.yaml"
  fi
  # --check-config: good file, unknown key with its line, bad value, bad ring file.
  "$exe" --config "$tmp/$bin.yaml" --check-config >/dev/null || fail "$bin: good config rejected"
  printf 'log_level: info\nworkers: 2\nadmn:\n  listen: x\n' > "$tmp/bad.yaml"
  out=$("$exe" --config "$tmp/bad.yaml" --check-config 2>&1) && fail "$bin: bad config accepted"
  grep -q "bad.yaml:3: admn: unknown key" <<<"$out" || fail "$bin: unknown key message: $out"
  printf 'workers: lots\n' > "$tmp/bad.yaml"
  out=$("$exe" --config "$tmp/bad.yaml" --check-config 2>&1) && fail "$bin: bad value accepted"
  grep -q "bad.yaml:1: workers" <<<"$out" || fail "$bin: bad value message: $out"
  printf 'nodes:\n  - {id: s1, endpoint: "a:1"}\n  - {id: s1, endpoint: "b:1"}\n' > "$tmp/badring.yaml"
  sed "s|$tmp/ring.yaml|$tmp/badring.yaml|" "$tmp/$bin.yaml" > "$tmp/bad.yaml"
  out=$("$exe" --config "$tmp/bad.yaml" --check-config 2>&1) && fail "$bin: bad ring accepted"
  grep -q 'badring.yaml:3: nodes\[1\].id: duplicate node id "s1"' <<<"$out" || fail "$bin: ring message: $out"
  "$exe" --help-config | grep '^ring.file' >/dev/null || fail "$bin: --help-config lacks ring.file"

  # Run it.
  "$exe" --config "$tmp/$bin.yaml" 2> "$tmp/$bin.log" &
  pid=$!
  pids+=("$pid")
  port=$(admin_port "$tmp/$bin.log") || { cat "$tmp/$bin.log"; fail "$bin: no admin port"; }
  [ "$(curl -sf "http://127.0.0.1:$port/healthz")" = ok ] || fail "$bin: /healthz"
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || fail "$bin: /readyz"
  curl -sf "http://127.0.0.1:$port/ring" | grep -q '"id":"s3","endpoint":"127.0.0.4:4318","weight":2' \
    || fail "$bin: /ring does not list s3"
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")
  [ "$code" = 404 ] || fail "$bin: unknown admin path gave $code"
  curl -sf "http://127.0.0.1:$port/metrics" > "$tmp/metrics.txt"
  promtool check metrics < "$tmp/metrics.txt" || fail "$bin: promtool rejects /metrics"
  [ "$(metric "$port" "ringtail_${bin}_ring_nodes")" = 3 ] || fail "$bin: ring_nodes != 3"
  hash3=$(metric "$port" "ringtail_${bin}_ring_content_hash")

  # A bad edit is rejected; the old ring stays.
  printf 'nodes: []\n' > "$tmp/ring.yaml"
  kill -HUP "$pid"
  for _ in $(seq 1 50); do grep -q 'ring file rejected' "$tmp/$bin.log" && break; sleep 0.1; done
  grep -q 'ring file rejected.*ring.yaml:1: nodes: the ring has no nodes' "$tmp/$bin.log" \
    || fail "$bin: bad ring edit not logged with its line"
  [ "$(metric "$port" "ringtail_${bin}_ring_nodes")" = 3 ] || fail "$bin: bad edit replaced the ring"
  [ "$(metric "$port" "ringtail_${bin}_ring_content_hash")" = "$hash3" ] || fail "$bin: hash changed"

  # A good edit takes effect without a restart.
  printf '%s\n  - {id: s4, endpoint: "127.0.0.5:4318"}\n' "$ring3" > "$tmp/ring.yaml"
  kill -HUP "$pid"
  ring_nodes_become "$port" "$bin" 4 50 || fail "$bin: good ring edit not applied"
  [ "$(metric "$port" "ringtail_${bin}_ring_content_hash")" != "$hash3" ] || fail "$bin: hash unchanged"

  # The file is watched: an edit applies without any signal, also when the editor replaces
  # the file by renaming a new one over it.
  printf '%s\n  - {id: s4, endpoint: "127.0.0.5:4318"}\n  - {id: s5, endpoint: "127.0.0.6:4318"}\n' \
    "$ring3" > "$tmp/ring.new"
  mv "$tmp/ring.new" "$tmp/ring.yaml"
  ring_nodes_become "$port" "$bin" 5 50 || fail "$bin: watched ring edit not applied"
  grep -q 'ring file changed on disk' "$tmp/$bin.log" || fail "$bin: no log line for the watched edit"

  # Another file of the same directory written all the time (a log, say) does not hold the
  # reload back: only events for the ring file's own name count.
  (while :; do echo x >> "$tmp/busy.log"; sleep 0.02; done) &
  busy=$!
  printf '%s\n' "$ring3" > "$tmp/ring.new"
  mv "$tmp/ring.new" "$tmp/ring.yaml"
  ok=0
  ring_nodes_become "$port" "$bin" 3 30 || ok=1
  kill "$busy"
  wait "$busy" 2>/dev/null || true
  [ "$ok" = 0 ] ||
    fail "$bin: ring edit not applied within 3 s while a neighbour file was being written"

  # A Kubernetes ConfigMap volume: ring.yaml is a link through "..data", a link to a timestamped
  # directory; an update writes a new directory and renames a new "..data" link over the old.
  mkdir "$tmp/..v1"
  printf '%s\n  - {id: s4, endpoint: "127.0.0.5:4318"}\n' "$ring3" > "$tmp/..v1/ring.yaml"
  ln -s ..v1 "$tmp/..data"
  ln -sf ..data/ring.yaml "$tmp/ring.new" && mv -T "$tmp/ring.new" "$tmp/ring.yaml"
  ring_nodes_become "$port" "$bin" 4 30 || fail "$bin: ConfigMap-style ring not loaded"
  mkdir "$tmp/..v2"
  printf '%s\n  - {id: s4, endpoint: "127.0.0.5:4318"}\n  - {id: s5, endpoint: "127.0.0.6:4318"}\n' \
    "$ring3" > "$tmp/..v2/ring.yaml"
  ln -s ..v2 "$tmp/..data_tmp" && mv -T "$tmp/..data_tmp" "$tmp/..data"
  rm -rf "$tmp/..v1"
  ring_nodes_become "$port" "$bin" 5 30 || fail "$bin: ConfigMap update (..data swap) not applied"
  rm -rf "$tmp/..v2" "$tmp/..data" "$tmp/ring.yaml"

  # SIGTERM: clean exit.
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && fail "$bin: still running 10 s after SIGTERM"
  wait "$pid" || fail "$bin: exit status $? after SIGTERM"
  grep -q 'msg="stopped"' "$tmp/$bin.log" || fail "$bin: no stopped line"
  echo "ok: ringtail-$bin"
done
