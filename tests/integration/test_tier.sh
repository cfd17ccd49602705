#!/usr/bin/env bash
# test_tier.sh - the whole tier as an operator runs it (issue 5's CI scenario, short): the agent
# load generator -> ringtail-router -> three ringtail-samplers sharing one ring file -> the
# verifying sink, through bench/driver.sh. Fails if any error, slow or debug-tenant trace is
# missing, if any kept trace is incomplete or was exported by more than one sampler, or if any
# span arrived twice. Throughput is printed, never asserted.
set -euo pipefail
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
checks="recall.error<1,recall.slow<1,recall.debug_tenant<1,incomplete>0,fragmented>0,duplicates>0"
for proto in http grpc; do
  bash "$RT_SOURCE_DIR/bench/driver.sh" --build "$RT_BUILD_DIR" --out "$out/$proto" \
    --turns 1200 --decision-wait 1s --protocol "$proto" \
    --policies "$RT_SOURCE_DIR/config/policies-no-span-count.yaml" --fail-if "$checks" tier
  # Every sampler exported something: the ring spread the traces.
  n=$(jq -r '.exporters | length' "$out/$proto/sink.json")
  [ "$n" = 3 ] || { echo "FAIL: $proto: $n samplers exported, want 3" >&2; exit 1; }
done
echo "ok: whole tier"
