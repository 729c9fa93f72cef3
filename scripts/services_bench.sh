#!/usr/bin/env bash
# The built-in integrations against their real servers (scripts/servers.sh):
# - 64 MiB written and read back through the `s3` flavor (`strata artifact-store put` /
#   `get`, each a fresh process of the release binary: the flavor's calls, the network
#   gate signing every request) against the same transfer by boto3 (`put_object` /
#   `get_object`, and its default `upload_file` / `download_file`) to the same s3s-fs,
#   in the same run, in turns: MiB/s and the ratio;
# - one `status` of each flavor in a running daemon: a component `describe` with live
#   status against the same request without it (median of 50).
# Appends its table to target/bench.txt. boto3 is installed into target/tools/bench.
#
#   scripts/services_bench.sh [STRATA_BINARY]      (after `make servers`)
set -euo pipefail
STRATA=${1:-target/release/strata}
STRATA="$(cd "$(dirname "$STRATA")" && pwd)/$(basename "$STRATA")"
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d -t strata-services-XXXXXX)"
VENV="$REPO/target/tools/bench"
export STRATA_SERVERS="$WORK/servers" NO_COLOR=1 STRATA_HOME="$WORK/home"
cleanup() {
    "$STRATA" daemon stop >/dev/null 2>&1 || true
    "$REPO/scripts/servers.sh" stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! "$VENV/bin/python" -c 'import boto3' 2>/dev/null; then
    python3 -m venv --clear "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check boto3==1.40.40
fi
eval "$("$REPO/scripts/servers.sh" start)"

"$STRATA" init >/dev/null
for i in s3 mlflow oci webhook; do "$STRATA" integration install "$i" >/dev/null; done
"$STRATA" service-connector register minio --type aws --endpoint="$S3_ENDPOINT" \
    --access-key-id=AK --secret-access-key=SK >/dev/null
"$STRATA" artifact-store register bucket --flavor=s3 --bucket=bench --create_bucket=true \
    --connector=minio >/dev/null
"$STRATA" experiment-tracker register tracker --flavor=mlflow --tracking_uri="$MLFLOW_URL" \
    --experiment_name=bench >/dev/null
"$STRATA" container-registry register images --flavor=oci --uri="$REGISTRY_URL" >/dev/null
"$STRATA" alerter register team --flavor=webhook --webhook_url="$WEBHOOK_URL" >/dev/null
"$STRATA" stack register real -o default -a bucket -e tracker -c images -al team --set >/dev/null
"$STRATA" stack up >/dev/null 2>&1

head -c $((64 << 20)) /dev/urandom >"$WORK/64m.bin"
# strata and boto3 take turns, 7 rounds, so that whatever else the machine does falls
# on both alike; each figure is the median of its 7.
read -r strata_put strata_get boto_put boto_get boto_up boto_down < <("$VENV/bin/python" - "$S3_ENDPOINT" "$WORK" "$STRATA" <<'PY'
import subprocess, sys, time, statistics, boto3
from botocore.config import Config
endpoint, work, strata = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="AK",
                  aws_secret_access_key="SK", region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
data = open(f"{work}/64m.bin", "rb").read()
def ms(f):
    t = time.perf_counter(); f(); return (time.perf_counter() - t) * 1000
def run(*args):
    subprocess.run([strata, "artifact-store", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
rows = {k: [] for k in ("sp", "sg", "bp", "bg", "bu", "bd")}
for _ in range(7):
    rows["sp"].append(ms(lambda: run("put", "bucket", f"{work}/64m.bin", "data/64m.bin", "--overwrite")))
    rows["bp"].append(ms(lambda: s3.put_object(Bucket="bench", Key="boto/64m.bin", Body=data)))
    rows["bu"].append(ms(lambda: s3.upload_file(f"{work}/64m.bin", "bench", "boto/up.bin")))
    rows["sg"].append(ms(lambda: run("get", "bucket", "data/64m.bin", f"{work}/back.bin", "--overwrite")))
    rows["bg"].append(ms(lambda: s3.get_object(Bucket="bench", Key="boto/64m.bin")["Body"].read()))
    rows["bd"].append(ms(lambda: s3.download_file("bench", "boto/up.bin", f"{work}/boto.bin")))
assert open(f"{work}/back.bin", "rb").read() == data, "the file read back differs"
print(" ".join(f"{statistics.median(rows[k]):.0f}" for k in ("sp", "sg", "bp", "bg", "bu", "bd")))
PY
)

"$STRATA" daemon start >/dev/null
status_rows=$(python3 - "$STRATA_HOME/daemon.json" <<'PY'
import http.client, json, sys, time
d = json.load(open(sys.argv[1]))
c = http.client.HTTPConnection(d["address"])
h = {"Authorization": "Bearer " + d["token"]}
def median(path, n=50):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        c.request("GET", path, headers=h)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
        times.append(time.perf_counter() - t)
    times.sort()
    return times[n // 2] * 1e3
for t, name, flavor in [("artifact-store", "bucket", "s3"), ("experiment-tracker", "tracker", "mlflow"),
                        ("container-registry", "images", "oci"), ("alerter", "team", "webhook")]:
    path = f"/api/v1/components/{t}/{name}"
    median(path, 5)  # warm: the first call loads the flavor
    with_status = median(path)
    without = median(path + "?status=false")
    print(f"| `{flavor}` | {with_status - without:.1f} ms | {without:.1f} ms |")
PY
)
"$STRATA" daemon stop >/dev/null

mibs() { awk -v ms="$1" 'BEGIN { printf "%.0f", 64000 / ms }'; }
{
    printf '\nthe built-in integrations against their real servers on 127.0.0.1, %s, %s cores\n\n' "$(date -u +%Y-%m-%d)" "$(nproc)"
    printf '| 64 MiB to and from s3s-fs | write | read | x boto3 put_object/get_object (baseline) | x boto3 upload_file/download_file |\n|---|---|---|---|---|\n'
    printf '| strata `artifact-store put` / `get` through the `s3` flavor | %s ms (%s MiB/s) | %s ms (%s MiB/s) | write %.2f, read %.2f | write %.2f, read %.2f |\n' \
        "$strata_put" "$(mibs "$strata_put")" "$strata_get" "$(mibs "$strata_get")" \
        "$(awk -v a="$boto_put" -v b="$strata_put" 'BEGIN{print a/b}')" "$(awk -v a="$boto_get" -v b="$strata_get" 'BEGIN{print a/b}')" \
        "$(awk -v a="$boto_up" -v b="$strata_put" 'BEGIN{print a/b}')" "$(awk -v a="$boto_down" -v b="$strata_get" 'BEGIN{print a/b}')"
    printf '| boto3 `put_object` / `get_object` (baseline) | %s ms (%s MiB/s) | %s ms (%s MiB/s) | 1.00 | |\n' \
        "$boto_put" "$(mibs "$boto_put")" "$boto_get" "$(mibs "$boto_get")"
    printf '| boto3 `upload_file` / `download_file` (threads, 8 MiB parts) | %s ms (%s MiB/s) | %s ms (%s MiB/s) | | 1.00 |\n' \
        "$boto_up" "$(mibs "$boto_up")" "$boto_down" "$(mibs "$boto_down")"
    printf '\nx: throughput as a fraction of the baseline'"'"'s (1.00 = as fast; higher is faster). Median of 7, strata and boto3 in turns;\nstrata'"'"'s figures include starting the process, opening the home and loading the flavor.\n\n'
    printf '| flavor | one `status` call in the daemon (its server included) | the request without it |\n|---|---|---|\n%s\n' "$status_rows"
} | tee -a "$REPO/target/bench.txt"
