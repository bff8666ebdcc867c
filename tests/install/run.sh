#!/usr/bin/env bash
# Installs the libraries from build folder $1 into a temporary prefix (cmake --install), then
# configures, builds and runs tests/install/consumer against that prefix alone: the package config,
# the exported targets, the installed headers and the dependencies they name must all work for a
# project that has never seen the source tree. Registered as the ctest test "install".
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/mnist/mnistConfig.cmake"
if [ -d "$work/prefix/include/mnist/serve" ] || [ -d "$work/prefix/include/mnist/tools" ]; then
  echo "error: the tools' or the server's headers were installed" >&2
  exit 1
fi
cxx=$(grep -E '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" | cut -d= -f2)
flags=$(grep -E '^CMAKE_CXX_FLAGS:' "$build/CMakeCache.txt" | cut -d= -f2-)
cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" \
  > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" -j2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/consumer/consumer"
