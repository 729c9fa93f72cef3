#!/usr/bin/env python3
"""Two strata binaries side by side: each command run N times by each, interleaved
(before, after, after, before, ...) so that a noisy machine slows both alike, each on
its own throwaway home; in-process, then with each home served by its own daemon.
Prints the median wall time of each and the ratio after/before.

    scripts/compare.py OLD_STRATA NEW_STRATA [N]
"""
import os, subprocess, statistics, sys, tempfile, time
B, A = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 40
env0 = dict(os.environ, NO_COLOR="1")
homes = {}
for name, binp in (("before", B), ("after", A)):
    h = tempfile.mkdtemp(prefix=f"ib-{name}-")
    homes[name] = (binp, h)
    e = dict(env0, STRATA_HOME=h)
    subprocess.run([binp, "init"], env=e, capture_output=True, check=True)
def run(binp, h, args):
    e = dict(env0, STRATA_HOME=h)
    t = time.perf_counter()
    r = subprocess.run([binp] + args, env=e, capture_output=True)
    dt = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        raise SystemExit(f"{binp} {args}: {r.stderr.decode()}")
    return dt
cmds = [["stack", "list"], ["artifact-store", "flavor", "list"], ["stack", "describe"],
        ["artifact-store", "describe", "default"], ["secret", "list"]]
def measure(label):
    print(f"\n{label}: median ms of {N} interleaved runs")
    print(f"| {'command':40} | /bin/true | before | after | after/before |")
    for c in [["true"]] + cmds:
        tb, ta, tt = [], [], []
        for i in range(N):
            for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
                binp, h = homes[name]
                if c == ["true"]:
                    t = time.perf_counter(); subprocess.run(["/bin/true"]); d = (time.perf_counter() - t) * 1000
                    tt.append(d); continue
                (tb if name == "before" else ta).append(run(binp, h, c))
        if c == ["true"]:
            print(f"| {'/bin/true':40} | {statistics.median(tt):9.2f} |")
            continue
        mb, ma = statistics.median(tb), statistics.median(ta)
        print(f"| strata {' '.join(c):33} |           | {mb:6.2f} | {ma:5.2f} | {ma/mb:12.2f} |")
def lifecycle(label):
    print(f"\n{label}: median ms of {N} interleaved runs")
    ups = {"before": [], "after": []}
    downs = {"before": [], "after": []}
    for i in range(N):
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            binp, h = homes[name]
            ups[name].append(run(binp, h, ["stack", "up"]))
            downs[name].append(run(binp, h, ["stack", "down", "--force"]))
    for what, d in (("stack up (2 components)", ups), ("stack down --force", downs)):
        mb, ma = statistics.median(d["before"]), statistics.median(d["after"])
        print(f"| strata {what:33} |           | {mb:6.2f} | {ma:5.2f} | {ma/mb:12.2f} |")

measure("in-process"); lifecycle("in-process")
daemons = []
for name, (binp, h) in homes.items():
    e = dict(env0, STRATA_HOME=h)
    subprocess.run([binp, "daemon", "start"], env=e, capture_output=True, check=True)
try:
    for name, (binp, h) in homes.items():
        run(binp, h, ["stack", "list"])
    measure("through the daemon"); lifecycle("through the daemon")
finally:
    for name, (binp, h) in homes.items():
        subprocess.run([binp, "daemon", "stop"], env=dict(env0, STRATA_HOME=h), capture_output=True)
