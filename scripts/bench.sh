#!/usr/bin/env bash
# The performance table (docs/performance.md), re-runnable by anyone: this project against the Python PyTorch
# peer (scripts/bench_peer.py, Debian's python3-torch) on the same recipes, in one run, every
# measurement repeated and reported as the median.
#
#   scripts/bench.sh                      # 5 repeats into runs/bench-<time>
#   REPEATS=3 OUT=runs/bench scripts/bench.sh
#   SUITE=cnn REPEATS=3 scripts/bench.sh  # the CNN rows only (SUITE=mlp: the tutorial's; default all)
#   SUITE=cnn CNN_RECIPE=configs/mnist_cnn_quick.json scripts/bench.sh   # + a whole recipe each side
#
# Let the machine be otherwise idle: both sides are timed on the same cores.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
REPEATS=${REPEATS:-5}
OUT=${OUT:-runs/bench-$(date -u +%Y%m%dT%H%M%S)}
SUITE=${SUITE:-all}
extra=()
[ -z "${CNN_RECIPE:-}" ] || extra=(--cnn-recipe "$CNN_RECIPE")

/usr/bin/python3 -c 'import torch, PIL' 2>/dev/null ||
  { echo "error: the Python peer needs python3-torch and python3-pil (scripts/install_deps.sh)" >&2; exit 2; }
[ -f data/mnist/t10k-labels-idx1-ubyte ] || [ -f data/mnist/t10k-labels-idx1-ubyte.gz ] || scripts/fetch_mnist.sh
scripts/build.sh mnist-bench mnist-train mnist-predict >/dev/null
build/bin/mnist-bench --python /usr/bin/python3 --repeats "$REPEATS" --suite "$SUITE" "${extra[@]}" \
  --work-dir "$OUT" | tee "$OUT.md"
