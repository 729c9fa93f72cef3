#!/usr/bin/env bash
# The same flavor in Rust, Python and JavaScript (each made by `strata flavor new`):
# build time, .wasm size, time to register (compile + checks + describe), and the cost
# of one lifecycle call (`status`) in a running daemon, measured as a component
# `describe` with live status against the same request without it. Appends a table to
# target/bench.txt.
#
#   scripts/languages.sh [STRATA_BINARY]      (after `make examples`, for the toolchains)
set -euo pipefail
STRATA=${1:-target/release/strata}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d -t strata-languages-XXXXXX)"
trap 'STRATA_HOME="$WORK/home" "$STRATA" daemon stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export NO_COLOR=1

ms() { echo $(( ($2 - $1) / 1000000 )); }

rows=()
for lang in rust python js; do
    dir="$WORK/$lang"
    "$STRATA" flavor new "bench-$lang" --type step-operator --lang "$lang" --dir "$dir" >/dev/null 2>&1
    t0=$(date +%s%N)
    case $lang in
        rust)
            make -s -C "$dir" CARGO_TARGET_DIR="$dir/target" >/dev/null 2>&1
            wasm="$dir/target/wasm32-wasip2/release/bench_rust.wasm" ;;
        python)
            make -s -C "$dir" VENV="$REPO/target/tools/py" >/dev/null
            wasm="$dir/bench_python.wasm" ;;
        js)
            make -s -C "$dir" COMPONENTIZE_JS="$REPO/flavors/examples/js-alerter/node_modules/.bin/componentize-js" >/dev/null
            wasm="$dir/bench_js.wasm" ;;
    esac
    t1=$(date +%s%N)
    build=$(ms "$t0" "$t1")
    size=$(stat -c %s "$wasm")

    export STRATA_HOME="$WORK/home-$lang"
    "$STRATA" init >/dev/null 2>&1
    t0=$(date +%s%N)
    "$STRATA" step-operator flavor register "$wasm" >/dev/null 2>&1
    t1=$(date +%s%N)
    register=$(ms "$t0" "$t1")
    config=()
    if [[ $lang != js ]]; then config=(--path="$WORK/grant-$lang"); fi
    "$STRATA" step-operator register c --flavor="bench-$lang" "${config[@]}" >/dev/null 2>&1
    "$STRATA" step-operator up c >/dev/null 2>&1
    "$STRATA" daemon start >/dev/null 2>&1
    call=$(python3 - "$STRATA_HOME/daemon.json" <<'EOF'
import http.client, json, sys, time
d = json.load(open(sys.argv[1]))
c = http.client.HTTPConnection(d["address"])
h = {"Authorization": "Bearer " + d["token"]}
def median(path, n=200):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", path, headers=h)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        times.append(time.perf_counter() - t)
    times.sort()
    return times[n // 2] * 1e6
median("/api/v1/components/step-operator/c", 20)  # warm: the first call loads the flavor
with_status = median("/api/v1/components/step-operator/c")
without = median("/api/v1/components/step-operator/c?status=false")
print(f"{with_status - without:.0f} {without:.0f}")
EOF
)
    "$STRATA" daemon stop >/dev/null 2>&1
    rows+=("$lang $build $size $register $call")
done

{
    printf '\nthe same flavor in three languages (strata flavor new --type step-operator), %s, %s cores\n\n' "$(date -u +%Y-%m-%d)" "$(nproc)"
    printf '| language | build | .wasm | register (compile, describe) | one `status` call in the daemon | x Rust call |\n'
    printf '|---|---|---|---|---|---|\n'
    rust_call=$(echo "${rows[0]}" | awk '{print $5}')
    for r in "${rows[@]}"; do
        echo "$r" | awk -v base="$rust_call" '{ printf "| %s | %.1f s | %.2f MiB | %.2f s | %d us (request without it: %d us) | %.1f |\n", $1, $2/1000, $3/1048576, $4/1000, $5, $6, $5/base }'
    done
    printf '\nbuild: the project'"'"'s own `make`; Rust from a clean target dir (compiles the SDK, wit-bindgen\nand serde); Python and JavaScript with the toolchain already installed (`make examples`).\nregister and the call: release binary.\n'
} | tee -a target/bench.txt
