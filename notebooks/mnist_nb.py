"""What the notebooks share: finding run folders and data, and reading them (never training).

Run folders come from the environment variable MNIST_RUNS (one or more folders separated by ':'; a
sweep folder of scripts/sweep.py stands for its completed trials), else the newest finished folders under <repo>/runs/. Data comes from MNIST_DATA_DIR, else
<repo>/data/mnist. Both readers check what they read, so a wrong path gives one clear message.
"""

import gzip
import json
import os
import pathlib
import struct

import numpy as np
import pandas as pd

REPO = pathlib.Path(__file__).resolve().parent.parent
CREATE_A_RUN = "build/bin/mnist-train --config configs/mnist_mlp.json"


class NoRunYet(Exception):
    """There is no finished run folder to read."""


def data_dir():
    """The folder with the four IDX files: MNIST_DATA_DIR, else <repo>/data/mnist."""
    return pathlib.Path(os.environ.get("MNIST_DATA_DIR") or REPO / "data" / "mnist")


def read_idx(path):
    """An IDX file (raw or .gz) as a numpy uint8 array: [N, H, W] images or [N] labels."""
    path = pathlib.Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    magic, = struct.unpack(">I", raw[:4])
    if magic not in (0x801, 0x803):
        raise ValueError(f"{path}: not an IDX file (magic {magic:#010x})")
    ndims = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndims)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header declares {dims}, file holds {data.size} values")
    return data.reshape(dims)


def load_split(split, folder=None):
    """('train' | 'test') -> (images uint8 [N, 28, 28], labels uint8 [N]) from `folder` or data_dir()."""
    folder = pathlib.Path(folder or data_dir())
    prefix = {"train": "train", "test": "t10k"}[split]

    def find(name):
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(f"{folder / name}(.gz) not found: scripts/fetch_mnist.sh fetches MNIST")

    return read_idx(find(f"{prefix}-images-idx3-ubyte")), read_idx(find(f"{prefix}-labels-idx1-ubyte"))


def run_dirs(newest=6):
    """The run folders to read: MNIST_RUNS, else the `newest` finished ones under <repo>/runs/."""
    if os.environ.get("MNIST_RUNS"):
        dirs = []
        for d in (pathlib.Path(p) for p in os.environ["MNIST_RUNS"].split(":") if p):
            if (d / "trials.csv").exists():  # a sweep folder (scripts/sweep.py): its finished trials
                trials = sweep_trials(d)
                dirs += [pathlib.Path(f) for f in trials[trials.state == "complete"].run_folder]
            elif (d / "metrics.json").exists():
                dirs.append(d)
            else:
                raise NoRunYet(f"{d}: not a finished run folder (no metrics.json) or a sweep folder "
                               "(no trials.csv)")
        if not dirs:
            raise NoRunYet(f"{os.environ['MNIST_RUNS']}: no finished run in these sweeps yet")
        return dirs
    finished = [p.parent for p in (REPO / "runs").glob("*/metrics.json")]
    if not finished:
        raise NoRunYet(f"No finished run under {REPO / 'runs'} yet. Create one with:\n"
                       f"    cd {REPO} && {CREATE_A_RUN}\n"
                       "or point MNIST_RUNS at run folders (separated by ':').")
    return sorted(finished, key=lambda p: (p / "metrics.json").stat().st_mtime, reverse=True)[:newest]


def sweep_trials(folder):
    """A sweep folder's trials.csv (scripts/sweep.py): trial, state, value, the parameters, epochs,
    run_folder, error."""
    return pd.read_csv(pathlib.Path(folder) / "trials.csv")


class Run:
    """One run folder's files, read: config, meta, history, metrics, predictions."""

    def __init__(self, folder):
        self.dir = pathlib.Path(folder)
        self.name = self.dir.name
        self.config = json.loads((self.dir / "config.json").read_text())
        self.meta = json.loads((self.dir / "meta.json").read_text())
        self.metrics = json.loads((self.dir / "metrics.json").read_text())
        self.history = pd.read_csv(self.dir / "history.csv")
        self.class_names = self.metrics["class_names"]

    def predictions(self):
        """predictions.csv: index, label, predicted, confidence, p0..p9 per test image."""
        return pd.read_csv(self.dir / "predictions.csv")

    def recipe(self):
        """The config without what varies between repeats (seed, description, paths): runs with the same
        recipe are repeats of one experiment."""
        c = json.loads(json.dumps(self.config))
        for key in ("seed", "description", "device", "threads"):
            c.pop(key, None)
        c["data"].pop("dir", None)
        m, t, o = c["model"], c["train"], c["optim"]
        sizes = "-".join(str(s) for s in m.get("hidden_sizes", []))
        return (f"{c['data']['dataset']} {m['type']} {sizes} {m['output']} | {o['name']} lr {o['lr']:g} | "
                f"batch {t['batch_size']} x {t['epochs']} ep | {c['schedule']['name']}")

    def is_folder(self):
        """Trained on an image folder (data.dataset "folder"): its test images are files."""
        return self.config["data"]["dataset"] == "folder"

    def test_images(self):
        """The test images of an IDX run, as the run was evaluated on them (its data.dir, unless
        MNIST_DATA_DIR is set): (images uint8 [N, 28, 28], labels [N])."""
        if self.is_folder():
            raise ValueError(f"{self.dir}: trained on an image folder; use test_image(index)")
        folder = os.environ.get("MNIST_DATA_DIR") or self.config["data"]["dir"]
        return load_split("test", folder)

    def test_image(self, index):
        """Test image `index` (predictions.csv's index) as an array for imshow: an IDX run's from its
        data set; an image folder's read from the file predictions.csv names (the file as it is,
        before the run resized it)."""
        if self.is_folder():
            import matplotlib.image
            if not hasattr(self, "_files"):
                self._files = self.predictions()["file"]
            return matplotlib.image.imread(self._files[index])
        if not hasattr(self, "_test_images"):
            self._test_images = self.test_images()[0]
        return self._test_images[index]
