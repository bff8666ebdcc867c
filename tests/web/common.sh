# Sourced by the browser tests (run_browser_test.sh, run_cockpit_test.sh): what they need before they
# start, and mnist-serve on a free loopback port. Expects $1 = BIN_DIR; sets bin, here, repo, data.
# Skips (exit 77) without real MNIST, node, chromium or tests/web/node_modules, unless
# MNIST_REQUIRE_ALL is set (scripts/test.sh sets it; scripts/install_deps.sh installs them all).

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

# start_serve LOG ARGS...: mnist-serve ARGS --port 0 in the background (its pid in $server), then
# waits for the address it prints (in $url); exits 1 with its log when it does not start.
start_serve() {
  local log=$1
  shift
  "$bin/mnist-serve" "$@" --port 0 >"$log" 2>&1 &
  server=$!
  url=""
  for _ in $(seq 1 300); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$log" || true)
    [ -n "$url" ] && return 0
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "mnist-serve did not start" >&2
  cat "$log" >&2
  exit 1
}
