#!/usr/bin/env python3
"""The web benchmark: mnist-serve against the Python peer (scripts/serve_peer.py: FastAPI + uvicorn
+ PyTorch + PIL) serving the same model, side by side in one run, on loopback.

  scripts/bench_serve.sh                         # builds, trains mnist_mlp_fast, runs this
  python3 scripts/bench_serve.py --run RUN_DIR [--duration 10] [--repeats 3] [--connections 1,8,32]

For each connection count, each side is loaded with wrk (-t1, POST /api/predict with the same
280x280 PNG drawing of a 7, a fixed duration) `--repeats` times, alternating sides; the table gives
the medians of requests/s and of wrk's p50 and p99 latency. A third side is mnist-serve with
?preprocess=naive, the same resize the peer does, to tell the server from the preprocessing, and the errors (non-2xx answers and
socket errors) summed. Then 100,000 requests (hey -n 100000 -c 32) go to mnist-serve alone, and its
resident memory is read from /proc before and after. Every repeat is in the JSON report.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def drawing_png(path):
    """A 280x280 drawing of a 7 as a canvas would send it: dark strokes on white, PNG."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (280, 280), 255)
    d = ImageDraw.Draw(img)
    d.line([(70, 60), (210, 60), (120, 240)], fill=0, width=20, joint="curve")
    img.save(path)


def wait_health(port, proc, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"error: the server on port {port} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"error: no server answered on port {port}")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text):
    def ms(s):
        m = re.match(r"([\d.]+)(us|ms|s)", s)
        return float(m.group(1)) * UNITS[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"\n\s+50%\s+(\S+)", text).group(1))
    p99 = ms(re.search(r"\n\s+99%\s+(\S+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    requests = int(re.search(r"(\d+) requests in", text).group(1))
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors, "requests": requests}


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="a run folder of a ReLU MLP (both sides serve it)")
    ap.add_argument("--serve", default=os.path.join(REPO, "build/bin/mnist-serve"))
    ap.add_argument("--workers", type=int, default=None, help="mnist-serve --workers (default: its own)")
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--connections", default="1,8,32")
    ap.add_argument("--soak", type=int, default=100_000, help="requests for the memory check (0: none)")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-serve-")
    body = os.path.join(work, "seven.png")
    drawing_png(body)
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "image/png"\n'
                f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n')

    ours_port, peer_port = free_port(), free_port()
    cmd = [args.serve, "--run", args.run, "--port", str(ours_port)]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    ours = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peer = subprocess.Popen([sys.executable, os.path.join(REPO, "scripts/serve_peer.py"), "--run", args.run,
                             "--port", str(peer_port)], stdout=subprocess.DEVNULL)
    sides = {"mnist-serve": f"{ours_port}/api/predict", "naive": f"{ours_port}/api/predict?preprocess=naive",
             "python": f"{peer_port}/api/predict"}
    report = {"runs": [], "machine": os.uname().nodename, "cores": os.cpu_count()}
    try:
        wait_health(ours_port, ours)
        wait_health(peer_port, peer)
        # Both answer the drawing the same way?
        for name, target in sides.items():
            with open(body, "rb") as f:
                req = urllib.request.Request(f"http://127.0.0.1:{target}", data=f.read(),
                                             headers={"Content-Type": "image/png"})
            with urllib.request.urlopen(req) as r:
                report[f"{name}_answer"] = json.load(r)["digit"]
        for target in sides.values():  # warm-up
            subprocess.run(["wrk", "-t1", "-c8", "-d2s", "-s", lua, f"http://127.0.0.1:{target}"],
                           capture_output=True, check=True)
        for c in [int(x) for x in args.connections.split(",")]:
            for rep in range(args.repeats):
                order = list(sides.items()) if rep % 2 == 0 else list(reversed(sides.items()))
                for name, target in order:
                    out = subprocess.run(["wrk", "-t1", f"-c{c}", f"-d{args.duration}s", "--latency",
                                          "--timeout", "10s", "-s", lua, f"http://127.0.0.1:{target}"],
                                         capture_output=True, text=True, check=True).stdout
                    row = parse_wrk(out)
                    row.update(side=name, connections=c, repeat=rep)
                    report["runs"].append(row)
                    print(f"  {name:12s} c={c:<3d} {row['rps']:9.0f} req/s  p50 {row['p50_ms']:6.2f} ms  "
                          f"p99 {row['p99_ms']:6.2f} ms  errors {row['errors']}", file=sys.stderr)
        if args.soak:
            before = rss_mb(ours.pid)
            out = subprocess.run(["hey", "-n", str(args.soak), "-c", "32", "-m", "POST", "-T", "image/png",
                                  "-D", body, f"http://127.0.0.1:{ours_port}/api/predict"],
                                 capture_output=True, text=True, check=True).stdout
            after = rss_mb(ours.pid)
            codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
            report["soak"] = {"requests": args.soak, "rss_before_mb": before[0], "rss_after_mb": after[0],
                              "peak_mb": after[1], "status_counts": codes}
    finally:
        for p in (ours, peer):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    print(f"Same 280x280 PNG drawing of a 7 to all; answers: mnist-serve {report['mnist-serve_answer']}, "
          f"naive {report['naive_answer']}, Python {report['python_answer']}. wrk -t1, {args.duration} s per run, "
          f"medians of {args.repeats}. 'naive': mnist-serve with ?preprocess=naive, the peer's preprocessing.\n")
    print("| connections | mnist-serve req/s | naive req/s | Python req/s | ratio (ours / naive vs Python) | "
          "mnist-serve p50 / p99 ms | naive p50 / p99 ms | Python p50 / p99 ms | errors (ours / naive / Python) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in [int(x) for x in args.connections.split(",")]:
        def med(side, key):
            return statistics.median(r[key] for r in report["runs"] if r["side"] == side and r["connections"] == c)

        def errs(side):
            return sum(r["errors"] for r in report["runs"] if r["side"] == side and r["connections"] == c)

        o, n, p = med("mnist-serve", "rps"), med("naive", "rps"), med("python", "rps")
        lat = " | ".join(f"{med(s, 'p50_ms'):.2f} / {med(s, 'p99_ms'):.2f}" for s in ("mnist-serve", "naive", "python"))
        print(f"| {c} | {o:,.0f} | {n:,.0f} | {p:,.0f} | {o / p:.2f}x / {n / p:.2f}x | {lat} | "
              f"{errs('mnist-serve')} / {errs('naive')} / {errs('python')} |")
    if "soak" in report:
        s = report["soak"]
        print(f"\nmnist-serve memory over {s['requests']:,} more requests (hey -c 32): resident "
              f"{s['rss_before_mb']:.1f} MB before, {s['rss_after_mb']:.1f} MB after (peak {s['peak_mb']:.1f} MB); "
              f"status counts {s['status_counts']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
