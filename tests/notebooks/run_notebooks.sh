#!/usr/bin/env bash
# Executes every notebook headlessly against small real runs made here, and fails on any error.
# Usage: run_notebooks.sh BIN_DIR. Skips (exit 77) without real MNIST or Jupyter, unless
# MNIST_REQUIRE_ALL is set (scripts/test.sh sets it after installing and fetching both).
set -euo pipefail

bin=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
data=${MNIST_DATA_DIR:-$repo/data/mnist}
# Debian's Jupyter kernel runs "python3" from PATH: make it Debian's, which has the notebook packages.
export PATH=/usr/bin:$PATH

skip() {
  if [ -n "${MNIST_REQUIRE_ALL:-}" ]; then echo "error: $*" >&2; exit 1; fi
  echo "skipped: $*"; exit 77
}
[ -f "$data/train-images-idx3-ubyte" ] || [ -f "$data/train-images-idx3-ubyte.gz" ] ||
  skip "no MNIST in $data (scripts/fetch_mnist.sh)"
command -v jupyter >/dev/null && python3 -c "import nbformat, pandas, seaborn, matplotlib" 2>/dev/null ||
  skip "Jupyter or the notebook packages are missing (scripts/install_deps.sh)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The committed notebooks carry no outputs.
python3 - "$repo"/notebooks/*.ipynb <<'PY'
import json, sys
for path in sys.argv[1:]:
    for cell in json.load(open(path))["cells"]:
        if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None):
            sys.exit(f"error: {path}: outputs are not stripped")
PY

# Two recipes, the first with two seeds: enough for every notebook's question.
train() { "$bin/mnist-train" --config "$repo/configs/$1.json" --set "data.dir=$data" --set train.epochs=2 \
  --set seed="$2" --run-dir "$work/runs/$1-$2" >/dev/null; }
train mnist_mlp 1
train mnist_mlp 2
train mnist_mlp_seed 1
export MNIST_RUNS="$work/runs/mnist_mlp-1:$work/runs/mnist_mlp-2:$work/runs/mnist_mlp_seed-1"
export MNIST_DATA_DIR=$data

cd "$repo/notebooks"
jupyter nbconvert --to notebook --execute --output-dir "$work/out" ./*.ipynb 2>"$work/nbconvert.log" ||
  { cat "$work/nbconvert.log" >&2; exit 1; }

# The one-run notebook again on a colour image-folder run: a small MNIST-M built from MNIST with
# synthetic user images (mnist-userset) standing in for the photographs.
"$bin/mnist-userset" --data "$data" --out "$work/photos" --count 1 >/dev/null
"$bin/mnist-mnistm" --mnist "$data" --limit 600 --out "$work/mnistm" \
  --photos "$work"/photos/colour_ink-*.png "$work"/photos/tinted_paper-*.png >/dev/null
"$bin/mnist-train" --config "$repo/configs/mnistm_cnn.json" --set "data.dir=$work/mnistm" \
  --set data.val_size=100 --set train.epochs=1 --set "data.cache_dir=$work/cache" \
  --run-dir "$work/runs/folder" >/dev/null
MNIST_RUNS="$work/runs/folder" jupyter nbconvert --to notebook --execute --output-dir "$work/out_folder" \
  ./02_one_run.ipynb 2>"$work/nbconvert.log" || { cat "$work/nbconvert.log" >&2; exit 1; }
cp "$work/out_folder/02_one_run.ipynb" "$work/out/02_one_run_folder.ipynb"

# The comparison notebook on a sweep folder (scripts/sweep.py, two one-epoch trials): it reads the
# completed trials' run folders.
if /usr/bin/python3 -c "import optuna" 2>/dev/null; then
  cat >"$work/sweep.json" <<JSON
{"base": "$repo/configs/mnist_mlp.json", "set": {"train.epochs": 1},
 "space": {"optim.lr": {"type": "categorical", "choices": [0.001, 0.003]}},
 "objective": {"column": "val_accuracy"}, "trials": 2, "sampler": "grid", "pruner": {"type": "none"}}
JSON
  /usr/bin/python3 "$repo/scripts/sweep.py" "$work/sweep.json" --out "$work/sweep" --train "$bin/mnist-train" \
    --set "data.dir=$data" >/dev/null
  MNIST_RUNS="$work/sweep" jupyter nbconvert --to notebook --execute --output-dir "$work/out_sweep" \
    ./03_compare_runs.ipynb 2>"$work/nbconvert.log" || { cat "$work/nbconvert.log" >&2; exit 1; }
  cp "$work/out_sweep/03_compare_runs.ipynb" "$work/out/03_compare_runs_sweep.ipynb"
elif [ -n "${MNIST_REQUIRE_ALL:-}" ]; then
  echo "error: no Optuna for the sweep folder's notebook run (scripts/install_deps.sh)" >&2; exit 1
fi

# Each notebook drew its figures and raised nothing.
python3 - "$work/out" <<'PY'
import json, pathlib, sys
expected = {"01_explore_data": 4, "02_one_run": 4, "03_compare_runs": 2, "02_one_run_folder": 4}
if (pathlib.Path(sys.argv[1]) / "03_compare_runs_sweep.ipynb").exists():
    expected["03_compare_runs_sweep"] = 2
for name, count in expected.items():
    cells = json.load(open(pathlib.Path(sys.argv[1]) / f"{name}.ipynb"))["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    errors = [o for o in outputs if o["output_type"] == "error"]
    pngs = [o for o in outputs if "image/png" in o.get("data", {})]
    if errors:
        sys.exit(f"error: {name}: {errors[0]['ename']}: {errors[0]['evalue']}")
    if len(pngs) != count:
        sys.exit(f"error: {name}: {len(pngs)} figures, expected {count}")
    print(f"{name}: {len(pngs)} figures, no errors")
PY

# Without a run, the notebooks say which command creates one.
unset MNIST_RUNS
python3 - <<'PY'
import pathlib, tempfile
import mnist_nb
mnist_nb.REPO = pathlib.Path(tempfile.mkdtemp())
try:
    mnist_nb.run_dirs()
    raise SystemExit("error: run_dirs() found runs in an empty folder")
except mnist_nb.NoRunYet as e:
    assert "mnist-train --config" in str(e), str(e)
    print("no run yet:", str(e).splitlines()[0])
PY
echo "notebooks: all executed"
