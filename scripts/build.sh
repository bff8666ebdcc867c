#!/usr/bin/env bash
# Configures and builds into <repo>/build (Release): everything, or the targets given as arguments.
# Warnings are errors when CI=true (and stay so in that build folder: a later build without CI=true
# does not flip the setting, which would rebuild everything).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
options=(-DCMAKE_BUILD_TYPE=Release)
[ "${CI:-}" = "true" ] && options+=(-DMNIST_WARNINGS_AS_ERRORS=ON)
cmake -S "$repo" -B "$repo/build" "${options[@]}" >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$repo/build" -j"$(nproc)" "${targets[@]}"
