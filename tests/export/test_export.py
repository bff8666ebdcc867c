#!/usr/bin/python3
"""mnist-export end to end: small real runs (the tutorial MLP with its sigmoid head, the fast CNN
with batch norm, and a colour image-folder CNN with normalisation, GELU, average and global
pooling), each exported to ONNX and run by three runtimes that share no code with LibTorch or
with each other: ONNX's checker (python3-onnx), onnxruntime (npm onnxruntime-node) and OpenCV's
DNN module; each must give LibTorch's probabilities (the run's predictions.csv) within 1e-5 on
200 test images, and so must the Python weights helper (scripts/mnist_torch.py, python3-torch).
Bad input: a damaged model file and an unwritable output give one error line and no file.
Usage: test_export.py BIN_DIR. Skips (exit 77) when a part is missing, unless MNIST_REQUIRE_ALL."""

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
from script_checks import check, failures, skip  # noqa: E402
HERE = Path(__file__).resolve().parent
BIN = Path(sys.argv[1]).resolve()
DATA = Path(os.environ.get("MNIST_DATA_DIR", REPO / "data" / "mnist"))
N = 200
TOLERANCE = 1e-5 + 5e-7  # the 1e-5, plus predictions.csv's rounding to 6 decimals


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900, **kw)


try:
    import onnx
except ImportError:
    skip("no python3-onnx (scripts/install_deps.sh)")
for tool in ("mnist-export", "mnist-train", "onnx_opencv", "mnist-userset", "mnist-mnistm"):
    if not (BIN / tool).exists():
        skip(f"{BIN / tool} is not built (libonnx-dev and OpenCV)")
if not (HERE / "node_modules" / "onnxruntime-node").is_dir() or not shutil.which("node"):
    skip("onnxruntime-node is missing (npm ci --ignore-scripts --prefix tests/export)")
if not (DATA / "t10k-images-idx3-ubyte").exists() and not (DATA / "t10k-images-idx3-ubyte.gz").exists():
    skip(f"no MNIST in {DATA} (scripts/fetch_mnist.sh)")

work = Path(tempfile.mkdtemp(prefix="mnist-export-"))


def idx_images(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w)


def train(name, config, *sets):
    out = work / name
    p = run(BIN / "mnist-train", "--config", REPO / "configs" / config,
            *[a for s in sets for a in ("--set", s)], "--run-dir", out)
    if p.returncode != 0:
        sys.exit(f"error: training {name} failed: {p.stderr[-2000:]}")
    return out


def inputs_and_reference(run_dir):
    """The first N test images as float [N, C, H, W] / 255 and LibTorch's probabilities for them."""
    with open(run_dir / "predictions.csv") as f:
        rows = list(csv.DictReader(f))[:N]
    dataset = json.loads((run_dir / "dataset.json").read_text())
    classes = len(dataset["class_names"])
    reference = np.array([[float(r[f"p{k}"]) for k in range(classes)] for r in rows], dtype=np.float64)
    if "file" in rows[0]:
        from PIL import Image
        config = json.loads((run_dir / "config.json").read_text())
        root = Path(config["data"]["dir"])
        images = []
        for r in rows:
            path = Path(r["file"]) if Path(r["file"]).is_absolute() else root / r["file"]
            image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
            images.append(image.transpose(2, 0, 1))
        x = np.stack(images)
    else:
        name = "t10k-images-idx3-ubyte"
        path = DATA / name if (DATA / name).exists() else DATA / (name + ".gz")
        test = idx_images(path)
        x = (test[[int(r["index"]) for r in rows]].astype(np.float32) / 255.0)[:, None]
    return np.ascontiguousarray(x, dtype=np.float32), reference


def runtime(tool, model, x):
    data, out = work / "input.f32", work / "output.f32"
    x.tofile(data)
    if out.exists():
        out.unlink()
    command = ["node", HERE / "run_onnxruntime.mjs"] if tool == "onnxruntime" else [BIN / "onnx_opencv"]
    p = run(*command, model, data, *x.shape, out)
    if p.returncode != 0:
        return None, p.stderr.strip()[-500:]
    return np.fromfile(out, dtype=np.float32).reshape(x.shape[0], -1).astype(np.float64), p.stdout.strip()


sys.path.insert(0, str(REPO / "scripts"))
import mnist_torch  # noqa: E402
import torch  # noqa: E402

# Three small real runs.
runs = {
    "mlp": train("mlp", "mnist_mlp_seed.json", "train.epochs=1", f"data.dir={DATA}"),
    "cnn": train("cnn", "mnist_cnn_fast.json", "train.epochs=1", f"data.dir={DATA}"),
}
run(BIN / "mnist-userset", "--data", DATA, "--out", work / "photos", "--count", "1")
photos = sorted(str(p) for p in (work / "photos").glob("colour_ink-*.png")) + \
    sorted(str(p) for p in (work / "photos").glob("tinted_paper-*.png"))
p = run(BIN / "mnist-mnistm", "--mnist", DATA, "--limit", "600", "--out", work / "mnistm", "--photos", *photos)
if p.returncode != 0:
    sys.exit(f"error: mnist-mnistm failed: {p.stderr[-2000:]}")
runs["colour"] = train("colour", "mnistm_cnn.json", f"data.dir={work / 'mnistm'}", "data.val_size=100",
                       "train.epochs=1", f"data.cache_dir={work / 'cache'}", "model.activation=gelu",
                       "model.pool=avg", "model.global_pool=true")

for name, run_dir in runs.items():
    model = work / f"{name}.onnx"
    p = run(BIN / "mnist-export", "--run", run_dir, "--format", "onnx", "--out", model)
    check(p.returncode == 0 and model.is_file(), f"{name}: exported ({p.stdout.strip() or p.stderr.strip()})")
    if not model.is_file():
        continue
    proto = onnx.load(str(model))
    try:
        onnx.checker.check_model(proto, full_check=True)
        checked = "valid"
    except Exception as e:  # onnx.checker.ValidationError, shape inference errors
        checked = str(e)
    check(checked == "valid", f"{name}: the ONNX checker: {checked}")
    meta = {p.key: p.value for p in proto.metadata_props}
    dataset = json.loads((run_dir / "dataset.json").read_text())
    check(json.loads(meta.get("class_names", "null")) == dataset["class_names"] and
          [o.version for o in proto.opset_import] == [13] and
          [i.name for i in proto.graph.input] == ["image"] and
          [o.name for o in proto.graph.output] == ["probabilities", "logits"] and
          not any(n.op_type == "Dropout" for n in proto.graph.node),
          f"{name}: metadata, opset 13, input and outputs, no dropout ({sorted(meta)})")
    x, reference = inputs_and_reference(run_dir)
    results = {}
    for tool in ("onnxruntime", "opencv"):
        probabilities, note = runtime(tool, model, x)
        if probabilities is None or probabilities.shape != reference.shape:
            check(False, f"{name}: {tool} ran: {note}")
            continue
        results[tool] = probabilities
        diff = float(np.abs(probabilities - reference).max())
        check(diff <= TOLERANCE, f"{name}: {tool} against LibTorch: max |difference| {diff:.2e}")
    if len(results) == 2:
        diff = float(np.abs(results["onnxruntime"] - results["opencv"]).max())
        check(diff <= 1e-5, f"{name}: onnxruntime against OpenCV: max |difference| {diff:.2e}")
    helper = mnist_torch.load_run(run_dir).probabilities(torch.from_numpy(x)).double().numpy()
    diff = float(np.abs(helper - reference).max())
    check(diff <= TOLERANCE, f"{name}: the Python weights helper against LibTorch: max |difference| {diff:.2e}")

# Bad input: one error line naming the file, a non-zero exit, no file left.
damaged = work / "damaged"
shutil.copytree(runs["mlp"], damaged)
model_pt = damaged / "model.pt"
model_pt.write_bytes(model_pt.read_bytes()[: model_pt.stat().st_size // 2])
out = work / "damaged.onnx"
p = run(BIN / "mnist-export", "--run", damaged, "--out", out)
lines = p.stderr.strip().splitlines()
check(p.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and "model.pt" in lines[0]
      and not out.exists(), f"damaged model.pt: exit {p.returncode}, {lines}, file left: {out.exists()}")
out = work / "no" / "such" / "folder" / "model.onnx"
p = run(BIN / "mnist-export", "--run", runs["mlp"], "--out", out)
lines = p.stderr.strip().splitlines()
check(p.returncode != 0 and len(lines) == 1 and lines[0].startswith("error:") and str(out.parent) in lines[0]
      and not out.exists(), f"unwritable output: exit {p.returncode}, {lines}")
p = run(BIN / "mnist-export", "--run", runs["mlp"], "--format", "tflite", "--out", work / "x.tflite")
check(p.returncode == 2 and not (work / "x.tflite").exists(), f"unknown format: exit {p.returncode}")

if failures:
    print(f"{len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
shutil.rmtree(work)
print("all export checks passed")
