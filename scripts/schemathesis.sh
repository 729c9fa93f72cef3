#!/usr/bin/env bash
# schemathesis (PyPI) against a real daemon on a throwaway home: every operation in
# runtime/server/src/openapi.json but `POST /api/v1/daemon/stop` (it would end the run;
# tests/it/daemon.rs covers it) and `POST /api/v1/pipelines/run` (it runs the steps'
# shell commands as the daemon's user, by design: fuzzing it is running random shell;
# tests/it/runs.rs covers it), every check, a fixed seed and a bounded number of
# examples per operation. Any failure fails the run. Installs schemathesis into
# target/tools/schemathesis with the machine's python3 the first time.
#
#   scripts/schemathesis.sh target/debug/strata [MAX_EXAMPLES]
set -euo pipefail
STRATA=${1:-target/debug/strata}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
EXAMPLES=${2:-${SCHEMATHESIS_EXAMPLES:-150}}
SEED=${SCHEMATHESIS_SEED:-20261201}
VERSION=4.32.5
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$HERE/../target/tools/schemathesis"

if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $VERSION"; then
    echo "installing schemathesis $VERSION into $VENV"
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

HOME_DIR="$(mktemp -d -t strata-schemathesis-XXXXXX)"
REPORT="$HERE/../target/schemathesis-report"
rm -rf "$REPORT"
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        wait "$pid" || true
    fi
    rm -rf "$HOME_DIR"
}
trap cleanup EXIT

# schemathesis sends absolute paths of its own making (backup files, integration
# directories, grants). Run as root, the daemon runs as `nobody`, so that none of them
# can land where only root may write.
RUN=()
chmod 0755 "$HOME_DIR"
mkdir -p "$HOME_DIR/home"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chown nobody "$HOME_DIR/home"
    RUN=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups --)
    if ! "${RUN[@]}" test -x "$STRATA"; then
        # The binary must be reachable by nobody.
        install -m 0755 "$STRATA" "$HOME_DIR/strata"
        STRATA="$HOME_DIR/strata"
    fi
fi
"${RUN[@]}" env STRATA_HOME="$HOME_DIR/home" HOME="$HOME_DIR/home" \
    "$STRATA" daemon start --foreground --port 0 >"$HOME_DIR/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    [ -s "$HOME_DIR/home/daemon.json" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$HOME_DIR/daemon.log"; exit 1; }
    sleep 0.1
done
read -r ADDR TOKEN < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["address"], d["token"])' "$HOME_DIR/home/daemon.json")

# hypothesis keeps its example database (`.schemathesis/`) in the working directory.
cd "$HERE/../target"
started=$(date +%s)
status=0
"$VENV/bin/schemathesis" --config-file "$HERE/schemathesis.toml" run \
    "http://$ADDR/api/v1/openapi.json" \
    --url "http://$ADDR" \
    --header "Authorization: Bearer $TOKEN" \
    --checks all \
    --exclude-path /api/v1/daemon/stop \
    --exclude-path /api/v1/pipelines/run \
    --seed "$SEED" \
    --max-examples "$EXAMPLES" \
    --workers 1 \
    --request-timeout 30 \
    --report ndjson --report-dir "$REPORT" \
    --no-color || status=$?
elapsed=$(( $(date +%s) - started ))
# Requests as schemathesis recorded them, and as the daemon counted them.
sent=$(python3 -c 'import glob, json, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.ndjson"):
    for line in open(f):
        event = json.loads(line)
        n += len(event.get("ScenarioFinished", {}).get("recorder", {}).get("interactions", {}))
print(n)' "$REPORT")
served=$(python3 -c 'import json, sys, urllib.request
r = urllib.request.Request("http://" + sys.argv[1] + "/api/v1/daemon", headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.load(urllib.request.urlopen(r, timeout=10))["requests"])' "$ADDR" "$TOKEN" 2>/dev/null || echo '?')
echo "schemathesis $VERSION: exit $status, $sent requests recorded ($served served by the daemon) in ${elapsed} s; seed $SEED, at most $EXAMPLES examples per operation; report in $REPORT"
if ! kill -0 "$pid" 2>/dev/null; then
    echo "the daemon died during the run:"; tail -n 40 "$HOME_DIR/daemon.log"; exit 1
fi
if [ "$status" != 0 ]; then
    echo "the daemon's log ends:"; tail -n 40 "$HOME_DIR/daemon.log"
fi
exit "$status"
