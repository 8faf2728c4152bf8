"""Shared by the benchmark harnesses: machine description, a real server process, results file."""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {cpu}, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(data_dir: Path, threads: int = 8, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int]:
    """`profscope serve` on a free loopback port; returns once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--data-dir",
                             str(data_dir), "--threads", str(threads), "--no-otlp-grpc", *extra],
                            cwd=ROOT, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss_mib(pid: int) -> dict[str, int]:
    """Peak RSS (VmHWM) of ``pid`` and its descendants: ``profscope serve`` is granian's main
    process, its worker (which holds the store) and the worker's decoding processes. Returns the
    largest one's and their sum, in MiB."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = next(ln for ln in open(f"/proc/{d}/status") if ln.startswith("PPid:")).split()[1]
                parents[int(d)] = int(ppid)
            except (OSError, StopIteration):
                pass
    family, grew = {pid}, True
    while grew:
        more = {p for p, pp in parents.items() if pp in family} - family
        family |= more
        grew = bool(more)
    peaks = []
    for p in family:
        try:
            peaks.append(int(next(ln for ln in open(f"/proc/{p}/status") if ln.startswith("VmHWM")).split()[1]) * 1024)
        except (OSError, StopIteration):
            pass
    return {"largest": round(max(peaks, default=0) / 2**20), "sum": round(sum(peaks) / 2**20)}


def append_results(title: str, results: dict) -> None:
    """Append one run's results, with the machine, to benchmarks/RESULTS.md."""
    with open(HERE / "RESULTS.md", "a") as fh:
        fh.write(f"\n## {title} ({results.get('date', time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))})\n\n"
                 f"Machine: {results.get('machine', machine())}\n\n```json\n{json.dumps(results, indent=2)}\n```\n")
