# membership_lib.sh - what the membership tests share (sourced): run one bench/membership.sh
# scenario at CI size, with the checks every scenario must pass, then read its figures.
: "${RT_BUILD_DIR:?}" "${RT_SOURCE_DIR:?}"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Every acknowledged span of every turn arrives exactly once, in one piece, from one sampler
# (the seed policies keep every agent turn, so "kept" is every turn).
WHOLE="recall.all<1,incomplete>0,missing_spans>0,fragmented>0,duplicates>0"

# run SCENARIO [OPTIONS...]: bench/membership.sh at a load CI's two cores carry under ASan too:
# 60 turns/s (~5 k spans/s) through a router and 3-4 samplers, turns spread over up to 3 s.
run() {
  local scenario=$1
  shift
  bash "$RT_SOURCE_DIR/bench/membership.sh" --build "$RT_BUILD_DIR" --out "$out/$scenario" \
    --turns 1200 --rate 60 --time-scale 0.06 --decision-wait 3s --change-at 5 "$@" "$scenario" \
    > "$out/$scenario.txt" 2>&1 || { cat "$out/$scenario.txt" >&2; fail "$scenario: see above"; }
  grep -E '^figures:|^kill:' "$out/$scenario.txt" || true
}

# fig SCENARIO JQ: a value from the scenario's figures.json.
fig() { jq -r "$2" "$out/$1/figures.json"; }
