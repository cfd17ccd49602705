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

build/ringtail-router --config config/router.yaml &
pids+=($!)
# config/sampler.yaml is sampler-1 on 127.0.0.2; the others differ in address and node id.
for i in 1 2 3; do
  sed -e "s/127\.0\.0\.2:/127.0.0.$((i + 1)):/g" -e "s/^node_id: .*/node_id: sampler-$i/" \
    -e "s|^default_export_file: .*|default_export_file: $run/kept-traces.jsonl|" \
    config/sampler.yaml > "$run/sampler-$i.yaml"
  build/ringtail-sampler --config "$run/sampler-$i.yaml" &
  pids+=($!)
done
echo "tier running: router admin http://127.0.0.1:8888/ring, samplers on 127.0.0.2-4:8888 (Ctrl-C stops)"
wait
