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

bin=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
data=${MNIST_DATA_DIR:-$repo/data/mnist}
skip() {
  if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then echo "error: $*" >&2; exit 1; fi
  echo "skipped: $*"; exit 77
}
command -v node >/dev/null || skip "node is missing"
[ -x /usr/bin/chromium ] || skip "/usr/bin/chromium is missing (Debian package chromium)"
[ -d "$here/node_modules/playwright-core" ] || skip "playwright-core is missing (npm ci --prefix tests/web)"
[ -f "$data/t10k-images-idx3-ubyte" ] || [ -f "$data/t10k-images-idx3-ubyte.gz" ] ||
  skip "no MNIST in $data (scripts/fetch_mnist.sh)"

work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; pkill -f -- "--run-dir $work/runs/live" 2>/dev/null || true; rm -rf "$work"' EXIT

# Two runs that differ in their learning rate (the compare view's config diff).
"$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data" \
  --run-dir "$work/runs/mlp_fast" >/dev/null
"$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data" \
  --set optim.lr=0.002 --run-dir "$work/runs/mlp_lr2" >/dev/null

"$bin/mnist-serve" --run "$work/runs" --port 0 >"$work/serve.log" 2>&1 &
server=$!
url=""
for _ in $(seq 1 300); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$work/serve.log" || true)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "mnist-serve did not start" >&2; cat "$work/serve.log" >&2; exit 1; }

# The training the page watches live: long enough to be seen advancing (about 10 s here).
train=$(printf '["%s","--config","%s","--set","data.dir=%s","--set","train.epochs=12","--run-dir","%s"]' \
  "$bin/mnist-train" "$repo/configs/mnist_mlp.json" "$data" "$work/runs/live")
node "$here/cockpit_test.mjs" "$url" "$work/runs" "$train" "${MNIST_SCREENSHOT_DIR:-$work}"
