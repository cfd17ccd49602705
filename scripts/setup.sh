#!/usr/bin/env bash
# setup.sh - install every build and test dependency of ringtail from Debian's packages (and the
# interop test's npm packages from tests/interop/package-lock.json). Idempotent; the README's
# commands and CI both call it. Needs root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake pkg-config git ca-certificates curl openssl procps
  libevent-dev libprotobuf-c-dev protobuf-c-compiler libssl-dev libyaml-dev
  libmurmurhash-dev libnghttp2-dev libjansson-dev libcmocka-dev
  libisal-dev    # gzip in ringtail (common/gzip.c says why ISA-L's igzip)
  zlib1g-dev     # test_gzip checks igzip against zlib; the gzip comparison bench
  libdeflate-dev # the gzip comparison bench (bench/gzip_choice.c) only
  jq          # the bench and integration scripts read JSON reports
  time        # bench/driver.sh measures the load generator's CPU time
  prometheus  # for promtool, which checks our /metrics output
  gnuplot-nox # bench/charts.sh draws the benchmark's charts
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node runs the interop tests with the real OpenTelemetry JS SDK. Any node >= 18 will do; a
# machine that already has one (e.g. from NodeSource) keeps it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -f tests/interop/package-lock.json ]; then
  if [ ! -d tests/interop/node_modules ] ||
     [ tests/interop/package-lock.json -nt tests/interop/node_modules ]; then
    echo "setup: npm ci in tests/interop"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    touch tests/interop/node_modules
  fi
fi
