#!/usr/bin/env python3
"""scripts/sweep.py end to end on real MNIST (the tutorial MLP, 1-2 epochs a trial): bad sweep files
refused before any study exists; a failing trial recorded with its error while the sweep goes on; a grid study with median pruning, continued by a second run;
a pruned trial resumed with mnist-train; Ctrl-C in the middle of a trial and the study continued
from its checkpoint; two workers on one SQLite study; the best config retrained to the value the
sweep reported. Usage: test_sweep.py BIN_DIR. Skips (exit 77) without real MNIST or Optuna,
unless MNIST_REQUIRE_ALL is set."""

import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
from script_checks import check, failures, skip  # noqa: E402
BIN = Path(sys.argv[1]).resolve()
TRAIN = str(BIN / "mnist-train")
DATA = Path(os.environ.get("MNIST_DATA_DIR", REPO / "data" / "mnist"))
SWEEP = [sys.executable, str(REPO / "scripts" / "sweep.py")]


def sweep(*args, timeout=600):
    return subprocess.run(SWEEP + [*args, "--train", TRAIN, "--set", f"data.dir={DATA}"],
                          capture_output=True, text=True, timeout=timeout)


def write(path, content):
    path.write_text(json.dumps(content, indent=1))
    return str(path)


def rows(out):
    with open(Path(out) / "trials.csv") as f:
        return list(csv.DictReader(f))


def study(out, name):
    import optuna
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out}/study.db")


try:
    import optuna  # noqa: F401
except ImportError:
    skip("no Optuna (scripts/install_deps.sh installs python3-optuna)")
if not (DATA / "train-images-idx3-ubyte").exists() and not (DATA / "train-images-idx3-ubyte.gz").exists():
    skip(f"no MNIST in {DATA} (scripts/fetch_mnist.sh)")

work = Path(tempfile.mkdtemp(prefix="mnist-sweep-"))
base = str(REPO / "configs" / "mnist_mlp_seed.json")
good = {"base": base, "set": {"train.epochs": 2},
        "space": {"optim.lr": {"type": "categorical", "choices": [0.002, 1e-7, 0.001, 3e-8]}},
        "objective": {"column": "val_accuracy", "direction": "maximize"}, "trials": 4,
        "sampler": "grid", "seed": 3, "pruner": {"type": "median", "startup_trials": 1, "warmup_epochs": 0}}

# Bad sweep files: one error line naming the key, exit 2, no study.
bad_cases = {
    "unknown top-level key": ({**good, "trails": 4}, "trails"),
    "unknown config key": ({**good, "sampler": "tpe", "space": {"optim.lrr": {"type": "float", "low": 0.001, "high": 0.01}}}, "optim.lrr"),
    "empty range": ({**good, "sampler": "tpe", "space": {"optim.lr": {"type": "float", "low": 0.01, "high": 0.01}}}, "optim.lr"),
    "empty choices": ({**good, "space": {"train.batch_size": {"type": "categorical", "choices": []}}}, "train.batch_size"),
    "bad objective": ({**good, "objective": {"column": "val_acc"}}, "objective.column"),
    "a value the schema refuses": ({**good, "space": {"train.batch_size": {"type": "categorical", "choices": [32, -4]}}}, "train.batch_size"),
}
for what, (content, named) in bad_cases.items():
    out = work / ("bad-" + what.replace(" ", "-"))
    p = sweep(write(work / "bad.json", content), "--out", str(out))
    lines = p.stderr.strip().splitlines()
    check(p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and named in lines[0]
          and not out.exists(), f"bad sweep ({what}): exit {p.returncode}, {lines}, study made: {out.exists()}")

# A grid study of 4 trials in two runs: the second continues the first and repeats nothing.
grid_file = write(work / "grid.json", good)
out = work / "grid"
first = sweep(grid_file, "--out", str(out), "--trials", "2")
check(first.returncode == 0, f"first run exit {first.returncode}: {first.stderr[-2000:]}")
started_first = [l for l in first.stdout.splitlines() if "->" in l]
histories = {p: p.stat().st_mtime_ns for p in out.glob("trials/*/history.csv")}
second = sweep(grid_file, "--out", str(out))
check(second.returncode == 0, f"second run exit {second.returncode}: {second.stderr[-2000:]}")
started_second = [l for l in second.stdout.splitlines() if "->" in l]
check(len(started_first) == 2 and len(started_second) == 2 and
      all(l.startswith(("trial 2:", "trial 3:")) for l in started_second),
      f"the second run ran only the new trials: {started_second}")
check(all(p.stat().st_mtime_ns == t for p, t in histories.items()), "finished trials' runs untouched")
table = rows(out)
check(len(table) == 4 and len({r["run_folder"] for r in table}) == 4 and
      all(Path(r["run_folder"]).is_dir() for r in table), f"4 trials, each its own run folder: {table}")
check(sorted(float(r["optim.lr"]) for r in table) == sorted([0.002, 1e-7, 0.001, 3e-8]),
      "the grid's 4 points, each once")
pruned = [r for r in table if r["state"] == "pruned"]
tiny = [r for r in table if float(r["optim.lr"]) < 1e-6]
check(all(r["state"] == "pruned" and r["epochs"] == "1" for r in tiny),
      f"the tiny rates pruned after their first epoch: {[(r['optim.lr'], r['state'], r['epochs']) for r in table]}")
check((out / "best_config.json").is_file() and (out / "optimization_history.png").stat().st_size > 10000,
      "best config and the optimisation history written")

# The pruned run stayed resumable: mnist-train finishes it.
if pruned:
    run = pruned[0]["run_folder"]
    p = subprocess.run([TRAIN, "--resume", run], capture_output=True, text=True, timeout=600)
    epochs = len(list(csv.DictReader(open(Path(run) / "history.csv"))))
    check(p.returncode == 0 and epochs == 2, f"pruned run resumed to the end: exit {p.returncode}, {epochs} epochs")

# The best config trains to the value the sweep reported (same seed, same settings: same bits).
best = study(out, "grid").best_trial
p = subprocess.run([TRAIN, "--config", str(out / "best_config.json"), "--run-dir", str(work / "best")],
                   capture_output=True, text=True, timeout=600)
last = list(csv.DictReader(open(work / "best" / "history.csv")))[-1]
check(p.returncode == 0 and float(last["val_accuracy"]) == best.value,
      f"best config retrained: val_accuracy {last['val_accuracy']} against the sweep's {best.value}")

# Ctrl-C in the middle of a trial: the sweep stops (exit 130), the trial keeps its checkpoint, and
# the next run resumes that trial from it instead of starting it again.
slow = {**good, "set": {"train.epochs": 2, "threads": 1}, "sampler": "random", "trials": 1,
        "space": {"optim.lr": {"type": "float", "low": 0.0005, "high": 0.002, "log": True}},
        "pruner": {"type": "none"}}
slow_file = write(work / "slow.json", slow)
out = work / "interrupted"
proc = subprocess.Popen(SWEEP + [slow_file, "--out", str(out), "--train", TRAIN, "--set", f"data.dir={DATA}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
history = out / "trials" / "trial-0000" / "history.csv"
deadline = time.time() + 300
while time.time() < deadline and not (history.exists() and len(history.read_text().splitlines()) >= 2):
    time.sleep(0.05)
proc.send_signal(signal.SIGINT)
stdout, stderr = proc.communicate(timeout=300)
check(proc.returncode == 130 and (out / "trials" / "trial-0000" / "checkpoint.pt").exists(),
      f"Ctrl-C: exit {proc.returncode}, checkpoint kept; {stderr[-500:]}")
again = sweep(slow_file, "--out", str(out))
table = rows(out)
states = sorted(r["state"] for r in table)
resumed = study(out, "slow").trials[-1]
check(again.returncode == 0 and states == ["complete", "interrupted"] and
      resumed.user_attrs.get("resume_of") == 0 and
      resumed.user_attrs.get("run_dir") == str(out / "trials" / "trial-0000") and
      len(list(csv.DictReader(open(history)))) == 2,
      f"the interrupted trial resumed from its checkpoint and finished: {states}, {resumed.user_attrs}")

# A trial that fails is recorded as failed with its error line, and the sweep goes on.
broken = {**slow, "set": {"train.epochs": 1}, "sampler": "grid", "trials": 2,
          "space": {"data.dir": {"type": "categorical", "choices": [str(DATA), str(work / "no-data")]}}}
out = work / "broken"
p = sweep(write(work / "broken.json", broken), "--out", str(out))
table = rows(out)
failed = [r for r in table if r["state"] == "fail"]
check(p.returncode == 0 and sorted(r["state"] for r in table) == ["complete", "fail"] and
      failed and "no-data" in failed[0]["error"] and failed[0]["error"].startswith("error:"),
      f"a failing trial recorded with its error, the other completed: {table}")

# Two workers on one SQLite study never run the same trial, nor draw the same parameters (one
# seed, but each trial seeded by its number).
pair = {**slow, "set": {"train.epochs": 1}, "trials": 4}
pair_file = write(work / "pair.json", pair)
out = work / "pair"
workers = [subprocess.Popen(SWEEP + [pair_file, "--out", str(out), "--train", TRAIN, "--set", f"data.dir={DATA}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
outputs = [w.communicate(timeout=600) for w in workers]
started = [[l.split(":")[0] for l in o.splitlines() if "->" in l] for o, _ in outputs]
all_started = started[0] + started[1]
s = study(out, "pair")
numbers = [t.number for t in s.trials]
folders = [t.user_attrs.get("run_dir") for t in s.trials]
rates = [t.params.get("optim.lr") for t in s.trials]
check(all(w.returncode == 0 for w in workers) and len(all_started) == len(set(all_started)) and
      all(started) and 4 <= len(numbers) <= 5 and len(set(folders)) == len(folders) and
      len(set(rates)) == len(rates) and
      all(t.state.name == "COMPLETE" for t in s.trials),
      f"two workers: {started}, trials {numbers}, {[o[1][-300:] for o in outputs]}")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
subprocess.run(["rm", "-rf", str(work)])
print("all sweep checks passed")
