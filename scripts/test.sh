#!/usr/bin/env bash
# The second command of the README, and what CI runs: installs what is missing, fetches MNIST (the
# end-to-end test trains on it), builds, checks formatting (in CI), runs the whole test suite, then
# the unit suite (the training tests) with every fast path off (MNIST_PLAIN=1).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

# Every optional component required: a suite cannot vanish because its library was not found.
MNIST_REQUIRE_ALL=1 scripts/setup.sh

if [ "${CI:-}" = "true" ]; then
  git ls-files '*.cpp' '*.h' | xargs clang-format --dry-run --Werror
  echo "clang-format: clean"
  python3 scripts/check_layers.py
  # The suite's one way to skip is MNIST_SKIP_OR_REQUIRE (tests/support/support.h): a bare
  # GTEST_SKIP() would be counted as passed by CTest.
  if git grep -n 'GTEST_SKIP' -- tests ':!tests/support/support.h'; then
    echo "error: GTEST_SKIP outside tests/support/support.h; use MNIST_SKIP_OR_REQUIRE" >&2
    exit 1
  fi
  echo "skips: only through MNIST_SKIP_OR_REQUIRE"
fi

scripts/ctest_all.sh build
# The training tests and the image tests again with every fast path off (core/runtime.h's
# plain_paths; for images: preprocessing's clean route): the plain paths must pass the same tests,
# and the tests that check a fast path is chosen check that it is not.
MNIST_PLAIN=1 scripts/ctest_all.sh build -L 'unit|vision'
