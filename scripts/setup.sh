#!/usr/bin/env bash
# Everything before training or testing: installs missing packages, fetches and verifies MNIST, builds.
# Shared by quickstart.sh and test.sh; arguments are build targets (default: all). Safe to run again.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/install_deps.sh"
"$repo/scripts/fetch_mnist.sh"
"$repo/scripts/build.sh" "$@"
