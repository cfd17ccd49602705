#!/usr/bin/env bash
# test.sh - install dependencies, then build and run the whole test suite twice: a normal
# build (build/) and an AddressSanitizer + UBSan build (build-asan/). Exits non-zero if any
# test fails; the last line printed is ctest's summary of the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
status=0
run_suite() {
  local dir=$1; shift
  echo "==> ${dir}: configure and build"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" 2>&1 | grep -E 'warning|error' || true
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "==> ${dir}: ctest"
  (cd "$dir" && ctest -j"$jobs" --output-on-failure --timeout 300) || status=1
}

run_suite build
# halt_on_error: a sanitizer report fails the test that caused it.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run_suite build-asan -DRT_SANITIZE=ON
exit $status
