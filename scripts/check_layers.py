#!/usr/bin/env python3
"""The library's layers only point down: fails on an include of a higher layer (run by CI).

Each folder under lib/include/mnist/ and lib/src/ is one layer; the order below, lowest first, is
the one docs/architecture.md draws. A file may include its own layer and any lower one. The apps
and the tests sit above everything and are not checked.
"""
import pathlib
import re
import sys

LAYERS = [
    "core",    # errors, runtime, signals: no project includes
    "io",      # files, JSON, archives, the run folder's files
    "dist",    # the communicator over c10d, the launcher
    "config",  # the typed config
    "data",    # IDX files, data sets, splits
    "models",  # MLP, CNN, the output head, the factory
    "eval",    # evaluation, metrics, the predictor
    "train",   # optimisers, steps, checkpoints, the training loop
    "run",     # a run folder's life: start, evaluate, complete
    "export",  # a run's model in other formats (ONNX)
    "vision",  # OpenCV: figures, image reading, preprocessing, the window
    "serve",   # the web server
    "tools",   # the benchmark runner and the user-image generator
]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"mnist/([a-z_]+)/[^"]+"', re.M)


def layer_of(path: pathlib.Path, lib: pathlib.Path) -> str:
    rel = path.relative_to(lib).parts
    return rel[2] if rel[0] == "include" else rel[1]


def main() -> int:
    lib = pathlib.Path(__file__).resolve().parent.parent / "lib"
    errors = []
    files = sorted(p for p in lib.rglob("*") if p.suffix in (".h", ".cpp"))
    for path in files:
        layer = layer_of(path, lib)
        if layer not in RANK:
            errors.append(f"{path}: folder '{layer}' is not a layer in scripts/check_layers.py")
            continue
        for target in INCLUDE.findall(path.read_text()):
            if target not in RANK:
                errors.append(f"{path}: includes unknown layer '{target}'")
            elif RANK[target] > RANK[layer]:
                errors.append(f"{path}: layer '{layer}' includes '{target}', which is above it")
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    if errors:
        return 1
    print(f"layers: {len(files)} files, every include points down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
