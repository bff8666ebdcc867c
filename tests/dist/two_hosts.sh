#!/usr/bin/env bash
# Two "hosts" on one machine: two network namespaces joined by a veth pair, each with its own
# address and no loopback path to the other, one mnist-launch per host (--nnodes 2), the ranks
# meeting over the veth link as two machines would (GLOO_SOCKET_IFNAME names the interface, as on a
# cluster). Trains one epoch of the tutorial MLP on real MNIST and checks the run folder.
# Usage: two_hosts.sh BIN_DIR DATA_DIR. Exit 77 (skipped) only where network namespaces cannot be
# made (not root, no `ip`) and MNIST_REQUIRE_ALL is not set; CI sets it and runs as root, with
# iproute2 installed by scripts/install_deps.sh, so there it runs or fails.
set -euo pipefail
bin=$1
data=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ -e "$data/train-images-idx3-ubyte" ] || [ -e "$data/train-images-idx3-ubyte.gz" ] || {
  echo "two_hosts: no MNIST in $data (scripts/fetch_mnist.sh)"
  [ -n "${MNIST_REQUIRE_ALL:-}" ] && exit 1
  exit 77
}
id=$$
a=mnist-a-$id b=mnist-b-$id
if ! command -v ip >/dev/null || ! ip netns add "$a" 2>/dev/null; then
  why="cannot create network namespaces here (needs root and ip from iproute2)"
  if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then echo "error: two_hosts: $why" >&2; exit 1; fi
  echo "two_hosts: skipped: $why"
  exit 77
fi
tmp=$(mktemp -d /tmp/two_hosts.XXXXXX)
cleanup() {
  ip netns pids "$a" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns pids "$b" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true
  ip netns del "$b" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$b"
ip link add "va$id" type veth peer name "vb$id"
ip link set "va$id" netns "$a"
ip link set "vb$id" netns "$b"
ip -n "$a" addr add 10.231.0.1/24 dev "va$id"
ip -n "$b" addr add 10.231.0.2/24 dev "vb$id"
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set "va$id" up
ip -n "$b" link set "vb$id" up

train=("$bin/mnist-train" --config "$repo/configs/mnist_mlp_fast.json" --set "data.dir=$data"
       --set train.epochs=1 --set threads=1 --dist-timeout 60)
host() {  # host NS IFNAME NODE_RANK RUN_DIR
  ip netns exec "$1" env GLOO_SOCKET_IFNAME="$2" timeout 300 "$bin/mnist-launch" --nnodes 2 \
    --node-rank "$3" --nproc-per-node 1 --master-addr 10.231.0.1 --master-port 29400 -- \
    "${train[@]}" --run-dir "$4"
}
host "$a" "va$id" 0 "$tmp/run" >"$tmp/a.out" 2>"$tmp/a.err" &
pa=$!
host "$b" "vb$id" 1 "$tmp/run-b" >"$tmp/b.out" 2>"$tmp/b.err" &
pb=$!
status=0
wait $pa || status=$?
wait $pb || status=$((status + $?))
fail() {
  echo "two_hosts: FAILED: $*"
  for f in a.out a.err b.out b.err; do echo "--- $f"; cat "$tmp/$f"; done
  exit 1
}
[ $status -eq 0 ] || fail "a host exited non-zero"
[ -s "$tmp/run/metrics.json" ] || fail "no metrics.json in host a's run folder"
[ ! -e "$tmp/run-b" ] || fail "host b (rank 1) wrote a run folder"
grep -q '"world_size": 2' "$tmp/run/meta.json" || fail "meta.json does not say world_size 2"
grep -q "data-parallel: 2 ranks" "$tmp/a.out" || fail "rank 0 did not report 2 ranks"
acc=$(sed -n 's/.*"test_accuracy": \([0-9.]*\).*/\1/p' "$tmp/run/metrics.json" | head -1)
awk -v a="$acc" 'BEGIN { exit !(a > 0.9) }' || fail "test accuracy $acc after one epoch"
echo "two_hosts: ok: 2 hosts x 1 rank over 10.231.0.0/24, test accuracy $acc"
