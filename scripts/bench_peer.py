#!/usr/bin/env python3
"""The Python peer of mnist-bench: the same recipes written the way a competent PyTorch user writes
them (data as tensors in memory, batches by indexing a shuffled permutation, no per-sample Python
work, .item() only once per epoch, inference under torch.inference_mode).

It reads the project's JSON configs for the recipe (model.*, optim.*, schedule.*, train.epochs,
train.batch_size, train.label_smoothing, train.ema_decay, augment.*, data.val_size, seed, threads),
so both sides train the same network the same way: the tutorial's MLP and the CNN recipes
(convolution blocks with batch norm and pooling, a dropout head, AdamW with a one-cycle schedule,
label smoothing, a weight average, and the random affine + elastic augmentation done batched on
tensors with affine_grid, a Gaussian-blurred displacement field and grid_sample, as the project
does it). CNNs run in channels_last memory order with oneDNN on (torch.backends.mkldnn), which a
PyTorch user on a CPU is advised to use and which is faster here. Each mode prints one JSON object on stdout. mnist-bench runs it;
it can also be run by hand:

  python3 scripts/bench_peer.py train --config configs/mnist_mlp_seed.json --data data/mnist
  python3 scripts/bench_peer.py infer --config configs/mnist_mlp_seed.json --data data/mnist
  python3 scripts/bench_peer.py predict --weights W.pt --config C.json IMAGE

With WORLD_SIZE > 1 in the environment (set by torchrun or by the project's mnist-launch), train
runs as one rank of PyTorch's DistributedDataParallel on Gloo, with the project's data-parallel
semantics: train.batch_size per rank, each global batch of the shared shuffled order split in rank
order. Only rank 0 prints.
"""

import argparse
import gzip
import json
import math
import os
import sys
import time

START = time.perf_counter()  # as close to process start as Python gets

# The thread settings the project gives itself, given to the peer too: torch's intra-op threads from
# the config's "threads", OpenBLAS's from its "blas_threads" (default 1; OpenBLAS must be told
# before torch loads it). With OpenBLAS's default of one thread per core, batch-32 training runs
# several times slower here.
def _blas_threads(argv):
    if "--config" in argv:
        try:
            with open(argv[argv.index("--config") + 1]) as f:
                return str(json.load(f).get("blas_threads", 1))
        except (OSError, ValueError, IndexError):
            pass  # reported properly by load_config
    return "1"


os.environ.setdefault("OPENBLAS_NUM_THREADS", _blas_threads(sys.argv))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

KERAS_EPSILON = 1e-7


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def read_idx(directory, name):
    for path in (os.path.join(directory, name), os.path.join(directory, name + ".gz")):
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
            return torch.from_numpy(np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape).copy())
    fail(f"{directory}: no {name} (raw or .gz)")


def load_config(path):
    try:
        with open(path) as f:
            c = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"{path}: {e}")
    model, optim, train = c.get("model", {}), c.get("optim", {}), c.get("train", {})
    if model.get("type", "mlp") not in ("mlp", "cnn"):
        fail(f"{path}: model.type: the peer implements the MLP and the CNN only")
    if model.get("activation", "relu") != "relu":
        fail(f"{path}: model.activation: the peer implements relu only")
    if c.get("data", {}).get("dataset", "mnist") != "mnist":
        fail(f"{path}: data.dataset: the peer reads MNIST only")
    augment = c.get("augment", {})
    return {
        "type": model.get("type", "mlp"),
        "channels": model.get("channels", [32, 64]),
        "kernel_sizes": model.get("kernel_sizes", [3, 3]),
        "convs_per_block": model.get("convs_per_block", 1),
        "pool": model.get("pool", "max"),
        "batch_norm": model.get("batch_norm", True),
        "conv_dropout": model.get("conv_dropout", 0.0),
        "global_pool": model.get("global_pool", False),
        "dropout": model.get("dropout", 0.0),
        "weight_decay": optim.get("weight_decay", 0.0),
        "label_smoothing": train.get("label_smoothing", 0.0),
        "ema_decay": train.get("ema_decay", 0.0),
        "augment": {k: augment.get(k, d) for k, d in (
            ("rotation", 0.0), ("translate", 0.0), ("scale", 0.0), ("shear", 0.0),
            ("elastic_alpha", 0.0), ("elastic_sigma", 4.0))},
        "glorot": model.get("init", "torch") == "glorot" or model.get("type", "mlp") == "mlp",
        "hidden": model.get("hidden_sizes", [150, 50]),
        "output": model.get("output", "sigmoid"),
        "optim": optim.get("name", "adam"),
        "lr": optim.get("lr", 1e-3),
        "betas": (optim.get("beta1", 0.9), optim.get("beta2", 0.999)),
        "eps": optim.get("eps", 1e-8),  # the project's default
        "schedule": c.get("schedule", {}).get("name", "constant"),
        "pct_start": c.get("schedule", {}).get("pct_start", 0.25),
        "div_factor": c.get("schedule", {}).get("div_factor", 25.0),
        "final_div_factor": c.get("schedule", {}).get("final_div_factor", 1e4),
        "epochs": train.get("epochs", 10),
        "batch": train.get("batch_size", 32),
        "eval_batch": train.get("eval_batch_size", 1000),
        "val_size": c.get("data", {}).get("val_size", 5000),
        "seed": c.get("seed", 42),
        "threads": c.get("threads", 1),
    }


def build_model(cfg):
    layers, width = [], 28 * 28
    if cfg["type"] == "cnn":
        c, side = 1, 28
        for out, k in zip(cfg["channels"], cfg["kernel_sizes"]):
            for _ in range(cfg["convs_per_block"]):
                layers.append(nn.Conv2d(c, out, k, padding=k // 2, bias=not cfg["batch_norm"]))
                if cfg["batch_norm"]:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(nn.ReLU())
                c = out
            if cfg["pool"] != "none":
                layers.append(nn.MaxPool2d(2) if cfg["pool"] == "max" else nn.AvgPool2d(2))
                side //= 2
            if cfg["conv_dropout"] > 0:
                layers.append(nn.Dropout(cfg["conv_dropout"]))
        if cfg["global_pool"]:
            layers.append(nn.AdaptiveAvgPool2d(1))
            side = 1
        width = c * side * side
    layers.append(nn.Flatten())
    for h in cfg["hidden"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        if cfg["dropout"] > 0:
            layers.append(nn.Dropout(cfg["dropout"]))
        width = h
    layers.append(nn.Linear(width, 10))
    if cfg["glorot"]:
        for m in layers:
            if isinstance(m, (nn.Linear, nn.Conv2d)):  # Keras' Glorot-uniform weights, zero biases
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    model = nn.Sequential(*layers)
    if cfg["type"] == "cnn":
        model = model.to(memory_format=torch.channels_last)
    return model


class Augment:
    """The project's augmentation (lib/src/train/augment.cpp) on a whole batch: one random affine
    transform per image and an elastic field blurred by a separable Gaussian, applied by one
    bilinear grid_sample."""

    def __init__(self, a):
        self.a = a
        self.enabled = any(a[k] > 0 for k in ("rotation", "translate", "scale", "shear", "elastic_alpha"))
        sigma = a["elastic_sigma"]
        radius = max(1, math.ceil(3 * sigma))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        k = torch.exp(-x * x / (2 * sigma * sigma))
        self.kernel = (k / k.sum()).view(1, 1, 1, -1)
        self.radius = radius

    def __call__(self, images):
        if not self.enabled:
            return images
        F = nn.functional
        a, (b, _, h, w) = self.a, images.shape
        sym = lambda limit: (torch.rand(b) * 2 - 1) * limit  # noqa: E731
        angle, shear = sym(math.radians(a["rotation"])), sym(math.radians(a["shear"]))
        zoom = 1 + sym(a["scale"])
        cos, sin, tan = angle.cos(), angle.sin(), shear.tan()
        theta = torch.stack([cos / zoom, (cos * tan - sin) / zoom, sym(2 * a["translate"]),
                             sin / zoom, (sin * tan + cos) / zoom, sym(2 * a["translate"])], 1).view(b, 2, 3)
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        if a["elastic_alpha"] > 0:
            r = self.radius
            field = torch.rand(b * 2, 1, h, w) * 2 - 1
            field = F.conv2d(F.pad(field, (r, r, 0, 0), mode="replicate"), self.kernel)
            field = F.conv2d(F.pad(field, (0, 0, r, r), mode="replicate"), self.kernel.transpose(2, 3))
            field = field.view(b, 2, h, w).permute(0, 2, 3, 1) * a["elastic_alpha"]
            grid = grid + field * torch.tensor([2.0 / w, 2.0 / h])
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class WeightAverage:
    """The project's weight average: p_avg <- d p_avg + (1 - d) p after every step, d ramped as
    min(decay, (1 + t)/(10 + t)); buffers (batch-norm statistics) copied."""

    def __init__(self, model, decay):
        import copy
        self.model, self.decay, self.updates = copy.deepcopy(model).eval(), decay, 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        mine, theirs = list(self.model.parameters()), list(model.parameters())
        torch._foreach_mul_(mine, d)
        torch._foreach_add_(mine, theirs, alpha=1 - d)
        for b_mine, b_theirs in zip(self.model.buffers(), model.buffers()):
            b_mine.copy_(b_theirs)


def loss_fn(cfg):
    if cfg["output"] == "softmax":
        smoothing = cfg["label_smoothing"]
        return lambda logits, y: nn.functional.cross_entropy(logits, y, label_smoothing=smoothing)
    # Keras' sparse categorical cross-entropy on sigmoid outputs: the scores are normalised.
    def keras_sigmoid_loss(logits, y):
        p = torch.sigmoid(logits).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON)
        return nn.functional.cross_entropy(p.log(), y)
    return keras_sigmoid_loss


def probabilities(model, x, cfg):
    logits = model(x)
    if cfg["output"] == "sigmoid":
        logits = torch.sigmoid(logits).clamp(KERAS_EPSILON, 1 - KERAS_EPSILON).log()
    return torch.softmax(logits, 1)


def to_input(images, cnn=False):
    x = images.unsqueeze(1).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if cnn else x


def evaluate(model, images, labels, batch, cnn=False):
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = to_input(images[i:i + batch], cnn)
            correct += (model(x).argmax(1) == labels[i:i + batch]).sum().item()
    return correct / len(images)


def train(args):
    cfg = load_config(args.config)
    torch.set_num_threads(cfg["threads"])
    torch.backends.mkldnn.enabled = True  # the default; said for the reader
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo")  # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    if args.epochs:
        cfg["epochs"] = args.epochs
    x = read_idx(args.data, "train-images-idx3-ubyte")
    y = read_idx(args.data, "train-labels-idx1-ubyte").long()
    x_test = read_idx(args.data, "t10k-images-idx3-ubyte")
    y_test = read_idx(args.data, "t10k-labels-idx1-ubyte").long()
    torch.manual_seed(cfg["seed"])
    split = torch.randperm(len(x))
    val, tr = split[:cfg["val_size"]], split[cfg["val_size"]:]
    x_val, y_val, x, y = x[val], y[val], x[tr], y[tr]
    loaded = time.perf_counter()

    model = build_model(cfg)
    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights
    criterion = loss_fn(cfg)
    cnn = cfg["type"] == "cnn"
    augment = Augment(cfg["augment"])
    average = WeightAverage(model, cfg["ema_decay"]) if cfg["ema_decay"] > 0 else None
    opt_class = torch.optim.AdamW if cfg["optim"] == "adamw" else torch.optim.Adam
    optimizer = opt_class(model.parameters(), lr=cfg["lr"], betas=cfg["betas"], eps=cfg["eps"],
                          weight_decay=cfg["weight_decay"])
    global_batch = cfg["batch"] * world
    steps = math.ceil(len(x) / global_batch)
    scheduler = None
    if cfg["schedule"] == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg["lr"], total_steps=steps * cfg["epochs"], pct_start=cfg["pct_start"],
            div_factor=cfg["div_factor"], final_div_factor=cfg["final_div_factor"])
    epochs = []
    for epoch in range(1, cfg["epochs"] + 1):
        model.train()
        t0 = time.perf_counter()
        order = torch.randperm(len(x))
        loss_sum = torch.zeros(())
        for i in range(0, len(x), global_batch):
            idx = order[i:i + global_batch]
            if world > 1:  # this rank's share (a last batch smaller than the ranks: all take one)
                idx = idx.tensor_split(world)[rank] if len(idx) >= world else idx[:1]
            yb = y[idx]
            with torch.no_grad():
                xb = augment(to_input(x[idx]))
            if cnn:
                xb = xb.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(net(xb), yb)
            loss.backward()
            optimizer.step()
            if scheduler:
                scheduler.step()
            if average:
                average.update(model)
            loss_sum += loss.detach() * len(idx)
        seconds = time.perf_counter() - t0
        model.eval()
        evaluated = average.model if average else model
        val_acc = evaluate(evaluated, x_val, y_val, cfg["eval_batch"], cnn) if len(x_val) else None
        epochs.append({"epoch": epoch, "seconds": seconds, "images_per_second": len(x) / seconds,
                       "train_loss": loss_sum.item() / len(x), "val_accuracy": val_acc})
    evaluated = average.model if average else model
    test_acc = evaluate(evaluated, x_test, y_test, cfg["eval_batch"], cnn)
    if rank != 0:
        return
    if args.save:
        torch.save(evaluated.state_dict(), args.save)
    end = time.perf_counter()
    print(json.dumps({
        "side": "python", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "world_size": world,
        "load_seconds": loaded - START, "epochs": epochs, "test_accuracy": test_acc,
        "wall_seconds": end - START}))


def infer(args):
    cfg = load_config(args.config)
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    cnn = cfg["type"] == "cnn"
    x_test = read_idx(args.data, "t10k-images-idx3-ubyte")
    one = x_test[:1]
    latencies = []
    with torch.inference_mode():
        for i in range(args.warmup + args.iterations):
            t0 = time.perf_counter()
            probabilities(model, to_input(one, cnn), cfg)
            t1 = time.perf_counter()
            if i >= args.warmup:
                latencies.append(t1 - t0)
        # One untimed pass over the test set, then the median of the timed ones (as mnist-bench).
        batch_rates = []
        for _ in range(args.batch_repeats + 1):
            t0 = time.perf_counter()
            for i in range(0, len(x_test), args.batch):
                probabilities(model, to_input(x_test[i:i + args.batch], cnn), cfg)
            batch_rates.append(len(x_test) / (time.perf_counter() - t0))
        batch_rates = batch_rates[1:]
    latencies.sort()
    print(json.dumps({
        "side": "python", "threads": torch.get_num_threads(),
        "latency_p50_us": 1e6 * latencies[len(latencies) // 2],
        "latency_p99_us": 1e6 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "batch": args.batch, "batch_images_per_second": sorted(batch_rates)[len(batch_rates) // 2]}))


def predict(args):
    # The tutorial's prediction: load the weights, read the image as gray, resize to 28x28, invert,
    # scale, classify.
    from PIL import Image  # imported here: only this mode needs it
    cfg = load_config(args.config)
    model = build_model(cfg)
    model.load_state_dict(torch.load(args.weights))
    model.eval()
    try:
        img = Image.open(args.image).convert("L").resize((28, 28))
    except OSError as e:
        fail(f"{args.image}: {e}")
    x = 255 - torch.from_numpy(np.asarray(img, dtype=np.uint8).copy())
    with torch.inference_mode():
        p = probabilities(model, to_input(x.unsqueeze(0), cfg["type"] == "cnn"), cfg)[0]
    print(json.dumps({"path": args.image, "digit": int(p.argmax()), "confidence": float(p.max())}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("train")
    t.add_argument("--config", required=True)
    t.add_argument("--data", required=True)
    t.add_argument("--epochs", type=int, default=0, help="override train.epochs")
    t.add_argument("--save", help="write the trained weights (state dict) here")
    i = sub.add_parser("infer")
    i.add_argument("--config", required=True)
    i.add_argument("--data", required=True)
    i.add_argument("--warmup", type=int, default=200)
    i.add_argument("--iterations", type=int, default=2000)
    i.add_argument("--batch", type=int, default=1000)
    i.add_argument("--batch-repeats", type=int, default=5)
    p = sub.add_parser("predict")
    p.add_argument("--config", required=True)
    p.add_argument("--weights", required=True)
    p.add_argument("image")
    args = parser.parse_args()
    {"train": train, "infer": infer, "predict": predict}[args.mode](args)


if __name__ == "__main__":
    main()
