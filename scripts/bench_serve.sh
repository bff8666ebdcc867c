#!/usr/bin/env bash
# The web benchmark table (docs/performance.md), re-runnable: mnist-serve against the Python peer
# (scripts/serve_peer.py: FastAPI + uvicorn + PyTorch + PIL) serving the same model, in one run.
#
#   scripts/bench_serve.sh                      # 3 repeats of 10 s at 1, 8 and 32 connections
#   REPEATS=5 DURATION=20 scripts/bench_serve.sh
#   RUN=runs/some-mlp-run scripts/bench_serve.sh
#
# Loopback only, bounded in time and count. Let the machine be otherwise idle: the servers and the
# load tool share its cores.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
for tool in wrk hey; do
  command -v $tool >/dev/null || { echo "error: $tool is missing (scripts/install_deps.sh)" >&2; exit 2; }
done
/usr/bin/python3 -c 'import torch, PIL, fastapi, uvicorn' 2>/dev/null ||
  { echo "error: the Python peer needs python3-torch python3-pil python3-fastapi python3-uvicorn" >&2; exit 2; }
[ -f data/mnist/t10k-labels-idx1-ubyte ] || [ -f data/mnist/t10k-labels-idx1-ubyte.gz ] || scripts/fetch_mnist.sh
scripts/build.sh mnist-train mnist-serve >/dev/null
out=runs/bench-serve-$(date -u +%Y%m%dT%H%M%S)
run=${RUN:-}
if [ -z "$run" ]; then
  run=$out/model
  build/bin/mnist-train --config configs/mnist_mlp_fast.json --run-dir "$run" >/dev/null
fi
mkdir -p "$out"
/usr/bin/python3 scripts/bench_serve.py --run "$run" --repeats "${REPEATS:-3}" --duration "${DURATION:-10}" \
  --json "$out/bench.json" | tee "$out/bench.md"
