#!/usr/bin/env bash
# Starts the real servers of the README's "A stack of real services" on this machine,
# on free ports of 127.0.0.1, and prints the variables that name them:
#
#   eval "$(scripts/servers.sh start)"   # S3_ENDPOINT MLFLOW_URL REGISTRY_URL WEBHOOK_URL
#   scripts/servers.sh stop              # stops them, removes their data
#
# - S3: s3s-fs (checks SigV4 signatures), access key AK, secret key SK;
# - MLflow 3.17.2, sqlite backend (15–50 s to start): skipped if MLFLOW_URL is already
#   set, to use a tracking server you run yourself;
# - an OCI registry: Debian's docker-registry, deletes enabled;
# - a webhook that appends each JSON body it is sent to $STRATA_SERVERS/webhook.jsonl.
# They come from `make servers` (into target/tools/). Their files and pids live in
# STRATA_SERVERS (default: /tmp/strata-servers).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
TOOLS="$HERE/../target/tools"
DIR="${STRATA_SERVERS:-/tmp/strata-servers}"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # URL SECONDS NAME
    for _ in $(seq 1 $(($2 * 4))); do
        if python3 -c "import urllib.request,urllib.error,sys
try: urllib.request.urlopen('$1', timeout=1)
except urllib.error.HTTPError: pass" 2>/dev/null; then
            return 0
        fi
        sleep 0.25
    done
    echo "$3 did not answer at $1 within $2 s; its log is in $DIR" >&2
    exit 1
}

start() {
    for tool in bin/s3s-fs mlflow/bin/mlflow registry/usr/bin/docker-registry; do
        [ -x "$TOOLS/$tool" ] || { echo "$TOOLS/$tool is missing: run \`make servers\`" >&2; exit 1; }
    done
    if [ -s "$DIR/pids" ]; then
        echo "servers from an earlier start are still recorded in $DIR: run \`scripts/servers.sh stop\` first" >&2
        exit 1
    fi
    mkdir -p "$DIR/s3" "$DIR/registry"
    local s3 reg hook mlflow
    s3=$(free_port); reg=$(free_port); hook=$(free_port)
    "$TOOLS/bin/s3s-fs" --host 127.0.0.1 --port "$s3" --access-key AK --secret-key SK "$DIR/s3" \
        >"$DIR/s3.log" 2>&1 & echo $! >"$DIR/pids"
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$DIR/registry" "$reg" >"$DIR/registry.yml"
    "$TOOLS/registry/usr/bin/docker-registry" serve "$DIR/registry.yml" >"$DIR/registry.log" 2>&1 &
    echo $! >>"$DIR/pids"
    python3 "$HERE/webhook-sink.py" "$hook" "$DIR/webhook.jsonl" >"$DIR/webhook.log" 2>&1 &
    echo $! >>"$DIR/pids"
    if [ -z "${MLFLOW_URL:-}" ]; then
        mlflow=$(free_port)
        set -m
        "$TOOLS/mlflow/bin/mlflow" server --host 127.0.0.1 --port "$mlflow" --workers 1 \
            --backend-store-uri "sqlite:///$DIR/mlflow.db" --default-artifact-root "$DIR/mlflow-artifacts" \
            >"$DIR/mlflow.log" 2>&1 &
        echo "-$!" >>"$DIR/pids"
        set +m
        MLFLOW_URL="http://127.0.0.1:$mlflow"
        wait_for "$MLFLOW_URL/health" 180 MLflow
    fi
    wait_for "http://127.0.0.1:$s3/" 20 s3s-fs
    wait_for "http://127.0.0.1:$reg/v2/" 20 docker-registry
    wait_for "http://127.0.0.1:$hook/" 20 "the webhook"
    echo "export S3_ENDPOINT=http://127.0.0.1:$s3"
    echo "export MLFLOW_URL=$MLFLOW_URL"
    echo "export REGISTRY_URL=http://127.0.0.1:$reg"
    echo "export WEBHOOK_URL=http://127.0.0.1:$hook/hook"
}

stop() {
    if [ -f "$DIR/pids" ]; then
        while read -r pid; do kill -TERM -- "$pid" 2>/dev/null || true; done <"$DIR/pids"
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: scripts/servers.sh start|stop" >&2; exit 2 ;;
esac
