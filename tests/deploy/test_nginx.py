#!/usr/bin/env python3
"""deploy/nginx/mnist-serve.conf with the real nginx, on loopback, in front of two mnist-serve
processes (the site file as shipped, only its ports and the backends' addresses replaced):
a prediction and a correction through nginx, nginx's own errors as JSON, a killed backend (the
requests keep being answered), and slow clients held at nginx (the backends never see them).
Usage: test_nginx.py BIN_DIR. Skips (exit 77) without nginx or real MNIST, unless
MNIST_REQUIRE_ALL is set (scripts/test.sh sets it).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NGINX = "/usr/sbin/nginx"
sys.path.insert(0, os.path.join(REPO, "tests", "support"))
from script_checks import check, failures, skip  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=b"", headers=None, timeout=20, source="127.0.0.1"):
    """One request on its own connection from address `source`: (status, headers dict, body bytes);
    (None, {}, b"") on failure."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    if method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0)) as s:
            s.sendall(head.encode() + b"\r\n" + body)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None, {}, b""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/1.1 "):
        return None, {}, b""
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        fields[k.strip().lower()] = v.strip()
    if fields.get("transfer-encoding") == "chunked":
        out = b""
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line, 16)
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        rest = out
    return int(lines[0][9:12]), fields, rest


def start_backend(bin_dir, runs, port, feedback, log):
    proc = subprocess.Popen([f"{bin_dir}/mnist-serve", "--run", runs, "--port", str(port), "--feedback-dir", feedback],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    for _ in range(600):
        if "serving on" in open(log).read():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit(f"error: mnist-serve did not start:\n{open(log).read()}")


def open_connections(port):
    _, _, body = request(port, "GET", "/metrics")
    m = re.search(rb"\nmnist_http_open_connections (\d+)", body)
    return int(m.group(1)) if m else -1


def main():
    bin_dir = sys.argv[1]
    data = os.environ.get("MNIST_DATA_DIR", f"{REPO}/data/mnist")
    if not os.access(NGINX, os.X_OK):
        skip("nginx is missing (Debian package nginx)")
    if not any(os.path.exists(f"{data}/t10k-images-idx3-ubyte{gz}") for gz in ("", ".gz")):
        skip(f"no MNIST in {data} (scripts/fetch_mnist.sh)")
    work = tempfile.mkdtemp()
    procs = []
    try:
        os.chmod(work, 0o755)  # nginx's workers (nobody, when started as root) read and write here
        subprocess.run([f"{bin_dir}/mnist-train", "--config", f"{REPO}/configs/mnist_mlp_fast.json",
                        "--set", f"data.dir={data}", "--set", "train.epochs=1", "--run-dir", f"{work}/runs/mlp"],
                       check=True, stdout=subprocess.DEVNULL)
        # A digit from the test set, as a user would upload it.
        subprocess.run([f"{bin_dir}/mnist-userset", "--data", data, "--out", f"{work}/images", "--count", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        png = open(f"{work}/images/dark_on_white-0000.png", "rb").read()

        ports = [free_port(), free_port()]
        front = free_port()
        feedback = f"{work}/feedback"
        for i, p in enumerate(ports):
            procs.append(start_backend(bin_dir, f"{work}/runs", p, feedback, f"{work}/backend{i}.log"))

        site = open(f"{REPO}/deploy/nginx/mnist-serve.conf").read()
        site = site.replace("127.0.0.1:8081", f"127.0.0.1:{ports[0]}").replace("127.0.0.1:8082", f"127.0.0.1:{ports[1]}")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{front};")
        assert f"127.0.0.1:{ports[1]}" in site and f"listen 127.0.0.1:{front};" in site
        open(f"{work}/site.conf", "w").write(site)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(f"{work}/temp/{d}")
            os.chmod(f"{work}/temp/{d}", 0o777)
        open(f"{work}/nginx.conf", "w").write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/temp/body;
    proxy_temp_path {work}/temp/proxy;
    fastcgi_temp_path {work}/temp/fastcgi;
    uwsgi_temp_path {work}/temp/uwsgi;
    scgi_temp_path {work}/temp/scgi;
    include {work}/site.conf;
}}
""")
        t = subprocess.run([NGINX, "-t", "-p", work, "-c", f"{work}/nginx.conf"], capture_output=True, text=True)
        check(t.returncode == 0, f"nginx -t accepts the site: {t.stderr.strip()}")
        nginx = subprocess.Popen([NGINX, "-p", work, "-c", f"{work}/nginx.conf", "-g", "daemon off;"])
        procs.append(nginx)
        for _ in range(100):
            if request(front, "GET", "/api/health")[0] == 200:
                break
            time.sleep(0.1)

        status, _, body = request(front, "POST", "/api/predict", png, {"Content-Type": "image/png"})
        check(status == 200 and "digit" in json.loads(body), f"a prediction through nginx ({status})")

        own = f"http://127.0.0.1:{front}"
        status, _, body = request(front, "POST", "/api/feedback?label=7", png,
                                  {"Content-Type": "image/png", "Origin": own, "Sec-Fetch-Site": "same-origin"})
        saved = json.loads(body).get("saved", "") if status == 201 else ""
        check(status == 201 and os.path.isfile(f"{feedback}/{saved}"), f"a correction through nginx, on disk ({status})")
        status, _, _ = request(front, "POST", "/api/feedback?label=7", png,
                               {"Content-Type": "image/png", "Origin": "http://evil.example"})
        check(status == 403, f"a cross-site correction through nginx is refused ({status})")

        status, fields, body = request(front, "POST", "/api/predict", b"x" * (9 << 20), {"Content-Type": "image/png"})
        check(status == 413 and "error" in json.loads(body or b"{}"), f"nginx's 413 is JSON ({status})")
        status, _, _ = request(front, "GET", "/metrics")
        check(status == 200, f"/metrics from this machine ({status})")

        # Slow clients, 20 from each of 5 addresses (nginx's per-address limit): whole headers, a
        # body that has barely begun. nginx holds them; the backends see no more connections.
        slow = []
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", front), source_address=(f"127.0.0.{3 + i % 5}", 0))
            s.sendall(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 100000\r\n\r\n" + png[:10])
            slow.append(s)
        time.sleep(1.0)
        seen = [open_connections(p) for p in ports]
        check(all(0 <= n <= 3 for n in seen), f"100 slow uploads stay at nginx (backends' open connections: {seen})")
        t0 = time.time()
        status, _, _ = request(front, "POST", "/api/predict", png, {"Content-Type": "image/png"}, source="127.0.0.2")
        check(status == 200 and time.time() - t0 < 2, f"another client's prediction meanwhile ({status}, {time.time() - t0:.2f} s)")
        status, fields, body = request(front, "POST", "/api/predict", png, {"Content-Type": "image/png"}, source="127.0.0.3")
        check(status == 429 and "error" in json.loads(body or b"{}"),
              f"a 21st connection from one address: nginx's 429, as JSON ({status})")
        for s in slow:
            s.close()

        # One backend killed: every request is still answered (nginx takes the other).
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        answered = 0
        for i in range(20):
            status, _, _ = request(front, "POST", "/api/predict", png, {"Content-Type": "image/png"})
            answered += status == 200
            time.sleep(0.06)  # under the rate limit
        check(answered == 20, f"with one backend killed, {answered} of 20 predictions answered")
        status, _, _ = request(front, "GET", "/api/health")
        check(status == 200, f"health with one backend killed ({status})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(f"error: {len(failures)} check(s) failed")
    print("nginx in front of two mnist-serve processes: all checks passed")


if __name__ == "__main__":
    main()
