#!/usr/bin/env python3
"""Attacks an HTTP server on loopback and reports what each attack costs it (docs/serving.md).

    scripts/serve_probe.py -- build/bin/mnist-serve --run RUN --port 0
    scripts/serve_probe.py --peer httplib      # the cpp-httplib peer (scripts/httplib_peer.cpp)

Each attack gets a freshly started server (its first stdout line must hold http://127.0.0.1:PORT/),
is bounded in bytes and time, and is followed by a health check. Reported per attack: the answer's
status line (or "none"), the growth of the server's peak resident memory (VmHWM) over its idle
peak, the health check's latency, and whether the process survived. Loopback only.
"""
import argparse
import gzip
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start(command):
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    out = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        out += line
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            time.sleep(0.3)
            return proc, int(m.group(1))
    proc.kill()
    sys.exit(f"error: the server did not start: {out}")


def health(port, timeout=5.0):
    t = time.time()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = s.recv(64)
            return (time.time() - t) if data.startswith(b"HTTP/1.1 200") else None
    except OSError:
        return None


def flood(port, head, piece, max_bytes, seconds):
    """Sends head, then piece until answered/closed, max_bytes or seconds; returns (status, MiB sent)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    pending = head
    sent = 0
    answer = b""
    t = time.time()
    while time.time() - t < seconds and sent < max_bytes:
        r, w, _ = select.select([s], [s], [], 0.2)
        if r:
            try:
                data = s.recv(4096)
            except OSError:
                break
            if not data:
                break
            answer += data
            break
        if w:
            try:
                n = s.send(pending or piece)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                break
            if pending:
                pending = pending[n:]
            sent += n
    s.setblocking(True)
    s.settimeout(2)
    try:
        answer += s.recv(4096)
    except OSError:
        pass
    s.close()
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "none"
    return line, sent / MiB


def attack_slow(port, count, seconds):
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    request = b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"
    worst = 0.0
    failed = 0
    t = time.time()
    i = 0
    while time.time() - t < seconds:
        for s in socks:
            try:
                s.send(request[i:i + 1])
            except OSError:
                pass
        i += 1
        latency = health(port, timeout=2.0)
        if latency is None:
            failed += 1
        else:
            worst = max(worst, latency)
        time.sleep(0.5)
    for s in socks:
        s.close()
    return f"{len(socks)} slow clients: {failed} health checks failed, slowest answered {worst * 1000:.0f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", choices=["httplib"], help="attack the cpp-httplib peer instead")
    ap.add_argument("--megabytes", type=int, default=256, help="most each flood sends (default 256)")
    ap.add_argument("--seconds", type=float, default=15, help="longest each flood lasts (default 15)")
    ap.add_argument("--slow", type=int, default=100, help="slow clients (default 100)")
    ap.add_argument("command", nargs="*", help="the server's command line (after --)")
    a = ap.parse_args()
    command = a.command
    if a.peer:
        here = os.path.dirname(os.path.abspath(__file__))
        binary = os.path.join(tempfile.gettempdir(), "mnist-httplib-peer")
        flags = subprocess.check_output(["pkg-config", "--cflags", "--libs", "cpp-httplib"], text=True).split()
        subprocess.check_call(["g++", "-O2", "-std=c++17", os.path.join(here, "httplib_peer.cpp"), "-o", binary,
                               *flags, "-lpthread"])
        command = [binary]
    if not command:
        sys.exit("error: give the server's command line after --, or --peer httplib")
    limit = a.megabytes * MiB
    zeros = gzip.compress(b"\0" * limit, 9)
    attacks = [
        ("endless header lines", b"GET / HTTP/1.1\r\n", b"X-Again: and again\r\n" * 64),
        ("one endless header line", b"GET / HTTP/1.1\r\nX-Long: ", b"b" * 4096),
        ("endless chunked body", b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n", b"10000\r\n" + b"x" * 0x10000 + b"\r\n"),
        (f"gzip bomb ({len(zeros) // 1024} KiB -> {a.megabytes} MiB)",
         b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Encoding: gzip\r\n"
         b"Content-Length: " + str(len(zeros)).encode() + b"\r\n\r\n" + zeros, b""),
    ]
    print(f"| attack (at most {a.megabytes} MiB, {a.seconds:.0f} s) | answer | MiB sent | peak memory growth | health after |")
    print("|---|---|---|---|---|")
    for name, head, piece in attacks:
        proc, port = start(command)
        idle = peak_mib(proc.pid)
        line, sent = flood(port, head, piece or b"", limit, a.seconds)
        time.sleep(0.5)
        alive = proc.poll() is None
        growth = peak_mib(proc.pid) - idle if alive else float("nan")
        h = health(port) if alive else None
        after = "process ended" if not alive else ("none in 5 s" if h is None else f"{h * 1000:.0f} ms")
        print(f"| {name} | {line} | {sent:.0f} | {growth:.0f} MiB | {after} |", flush=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc, port = start(command)
    print(f"\n{attack_slow(port, a.slow, 10)}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()


if __name__ == "__main__":
    main()
