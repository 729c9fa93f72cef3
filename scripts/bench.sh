#!/usr/bin/env bash
# Whole-command figures for strata: median and p95 wall time and peak RSS of N runs of
# each command, against the start-up of /bin/true measured in the same run, on a
# throwaway home. Prints a table and writes it to target/bench.txt.
#
#   scripts/bench.sh [STRATA_BINARY] [RUNS]
set -euo pipefail
STRATA=${1:-target/release/strata}
RUNS=${2:-20}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
export STRATA_HOME="$(mktemp -d -t strata-bench-XXXXXX)"
WORK="$(mktemp -d -t strata-bench-work-XXXXXX)"
trap 'rm -rf "$STRATA_HOME" "$WORK"' EXIT
export NO_COLOR=1
OUT=target/bench.txt
mkdir -p target

if [[ ! -x /usr/bin/time ]]; then
    echo "scripts/bench.sh needs GNU time at /usr/bin/time for peak RSS: install it (Debian: apt-get install time)" >&2
    exit 1
fi

now_ns() { date +%s%N; }

# measure LABEL CMD...: prints "LABEL median_ms p95_ms peak_rss_kib". If PRE is set,
# it runs (untimed) before each run, to put things back where the measured command starts.
measure() {
    local label=$1; shift
    local label_id=$RANDOM
    local times=() rss=()
    for ((i = 0; i < RUNS; i++)); do
        local t0 t1
        # `@N@` in an argument becomes a name unique to this run (registrations).
        local args=("${@//@N@/$label_id$i}")
        if [[ -n ${PRE:-} ]]; then sh -c "$PRE" >/dev/null 2>&1 || { echo "failed: $PRE" >&2; exit 1; }; fi
        t0=$(now_ns)
        /usr/bin/time -f '%M' -o "$WORK/rss" "${args[@]}" >/dev/null 2>&1 || { echo "failed: ${args[*]}" >&2; exit 1; }
        t1=$(now_ns)
        times+=($(( (t1 - t0) / 1000 )))
        rss+=($(cat "$WORK/rss"))
    done
    local sorted median p95 maxrss
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    median=$(echo "$sorted" | sed -n "$(( (RUNS + 1) / 2 ))p")
    p95=$(echo "$sorted" | sed -n "$(( (RUNS * 95 + 99) / 100 ))p")
    maxrss=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
    printf '%s %s %s %s\n' "$label" "$median" "$p95" "$maxrss"
}

# A command that must run once to set up what the measured one needs.
"$STRATA" init >/dev/null 2>&1

rows=()
rows+=("$(measure '/bin/true' /bin/true)")
rows+=("$(measure 'strata stack list' "$STRATA" stack list)")
rows+=("$(measure 'strata artifact-store flavor list' "$STRATA" artifact-store flavor list)")
rows+=("$(measure 'strata stack describe' "$STRATA" stack describe)")
rows+=("$(measure 'strata artifact-store register' "$STRATA" artifact-store register s@N@ --flavor=local --path="$WORK/s@N@")")
rows+=("$(measure 'strata stack register' "$STRATA" stack register k@N@ -o default -a default)")
rows+=("$(measure 'strata artifact-store describe (1 lifecycle call: status)' "$STRATA" artifact-store describe default)")

# strata init on an empty home (creates the store, compiles the built-in flavors) against
# init on a home that has them compiled and cached already.
rows+=("$(measure 'strata init (empty home: compiles flavors)' "$STRATA" init --home "$WORK/home@N@")")
rows+=("$(measure 'strata init (initialised home: compiled cache present)' "$STRATA" init)")

# stack up / down as the stack grows: the default orchestrator and artifact store, one
# alerter, and N-3 step operators (the only type a stack holds several of), all test
# fixtures whose calls do almost nothing, so the figures are strata's own cost per
# component. N=2 is the smallest valid stack (an orchestrator and an artifact store).
FLAVORS=${STRATA_FLAVORS_DIR:-target/wasm32-wasip2/release}
"$STRATA" alerter flavor register "$FLAVORS/fixture_alerter.wasm" >/dev/null 2>&1
"$STRATA" step-operator flavor register "$FLAVORS/fixture_needy.wasm" >/dev/null 2>&1
"$STRATA" alerter register bench-alerter --flavor=alerter --channel=bench --path="$WORK/alerts" >/dev/null 2>&1
for n in 2 5 15 50; do
    members=(-o default -a default)
    if (( n > 2 )); then members+=(-l bench-alerter); fi
    for ((k = 3; k < n; k++)); do
        "$STRATA" step-operator register "op$n-$k" --flavor=needy >/dev/null 2>&1
        members+=(-s "op$n-$k")
    done
    "$STRATA" stack register "scale$n" "${members[@]}" >/dev/null 2>&1
    "$STRATA" stack set "scale$n" >/dev/null 2>&1
    # up: status, provision and resume of every component, from deprovisioned;
    # down --force: suspend and deprovision of every component, from running.
    rows+=("$(PRE="'$STRATA' stack down --force" measure "strata stack up ($n components)" "$STRATA" stack up)")
    rows+=("$(PRE="'$STRATA' stack up" measure "strata stack down --force ($n components)" "$STRATA" stack down --force)")
done
"$STRATA" stack set default >/dev/null 2>&1

# The same commands while a daemon serves the home: the CLI sends its command line to
# the daemon over loopback instead of opening the store and loading flavors itself.
"$STRATA" daemon start >/dev/null 2>&1
rows+=("$(measure 'strata stack list (through the daemon)' "$STRATA" stack list)")
rows+=("$(measure 'strata artifact-store flavor list (through the daemon)' "$STRATA" artifact-store flavor list)")
rows+=("$(measure 'strata stack describe (through the daemon)' "$STRATA" stack describe)")
rows+=("$(measure 'strata artifact-store register (through the daemon)' "$STRATA" artifact-store register d@N@ --flavor=local --path="$WORK/d@N@")")
rows+=("$(measure 'strata stack register (through the daemon)' "$STRATA" stack register dk@N@ -o default -a default)")
"$STRATA" stack set scale15 >/dev/null 2>&1
rows+=("$(PRE="'$STRATA' stack down --force" measure "strata stack up (15 components, through the daemon)" "$STRATA" stack up)")
"$STRATA" stack set default >/dev/null 2>&1
"$STRATA" daemon stop >/dev/null 2>&1

base=$(echo "${rows[0]}" | awk '{print $(NF-2)}')
{
    printf 'strata bench, %s, %s runs each, %s (%s cores)\n' "$(date -u +%Y-%m-%d)" "$RUNS" "$(uname -m)" "$(nproc)"
    printf 'binary: %s (%s MiB)\n\n' "$STRATA" "$(( $(stat -c %s "$STRATA") / 1048576 ))"
    printf '| %-58s | %10s | %10s | %10s | %9s |\n' command 'median ms' 'p95 ms' 'x /bin/true' 'peak RSS MiB'
    printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..60})" "------------" "------------" "------------" "-----------"
    for r in "${rows[@]}"; do
        rss=${r##* }; rest=${r% *}; p95=${rest##* }; rest=${rest% *}; med=${rest##* }; label=${rest% *}
        awk -v l="$label" -v m="$med" -v p="$p95" -v b="$base" -v r="$rss" 'BEGIN { printf "| %-58s | %10.2f | %10.2f | %10.1f | %9.1f |\n", l, m/1000, p/1000, m/b, r/1024 }'
    done
} | tee "$OUT"
