"""Writes data.csv: `rows` points on the line y = 3x + 2, with a little noise."""
import argparse
import random

parser = argparse.ArgumentParser()
parser.add_argument("--rows", type=int, default=100)
rows = parser.parse_args().rows
random.seed(7)
with open("data.csv", "w") as f:
    f.write("x,y\n")
    for i in range(rows):
        x = i / 10
        f.write(f"{x},{3 * x + 2 + random.uniform(-0.5, 0.5):.4f}\n")
print(f"loaded {rows} rows into data.csv")
