#!/usr/bin/env bash
# test_membership_disagree.sh - samplers that disagree, or cannot be reached (issue 14):
#   stale       the router reads a ring of three samplers for the whole run, the samplers one of
#               four: sampler-4's keys reach it in one hop from whichever sampler the router
#               chose, and no trace is split;
#   slow-owner  a new owner stalled (SIGSTOP) as it is listed: hand-offs to it fail (it refuses
#               them past their deadline when it wakes), and their traces stay, or go to the
#               sampler that owns them while it is down; nothing is lost, split or doubled;
#   dead-owner  a new owner that is listed while it is not running at all: the same, and when it
#               starts it gets its traces.
set -euo pipefail
. "$(dirname "$0")/membership_lib.sh"

run stale --fail-if "$WHOLE"
sent=$(fig stale .forwarded.spans_sent)
[ "$sent" -gt 0 ] || fail "stale: nothing was forwarded (the router's ring is not stale?)"
[ "$sent" = "$(fig stale .forwarded.spans_received)" ] || fail "stale: forwarded spans sent and received differ"
[ "$(fig stale .forwarded.failed_spans)" = 0 ] || fail "stale: forwards failed"
# One hop: no trace had to move again after its spans were forwarded.
[ "$(fig stale .handed_off.traces)" = 0 ] || fail "stale: traces moved a second time"

run slow-owner --fail-if "$WHOLE"
[ "$(fig slow-owner .handed_off.failed_traces)" -gt 0 ] ||
  fail "slow-owner: no hand-off failed: the stalled owner was not exercised"
run dead-owner --fail-if "$WHOLE"
[ "$(fig dead-owner .handed_off.failed_traces)" -gt 0 ] ||
  fail "dead-owner: no hand-off failed: the dead owner was not exercised"
[ "$(fig dead-owner .handed_off.traces)" -gt 0 ] || fail "dead-owner: nothing was handed over once it ran"
echo "ok: a stale ring takes one hop; a stalled or dead new owner loses nothing"
