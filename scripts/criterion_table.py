#!/usr/bin/env python3
"""Prints criterion's medians for one benchmark group as a table of ratios to a baseline
measured in the same run, and appends it to target/bench.txt.

    scripts/criterion_table.py GROUP BASELINE [--also BASELINE2] "bench=label" "bench_a-bench_b=label" ...

A row `a-b` is the difference of two medians, e.g. the part of a request that one call is.

Reads target/criterion/GROUP/BENCH/new/estimates.json (written by `cargo bench`).
"""
import json
import os
import sys


def median_ns(group, bench):
    path = os.path.join("target", "criterion", group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            est = json.load(f)
    except OSError as e:
        sys.exit(f"{path}: {e}; run `cargo bench --bench {group}` first")
    m = est["median"]
    return m["point_estimate"], m["confidence_interval"]["lower_bound"], m["confidence_interval"]["upper_bound"]


def show(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    group, baseline, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
    # A second baseline, `--also BENCH`: a second column of ratios.
    also = None
    if rows and rows[0] == "--also":
        also, rows = rows[1], rows[2:]
    base, _, _ = median_ns(group, baseline)
    base2 = median_ns(group, also)[0] if also else None
    extra = f" x {also} |" if also else ""
    out = [
        "",
        f"one lifecycle call, in process (criterion, `cargo bench --bench {group}`)",
        "",
        f"| step | median | 95% interval | x {baseline} |{extra}",
        "|---|---|---|---|" + ("---|" if also else ""),
    ]
    for row in rows:
        bench, label = row.split("=", 1)
        if "-" in bench:
            # A difference of two medians (what one part of a step costs): no interval.
            a, b = bench.split("-", 1)
            m = median_ns(group, a)[0] - median_ns(group, b)[0]
            interval = "(a difference)"
        else:
            m, lo, hi = median_ns(group, bench)
            interval = f"{show(lo)} to {show(hi)}"
        ratio2 = f" {m / base2:,.2f} |" if base2 else ""
        out.append(f"| {label} | {show(m)} | {interval} | {m / base:,.0f} |{ratio2}")
    text = "\n".join(out) + "\n"
    print(text, end="")
    os.makedirs("target", exist_ok=True)
    with open(os.path.join("target", "bench.txt"), "a") as f:
        f.write(text)


if __name__ == "__main__":
    main()
