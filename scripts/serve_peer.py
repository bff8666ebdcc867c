#!/usr/bin/env python3
"""The Python peer of the web benchmark (scripts/bench_serve.py): the same model served the way a
Python user serves it: FastAPI + uvicorn (one worker, uvicorn's default), PyTorch, PIL, with the
tutorial's preprocessing (gray, resize to 28x28, invert dark-on-light, scale to [0, 1]).

It loads the weights of a project run folder (config.json + model.pt, through torch.jit.load, which
reads LibTorch's archives) into the plain nn.Sequential MLP that the config describes:

  python3 scripts/serve_peer.py --run runs/mnist_mlp_fast-... --port 8081

POST /api/predict takes a raw image body and answers {"digit","confidence","probabilities"};
GET /api/health answers {"status": "ok"}.
"""

import argparse
import io
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from fastapi import FastAPI, HTTPException, Request  # noqa: E402
from PIL import Image, UnidentifiedImageError  # noqa: E402
from torch import nn  # noqa: E402


def load_model(run_dir):
    with open(os.path.join(run_dir, "config.json")) as f:
        cfg = json.load(f)
    m = cfg["model"]
    if m["type"] != "mlp" or m.get("activation", "relu") != "relu":
        sys.exit("error: the peer serves ReLU MLP runs only")
    layers, width = [nn.Flatten()], 784
    for h in m["hidden_sizes"]:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 10))
    model = nn.Sequential(*layers)
    archive = torch.jit.load(os.path.join(run_dir, "model.pt"), map_location="cpu")
    # The project's module names: layers.<index>.weight; nn.Sequential's: <index>.weight.
    state = {k[len("layers."):]: v for k, v in archive.state_dict().items() if k.startswith("layers.")}
    model.load_state_dict(state)
    model.eval()
    return model, m.get("output", "softmax")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, output = load_model(args.run)
    app = FastAPI()

    @app.get("/api/health")
    async def health():
        return {"status": "ok"}

    @app.post("/api/predict")
    async def predict(request: Request):
        body = await request.body()
        try:
            img = Image.open(io.BytesIO(body)).convert("L").resize((28, 28))
        except (UnidentifiedImageError, OSError) as e:
            raise HTTPException(status_code=400, detail=str(e))
        x = 1.0 - torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)
        with torch.inference_mode():
            logits = model(x.view(1, 784))
            p = torch.sigmoid(logits) if output == "sigmoid" else torch.softmax(logits, 1)
            p = (p / p.sum()).view(-1)
        digit = int(p.argmax())
        return {"digit": digit, "confidence": float(p[digit]), "probabilities": p.tolist()}

    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
