"""What the Python test scripts share (tests/deploy, tests/sweep, tests/export): a skip that CTest
sees (exit 77) unless MNIST_REQUIRE_ALL makes it a failure, and checks that are all run and
reported before the script fails."""

import os
import sys

failures = []


def skip(why):
    """Skip the script (exit 77), or fail it when MNIST_REQUIRE_ALL is set (CI)."""
    if os.environ.get("MNIST_REQUIRE_ALL"):
        sys.exit(f"error: {why}")
    print(f"skipped: {why}")
    sys.exit(77)


def check(ok, what):
    """Report one check; a failed one is remembered for finish()."""
    print(("ok: " if ok else "FAILED: ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def finish():
    """Exit 1 naming how many checks failed, if any did."""
    if failures:
        sys.exit(f"error: {len(failures)} check(s) failed")
