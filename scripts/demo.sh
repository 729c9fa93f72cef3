#!/usr/bin/env bash
# The walkthrough of ZenML's "Stacks, Components, Flavors" page, with `strata` in place
# of `zenml`, on a throwaway home so it never touches yours.
set -euo pipefail
STRATA=${1:-strata}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
export STRATA_HOME="$(mktemp -d -t strata-demo-XXXXXX)"
STORE_DIR="$(mktemp -d -t strata-demo-store-XXXXXX)"
trap '"$STRATA" daemon stop >/dev/null 2>&1 || true; rm -rf "$STRATA_HOME" "$STORE_DIR"' EXIT
export NO_COLOR=1

run() {
    printf '\n$ strata %s\n' "$*"
    "$STRATA" "$@"
}

echo "STRATA_HOME=$STRATA_HOME (removed at the end)"
run init
run stack list
run artifact-store flavor list
run artifact-store flavor describe local
run artifact-store list
run artifact-store register my_store --flavor=local --path="$STORE_DIR/artifacts"
run stack register my_stack -o default -a my_store
run stack list
run stack set my_stack
run stack up
run stack describe
run artifact-store describe my_store
cat > "$STORE_DIR/pipeline.yaml" <<'YAML'
name: schedule_only
steps:
  - name: load
  - name: train
    upstream: [load]
  - name: evaluate
    upstream: [train]
  - name: report
    upstream: [load]
YAML
# Steps without `run` only order others: the runtime configuration still reaches
# every component, and the orchestrator's schedule is shown.
run pipeline run "$STORE_DIR/pipeline.yaml" --param runtime_param_1=3 --param another_param=luna
run stack down --force
# The same home served by the local daemon: the CLI goes through it by itself.
run daemon start
run stack up
run daemon status
run stack down --force
run daemon stop
run stack set default
run stack delete my_stack
run artifact-store delete my_store
run stack list
# A pipeline that runs, on the default stack: three Python steps passing artifacts
# through the local artifact store. The second run finds every step in the cache.
PIPELINE="$(cd "$(dirname "$0")/../docs/pipeline" && pwd)/pipeline.yaml"
run stack up
run pipeline run "$PIPELINE" --param rows=200 --verbose
run pipeline run "$PIPELINE" --param rows=200
RUN_ID=$("$STRATA" pipeline runs list --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')
run pipeline runs list
run pipeline runs describe "$RUN_ID"
run pipeline runs logs "$RUN_ID" train
run stack down
echo
echo "The demo ran every step; its home is removed now."
