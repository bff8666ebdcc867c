#!/usr/bin/env bash
# The first command of the README: installs what is missing, fetches and verifies MNIST, builds, trains
# the Keras tutorial's model (configs/mnist_mlp_seed.json) on the real data, evaluates it, and says where
# the run folder and its figures are. Safe to run again: each run gets a new folder under runs/.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

scripts/setup.sh mnist-train mnist-eval mnist-predict mnist-serve  # the tests are built by scripts/test.sh

run="runs/mnist_mlp_seed-$(date -u +%Y%m%d-%H%M%S)"
build/bin/mnist-train --config configs/mnist_mlp_seed.json --run-dir "$run"
echo
build/bin/mnist-eval --run "$run"
echo
echo "Run folder: $repo/$run"
echo "Figures:    $repo/$run/plots/  (samples.png, curves.png, confusion.png, misclassified.png)"
echo "Predict:    cd $repo && build/bin/mnist-predict --run $run YOUR_IMAGE.png   (or --draw to write one)"
echo "Web page:   cd $repo && build/bin/mnist-serve --run runs   (then open the printed address and draw a digit)"
echo "Next:       cd $repo && build/bin/mnist-train --config configs/mnist_mlp.json --set train.epochs=5"
