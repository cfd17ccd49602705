#!/usr/bin/env bash
# run-tier.sh - install dependencies, build, and run the tier on this machine with the
# shipped configs until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/ringtail-router
