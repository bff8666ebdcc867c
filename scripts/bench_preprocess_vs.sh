#!/usr/bin/env bash
# preprocess_digit of an earlier revision against the working tree's, side by side in one process
# (alternating calls, one thread, medians): the canvas drawing the web page sends (280x280 RGBA),
# the gray drawing scripts/bench_serve.py sends, and a 1000x1000 phone-style photo. The earlier
# revision's lib/src/vision/preprocess.cpp is compiled with its namespace renamed (mnist_old), so
# REV must have the API of 66be0af (preprocess_digit(image, name, framing); default: 66be0af, the
# last revision before the clean route). Prints a Markdown table: old ms, new ms, speed-up, and the
# largest difference between the two 28x28 inputs in grey levels.
#   usage: scripts/bench_preprocess_vs.sh [REV] [CALLS (default 300)]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rev=${1:-66be0af} calls=${2:-300}
"$repo/scripts/build.sh" mnist_vision >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/inc/mnist/vision"
git -C "$repo" show "$rev:lib/src/vision/preprocess.cpp" >"$work/old_preprocess.cpp"
git -C "$repo" show "$rev:lib/include/mnist/vision/preprocess.h" >"$work/inc/mnist/vision/preprocess.h"
flags=(-std=c++17 -O2 -DNDEBUG -isystem /usr/include/torch/csrc/api/include $(pkg-config --cflags opencv4))
g++ "${flags[@]}" -Dmnist=mnist_old -I"$work/inc" -I"$repo/lib/include" -c "$work/old_preprocess.cpp" \
  -o "$work/old.o"
g++ "${flags[@]}" -I"$repo/lib/include" -c "$repo/scripts/bench_preprocess/old_vs_new.cpp" -o "$work/bench.o"
g++ "$work/bench.o" "$work/old.o" "$repo/build/lib/libmnist_vision.a" "$repo/build/lib/libmnist_core.a" \
  -o "$work/bench" $(pkg-config --libs opencv4) -ltorch -ltorch_cpu -lc10 -lz -lzip -lgomp -lpthread -ldl
echo "| image | $rev ms | working tree ms | speed-up | largest input difference |"
echo "|---|---:|---:|---:|---:|"
"$work/bench" "$calls"
