"""Fits y = a*x + b to data.csv by least squares; writes model.json."""
import csv
import json
import os

with open("data.csv") as f:
    points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
n = len(points)
mx = sum(x for x, _ in points) / n
my = sum(y for _, y in points) / n
a = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
b = my - a * mx
with open("model.json", "w") as f:
    json.dump({"a": a, "b": b, "seed": os.environ["SEED"], "run": os.environ["STRATA_RUN_ID"]}, f)
print(f"trained on {n} rows: y = {a:.3f}x + {b:.3f}")
