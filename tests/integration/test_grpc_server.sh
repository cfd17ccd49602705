#!/usr/bin/env bash
# test_grpc_server.sh - rt_grpc_server against Node's http2 client: OTLP/gRPC Export answers,
# errors and their status codes, concurrency, TLS with ALPN h2, idle timeout, clean shutdown.
set -euo pipefail

: "${RT_BUILD_DIR:?RT_BUILD_DIR must point at the build directory}"
: "${RT_SOURCE_DIR:?RT_SOURCE_DIR must point at the source tree}"
SERVER="$RT_BUILD_DIR/rt-grpc-test-server"
CHECK="$RT_SOURCE_DIR/tests/integration/grpc_server_check.js"
MAX_BODY=1048576
IDLE_S=2

command -v node >/dev/null || { echo "SKIP: node not found"; exit 77; }
[ -x "$SERVER" ] || { echo "FAIL: $SERVER not built"; exit 1; }

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# Whole test: 60 s at most. The watchdog kills its own sleep when told to stop.
trap 'echo "FAIL: test_grpc_server.sh timed out after 60 s" >&2; exit 124' TERM
(
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    sleep 60 &
    sp=$!
    wait "$sp"
    kill -TERM $$
) &
WATCHDOG=$!
PIDS+=("$WATCHDOG")

# Certificates: the shared test ones, or throw-away ones made here.
CERTS="$RT_SOURCE_DIR/tests/certs"
if [ -f "$CERTS/server.pem" ] && [ -f "$CERTS/server.key" ] && [ -f "$CERTS/ca.pem" ]; then
    CA="$CERTS/ca.pem" CERT="$CERTS/server.pem" KEY="$CERTS/server.key"
else
    CA="$TMP/ca.pem" CERT="$TMP/server.pem" KEY="$TMP/server.key"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -keyout "$TMP/ca.key" -out "$CA" -subj "/CN=grpc test CA" \
        -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$KEY" -out "$TMP/server.csr" -subj "/CN=localhost" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$TMP/server.ext"
    openssl x509 -req -in "$TMP/server.csr" -CA "$CA" -CAkey "$TMP/ca.key" -CAcreateserial \
        -out "$CERT" -days 1 -extfile "$TMP/server.ext" 2>/dev/null
fi

# start_server NAME ARGS... : runs the server, waits for "port=N", sets PORT_<NAME>.
start_server() {
    local name=$1
    shift
    "$SERVER" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
    for _ in $(seq 100); do
        if grep -q '^port=' "$TMP/$name.out" 2>/dev/null; then
            eval "PORT_$name=$(sed -n 's/^port=//p' "$TMP/$name.out")"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "FAIL: server $name exited early:"
            cat "$TMP/$name.err"
            exit 1
        fi
        sleep 0.1
    done
    echo "FAIL: server $name did not report its port"
    exit 1
}

start_server plain --listen 127.0.0.1:0 --max-body "$MAX_BODY"
start_server tls --listen 127.0.0.1:0 --max-body "$MAX_BODY" --cert "$CERT" --key "$KEY"
start_server idle --listen 127.0.0.1:0 --idle-timeout "$IDLE_S"

rc=0
STOPPED=""
node "$CHECK" --port "$PORT_plain" --max-body "$MAX_BODY" --tls-port "$PORT_tls" --ca "$CA" \
    --idle-port "$PORT_idle" --idle-s "$IDLE_S" --hold-file "$TMP/hold" &
NODE=$!
PIDS+=("$NODE")
# At the end the script holds a call open on the plain and TLS servers and waits for us to
# stop them (it then checks for GOAWAY).
while kill -0 "$NODE" 2>/dev/null && [ ! -f "$TMP/hold" ]; do
    sleep 0.1
done
if [ -f "$TMP/hold" ]; then
    kill -TERM "$PID_plain" "$PID_tls"
    STOPPED="plain tls"
fi
wait "$NODE" || rc=1 # (wait, unlike a foreground command, lets the watchdog's TERM in)

# Each server must still be alive, exit 0 on SIGTERM, and have seen handler calls.
for name in plain tls idle; do
    pid_var="PID_$name"
    pid=${!pid_var}
    if [ "$name" = idle ] && ! kill -0 "$pid" 2>/dev/null; then
        echo "FAIL: server $name died during the test:"
        cat "$TMP/$name.err"
        rc=1
        continue
    fi
    case " $STOPPED " in
    *" $name "*) ;; # already told to stop (a second TERM could hit it mid-cleanup)
    *) kill -TERM "$pid" 2>/dev/null || true ;;
    esac
    status=0
    wait "$pid" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "FAIL: server $name exited with status $status on SIGTERM:"
        cat "$TMP/$name.err"
        rc=1
    fi
    if ! grep -Eq '^calls=[1-9]' "$TMP/$name.err"; then
        echo "FAIL: server $name never called its handler"
        rc=1
    fi
done

kill "$WATCHDOG" 2>/dev/null || true
if [ "$rc" -eq 0 ]; then
    echo "PASS: test_grpc_server"
else
    echo "--- plain server log ---"
    cat "$TMP/plain.err"
fi
exit "$rc"
