#!/usr/bin/env bash
# The second test command (not yet run by CI; see the README): the whole test suite built with
# clang's AddressSanitizer + UndefinedBehaviorSanitizer in build-sanitize/, and each libFuzzer
# harness (tests/fuzz/) for MNIST_FUZZ_SECONDS seconds (default 60) from its seed corpus and its
# regression inputs. Any sanitizer report or fuzzer finding fails it. Installs and fetches what is
# missing first (as scripts/test.sh does).
#   scripts/test_sanitize.sh                 # everything
#   MNIST_FUZZ_SECONDS=600 scripts/test_sanitize.sh -L fuzz   # only the fuzzers, longer
# Arguments go to ctest.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
scripts/install_deps.sh
scripts/fetch_mnist.sh
build=build-sanitize
# -O1: the sanitizers' advice, and a third of -O3's compile time.
cmake -S . -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1 -DNDEBUG" -DMNIST_SANITIZE=ON -DMNIST_FUZZ=ON \
  -DMNIST_TEST_TIMEOUT_SCALE=4 -DMNIST_FUZZ_SECONDS="${MNIST_FUZZ_SECONDS:-60}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# Every report is an error that ends the process with a non-zero status (the tests check statuses).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$repo/tests/fuzz/lsan.supp:print_suppressions=0}
MNIST_REQUIRE_ALL=1 ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
