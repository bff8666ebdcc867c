#!/usr/bin/env bash
# Runs ctest in build folder $1 (further arguments go to ctest) with every optional part required
# (MNIST_REQUIRE_ALL), and refuses skipped tests in CI: a skipped test is a green line that tested
# nothing (scripts that cannot run here exit 77, which ctest reports as skipped). Used by test.sh
# and test_sanitize.sh.
set -euo pipefail
build=$1
shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every label still has at least the tests it had (tests/test_counts.txt): none vanished.
python3 "$(dirname "${BASH_SOURCE[0]}")/check_test_counts.py" "$build"
MNIST_REQUIRE_ALL=1 ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@" | tee "$log"
status=${PIPESTATUS[0]}
skipped=$(grep -c -F '***Skipped' "$log" || true)
if [ "$skipped" -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: $skipped test(s) skipped; CI allows no skipped test" >&2
    exit 1
  fi
  echo "note: $skipped test(s) skipped (see above); CI would refuse this run" >&2
fi
exit "$status"
