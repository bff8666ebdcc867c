#!/usr/bin/env bash
# The second command of the README, and what CI runs: installs what is missing, fetches MNIST (the
# end-to-end test trains on it), builds, checks formatting (in CI), and runs the whole test suite.
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
