#!/usr/bin/env bash
# Pipelines that run, on the default stack of a throwaway home:
# - 20 steps of `true`, each after the one before (20 waves), run by strata with
#   --no-cache, against the same 20 `sh -c true` run one after another by a shell script
#   in the same run: the per-step overhead of strata in ms (median of 7 runs each);
#   and the same pipeline again, every step from the cache;
# - a 64 MiB artifact written by one step and read by the next (through the local
#   artifact store flavor: written to the store after the first step, read back into the
#   second's working directory) against the same two commands with `cp` in between,
#   twice (into the store, out of it).
# Appends its table to target/bench.txt.
#
#   scripts/pipeline_bench.sh [STRATA_BINARY]
set -euo pipefail
STRATA=${1:-target/release/strata}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d -t strata-pipeline-bench-XXXXXX)"
export STRATA_HOME="$WORK/home" NO_COLOR=1
trap 'rm -rf "$WORK"' EXIT
RUNS=7

# Microseconds, without a process of its own (bash 5).
now_us() { echo "${EPOCHREALTIME/./}"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

"$STRATA" stack up >/dev/null
{
    echo "name: trivial"
    echo "steps:"
    for i in $(seq 1 20); do
        echo "  - name: s$i"
        echo "    run: \"true\""
        [ "$i" -gt 1 ] && echo "    upstream: [s$((i - 1))]"
    done
} >"$WORK/trivial.yaml"
cat >"$WORK/shell.sh" <<'SH'
for i in $(seq 1 20); do sh -c true; done
SH
cat >"$WORK/blob.yaml" <<'YAML'
name: blob
steps:
  - name: make
    run: head -c 67108864 /dev/zero > blob.bin
    outputs: [blob.bin]
  - name: use
    run: wc -c < blob.bin > size.txt
    inputs: [make.blob.bin]
    outputs: [size.txt]
YAML
cat >"$WORK/blob.sh" <<'SH'
cd "$1" && head -c 67108864 /dev/zero > blob.bin && cp blob.bin store.bin && cp store.bin in.bin && wc -c < in.bin > size.txt
SH

time_us() {
    local t0 t1
    t0=$(now_us)
    "$@" >/dev/null 2>&1
    t1=$(now_us)
    echo $((t1 - t0))
}

strata_us=() shell_us=() cached_us=() blob_us=() cp_us=()
"$STRATA" pipeline run "$WORK/trivial.yaml" >/dev/null 2>&1  # warm: compiled flavors
for _ in $(seq 1 $RUNS); do
    strata_us+=("$(time_us "$STRATA" pipeline run "$WORK/trivial.yaml" --no-cache)")
    shell_us+=("$(time_us sh "$WORK/shell.sh")")
    cached_us+=("$(time_us "$STRATA" pipeline run "$WORK/trivial.yaml")")
    mkdir -p "$WORK/cp"
    blob_us+=("$(time_us "$STRATA" pipeline run "$WORK/blob.yaml" --no-cache)")
    cp_us+=("$(time_us sh "$WORK/blob.sh" "$WORK/cp")")
done
s=$(printf '%s\n' "${strata_us[@]}" | median)
b=$(printf '%s\n' "${shell_us[@]}" | median)
c=$(printf '%s\n' "${cached_us[@]}" | median)
k=$(printf '%s\n' "${blob_us[@]}" | median)
p=$(printf '%s\n' "${cp_us[@]}" | median)
# A bare `strata` process (no pipeline): what every command pays once.
one=()
for _ in $(seq 1 $RUNS); do one+=("$(time_us "$STRATA" stack get)"); done
o=$(printf '%s\n' "${one[@]}" | median)
{
    echo
    echo "## pipelines (median of $RUNS, $(date -u +%F))"
    echo
    echo "| what | strata | baseline | figure |"
    echo "|---|---|---|---|"
    awk -v s="$s" -v b="$b" -v o="$o" 'BEGIN {printf "| 20 steps of `true`, in sequence | %.1f ms | %.1f ms (shell script) | **%.2f ms per step** over the shell (%.2f ms without the %.1f ms a strata process costs once) |\n", s/1000, b/1000, (s-b)/20000, (s-b-o)/20000, o/1000}'
    awk -v c="$c" -v b="$b" 'BEGIN {printf "| the same, all 20 cached | %.1f ms | %.1f ms (shell script) | %.2f ms per step |\n", c/1000, b/1000, c/20000}'
    awk -v k="$k" -v p="$p" 'BEGIN {printf "| 64 MiB artifact from one step to the next | %.1f ms | %.1f ms (the commands with two `cp`) | %.2f× the time |\n", k/1000, p/1000, k/p}'
} | tee -a "$REPO/target/bench.txt"
