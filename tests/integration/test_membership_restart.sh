#!/usr/bin/env bash
# test_membership_restart.sh - samplers restarted under load (issue 14): a rolling restart of all
# three (SIGTERM: LEAVING, hand everything over, forward until quiet; start again: the keys and
# the traces in flight come back) breaks no trace, with two workers per sampler and over gRPC;
# kill -9 of one loses at most what it held (its /metrics just before), only traces it owned, and
# no trace that started while it was away.
set -euo pipefail
. "$(dirname "$0")/membership_lib.sh"

run rolling --fail-if "$WHOLE" --turns 1500 --restart-gap 2 --workers 2 --protocol grpc
[ "$(fig rolling .handed_off.traces)" -gt 0 ] || fail "rolling: no trace was handed over"
[ "$(fig rolling .forwarded.spans_sent)" -gt 0 ] || fail "rolling: a draining sampler forwarded nothing"

# kill: its own checks (owners, bound, started after) run in bench/membership.sh.
run kill --fail-if "fragmented>0,duplicates>0"
[ "$(fig kill .held_at_kill)" -gt 0 ] || fail "kill: the killed sampler held nothing: the test proves nothing"
echo "ok: rolling restart breaks no trace; kill -9 loses only what the killed sampler held"
