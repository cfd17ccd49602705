#!/usr/bin/env bash
# charts.sh - draw the benchmark's charts (PNG, gnuplot) from bench/driver.sh's run directories.
#
#   bench/charts.sh [--out DIR] [RUN_DIR...]
#
# RUN_DIR is a driver --out directory (default: every build/bench/*/ that holds a run.json).
# What each run feeds, by the scenario in its run.json:
#   policies.png     tier and sampler runs: recall per category and retention, one bar per run
#                    labelled by its policy file (several runs of one policy set: the last)
#   throughput.png   the last harness, router, sampler and tier run: spans per CPU-second of
#                    each ringtail process (cpu.csv) beside the harness's own two processes
#                    (load generator and sink), the ceiling of the machine's harness
#   spike-memory.png the (last) spike run: router input rate, each sampler's bytes_buffered and
#                    traces_pending over time (metrics.csv, sampled every 0.5 s)
#   rolling-handoff.png the (last) rolling run of bench/membership.sh: spans each sampler
#                    takes in, hand-off bytes each sends, client p99, with the restarts marked
#                    (timeline.csv, latency.csv, events.csv)
# Charts go to --out (default bench/charts/, committed and linked from bench/RESULTS.md); the
# tables gnuplot read stay beside them in DIR/data/. A chart with no run to draw is skipped.
# Needs gnuplot (scripts/setup.sh installs gnuplot-nox) and jq.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."

out=bench/charts
runs=()
while [ $# -gt 0 ]; do
  case "$1" in
  --out) out=$2; shift 2 ;;
  -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
  -*) echo "charts.sh: unknown option $1" >&2; exit 2 ;;
  *) runs+=("$1"); shift ;;
  esac
done
if [ ${#runs[@]} -eq 0 ]; then
  for d in build/bench/*/; do
    { [ -f "$d/run.json" ] || [ -f "$d/figures.json" ]; } && runs+=("${d%/}")
  done
fi
[ ${#runs[@]} -gt 0 ] || { echo "charts.sh: no run directories (run bench/driver.sh first)" >&2; exit 2; }
command -v gnuplot > /dev/null || { echo "charts.sh: gnuplot missing (scripts/setup.sh)" >&2; exit 2; }
data="$out/data"
mkdir -p "$data"

# Sort the runs into the three charts.
policy_runs=()
thr_runs=()
spike_run=""
rolling_run=""
for d in "${runs[@]}"; do
  if [ -f "$d/figures.json" ]; then # bench/membership.sh
    [ "$(jq -r .scenario "$d/figures.json")" != rolling ] || rolling_run=$d
    continue
  fi
  [ -f "$d/run.json" ] || { echo "charts.sh: $d: no run.json (not a driver run)" >&2; exit 2; }
  sc=$(jq -r .scenario "$d/run.json")
  case "$sc" in
  spike) spike_run=$d ;;
  *) thr_runs+=("$d") ;;
  esac
  if { [ "$sc" = tier ] || [ "$sc" = sampler ]; } && [ -f "$d/sink.json" ]; then
    policy_runs+=("$d")
  fi
done

drawn=()
# gp SCRIPT OUTPUT VAR=VALUE...: run a chart script with string variables set.
gp() {
  local script=$1 png=$2 defs="" kv
  shift 2
  for kv in "$@"; do defs+="${kv%%=*}='${kv#*=}'; "; done
  gnuplot -e "${defs}outfile='$png'" "$here/$script"
  drawn+=("$png")
}

# --- policies.png: recall per category (and retention) per policy set ---------------------
if [ ${#policy_runs[@]} -gt 0 ]; then
  # One column per policy set (a later run of the same set replaces an earlier one), one row
  # per category; values in percent.
  labels=()
  files=()
  for d in "${policy_runs[@]}"; do
    l=$(jq -r '.policies | split("/") | last | sub("\\.ya?ml$"; "")' "$d/run.json")
    for i in "${!labels[@]}"; do [ "${labels[$i]}" = "$l" ] && unset 'labels[i]' 'files[i]'; done
    labels+=("$l")
    files+=("$d/sink.json")
  done
  labels=("${labels[@]}")
  files=("${files[@]}")
  jq -rs '
    . as $reps
    | ["error", "slow", "token_limit", "debug_tenant", "tool_heavy", "normal"] as $cats
    | ($cats[] as $c | [$c] + [$reps[] | (.categories[$c].recall // 0) * 100]),
      (["retention traces"] + [$reps[] | .retention.traces * 100]),
      (["retention spans"] + [$reps[] | .retention.spans * 100])
    | @tsv' "${files[@]}" | sed 's/^retention /retention\\n/' > "$data/policies.body"
  { printf 'category'; printf '\t%s' "${labels[@]}"; printf '\n'; cat "$data/policies.body"; } \
    > "$data/policies.tsv"
  rm -f "$data/policies.body"
  gp charts-policies.gp "$out/policies.png" datafile="$data/policies.tsv" \
    ncols="$((${#labels[@]} + 1))"
fi

# --- throughput.png: spans per CPU-second of each process ----------------------------------
if [ ${#thr_runs[@]} -gt 0 ]; then
  # index, "scenario process", spans per CPU-second, group (0 = harness ceiling, 1 = ringtail,
  # 2 = the load generator or sink of another scenario)
  # The last run of each scenario: the harness's two processes (the ceiling) and the ringtail
  # processes of the others (their load generator and sink are the harness's, measured again).
  : > "$data/throughput.tsv"
  n=0
  pols=""
  for sc in harness router sampler tier; do
    run=""
    for d in "${thr_runs[@]}"; do
      if [ "$(jq -r .scenario "$d/run.json")" = "$sc" ] && [ -f "$d/cpu.csv" ]; then run=$d; fi
    done
    [ -n "$run" ] || continue
    case "$sc" in sampler | tier)
      pols+="${pols:+, }$sc: $(jq -r '.policies | split("/") | last' "$run/run.json")" ;;
    esac
    while IFS=, read -r proc _ _ rate; do
      g=1
      [ "$sc" = harness ] && g=0
      if [ "$g" = 1 ] && { [ "$proc" = sink ] || [ "$proc" = loadgen ]; }; then continue; fi
      printf '%d\t%s\\n%s\t%s\t%d\n' "$n" "$sc" "$proc" "$rate" "$g" >> "$data/throughput.tsv"
      n=$((n + 1))
    done < <(tail -n +2 "$run/cpu.csv")
  done
  if [ "$n" -gt 0 ]; then
    gp charts-throughput.gp "$out/throughput.png" datafile="$data/throughput.tsv" \
      charttitle="Spans per CPU-second of each process, one run per scenario (policies: ${pols:-n/a})"
  fi
fi

# --- spike-memory.png: memory over time during the spike ----------------------------------
if [ -n "$spike_run" ]; then
  csv="$spike_run/metrics.csv"
  [ -s "$csv" ] || { echo "charts.sh: $csv missing or empty" >&2; exit 2; }
  # One file per sampler (t, traces_pending, bytes_buffered MiB) and the router's input rate
  # (spans/s between two samples of its spans_received counter).
  awk -F, -v dir="$data" 'NR > 1 && $2 != "router" {
      f = dir "/spike-" $2 ".tsv"; printf "%s\t%d\t%.3f\n", $1, $3, $4 / 1048576 > f }
    NR > 1 && $2 == "router" {
      if (have) { dt = $1 - t; if (dt > 0) printf "%s\t%.0f\n", $1, ($5 - s) / dt > (dir "/spike-router.tsv") }
      t = $1; s = $5; have = 1 }' "$csv"
  samplers=$(awk -F, 'NR > 1 && $2 != "router" {print $2}' "$csv" | sort -u | tr '\n' ' ')
  [ -f "$data/spike-router.tsv" ] || : > "$data/spike-router.tsv"
  title=$(jq -r '"spike: \(.turns) turns, \(.rate) turns/s base, 10x in the middle third; " +
    "decision_wait \(.decision_wait), policies \(.policies | split("/") | last)"' \
    "$spike_run/run.json")
  gp charts-memory.gp "$out/spike-memory.png" datadir="$data" samplers="${samplers% }" \
    charttitle="$title"
fi

# --- rolling-handoff.png: a rolling restart over time --------------------------------------
if [ -n "$rolling_run" ]; then
  tl="$rolling_run/timeline.csv"
  [ -s "$tl" ] || { echo "charts.sh: $tl missing or empty" >&2; exit 2; }
  # Per sampler: spans/s taken in and hand-off KiB/s sent between two samples of the same
  # process (a restart starts its counters again: that pair is skipped).
  rm -f "$data"/membership-*.tsv
  awk -F, -v dir="$data" 'NR > 1 {
      k = $2; if ((k in pid) && pid[k] == $3 && $1 > t[k]) {
        dt = $1 - t[k]
        printf "%s\t%.0f\t%.1f\n", $1, ($4 - sr[k]) / dt, ($6 - hb[k]) / dt / 1024 > (dir "/membership-" k ".tsv") }
      pid[k] = $3; t[k] = $1; sr[k] = $4; hb[k] = $6 }' "$tl"
  awk -F, 'NR > 1 { b = int($1 * 2) / 2; print b "\t" $2 }' "$rolling_run/latency.csv" | sort -n -k1,1 -k2,2 |
    awk -F'\t' '{ if ($1 != cur) { if (n) out(); cur = $1; n = 0 } v[++n] = $2 }
      function out() { printf "%s\t%s\n", cur + 0.25, v[int((n - 1) * 0.99) + 1] }
      END { if (n) out() }' > "$data/membership-p99.tsv"
  awk -F, 'NR > 1 && $2 ~ /SIGTERM|starting|lists|drops|SIGKILL/ {
      printf "set arrow from %s, graph 0 to %s, graph 1 nohead dt 2 lc rgb \"#999999\"\n", $1, $1 }' \
    "$rolling_run/events.csv" > "$data/membership-arrows.gp"
  samplers=$(awk -F, 'NR > 1 { print $2 }' "$tl" | sort -u | tr '\n' ' ')
  title=$(jq -r '"rolling restart: \(.turns) turns at \(.rate) turns/s, decision_wait " +
    "\(.decision_wait); dashed: SIGTERM / restart of each sampler"' "$rolling_run/figures.json")
  xmax=$(awk -F, 'NR > 1 && $1 > m { m = $1 } END { printf "%d", m + 1 }' "$tl")
  gp charts-membership.gp "$out/rolling-handoff.png" datadir="$data" samplers="${samplers% }" \
    charttitle="$title" xmax="$xmax"
fi

[ ${#drawn[@]} -gt 0 ] || { echo "charts.sh: nothing to draw from ${runs[*]}" >&2; exit 2; }
printf 'charts.sh: wrote %s\n' "${drawn[@]}"
