#!/usr/bin/env bash
# The MNIST-M rows of the results (docs/results.md#mnist-m): the domain-shift table of Ganin &
# Lempitsky (2015) on this project's MNIST-M. One network (configs/mnistm_cnn.json, 3 input
# channels) trained on MNIST-M and on MNIST (gray repeated in three channels), SEEDS each, and each
# model tested on both test sets.
#
#   scripts/domain_shift.sh                 # seeds 1 2 3, runs in runs/domain_shift
#   SEEDS="1" OUT=/tmp/ds scripts/domain_shift.sh
#
# Builds data/mnist-m first when it is missing (mnist-mnistm; needs Debian's
# plasma-workspace-wallpapers). A finished run is kept and counted again. Prints a Markdown table and
# writes it to $OUT/domain_shift.md. About 6 minutes per seed on 2 cores.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
SEEDS=${SEEDS:-"1 2 3"}
OUT=${OUT:-runs/domain_shift}

scripts/build.sh mnist-train mnist-eval mnist-mnistm >/dev/null
[ -d data/mnist-m ] || build/bin/mnist-mnistm --out data/mnist-m
mkdir -p "$OUT"

train() {  # name, seed, extra args...
  local dir="$OUT/$1-seed$2" seed=$2
  shift 2
  [ -f "$dir/metrics.json" ] || build/bin/mnist-train --config configs/mnistm_cnn.json --set "seed=$seed" \
    "$@" --run-dir "$dir" >"$dir.log" 2>&1 || { echo "error: training $dir failed: see $dir.log" >&2; exit 1; }
}
accuracy() {  # run folder, --set arguments for the test set
  local run=$1
  shift
  build/bin/mnist-eval --run "$run" "$@" --json | python3 -c 'import json,sys; print(100 * json.load(sys.stdin)["test_accuracy"])'
}

on_mnist=(--set data.dataset=mnist --set "data.dir=$repo/data/mnist")
on_mnistm=(--set data.dataset=folder --set "data.dir=$repo/data/mnist-m")
: >"$OUT/accuracies.tsv"
for seed in $SEEDS; do
  echo "domain_shift: seed $seed" >&2
  train mnistm "$seed"
  train mnist "$seed" "${on_mnist[@]}"
  for trained in mnist mnistm; do
    run="$OUT/$trained-seed$seed"
    printf '%s\tmnist\t%s\n' "$trained" "$(accuracy "$run" "${on_mnist[@]}")" >>"$OUT/accuracies.tsv"
    printf '%s\tmnistm\t%s\n' "$trained" "$(accuracy "$run" "${on_mnistm[@]}")" >>"$OUT/accuracies.tsv"
  done
done

python3 - "$OUT/accuracies.tsv" "$SEEDS" >"$OUT/domain_shift.md" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
def cell(trained, tested):
    v = [float(a) for t, s, a in rows if t == trained and s == tested]
    spread = f" ± {statistics.stdev(v):.2f}" if len(v) > 1 else ""
    return f"{statistics.mean(v):.2f}{spread}"
names = {"mnist": "MNIST", "mnistm": "MNIST-M"}
print(f"| trained on \\ tested on | MNIST | MNIST-M |\n|---|---|---|")
for t in ("mnist", "mnistm"):
    print(f"| {names[t]} | {cell(t, 'mnist')} | {cell(t, 'mnistm')} |")
print(f"\nTest accuracy in %, mean ± standard deviation over seeds {sys.argv[2]}; configs/mnistm_cnn.json.")
PY
cat "$OUT/domain_shift.md"
