#!/usr/bin/env python3
"""Tabulates finished run folders by config: test accuracy mean, spread and range over seeds,
epochs, training seconds (sum of history.csv) and wall seconds of the process (wall_seconds.txt
when scripts/results.sh measured it). Standard library only."""
import argparse
import csv
import json
import os
import statistics
import sys


def read_run(run):
    with open(os.path.join(run, "metrics.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run, "history.csv")) as f:
        history = list(csv.DictReader(f))
    wall = None
    wall_file = os.path.join(run, "wall_seconds.txt")
    if os.path.exists(wall_file):
        with open(wall_file) as f:
            wall = float(f.read().strip())
    return {
        "run": run,
        "config": os.path.basename(run.rstrip("/")).rsplit("-seed", 1)[0],
        "dataset": config["data"]["dataset"],
        "model": config["model"]["type"],
        "seed": config["seed"],
        "accuracy": metrics["test_accuracy"],
        "epochs": len(history),
        "train_seconds": sum(float(h["seconds"]) for h in history),
        "wall_seconds": wall,
    }


def summarise(rows):
    groups = {}
    for r in rows:
        groups.setdefault(r["config"], []).append(r)
    out = []
    for name, rs in groups.items():
        acc = [100 * r["accuracy"] for r in rs]
        walls = [r["wall_seconds"] for r in rs if r["wall_seconds"] is not None]
        out.append({
            "config": name,
            "dataset": rs[0]["dataset"],
            "model": rs[0]["model"],
            "seeds": [r["seed"] for r in rs],
            "accuracy_mean": statistics.mean(acc),
            "accuracy_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "accuracy_min": min(acc),
            "accuracy_max": max(acc),
            "accuracies": acc,
            "epochs": statistics.median(r["epochs"] for r in rs),
            "train_seconds_median": statistics.median(r["train_seconds"] for r in rs),
            "wall_seconds_median": statistics.median(walls) if walls else None,
        })
    return out


def markdown(summary):
    lines = [
        "| config | data set | model | seeds | test accuracy % (mean ± sd) | min – max | epochs "
        "| training s (median) | wall s (median) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        wall = f"{s['wall_seconds_median']:.1f}" if s["wall_seconds_median"] is not None else "–"
        lines.append(
            f"| `{s['config']}` | {s['dataset']} | {s['model']} | {len(s['seeds'])} "
            f"| {s['accuracy_mean']:.2f} ± {s['accuracy_sd']:.2f} "
            f"| {s['accuracy_min']:.2f} – {s['accuracy_max']:.2f} | {s['epochs']:g} "
            f"| {s['train_seconds_median']:.1f} | {wall} |")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("runs", nargs="+", help="finished run folders")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--json", help="write the summary here")
    a = p.parse_args()
    rows = []
    for run in a.runs:
        if not os.path.exists(os.path.join(run, "metrics.json")):
            print(f"error: {run}: not a finished run folder (no metrics.json)", file=sys.stderr)
            return 1
        rows.append(read_run(run))
    summary = summarise(rows)
    table = markdown(summary)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": rows, "summary": summary}, f, indent=2)
    if not a.markdown:
        sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
