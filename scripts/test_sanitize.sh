#!/usr/bin/env bash
# The second test command, which CI runs after scripts/test.sh: the test suite built with clang's
# AddressSanitizer + UndefinedBehaviorSanitizer in build-sanitize/, and each libFuzzer harness
# (tests/fuzz/) for MNIST_FUZZ_SECONDS seconds (default 20) from its seed corpus and its regression
# inputs. Any sanitizer report or fuzzer finding fails it. Installs and fetches what is missing
# first (as scripts/test.sh does).
#   scripts/test_sanitize.sh                  # what CI runs: all but the labels below
#   scripts/test_sanitize.sh -L fuzz          # only the fuzzers (MNIST_FUZZ_SECONDS=600 for longer)
#   scripts/test_sanitize.sh -R Checkpoint    # any ctest selection
#   MNIST_SANITIZE_CXXFLAGS="-O1 -g" ...      # file:line in reports (a slower build)
# Arguments go to ctest and replace the default selection, -LE 'accuracy|install|notebooks|cockpit|sweep|export':
# the trainings on the real data sets that check a figure (their code paths the synthetic tests run;
# four minutes under ASan), the installed package's consumer build (CMake packaging, no code of its
# own), the notebooks (Python reading run folders of small real trainings that the CLI tests run
# too) and the cockpit's browser test (the page's own checks; its server routes and the live
# training's progress file run under the sanitizers in the RunsApi suite; two minutes under ASan),
# the sweep test (Python driving a dozen small real trainings, whose code the CLI tests run) and the
# export test (three small real trainings and runtimes outside the project; libonnx and protobuf
# are not built with the sanitizers); scripts/test.sh runs all six.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
scripts/install_deps.sh
scripts/fetch_mnist.sh
build=build-sanitize
# -O1: the sanitizers' advice. No debug info by default: the build is several times faster without
# it, and reports still name the functions.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="${MNIST_SANITIZE_CXXFLAGS:--O1 -g0} -DNDEBUG" -DMNIST_SANITIZE=ON \
  -DMNIST_FUZZ=ON -DMNIST_TEST_TIMEOUT_SCALE=4 -DMNIST_FUZZ_SECONDS="${MNIST_FUZZ_SECONDS:-20}" \
  -DMNIST_REQUIRE_ALL_COMPONENTS=ON >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: the configure step failed (above)" >&2
  exit 1
fi
cmake --build "$build" -j"$(nproc)"
# Every report ends the process with a non-zero status (the tests check statuses). Not
# strict_string_checks: X's keyboard library (under OpenCV's window) legally strndup()s buffers
# without a terminating zero, which that option reports.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$repo/tests/fuzz/lsan.supp:print_suppressions=0}
[ $# -gt 0 ] || set -- -LE 'accuracy|install|notebooks|cockpit|sweep|export'
scripts/ctest_all.sh "$build" "$@"
