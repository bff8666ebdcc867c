#!/usr/bin/env bash
# The results table (docs/results.md), re-runnable by anyone: trains each config with several seeds, one
# run after another (so timings are not shared with another run), then tabulates test accuracy
# (mean, spread, range), epochs and times from the run folders.
#
#   scripts/results.sh                       # every configs/*.json but mnistm_cnn, seeds 1 2 3
#   scripts/results.sh configs/mnist_cnn.json configs/mnist_cnn_fast.json
#   SEEDS="1 2 3 4 5" OUT=runs/results scripts/results.sh
#
# Runs go to $OUT/<config>-seed<S> (default OUT=runs/results). A finished run is kept and counted
# again, an interrupted one resumed, so the script can be stopped and started again. Output:
# $OUT/results.md (the table) and $OUT/results.json.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
SEEDS=${SEEDS:-"1 2 3"}
OUT=${OUT:-runs/results}

configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  # Every shipped config but MNIST-M's, whose rows scripts/domain_shift.sh makes (with its data).
  for c in configs/*.json; do [ "$c" = configs/mnistm_cnn.json ] || configs+=("$c"); done
fi
for c in "${configs[@]}"; do
  [ -f "$c" ] || { echo "error: $c: no such config" >&2; exit 2; }
done

scripts/build.sh mnist-train >/dev/null
mkdir -p "$OUT"
# A private copy of the binary: rebuilding during an hour of runs must not change them.
train="$OUT/.mnist-train"
cp build/bin/mnist-train "$train"
runs=()
for c in "${configs[@]}"; do
  name=$(basename "$c" .json)
  for s in $SEEDS; do
    dir="$OUT/$name-seed$s"
    runs+=("$dir")
    if [ -f "$dir/metrics.json" ]; then
      echo "results: $dir finished already"
      continue
    fi
    start=$(date +%s%N)
    if [ -f "$dir/config.json" ]; then
      echo "results: resuming $dir"
      "$train" --resume "$dir" >"$OUT/$name-seed$s.log" 2>&1
    else
      echo "results: $c seed $s -> $dir"
      "$train" --config "$c" --set "seed=$s" --run-dir "$dir" >"$OUT/$name-seed$s.log" 2>&1
    fi
    # Wall time of the whole process (start, data loading, training, evaluation, figures).
    ms=$((($(date +%s%N) - start) / 1000000))
    printf '%d.%03d\n' $((ms / 1000)) $((ms % 1000)) >"$dir/wall_seconds.txt"
    grep "test accuracy" "$OUT/$name-seed$s.log" | sed "s|^|results: $dir: |"
  done
done

python3 scripts/results_table.py "${runs[@]}" --markdown "$OUT/results.md" --json "$OUT/results.json"
cat "$OUT/results.md"
