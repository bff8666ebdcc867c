#!/usr/bin/env python3
"""Per-style accuracy of mnist-predict's JSON lines against a user set's labels.csv.

usage: robustness_table.py LABELS_CSV NAME=PREDICTIONS_JSONL [NAME=PREDICTIONS_JSONL ...]
Prints a Markdown table: one row per style, one column per prediction file, plus the bad files'
error entries. Standard library only.
"""
import csv
import json
import os
import sys


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    labels = {}
    styles = []
    with open(argv[1], newline="") as f:
        for row in csv.DictReader(f):
            labels[row["file"]] = (row["style"], int(row["label"]))
            if row["style"] not in styles:
                styles.append(row["style"])
    columns = []
    for arg in argv[2:]:
        name, path = arg.split("=", 1)
        correct, total, errors = {}, {}, {}
        with open(path) as f:
            for line in f:
                entry = json.loads(line)
                style, label = labels[os.path.basename(entry["path"].rstrip("/"))]
                total[style] = total.get(style, 0) + 1
                if "error" in entry:
                    errors[style] = errors.get(style, 0) + 1
                elif entry["digit"] == label:
                    correct[style] = correct.get(style, 0) + 1
        columns.append((name, correct, total, errors))
    print("| style | images | " + " | ".join(c[0] for c in columns) + " |")
    print("|---|---:|" + "---:|" * len(columns))
    for style in styles:
        n = columns[0][2].get(style, 0)
        if style == "bad":
            cells = [f"{c[3].get(style, 0)}/{n} error entries" for c in columns]
        else:
            cells = [f"{100.0 * c[1].get(style, 0) / max(n, 1):.1f}%" for c in columns]
        print(f"| {style} | {n} | " + " | ".join(cells) + " |")
    good = [s for s in styles if s not in ("bad", "clean")]
    cells = []
    for c in columns:
        right = sum(c[1].get(s, 0) for s in good)
        count = sum(c[2].get(s, 0) for s in good)
        cells.append(f"**{100.0 * right / max(count, 1):.1f}%**")
    count = sum(columns[0][2].get(s, 0) for s in good)
    print(f"| all but clean | {count} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv)
