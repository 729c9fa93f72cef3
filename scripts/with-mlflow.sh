#!/usr/bin/env bash
# Runs a command with an MLflow tracking server on a free loopback port, started once
# for the whole command (it takes 15–50 s to start on 2 cores), and stopped after it.
# The command sees its URL as STRATA_TEST_MLFLOW; tests that need MLflow use it (and
# start one of their own if it is not set). MLflow comes from `make servers`.
#
#   scripts/with-mlflow.sh make-or-cargo-command ARGS…
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MLFLOW="$HERE/../target/tools/mlflow/bin/mlflow"
[ -x "$MLFLOW" ] || { echo "$MLFLOW is missing: run \`make servers\`" >&2; exit 1; }
DIR="$(mktemp -d -t strata-mlflow-XXXXXX)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
started=$(date +%s%N)
# Its own process group, so that its workers stop with it.
set -m
"$MLFLOW" server --host 127.0.0.1 --port "$PORT" --workers 1 \
    --backend-store-uri "sqlite:///$DIR/mlflow.db" --default-artifact-root "$DIR/artifacts" \
    >"$DIR/log" 2>&1 &
pid=$!
set +m
cleanup() {
    kill -TERM -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
up=
for _ in $(seq 1 240); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=1)" 2>/dev/null; then
        up=1; break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "MLflow did not start:" >&2; tail -20 "$DIR/log" >&2; exit 1
    fi
    sleep 0.5
done
[ -n "$up" ] || { echo "MLflow did not answer on /health within 120 s:" >&2; tail -20 "$DIR/log" >&2; exit 1; }
echo "MLflow is up on http://127.0.0.1:$PORT (started in $(( ($(date +%s%N) - started) / 1000000 )) ms)"
export STRATA_TEST_MLFLOW="http://127.0.0.1:$PORT"
"$@"
