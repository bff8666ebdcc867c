#!/usr/bin/env bash
# deploy/systemd/mnist-serve@.service checked offline by systemd's own tools: `systemd-analyze
# verify` must print nothing (an unknown or misspelt key is a warning there), and `systemd-analyze
# security --offline` must rate the exposure at most 2.5 (0 best, 10 worst; its threshold is given in tenths). The unit's binary is
# replaced by the build's, which verify requires to exist. Usage: test_systemd.sh BIN_DIR.
# Skips (exit 77) without systemd-analyze, unless MNIST_REQUIRE_ALL is set.
set -euo pipefail
bin=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v systemd-analyze >/dev/null; then
  if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then echo "error: systemd-analyze is missing (Debian package systemd)" >&2; exit 1; fi
  echo "skipped: systemd-analyze is missing"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|/usr/local/bin/mnist-serve|$bin/mnist-serve|" "$repo/deploy/systemd/mnist-serve@.service" \
  >"$work/mnist-serve@.service"
ln -s mnist-serve@.service "$work/mnist-serve@8081.service"
out=$(systemd-analyze verify "$work/mnist-serve@8081.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "error: systemd-analyze verify: $out" >&2; exit 1; fi
echo "verify: clean"
systemd-analyze security --offline=true --threshold=25 "$work/mnist-serve@8081.service" | tail -1
echo "systemd unit: verified and hardened"
