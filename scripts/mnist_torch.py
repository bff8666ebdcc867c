#!/usr/bin/python3
"""A run's weights in a PyTorch module of the same shape (Debian's python3-torch).

    import sys; sys.path.insert(0, "scripts")
    import mnist_torch
    model = mnist_torch.load_run("runs/mnist_cnn-20261124-183412")   # torch.nn.Module, eval mode
    p = model.probabilities(images)   # images: float [N, C, H, W], pixels / 255 -> [N, classes]

or from the shell: scripts/mnist_torch.py RUN [IMAGE.png ...] prints the module and, for each
image (already at the model's size), its class and probabilities.

model.pt is a LibTorch archive: torch.jit.load reads its parameters and buffers but gives no
forward. The module here is built from the run's config.json and dataset.json with the same layers
under the same names as the C++ model (lib/src/models: an MLP's `layers`, a CNN's `features` and
`head`), so the state dict loads strictly (a shape or name that differs is an error, not a silent
mismatch); the run's normalisation and output head (softmax, or the tutorial's normalised clipped
sigmoids) are applied as the project applies them.
"""

import json
import sys
from pathlib import Path

import torch
from torch import nn

KERAS_EPSILON = 1e-7  # the sigmoid head's clipping bound (models/head.h)


def _activation(name):
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[name]()


def _classifier(layers, width, m, classes):
    """Linear -> activation [-> Dropout] per hidden size, then Linear to the classes."""
    for hidden in m.get("hidden_sizes", []):
        layers += [nn.Linear(width, hidden), _activation(m.get("activation", "relu"))]
        if m.get("dropout", 0.0) > 0:
            layers.append(nn.Dropout(m["dropout"]))
        width = hidden
    layers.append(nn.Linear(width, classes))
    return layers


class RunModel(nn.Module):
    """The C++ model's layers (same names), the run's normalisation and output head."""

    def __init__(self, config, dataset):
        super().__init__()
        m = config["model"]
        c, h, w = dataset["channels"], dataset["height"], dataset["width"]
        classes = len(dataset["class_names"])
        self.class_names = dataset["class_names"]
        self.input_shape = (c, h, w)
        self.output = m.get("output", "softmax")
        norm = dataset.get("normalization") or {}
        mean, std = norm.get("mean") or [], norm.get("std") or []
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1) if mean else torch.zeros(0),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1) if std else torch.zeros(0),
                             persistent=False)
        if m.get("type", "mlp") == "mlp":
            self.layers = nn.Sequential(*_classifier([nn.Flatten()], c * h * w, m, classes))
            return
        features = []
        for block, (channels, k) in enumerate(zip(m["channels"], m["kernel_sizes"])):
            for _ in range(m.get("convs_per_block", 1)):
                bn = m.get("batch_norm", True)
                features.append(nn.Conv2d(c, channels, k, padding=k // 2, bias=not bn))
                if bn:
                    features.append(nn.BatchNorm2d(channels))
                features.append(_activation(m.get("activation", "relu")))
                c = channels
            pool = m.get("pool", "max")
            if pool != "none":
                features.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
                h, w = h // 2, w // 2
            if m.get("conv_dropout", 0.0) > 0:
                features.append(nn.Dropout(m["conv_dropout"]))
        if m.get("global_pool", False):
            features.append(nn.AdaptiveAvgPool2d(1))
            h = w = 1
        self.features = nn.Sequential(*features)
        self.head = nn.Sequential(*_classifier([nn.Flatten()], c * h * w, m, classes))

    def forward(self, images):
        """images: float [N, C, H, W], pixels / 255 -> logits [N, classes]."""
        x = images
        if self.mean.numel():
            x = (x - self.mean) / self.std
        if hasattr(self, "layers"):
            return self.layers(x)
        return self.head(self.features(x))

    def probabilities(self, images):
        with torch.inference_mode():
            z = self(images)
            if self.output == "sigmoid":
                z = torch.sigmoid(z).clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON).log()
            return torch.softmax(z, dim=1)


def load_run(run_dir):
    """The run folder's model (config.json, dataset.json, model.pt) as a RunModel in eval mode."""
    run = Path(run_dir)
    for name in ("config.json", "dataset.json", "model.pt"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run / name}: missing (is {run} a finished run folder?)")
    config = json.loads((run / "config.json").read_text())
    dataset = json.loads((run / "dataset.json").read_text())
    model = RunModel(config, dataset)
    archive = torch.jit.load(str(run / "model.pt"), map_location="cpu")
    state = {k: v for k, v in archive.state_dict().items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    model = load_run(argv[0])
    print(model)
    if len(argv) > 1:
        import numpy as np
        from PIL import Image
        channels, height, width = model.input_shape
        for path in argv[1:]:
            image = Image.open(path).convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                print(f"error: {path}: {image.size[0]}x{image.size[1]}, the model takes "
                      f"{width}x{height} (mnist-predict prepares any image)", file=sys.stderr)
                return 2
            x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
            x = x.view(1, 1, height, width) if channels == 1 else x.permute(2, 0, 1).unsqueeze(0)
            p = model.probabilities(x)[0]
            best = int(p.argmax())
            print(f"{path}: {model.class_names[best]} ({float(p[best]):.4f}) "
                  f"{[round(float(v), 4) for v in p]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
