#!/usr/bin/env bash
# Data-parallel training against one process, side by side in one run, on real MNIST:
#   - the tutorial MLP (configs/mnist_mlp.json): ours with 1 process x 2 threads (batch 32) and with
#     2 ranks x 1 thread (batch 16 per rank: the same global batch), and the Python peer
#     (scripts/bench_peer.py, Debian's python3-torch) the same two ways, its 2 ranks being
#     PyTorch's DistributedDataParallel on Gloo, started by our mnist-launch;
#   - the CNN (configs/mnist_cnn.json): ours, 1 x 2 threads (batch 128) against 2 x 1 (64 per
#     rank), for CNN_EPOCHS epochs (15 is the recipe; fewer gives the time per epoch sooner);
#   - the cost of one all-reduce of the MLP's gradients (125,810 floats) on c10d's Gloo, measured
#     from Python (the same ProcessGroupGloo underneath).
# Runs alternate (every variant once per seed, in turn) so that a noisy machine hurts them alike;
# the table gives medians over seeds. Build first (scripts/build.sh) and fetch MNIST.
#   SEEDS="1 2 3" CNN_EPOCHS=15 CNN_SEEDS="1" scripts/bench_dist.sh
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
SEEDS=${SEEDS-"1 2 3"}
CNN_SEEDS=${CNN_SEEDS-"1"}
CNN_EPOCHS=${CNN_EPOCHS:-15}
PY=/usr/bin/python3
train=build/bin/mnist-train
launch=build/bin/mnist-launch
[ -x "$train" ] && [ -x "$launch" ] || { echo "error: build first (scripts/build.sh)" >&2; exit 2; }
[ -e data/mnist/train-images-idx3-ubyte ] || [ -e data/mnist/train-images-idx3-ubyte.gz ] ||
  { echo "error: data/mnist: fetch MNIST first (scripts/fetch_mnist.sh)" >&2; exit 2; }
out=$(mktemp -d /tmp/bench_dist.XXXXXX)
trap 'rm -rf "$out"' EXIT
port=$((29600 + RANDOM % 1000))

# ours VARIANT SEED CONFIG RANKS THREADS BATCH EPOCHS: one run; appends "variant seed s/epoch acc".
ours() {
  local name=$1 seed=$2 config=$3 ranks=$4 threads=$5 batch=$6 epochs=$7
  local run="$out/$name-$seed" cmd=()
  [ "$ranks" -gt 1 ] && cmd=("$launch" --nproc-per-node "$ranks" --master-port $((port++)) --)
  "${cmd[@]}" "$train" --config "$config" --run-dir "$run" --set seed="$seed" \
    --set threads="$threads" --set train.batch_size="$batch" --set train.epochs="$epochs" >/dev/null
  # Training seconds per epoch (history's images_per_second counts training only), median.
  local per_epoch acc
  per_epoch=$($PY - "$run" <<'EOF'
import csv, json, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/history.csv")))
cfg = json.load(open(sys.argv[1] + "/config.json"))
n = 60000 - cfg["data"]["val_size"]
print(statistics.median(n / float(r["images_per_second"]) for r in rows))
EOF
)
  acc=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['test_accuracy'])" "$run/metrics.json")
  echo "$name $seed $per_epoch $acc" >>"$out/results"
  rm -rf "$run"
}

# peer VARIANT SEED RANKS THREADS BATCH: the Python peer on the tutorial MLP.
peer() {
  local name=$1 seed=$2 ranks=$3 threads=$4 batch=$5 cmd=()
  local config="$out/peer-$seed-$threads-$batch.json"
  $PY - "$config" "$seed" "$threads" "$batch" <<'EOF'
import json, sys
c = json.load(open("configs/mnist_mlp.json"))
c["seed"], c["threads"] = int(sys.argv[2]), int(sys.argv[3])
c.setdefault("train", {})["batch_size"] = int(sys.argv[4])
json.dump(c, open(sys.argv[1], "w"))
EOF
  [ "$ranks" -gt 1 ] && cmd=("$launch" --nproc-per-node "$ranks" --master-port $((port++)) --)
  "${cmd[@]}" $PY scripts/bench_peer.py train --config "$config" --data data/mnist >"$out/peer.json"
  $PY - "$out/peer.json" "$name" "$seed" >>"$out/results" <<'EOF'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[2], sys.argv[3], statistics.median(e["seconds"] for e in r["epochs"]), r["test_accuracy"])
EOF
}

echo "bench_dist: $(nproc) cores, seeds [$SEEDS], CNN seeds [$CNN_SEEDS] x $CNN_EPOCHS epochs" >&2
for seed in $SEEDS; do
  echo "bench_dist: tutorial MLP, seed $seed" >&2
  ours mlp-ours-1x2 "$seed" configs/mnist_mlp.json 1 2 32 10
  ours mlp-ours-2x1 "$seed" configs/mnist_mlp.json 2 1 16 10
  peer mlp-python-1x2 "$seed" 1 2 32
  peer mlp-python-2x1 "$seed" 2 1 16
done
for seed in $CNN_SEEDS; do
  echo "bench_dist: CNN, seed $seed" >&2
  ours cnn-ours-1x2 "$seed" configs/mnist_cnn.json 1 2 128 "$CNN_EPOCHS"
  ours cnn-ours-2x1 "$seed" configs/mnist_cnn.json 2 1 64 "$CNN_EPOCHS"
done

# One all-reduce of the MLP's gradients (784*150+150 + 150*50+50 + 50*10+10 = 125,810 floats).
cat >"$out/allreduce.py" <<'EOF'
import os, statistics, time, torch, torch.distributed as dist
dist.init_process_group("gloo")
torch.set_num_threads(1)
n = 784 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10
t = torch.ones(n)
times = []
for i in range(2200):
    t0 = time.perf_counter()
    dist.all_reduce(t)
    times.append(time.perf_counter() - t0)
if dist.get_rank() == 0:
    print(n, 1e6 * statistics.median(times[200:]))
EOF
read -r floats allreduce_us < <("$launch" --nproc-per-node 2 --master-port $((port++)) -- $PY "$out/allreduce.py")

$PY - "$out/results" "$floats" "$allreduce_us" <<'EOF'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, seed, sec, acc = line.split()
    rows[name].append((float(sec), float(acc)))
labels = {
    "mlp-ours-1x2": ("tutorial MLP", "ours", "1 x 2 threads", 32),
    "mlp-ours-2x1": ("tutorial MLP", "ours", "2 ranks x 1 thread", 16),
    "mlp-python-1x2": ("tutorial MLP", "Python peer", "1 x 2 threads", 32),
    "mlp-python-2x1": ("tutorial MLP", "Python peer (DDP)", "2 ranks x 1 thread", 16),
    "cnn-ours-1x2": ("CNN (mnist_cnn.json)", "ours", "1 x 2 threads", 128),
    "cnn-ours-2x1": ("CNN (mnist_cnn.json)", "ours", "2 ranks x 1 thread", 64),
}
print("| recipe | side | processes | batch per rank | s per epoch (median) | test accuracy (median) | seeds |")
print("|---|---|---|---|---:|---:|---:|")
for key, (recipe, side, procs, batch) in labels.items():
    if key not in rows:
        continue
    r = rows[key]
    print(f"| {recipe} | {side} | {procs} | {batch} | {statistics.median(s for s, _ in r):.2f} "
          f"| {100 * statistics.median(a for _, a in r):.2f}% | {len(r)} |")
def speedup(a, b):
    if a in rows and b in rows:
        return statistics.median(s for s, _ in rows[a]) / statistics.median(s for s, _ in rows[b])
for a, b, what in [("cnn-ours-1x2", "cnn-ours-2x1", "CNN, ours"), ("mlp-ours-1x2", "mlp-ours-2x1", "MLP, ours"),
                   ("mlp-python-1x2", "mlp-python-2x1", "MLP, Python peer")]:
    s = speedup(a, b)
    if s:
        print(f"\n{what}: 2 ranks x 1 thread run an epoch {s:.2f}x as fast as 1 process x 2 threads", end="")
print(f"\n\nOne Gloo all-reduce of the MLP's {int(sys.argv[2]):,} gradient floats on loopback: "
      f"{float(sys.argv[3]):.0f} us (median of 2000); the MLP takes 1719 steps per epoch.")
EOF
