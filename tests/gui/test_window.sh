#!/usr/bin/env bash
# The prediction window for real, on a virtual X display: opens mnist-predict on two user images,
# takes screenshots, checks they are not blank, that the keys move between images and that e shows
# the explanation overlay, then switches
# to draw mode, writes a "7" with the mouse and checks the window predicted it live and printed the
# prediction on quit. Usage: test_window.sh BIN_DIR.
#   MNIST_GUI_RUN=DIR         use this run folder instead of training one epoch here
#   MNIST_SCREENSHOT_DIR=DIR  keep the screenshots there (predict_window.png, predict_draw.png)
# Skips (exit 77) without real MNIST or Xvfb/xdotool/ImageMagick, unless MNIST_REQUIRE_ALL is set.
set -euo pipefail

bin=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
data=${MNIST_DATA_DIR:-$repo/data/mnist}
skip() {
  if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then echo "error: $*" >&2; exit 1; fi
  echo "skipped: $*"; exit 77
}
fail() { echo "FAILED: $*" >&2; exit 1; }
for tool in Xvfb xdotool import convert; do
  command -v $tool >/dev/null || skip "$tool is missing (scripts/install_deps.sh installs xvfb xdotool imagemagick)"
done
[ -f "$data/t10k-images-idx3-ubyte" ] || [ -f "$data/t10k-images-idx3-ubyte.gz" ] ||
  skip "no MNIST in $data (scripts/fetch_mnist.sh)"

work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${app:-}" ] && kill "$app" 2>/dev/null
      [ -n "${xvfb:-}" ] && kill "$xvfb" 2>/dev/null; true' EXIT
export XDG_RUNTIME_DIR=$work/xdg && mkdir -m 700 "$XDG_RUNTIME_DIR"  # quiets Qt's warning

# A virtual display of our own. Xvfb picks a free display number itself and writes it to
# -displayfd only once it accepts connections: xvfb-run -a guesses a number from the lock files and
# can hand out one that another X server is taking at the same moment (it failed CI that way).
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$work/display" 2>"$work/xvfb.log" &
xvfb=$!
for _ in $(seq 200); do
  [ -s "$work/display" ] && break
  kill -0 $xvfb 2>/dev/null || fail "Xvfb did not start: $(cat "$work/xvfb.log")"
  sleep 0.05
done
[ -s "$work/display" ] || fail "Xvfb gave no display within 10 s: $(cat "$work/xvfb.log")"
export DISPLAY=:$(tr -d '[:space:]' <"$work/display")
unset XAUTHORITY

run=${MNIST_GUI_RUN:-}
if [ -z "$run" ]; then
  run=$work/run
  "$bin/mnist-train" --config "$repo/configs/mnist_mlp.json" --set "data.dir=$data" \
    --set train.epochs=1 --run-dir "$run" >/dev/null
fi
"$bin/mnist-userset" --data "$data" --out "$work/images" --count 2 >/dev/null

"$bin/mnist-predict" --run "$run" "$work/images/noise_gradient-0000.png" \
  "$work/images/colour_ink-0001.png" >"$work/out.txt" 2>"$work/err.txt" &
app=$!
win=
for _ in $(seq 100); do
  win=$(xdotool search --name '^mnist-predict$' 2>/dev/null | head -1) && [ -n "$win" ] && break
  kill -0 $app 2>/dev/null || fail "mnist-predict exited: $(cat "$work/err.txt")"
  sleep 0.1
done
[ -n "$win" ] || fail "no window appeared within 10 s"
sleep 1

shot() { import -window "$win" "$work/$1.png"; }
spread() { convert "$work/$1.png" -colorspace Gray -format '%[fx:standard_deviation]' info:; }
not_blank() {
  awk -v s="$(spread "$1")" 'BEGIN { exit !(s > 0.1) }' || fail "$1 screenshot is blank (spread $(spread "$1"))"
}
# Screenshot $2 until it differs from $1 (the key or the strokes took effect), for up to 20 s: a
# slow machine or a sanitizer build redraws late, and a fixed pause would race it.
shot_until_differs() {
  local d=""
  for _ in $(seq 100); do
    shot "$2"
    d=$(compare -metric AE "$work/$1.png" "$work/$2.png" null: 2>&1 || true)
    [ "${d%% *}" -gt 1000 ] 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$2 looks like $1 ($d pixels differ): the key did nothing"
}

shot first && not_blank first
xdotool key Right && shot_until_differs first second && not_blank second
xdotool key p && shot_until_differs second back
# e: the input panel shows why (the attribution overlay, red pixels), e again: back to the input.
xdotool key e && shot_until_differs back explained && not_blank explained
red=$(convert "$work/explained.png" -fx '(r > b + 0.25) ? 1 : 0' -format '%[fx:mean*w*h]' info:)
awk -v n="$red" 'BEGIN { exit !(n > 200) }' || fail "e showed no red attribution ($red pixels)"
xdotool key e && shot_until_differs explained unexplained

# Draw mode: a "7" in canvas coordinates (the canvas starts at 30, 94 in the window).
xdotool key d && shot_until_differs back empty_canvas && sleep 0.3 && shot empty_canvas
stroke() {  # x0 y0 x1 y1 ...: one press, moves through the points, release
  xdotool mousemove --window "$win" $((30 + $1)) $((94 + $2)) mousedown 1
  shift 2
  while [ $# -ge 2 ]; do
    xdotool mousemove --window "$win" $((30 + $1)) $((94 + $2)); sleep 0.03; shift 2
  done
  xdotool mouseup 1
}
stroke 70 60 110 58 150 57 190 56 215 58 200 95 185 135 170 175 158 215 150 240
shot_until_differs empty_canvas drawn && sleep 1 && shot drawn && not_blank drawn
xdotool key q
for _ in $(seq 200); do kill -0 $app 2>/dev/null || break; sleep 0.1; done
kill -0 $app 2>/dev/null && fail "q did not close the window"
wait $app || true
app=
grep -q '^canvas: 7 ' "$work/out.txt" || fail "the drawn 7 was not predicted as 7: $(cat "$work/out.txt")"

if [ -n "${MNIST_SCREENSHOT_DIR:-}" ]; then
  mkdir -p "$MNIST_SCREENSHOT_DIR"
  cp "$work/first.png" "$MNIST_SCREENSHOT_DIR/predict_window.png"
  cp "$work/drawn.png" "$MNIST_SCREENSHOT_DIR/predict_draw.png"
  cp "$work/explained.png" "$MNIST_SCREENSHOT_DIR/predict_explain.png"
fi
echo "window: 6 screenshots checked, keys, explain and draw mode work; $(grep '^canvas' "$work/out.txt")"
