#!/usr/bin/env bash
# Configures and builds into <repo>/build (Release): everything, or the targets given as arguments.
# Warnings are errors when CI=true.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
cmake -S "$repo" -B "$repo/build" -DCMAKE_BUILD_TYPE=Release -DMNIST_WARNINGS_AS_ERRORS=$werror >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$repo/build" -j"$(nproc)" "${targets[@]}"
