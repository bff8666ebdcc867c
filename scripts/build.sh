#!/usr/bin/env bash
# Configures and builds into <repo>/build (Release): everything, or the targets given as arguments.
# Warnings are errors when CI=true (and stay so in that build folder: a later build without CI=true
# does not flip the setting, which would rebuild everything).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
options=(-DCMAKE_BUILD_TYPE=Release)
[ "${CI:-}" = "true" ] && options+=(-DMNIST_WARNINGS_AS_ERRORS=ON)
# MNIST_REQUIRE_ALL=1 (scripts/test.sh): a missing optional component fails the configure step.
if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then
  options+=(-DMNIST_REQUIRE_ALL_COMPONENTS=ON)
else
  options+=(-DMNIST_REQUIRE_ALL_COMPONENTS=OFF)
fi
# The configure output is kept out of the way, but shown when the step fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake -S "$repo" -B "$repo/build" "${options[@]}" >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: the configure step failed (above)" >&2
  exit 1
fi
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$repo/build" -j"$(nproc)" "${targets[@]}"
