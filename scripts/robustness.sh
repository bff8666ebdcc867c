#!/usr/bin/env bash
# Measures prediction on realistic user images: writes a user set made from MNIST test digits
# (build/bin/mnist-userset: 13 styles, the same COUNT digits in each, plus one file of every bad
# kind), classifies the whole folder with mnist-predict --json twice (the tutorial's naive resize and
# the project's preprocessing) and prints the per-style accuracy table of docs/prediction.md.
#   usage: scripts/robustness.sh RUN_DIR [COUNT (default 300)] [SEED (default 1)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 RUN_DIR [COUNT] [SEED]" >&2; exit 2; }
run=$1 count=${2:-300} seed=${3:-1}
[ -f "$run/model.pt" ] || { echo "error: $run: not a finished run folder (no model.pt)" >&2; exit 2; }
"$repo/scripts/build.sh" mnist-userset mnist-predict >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$repo/build/bin/mnist-userset" --data "${MNIST_DATA_DIR:-$repo/data/mnist}" --out "$work/images" \
  --count "$count" --seed "$seed" --with-bad-files >&2
for p in naive mnist; do
  # Exit status 1 is expected: the bad files fail (that they fail cleanly is part of the measure).
  "$repo/build/bin/mnist-predict" --run "$run" --no-window --json --preprocess $p "$work/images" \
    >"$work/$p.jsonl" || [ $? -eq 1 ]
done
echo "model: $run ($(python3 -c 'import json,sys; print("%.2f%% on the MNIST test set" % (100*json.load(open(sys.argv[1]))["test_accuracy"]))' "$run/metrics.json"))"
echo
python3 "$repo/scripts/robustness_table.py" "$work/images/labels.csv" \
  "tutorial (naive resize)=$work/naive.jsonl" "mnist-predict=$work/mnist.jsonl"
