"""Scores model.json on data.csv: writes metrics.json with the mean squared error."""
import csv
import json

with open("model.json") as f:
    model = json.load(f)
with open("data.csv") as f:
    points = [(float(r["x"]), float(r["y"])) for r in csv.DictReader(f)]
mse = sum((model["a"] * x + model["b"] - y) ** 2 for x, y in points) / len(points)
with open("metrics.json", "w") as f:
    json.dump({"mse": round(mse, 4), "rows": len(points)}, f)
print(f"mse {mse:.4f} on {len(points)} rows")
