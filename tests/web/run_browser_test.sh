#!/usr/bin/env bash
# The web page in a real browser: trains two small real MNIST models, starts mnist-serve on a free
# loopback port with a feedback folder, and drives Debian's chromium through playwright-core
# (browser_test.mjs): draw a digit with the mouse, read the answer and the bars, upload a file,
# drop one, switch model, compare all models, send a correction (the page asks for the server's
# token) and find it on disk, keyboard and a
# 360 px wide screen, no errors in the console, screenshots. Usage: run_browser_test.sh BIN_DIR.
#   MNIST_SCREENSHOT_DIR=DIR  keep the screenshots there (serve_page.png, serve_mobile.png)
# Skips (exit 77) without real MNIST, node, chromium or tests/web/node_modules, unless
# MNIST_REQUIRE_ALL is set (scripts/test.sh sets it; scripts/install_deps.sh installs them all).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# Two real models: the tutorial network trained fast, and one epoch of the softmax MLP.
"$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data" \
  --run-dir "$work/runs/mlp-fast" >/dev/null
"$bin/mnist-train" --config "$repo/configs/mnist_mlp.json" --set "data.dir=$data" \
  --set train.epochs=1 --run-dir "$work/runs/mlp-1epoch" >/dev/null
# A user's photo-like image of a test digit, for the upload.
"$bin/mnist-userset" --data "$data" --out "$work/images" --count 1 >/dev/null

token=browser-test-token
MNIST_SERVE_TOKEN=$token start_serve "$work/serve.log" --run "$work/runs" --feedback-dir "$work/feedback"

upload=$work/images/dark_on_white-0000.png
label=$(grep '^dark_on_white-0000.png,' "$work/images/labels.csv" | cut -d, -f3)
node "$here/browser_test.mjs" "$url" "$upload" "$label" "$work/feedback" "${MNIST_SCREENSHOT_DIR:-$work}" "$token"
