#!/usr/bin/env bash
# The research cockpit (/runs) in a real browser: trains two small real MNIST runs, starts
# mnist-serve on their folder, and drives Debian's chromium through playwright-core
# (cockpit_test.mjs), which also starts a third training and watches it live. Usage:
# run_cockpit_test.sh BIN_DIR.
#   MNIST_SCREENSHOT_DIR=DIR  keep the screenshots there (runs_table.png, runs_run.png,
#                             runs_compare.png, runs_live.png, runs_mobile.png, serve_explain.png)
# Skips (exit 77) without real MNIST, node, chromium or tests/web/node_modules, unless
# MNIST_REQUIRE_ALL is set.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; pkill -f -- "--run-dir $work/runs/live" 2>/dev/null || true; rm -rf "$work"' EXIT

# Two runs that differ in their learning rate (the compare view's config diff).
"$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data" \
  --run-dir "$work/runs/mlp_fast" >/dev/null
"$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data" \
  --set optim.lr=0.002 --run-dir "$work/runs/mlp_lr2" >/dev/null

start_serve "$work/serve.log" --run "$work/runs"

# The training the page watches live: long enough to be seen advancing (about 10 s here).
train=$(printf '["%s","--config","%s","--set","data.dir=%s","--set","train.epochs=12","--run-dir","%s"]' \
  "$bin/mnist-train" "$repo/configs/mnist_mlp.json" "$data" "$work/runs/live")
node "$here/cockpit_test.mjs" "$url" "$work/runs" "$train" "${MNIST_SCREENSHOT_DIR:-$work}"
