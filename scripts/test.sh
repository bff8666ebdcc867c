#!/usr/bin/env bash
# The second command of the README, and what CI runs: installs what is missing, fetches MNIST (the
# end-to-end test trains on it), builds, checks formatting (in CI), runs the whole test suite, then
# the unit suite (the training tests) with every fast path off (MNIST_PLAIN=1).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh

if [ "${CI:-}" = "true" ]; then
  git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror
  echo "clang-format: clean"
  python3 scripts/check_layers.py
fi

scripts/ctest_all.sh build
# The training tests again with every fast path off (core/runtime.h's plain_paths): the plain paths
# must pass the same tests, and the tests that check a fast path is chosen check that it is not.
MNIST_PLAIN=1 scripts/ctest_all.sh build -L unit
