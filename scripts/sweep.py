#!/usr/bin/python3
"""Hyper-parameter sweeps over the configs, on Optuna (Debian's python3-optuna).

    scripts/sweep.py configs/sweeps/mnist_mlp_lr_batch.json [--out DIR] [--storage URL] [--jobs N]

A sweep file (configs/sweeps/*.json, docs/sweeps.md) names a base config, a search space over any
config key, an objective (a history.csv or metrics.json column, maximised or minimised), the number
of trials, the sampler and the pruner. Each trial is one `mnist-train --config BASE --set ...` into
its own run folder under DIR/trials; each epoch's value is reported to Optuna as history.csv grows,
and a trial the pruner stops gets SIGTERM (mnist-train keeps its checkpoint: the run stays
resumable with `mnist-train --resume`) and is recorded as pruned. The study lives in DIR/study.db
(SQLite) unless --storage names another (a PostgreSQL URL works the same, for several machines
sharing one study); running the command again continues it, and trials stopped by Ctrl-C are
resumed from their checkpoints. At the end: the trials table (printed and DIR/trials.csv), the best
trial's config as a normal config file (DIR/best_config.json) and Optuna's plots
(DIR/optimization_history.png, DIR/param_importances.png).

A script rather than an app: Optuna is a Python library (samplers, pruners, storages, plots) with
no C++ interface, and the trials are processes anyway.
"""

import argparse
import csv
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HISTORY_COLUMNS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")
METRICS_COLUMNS = ("test_accuracy", "test_loss", "macro_f1", "macro_precision", "macro_recall")
SWEEP_KEYS = ("description", "base", "set", "space", "objective", "trials", "sampler", "seed",
              "pruner")
INTERRUPTED = 130  # exit status after Ctrl-C


class SweepError(Exception):
    """Bad input: one `error:` line, exit 2, no study touched."""


class TrialFailed(Exception):
    """A trial's mnist-train failed: recorded as failed, the sweep goes on."""


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM to the sweep) reached a running trial."""


# --- the sweep file ---------------------------------------------------------------------------

def load_sweep(path):
    try:
        with open(path) as f:
            sweep = json.load(f)
    except OSError as e:
        raise SweepError(f"{path}: {e.strerror}")
    except json.JSONDecodeError as e:
        raise SweepError(f"{path}: not JSON: {e}")
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep file is a JSON object")
    where = str(path)
    for key in sweep:
        if key not in SWEEP_KEYS:
            raise SweepError(f"{where}: {key}: unknown key (known: {', '.join(SWEEP_KEYS)})")
    for key in ("base", "space", "objective", "trials"):
        if key not in sweep:
            raise SweepError(f"{where}: {key}: missing")
    base = Path(sweep["base"])
    if not base.is_absolute():
        base = (Path(path).parent / base).resolve()
    if not base.is_file():
        raise SweepError(f"{where}: base: no config file {base}")
    sweep["base"] = str(base)
    fixed = sweep.setdefault("set", {})
    if not isinstance(fixed, dict):
        raise SweepError(f"{where}: set: an object of config keys and values")
    space = sweep["space"]
    if not isinstance(space, dict) or not space:
        raise SweepError(f"{where}: space: an object with at least one config key")
    for key, spec in space.items():
        check_dimension(where, key, spec)
    if not isinstance(sweep["trials"], int) or isinstance(sweep["trials"], bool) or sweep["trials"] < 1:
        raise SweepError(f"{where}: trials: a whole number of at least 1")
    check_objective(where, sweep["objective"])
    sampler = sweep.setdefault("sampler", "tpe")
    if sampler not in ("tpe", "random", "grid"):
        raise SweepError(f"{where}: sampler: \"{sampler}\" is not one of tpe, random, grid")
    if sampler == "grid":
        for key, spec in space.items():
            if spec["type"] == "float":
                raise SweepError(f"{where}: space.{key}: the grid sampler needs a categorical or int range")
    seed = sweep.setdefault("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SweepError(f"{where}: seed: a whole number")
    check_pruner(where, sweep.setdefault("pruner", {"type": "median"}))
    return sweep


def check_dimension(where, key, spec):
    name = f"{where}: space.{key}"
    if not isinstance(spec, dict) or "type" not in spec:
        raise SweepError(f"{name}: an object with a type (float, int or categorical)")
    kind = spec["type"]
    allowed = {"float": ("type", "low", "high", "log", "step"), "int": ("type", "low", "high", "log", "step"),
               "categorical": ("type", "choices")}
    if kind not in allowed:
        raise SweepError(f"{name}: type: \"{kind}\" is not one of float, int, categorical")
    for field in spec:
        if field not in allowed[kind]:
            raise SweepError(f"{name}: {field}: unknown field for a {kind} (known: {', '.join(allowed[kind])})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise SweepError(f"{name}: choices: an empty range (give at least one value)")
        return
    for bound in ("low", "high"):
        value = spec.get(bound)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise SweepError(f"{name}: {bound}: a number is needed")
        if kind == "int" and not isinstance(value, int):
            raise SweepError(f"{name}: {bound}: a whole number is needed for an int range")
    if not spec["low"] < spec["high"]:
        raise SweepError(f"{name}: an empty range (low {spec['low']} is not below high {spec['high']})")
    if spec.get("log") and spec["low"] <= 0:
        raise SweepError(f"{name}: a log range needs low > 0")
    if spec.get("log") and spec.get("step") is not None:
        raise SweepError(f"{name}: step and log cannot be combined")


def check_objective(where, objective):
    if not isinstance(objective, dict):
        raise SweepError(f"{where}: objective: an object with column and direction")
    for field in objective:
        if field not in ("column", "direction"):
            raise SweepError(f"{where}: objective.{field}: unknown field (known: column, direction)")
    column = objective.get("column")
    if column not in HISTORY_COLUMNS + METRICS_COLUMNS:
        raise SweepError(f"{where}: objective.column: \"{column}\" is not a history.csv or metrics.json "
                         f"column ({', '.join(HISTORY_COLUMNS + METRICS_COLUMNS)})")
    direction = objective.setdefault(
        "direction", "minimize" if column.endswith("loss") else "maximize")
    if direction not in ("maximize", "minimize"):
        raise SweepError(f"{where}: objective.direction: \"{direction}\" is not maximize or minimize")


def check_pruner(where, pruner):
    if not isinstance(pruner, dict):
        raise SweepError(f"{where}: pruner: an object with a type (median, successive_halving, none)")
    allowed = ("type", "startup_trials", "warmup_epochs", "min_epochs", "reduction_factor", "column")
    for field in pruner:
        if field not in allowed:
            raise SweepError(f"{where}: pruner.{field}: unknown field (known: {', '.join(allowed)})")
    if pruner.get("type", "median") not in ("median", "successive_halving", "none"):
        raise SweepError(f"{where}: pruner.type: \"{pruner['type']}\" is not median, successive_halving or none")
    for field in ("startup_trials", "warmup_epochs", "min_epochs", "reduction_factor"):
        value = pruner.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise SweepError(f"{where}: pruner.{field}: a whole number >= 0")
    column = pruner.get("column")
    if column is not None and column not in HISTORY_COLUMNS:
        raise SweepError(f"{where}: pruner.column: \"{column}\" is not a history.csv column "
                         f"({', '.join(HISTORY_COLUMNS)})")


def set_args(values):
    """--set arguments for mnist-train from {key: value}."""
    args = []
    for key, value in values.items():
        text = json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
        args += ["--set", f"{key}={text}"]
    return args


def resolved_config(train, base, values, where):
    """mnist-train's own resolution of BASE with --set values (its schema checks every key)."""
    proc = subprocess.run([train, "--config", base, *set_args(values), "--print-config"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if l.startswith("error:")] or proc.stderr.splitlines()
        message = lines[-1][len("error:"):].strip() if lines and lines[-1].startswith("error:") else \
            (lines[-1] if lines else f"mnist-train exited with {proc.returncode}")
        raise SweepError(f"{where}: {message}")
    return json.loads(proc.stdout)


def validate_against_schema(sweep, train, where, extra):
    """Every space key at both ends of its range, and the fixed values, through mnist-train."""
    for end in (0, -1):
        values = dict(sweep["set"])
        values.update(extra)
        for key, spec in sweep["space"].items():
            values[key] = spec["choices"][end] if spec["type"] == "categorical" else \
                spec["low" if end == 0 else "high"]
        resolved_config(train, sweep["base"], values, where)


# --- Optuna -------------------------------------------------------------------------------------

def per_trial_seed(optuna, inner, seed):
    """`inner` reseeded from (seed, trial number) before each trial. One seeded stream per worker
    would make two workers on one study propose the same parameters (they start from the same
    seed), and a resumed study replay its first trials; seeded by trial number, trial N draws the
    same whichever worker runs it, and no two trials share a draw."""
    import numpy as np

    class PerTrialSeed(optuna.samplers.BaseSampler):
        def _reseed(self, number):
            state = np.random.RandomState((seed * 1_000_003 + number) % 2**32)
            for sampler in (inner, getattr(inner, "_random_sampler", None)):
                if sampler is not None and hasattr(sampler, "_rng"):
                    sampler._rng = np.random.RandomState(state.randint(2**31))

        def infer_relative_search_space(self, study, trial):
            self._reseed(trial.number)  # called first for every trial
            return inner.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return inner.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return inner.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values):
            inner.after_trial(study, trial, state, values)  # the grid sampler stops a full grid

        def reseed_rng(self):
            inner.reseed_rng()

    return PerTrialSeed()


def make_sampler(optuna, sweep):
    return per_trial_seed(optuna, make_inner_sampler(optuna, sweep), sweep["seed"])


def make_inner_sampler(optuna, sweep):
    kind, seed = sweep["sampler"], sweep["seed"]
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "grid":
        grid = {}
        for key, spec in sweep["space"].items():
            if spec["type"] == "categorical":
                grid[key] = spec["choices"]
            else:
                grid[key] = list(range(spec["low"], spec["high"] + 1, spec.get("step") or 1))
        return optuna.samplers.GridSampler(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(optuna, pruner):
    kind = pruner.get("type", "median")
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=pruner.get("min_epochs", 1), reduction_factor=pruner.get("reduction_factor", 3))
    return optuna.pruners.MedianPruner(n_startup_trials=pruner.get("startup_trials", 3),
                                       n_warmup_steps=pruner.get("warmup_epochs", 1))


def suggest(trial, key, spec):
    if spec["type"] == "categorical":
        return trial.suggest_categorical(key, spec["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(key, spec["low"], spec["high"], step=spec.get("step") or 1,
                                 log=bool(spec.get("log")))
    return trial.suggest_float(key, spec["low"], spec["high"], step=spec.get("step"),
                               log=bool(spec.get("log")))


def read_history(path):
    """history.csv's complete rows (a row being written is left for the next look)."""
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = text.split("\n")
    if len(lines) < 2:
        return []
    complete = lines[:-1]  # the text after the last newline may be a partial row
    rows = list(csv.DictReader(complete))
    return [r for r in rows if r.get("epoch")]


def error_line(log):
    try:
        lines = Path(log).read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    errors = [l for l in lines if l.startswith("error:")]
    return (errors[-1] if errors else (lines[-1] if lines else "no output"))[:500]


class Sweep:
    def __init__(self, sweep, args, optuna):
        self.sweep, self.args, self.optuna = sweep, args, optuna
        self.out = Path(args.out)
        self.children = set()
        self.lock = threading.Lock()
        self.stopping = False
        objective = sweep["objective"]
        self.column = objective["column"]
        self.report_column = self.column if self.column in HISTORY_COLUMNS else \
            sweep["pruner"].get("column", "val_loss" if objective["direction"] == "minimize" else "val_accuracy")
        self.threads = max(1, (os.cpu_count() or 1) // args.jobs)

    def fixed_values(self):
        values = dict(self.sweep["set"])
        if "threads" not in self.sweep["space"] and "threads" not in values:
            values["threads"] = self.threads  # jobs x threads <= cores
        values.update(self.args.set)
        return values

    def stop(self, signum, frame):
        """Ctrl-C: every running trial is stopped as mnist-train stops (checkpoint kept)."""
        self.stopping = True
        with self.lock:
            for child in self.children:
                try:
                    child.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass

    def run_trial(self, trial):
        if self.stopping:
            raise Interrupted("the sweep is stopping")
        resume_dir = trial.user_attrs.get("resume_dir")
        params = {key: suggest(trial, key, spec) for key, spec in self.sweep["space"].items()}
        run_dir = Path(resume_dir) if resume_dir else self.out / "trials" / f"trial-{trial.number:04d}"
        log = self.out / "logs" / f"trial-{trial.number:04d}.log"
        trial.set_user_attr("run_dir", str(run_dir))
        if resume_dir and (run_dir / "checkpoint.pt").exists():
            command = [self.args.train, "--resume", str(run_dir)]
        else:
            values = self.fixed_values()
            values.update(params)
            command = [self.args.train, "--config", self.sweep["base"], *set_args(values),
                       "--run-dir", str(run_dir)]
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"trial {trial.number}: {json.dumps(params)} -> {run_dir}", flush=True)
        with open(log, "a") as log_file:
            child = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # Ctrl-C reaches it through stop()
            with self.lock:
                self.children.add(child)
            try:
                pruned_at = self.watch(trial, child, run_dir / "history.csv")
            finally:
                with self.lock:
                    self.children.discard(child)
        status = child.returncode
        if pruned_at is not None:
            trial.set_user_attr("pruned_at_epoch", pruned_at)
            print(f"trial {trial.number}: pruned after epoch {pruned_at} (resumable: "
                  f"mnist-train --resume {run_dir})", flush=True)
            raise self.optuna.TrialPruned()
        if self.stopping or status == INTERRUPTED:
            trial.set_user_attr("interrupted", True)
            raise Interrupted(f"trial {trial.number} stopped by Ctrl-C (its checkpoint is kept)")
        if status != 0:
            message = error_line(log)
            trial.set_user_attr("error", message)
            print(f"trial {trial.number}: failed: {message}", flush=True)
            raise TrialFailed(message)
        value = self.final_value(run_dir)
        print(f"trial {trial.number}: {self.column} {value:.6g}", flush=True)
        return value

    def watch(self, trial, child, history):
        """Reports each epoch as it is written; SIGTERM when the pruner says so. Returns the epoch
        a pruned trial stopped after, else None."""
        reported = set()
        pruned_at = None
        while True:
            done = child.poll() is not None
            for row in read_history(history):
                epoch = int(row["epoch"])
                if epoch in reported or pruned_at is not None:
                    continue
                reported.add(epoch)
                value = float(row[self.report_column])
                if math.isfinite(value):
                    trial.report(value, epoch)
                if not done and trial.should_prune():
                    pruned_at = epoch
                    child.send_signal(signal.SIGTERM)
            if done:
                return pruned_at
            time.sleep(0.1)

    def final_value(self, run_dir):
        if self.column in HISTORY_COLUMNS:
            rows = read_history(run_dir / "history.csv")
            if not rows:
                raise TrialFailed(f"{run_dir}/history.csv: no epoch")
            return float(rows[-1][self.column])
        with open(run_dir / "metrics.json") as f:
            return float(json.load(f)[self.column])


def counted(optuna, study):
    """Trials that count towards the sweep's number: finished ones (not those Ctrl-C stopped, which
    are run again) and running ones (another worker's)."""
    states = optuna.trial.TrialState
    n = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (states.COMPLETE, states.PRUNED, states.RUNNING):
            n += 1
        elif t.state == states.FAIL and not t.user_attrs.get("interrupted"):
            n += 1
    return n


def requeue_interrupted(optuna, study):
    """Trials that Ctrl-C stopped are enqueued again with their parameters and run folder, and
    resume from their checkpoint."""
    trials = study.get_trials(deepcopy=False)
    taken = {t.user_attrs.get("resume_of") for t in trials}
    for t in trials:
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted") and \
                t.number not in taken:
            study.enqueue_trial(t.params, user_attrs={"resume_of": t.number,
                                                      "resume_dir": t.user_attrs.get("run_dir")})


# --- results ------------------------------------------------------------------------------------

def trial_rows(optuna, study, space):
    rows = []
    for t in study.get_trials(deepcopy=False):
        row = {"trial": t.number, "state": t.state.name.lower()}
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted"):
            row["state"] = "interrupted"
        row["value"] = "" if t.value is None else f"{t.value:.6g}"
        for key in space:
            value = t.params.get(key, "")
            row[key] = f"{value:.4g}" if isinstance(value, float) else value
        row["epochs"] = len(t.intermediate_values)
        row["run_folder"] = t.user_attrs.get("run_dir", "")
        row["error"] = t.user_attrs.get("error", "")
        rows.append(row)
    return rows


def write_results(optuna, study, sweep, args, runner):
    out = Path(args.out)
    rows = trial_rows(optuna, study, sweep["space"])
    if not rows:
        return
    fields = list(rows[0].keys())
    tmp = out / "trials.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "trials.csv")
    shown = [f for f in fields if f != "error" or any(r["error"] for r in rows)]
    print("\n| " + " | ".join(shown) + " |")
    print("|" + "---|" * len(shown))
    for r in rows:
        print("| " + " | ".join(str(r[f]) for f in shown) + " |")
    print(f"\ntable: {out / 'trials.csv'}")

    complete = [t for t in study.get_trials(deepcopy=False)
                if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        print("no trial completed: no best config, no plots")
        return
    best = study.best_trial
    values = runner.fixed_values()
    values.update(best.params)
    values["description"] = (f"Best trial ({best.number}) of the sweep {args.sweep_file}: "
                             f"{sweep['objective']['column']} {best.value:.6g}. Parameters: "
                             f"{json.dumps(best.params)}; base {os.path.relpath(sweep['base'], REPO)}.")
    config = resolved_config(args.train, sweep["base"], values, args.sweep_file)
    tmp = out / "best_config.json.tmp"
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, out / "best_config.json")
    print(f"best: trial {best.number}, {sweep['objective']['column']} {best.value:.6g}, "
          f"{json.dumps(best.params)}\nbest config: {out / 'best_config.json'}")
    plot(optuna, study, out)


def plot(optuna, study, out):
    import warnings
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for name, draw in (("optimization_history", views.plot_optimization_history),
                       ("param_importances", views.plot_param_importances)):
        try:
            ax = draw(study)
            figure = ax.figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            figure.savefig(out / f"{name}.png", dpi=110)
            plt.close(figure)
            print(f"plot: {out / (name + '.png')}")
        except Exception as e:  # e.g. importances need two completed trials that differ
            print(f"plot {name}: not drawn ({e})")


def open_study(optuna, url, name, sweep):
    """Creates or loads the study. Workers started together race to create the storage's tables
    (one of them gets an integrity error): the loser tries again and loads what the winner made.
    SQLite waits up to a minute for a lock instead of failing at once."""
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(10):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
            return optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                       direction=sweep["objective"]["direction"],
                                       sampler=make_sampler(optuna, sweep),
                                       pruner=make_pruner(optuna, sweep["pruner"]))
        except Exception as e:  # sqlalchemy's IntegrityError / OperationalError, or a duplicate name
            if attempt == 9:
                raise SweepError(f"{url}: cannot open the study: {e}".splitlines()[0])
            time.sleep(0.5 + 0.5 * attempt)


# --- main ---------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="Optuna sweep over a config (docs/sweeps.md).")
    p.add_argument("sweep_file", help="the sweep (configs/sweeps/*.json)")
    p.add_argument("--out", help="sweep folder (default: runs/sweeps/<sweep name>)")
    p.add_argument("--storage", help="Optuna storage URL (default: sqlite:///<out>/study.db)")
    p.add_argument("--study-name", help="study name in the storage (default: the sweep's name)")
    p.add_argument("--jobs", type=int, default=1, help="trials run in parallel (threads each: cores / jobs)")
    p.add_argument("--trials", type=int, help="the study's number of trials (default: the sweep file's)")
    p.add_argument("--train", default=str(REPO / "build" / "bin" / "mnist-train"), help="mnist-train")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config value for every trial (e.g. data.dir=...); repeatable")
    p.add_argument("--report-only", action="store_true", help="only print the table, best config and plots")
    args = p.parse_args(argv)
    name = Path(args.sweep_file).stem
    args.out = args.out or str(REPO / "runs" / "sweeps" / name)
    args.study_name = args.study_name or name
    if args.jobs < 1:
        p.error("--jobs: at least 1")
    if args.trials is not None and args.trials < 1:
        p.error("--trials: at least 1")
    fixed = {}
    for item in args.set:
        if "=" not in item:
            p.error(f"--set {item}: KEY=VALUE")
        key, value = item.split("=", 1)
        try:
            fixed[key] = json.loads(value)
        except json.JSONDecodeError:
            fixed[key] = value
    args.set = fixed
    return args


def main(argv):
    args = parse_args(argv)
    try:
        import optuna
    except ImportError:
        print("error: Optuna is not installed (Debian: apt-get install python3-optuna; "
              "scripts/install_deps.sh)", file=sys.stderr)
        return 2
    try:
        sweep = load_sweep(args.sweep_file)
        if args.trials:
            sweep["trials"] = args.trials
        if not os.access(args.train, os.X_OK):
            raise SweepError(f"{args.train}: no mnist-train there (build first, or --train)")
        validate_against_schema(sweep, args.train, args.sweep_file, args.set)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{out / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the sweep prints each trial's fate
    try:
        study = open_study(optuna, storage, args.study_name, sweep)
    except SweepError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (out / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
    runner = Sweep(sweep, args, optuna)
    status = 0
    if not args.report_only:
        requeue_interrupted(optuna, study)
        remaining = sweep["trials"] - counted(optuna, study)
        print(f"study {args.study_name} in {storage}: {len(study.trials)} trials so far, "
              f"{max(remaining, 0)} to run ({args.jobs} at a time, {runner.threads} "
              f"thread{'s' if runner.threads != 1 else ''} each)",
              flush=True)
        previous = {s: signal.signal(s, runner.stop) for s in (signal.SIGINT, signal.SIGTERM)}

        def enough(study, trial):
            if runner.stopping or counted(optuna, study) >= sweep["trials"]:
                study.stop()

        try:
            if remaining > 0:
                study.optimize(runner.run_trial, n_trials=remaining, n_jobs=args.jobs,
                               catch=(TrialFailed,), callbacks=[enough])
        except Interrupted as e:
            print(f"stopped: {e}; run the same command again to continue the study", flush=True)
            status = INTERRUPTED
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        if runner.stopping and status == 0:
            print("stopped; run the same command again to continue the study", flush=True)
            status = INTERRUPTED
    write_results(optuna, study, sweep, args, runner)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
