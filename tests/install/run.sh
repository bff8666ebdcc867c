#!/usr/bin/env bash
# Installs the libraries from build folder $1 into a temporary prefix (cmake --install), then
# configures, builds and runs tests/install/consumer against that prefix alone: the package config,
# the exported targets, the installed headers and the dependencies they name must all work for a
# project that has never seen the source tree. Registered as the ctest test "install". The vision
# library is required (REQUIRE_VISION) when the build found OpenCV, and its check must have run.
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
vision=OFF
grep -qE '^OpenCV_DIR:PATH=.+' "$build/CMakeCache.txt" && ! grep -q '^OpenCV_DIR:PATH=.*NOTFOUND' "$build/CMakeCache.txt" && vision=ON
cmake -S "$here/consumer" -B "$work/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_CXX_FLAGS="$flags" \
  -DREQUIRE_VISION=$vision > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/consumer" -j2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/consumer/consumer" | tee "$work/run.log"
if [ "$vision" = ON ] && ! grep -q '^vision: decoded' "$work/run.log"; then
  echo "error: the build has mnist::vision but the consumer did not use it" >&2
  exit 1
fi
