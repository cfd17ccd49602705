#!/usr/bin/env bash
# run-tier.sh - install dependencies, build, and run the tier on this machine until Ctrl-C:
# one ringtail-router on 127.0.0.1 and three ringtail-samplers on 127.0.0.2-4, all reading
# config/ring.yaml (edit it, or send SIGHUP, to change the ring). Admin ports: 8888 on each
# address (/metrics, /healthz, /readyz, /ring).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

run=build/tier
mkdir -p "$run"
pids=()
stop() {
  trap - INT TERM EXIT
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

sed "s|^  listen: .*|  listen: 127.0.0.1:8888|" config/router.yaml > "$run/router.yaml"
build/ringtail-router --config "$run/router.yaml" &
pids+=($!)
for i in 1 2 3; do
  sed "s|^  listen: .*|  listen: 127.0.0.$((i + 1)):8888|" config/sampler.yaml > "$run/sampler-$i.yaml"
  build/ringtail-sampler --config "$run/sampler-$i.yaml" &
  pids+=($!)
done
echo "tier running: router admin http://127.0.0.1:8888/ring, samplers on 127.0.0.2-4:8888 (Ctrl-C stops)"
wait
