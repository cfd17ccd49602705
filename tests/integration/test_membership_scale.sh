#!/usr/bin/env bash
# test_membership_scale.sh - the ring file edited under load (issue 14): scale-out 3 -> 4 (the
# new sampler started before the edit, waiting, then joining) and scale-in 4 -> 3 (edited, then
# SIGTERM to the removed sampler). Real processes on loopback, real-time agent load: every kept
# trace arrives whole from one sampler, no acknowledged span is lost or doubled, and the traces
# in flight were handed over (the figures say how many).
set -euo pipefail
. "$(dirname "$0")/membership_lib.sh"

run scale-out --fail-if "$WHOLE"
[ "$(fig scale-out .handed_off.traces)" -gt 0 ] || fail "scale-out: no trace was handed over"
[ "$(fig scale-out .handed_off.failed_traces)" = 0 ] || fail "scale-out: hand-offs failed"
[ "$(fig scale-out '.recall.error')" = 1 ] || fail "scale-out: error recall below 1"

run scale-in --fail-if "$WHOLE"
[ "$(fig scale-in .handed_off.traces)" -gt 0 ] || fail "scale-in: no trace was handed over"
[ "$(fig scale-in .handed_off.failed_traces)" = 0 ] || fail "scale-in: hand-offs failed"
echo "ok: scale-out and scale-in break no trace"
