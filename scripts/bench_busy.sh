#!/usr/bin/env bash
# Training on a busy machine, side by side with the Python peer under the same load: the tutorial
# recipe (configs/mnist_mlp_seed.json, 2 threads) while 0, 1 and 2 other processes keep cores busy
# (shell busy loops, as a compiler or another job would). Figures are training images/s of the
# second epoch (the first warms caches and allocators), for:
#   ours        the default configuration (train.adaptive_threads on)
#   ours fixed  adaptive_threads off: always 2 threads (the behaviour before the governor)
#   ours 1t     threads=1
#   Python      scripts/bench_peer.py with the same recipe and threads (Debian's python3-torch)
# Runs alternate, REPEATS times each per load; the table gives medians. Build first and fetch MNIST.
#   REPEATS=3 scripts/bench_busy.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
REPEATS=${REPEATS:-3}
LOADS=${LOADS:-"0 1 2"}
PY=/usr/bin/python3
train=build/bin/mnist-train
config=configs/mnist_mlp_seed.json
[ -x "$train" ] || { echo "error: build first (scripts/build.sh)" >&2; exit 2; }
[ -e data/mnist/train-images-idx3-ubyte ] || [ -e data/mnist/train-images-idx3-ubyte.gz ] ||
  { echo "error: data/mnist: fetch MNIST first (scripts/fetch_mnist.sh)" >&2; exit 2; }
$PY -c 'import torch' 2>/dev/null || { echo "error: no python3-torch (scripts/install_deps.sh)" >&2; exit 2; }
out=$(mktemp -d /tmp/bench_busy.XXXXXX)
busy_pids=()
stop_busy() { [ ${#busy_pids[@]} -eq 0 ] || kill "${busy_pids[@]}" 2>/dev/null || true; busy_pids=(); }
trap 'stop_busy; rm -rf "$out"' EXIT

# ours NAME SETS...: one run of 2 epochs; prints the second epoch's images/s.
ours() {
  local run="$out/run"
  rm -rf "$run"
  "$train" --config "$config" --run-dir "$run" --set train.epochs=2 --set data.dir=data/mnist \
    "${@:2}" >/dev/null
  awk -F, 'NR == 3 { printf "%.0f\n", $NF }' "$run/history.csv"
}
peer() {
  $PY scripts/bench_peer.py train --config "$config" --data data/mnist --epochs 2 |
    $PY -c 'import json, sys; print(round(json.load(sys.stdin)["epochs"][1]["images_per_second"]))'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

printf '%-6s %12s %12s %12s %12s %10s\n' "busy" "ours" "ours fixed" "ours 1t" "Python" "ours/Py"
for load in $LOADS; do
  for _ in $(seq "$load"); do
    (while :; do :; done) &
    busy_pids+=($!)
  done
  sleep 1
  : >"$out/a"; : >"$out/f"; : >"$out/o"; : >"$out/p"
  for _ in $(seq "$REPEATS"); do
    ours a >>"$out/a"
    ours f --set train.adaptive_threads=false >>"$out/f"
    ours o --set threads=1 >>"$out/o"
    peer >>"$out/p"
  done
  stop_busy
  a=$(median <"$out/a"); f=$(median <"$out/f"); o=$(median <"$out/o"); p=$(median <"$out/p")
  printf '%-6s %12s %12s %12s %12s %9.1fx\n' "$load" "$a" "$f" "$o" "$p" "$(awk -v a="$a" -v p="$p" 'BEGIN { print a / p }')"
done
