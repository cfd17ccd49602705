#!/usr/bin/env bash
# test_interop_sdk.sh - interop test: the real OpenTelemetry JS SDK exports traces through its
# three OTLP exporters (HTTP protobuf, HTTP JSON, gRPC; each plain and gzip-compressed) to
# rt-otlp-dump, and compare.js checks that every field of every span arrived intact.
#
# Run by ctest with RT_BUILD_DIR and RT_SOURCE_DIR set. Needs node >= 20.6 and npm; installs
# tests/interop/node_modules with `npm ci` from the lock file when it is missing or stale.
# Prints one line per exporter run and a closing "N passed, N failed"; exits non-zero on any
# failure, keeping its temp directory (dump, expectations, logs) for inspection.
set -euo pipefail

: "${RT_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${RT_BUILD_DIR:=$RT_SOURCE_DIR/build}"
here="$RT_SOURCE_DIR/tests/interop"
dump_bin="$RT_BUILD_DIR/rt-otlp-dump"
budget_s=120 # for everything after npm ci

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rt-interop-sdk.XXXXXX")
dump_pid=""
keep_tmp=0

say() { printf 'test_interop_sdk: %s\n' "$*"; }
fail() {
    say "FAIL: $*" >&2
    keep_tmp=1
    exit 1
}

cleanup() {
    local rc=$?
    if [[ -n "$dump_pid" ]] && kill -0 "$dump_pid" 2>/dev/null; then
        kill -TERM "$dump_pid" 2>/dev/null || true
        wait "$dump_pid" 2>/dev/null || true
    fi
    if ((rc != 0 || keep_tmp)) && [[ -n "$(ls -A "$tmp")" ]]; then
        if [[ -s "$tmp/dump.log" ]]; then
            say "last lines of rt-otlp-dump's log:" >&2
            tail -n 20 "$tmp/dump.log" >&2 || true
        fi
        say "artifacts kept in $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

# Seconds left of the budget; budget_check (in the main shell) fails once it is used up.
left() {
    local l=$((deadline - SECONDS))
    echo $((l > 0 ? l : 1))
}
budget_check() {
    ((SECONDS < deadline)) || fail "overall time budget of ${budget_s}s used up"
}

# --- prerequisites ---------------------------------------------------------------------------
[[ -x "$dump_bin" ]] || fail "$dump_bin is missing: build the rt-otlp-dump target first"
command -v node >/dev/null || fail "node is not installed (needs node >= 20.6)"
command -v npm >/dev/null || fail "npm is not installed"
node -e 'const [a, b] = process.versions.node.split(".").map(Number);
         process.exit(a > 20 || (a === 20 && b >= 6) ? 0 : 1)' ||
    fail "node $(node --version) is too old: the OpenTelemetry SDK 2.x needs >= 20.6"

# npm ci when node_modules is missing or older than the lock file. A lock serialises
# concurrent ctest jobs (several interop tests, or the build/ and build-asan/ suites).
stamp="$here/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$here/package-lock.json" -nt "$stamp" ]]; then
    say "installing the OpenTelemetry JS SDK (npm ci)"
    (
        flock -w 300 9 || exit 1
        if [[ ! -f "$stamp" || "$here/package-lock.json" -nt "$stamp" ]]; then
            cd "$here"
            timeout 300 npm ci --prefer-offline --no-audit --no-fund --loglevel=error \
                >"$tmp/npm-ci.log" 2>&1
        fi
    ) 9>"${TMPDIR:-/tmp}/rt-interop-npm-ci.lock" ||
        { cat "$tmp/npm-ci.log" >&2 2>/dev/null || true; fail "npm ci in $here failed (log above)"; }
fi

deadline=$((SECONDS + budget_s))

# --- the server ------------------------------------------------------------------------------
"$dump_bin" --http 127.0.0.1:0 --grpc 127.0.0.1:0 --out "$tmp/dump.jsonl" \
    --ports "$tmp/ports" >"$tmp/dump.log" 2>&1 &
dump_pid=$!
for _ in $(seq 100); do
    [[ -f "$tmp/ports" ]] && break
    kill -0 "$dump_pid" 2>/dev/null || fail "rt-otlp-dump exited before listening"
    sleep 0.1
done
[[ -f "$tmp/ports" ]] || fail "rt-otlp-dump wrote no ports file within 10s"
http_port=$(sed -n 's/^http=\([0-9][0-9]*\)$/\1/p' "$tmp/ports")
grpc_port=$(sed -n 's/^grpc=\([0-9][0-9]*\)$/\1/p' "$tmp/ports")
[[ -n "$http_port" && -n "$grpc_port" ]] ||
    fail "ports file does not hold http=PORT and grpc=PORT: $(tr '\n' ' ' <"$tmp/ports")"

# --- one run per exporter and compression ----------------------------------------------------
passed=0
failed=0
run() {
    local exporter=$1 compression=$2 url=$3
    local label=$exporter
    [[ "$compression" == none ]] || label="$exporter+$compression"
    local id="$label-$$-$RANDOM"
    local expect="$tmp/expect-$exporter-$compression.json"
    local log="$tmp/send-$exporter-$compression.log"
    budget_check
    if ! timeout "$(left)" node "$here/send.js" --exporter "$exporter" --url "$url" \
        --run-id "$id" --expect "$expect" --compression "$compression" >"$log" 2>&1; then
        say "interop $label: FAILED to export to $url:"
        sed 's/^/  /' "$log"
        failed=$((failed + 1))
        return
    fi
    if timeout "$(left)" node "$here/compare.js" --expect "$expect" --dump "$tmp/dump.jsonl" \
        --label "$label" --wait-ms 5000; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
}

for compression in none gzip; do
    run proto "$compression" "http://127.0.0.1:$http_port/v1/traces"
    run http "$compression" "http://127.0.0.1:$http_port/v1/traces"
    run grpc "$compression" "http://127.0.0.1:$grpc_port"
done

# --- clean shutdown (the dump's contract: exit 0 on SIGTERM) ---------------------------------
kill -TERM "$dump_pid"
rc=0
wait "$dump_pid" || rc=$?
dump_pid=""
if ((rc != 0)); then
    say "rt-otlp-dump exited with status $rc on SIGTERM (expected 0)"
    failed=$((failed + 1))
fi

echo "interop: $passed passed, $failed failed"
((failed == 0)) || fail "$failed of the interop checks failed"
