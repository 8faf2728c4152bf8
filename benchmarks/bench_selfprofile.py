"""Overhead of ``profscope serve --self-profile`` (the pyroscope-io SDK sampling this process).

Runs a fixed CPU workload in fresh worker processes, alternately without and with the SDK
started through :func:`profscope.capture.selfprofile.start_self_profiling` (100 Hz, pushing to
a local sink that answers 200 to every push), and reports the median wall time per iteration,
the process CPU time (the SDK samples from a native thread, which can use the second core) and
the % differences. The CPU figures hold up on a busy machine; wall time does not. Two workloads:

- ``python``: a pure-Python loop (the worst case for a sampler that reads Python stacks);
- ``profscope``: decode ../shared/data/pprof/gp_large.cpu.pb.gz, top table and flame-graph
  tree, i.e. what a profscope server request does.

    python3 benchmarks/bench_selfprofile.py [--rounds 9] [--iterations 40]

(the profscope workload runs a fifth of the iterations: one takes ~0.5 s)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROFSCOPE_SHARED", ROOT.parent / "shared"))
LARGE = SHARED / "data" / "pprof" / "gp_large.cpu.pb.gz"

SINK = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def python_workload() -> int:
    s = 0
    for _ in range(10):
        for i in range(100_000):
            s += i * i % 7
    return s


def profscope_workload() -> int:
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.analysis.top import top_table
    from profscope.analysis.tree import build_tree
    from profscope.formats import decode
    p = decode(LARGE.read_bytes())
    ss = profile_to_stackset(p, None)
    return len(top_table(ss).names) + len(build_tree([ss], "functions", 8192).names)


def worker(mode: str, workload: str, iterations: int, sink: str) -> dict:
    sys.path.insert(0, str(ROOT))
    fn = python_workload if workload == "python" else profscope_workload
    fn()   # warm-up: imports, caches
    if mode == "on":
        from profscope.capture.selfprofile import start_self_profiling, stop_self_profiling
        start_self_profiling(sink, {"bench": workload}, upload_interval=2)
        time.sleep(0.2)
    times, thread_cpu = [], []
    cpu0, th0 = time.process_time(), time.thread_time()
    w0 = time.perf_counter()
    for _ in range(iterations):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        times.append(time.perf_counter() - t)
        thread_cpu.append(time.thread_time() - c)
    wall = time.perf_counter() - w0
    # CPU of every other thread of the process: the SDK's sampler and uploader (~0 when off)
    other = (time.process_time() - cpu0) - (time.thread_time() - th0)
    if mode == "on":
        stop_self_profiling()
    return {"median": statistics.median(times), "thread_cpu": statistics.median(thread_cpu),
            "other_cpu_share": other / wall, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--worker", nargs=3, metavar=("MODE", "WORKLOAD", "SINK"))
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker[0], a.worker[1], a.iterations, a.worker[2])))
        return
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{sink.stdout.readline().strip()}"
    workloads = ["python"] + (["profscope"] if LARGE.is_file() else [])
    try:
        for wl in workloads:
            res: dict[str, list[dict]] = {"off": [], "on": []}
            n = a.iterations if wl == "python" else max(1, a.iterations // 5)
            for _ in range(a.rounds):
                for mode in ("off", "on"):
                    out = subprocess.run([sys.executable, __file__, "--iterations", str(n),
                                          "--worker", mode, wl, url], capture_output=True, text=True,
                                         check=True, cwd=ROOT)
                    res[mode].append(json.loads(out.stdout.splitlines()[-1]))
            med = {m: statistics.median(r["median"] for r in res[m]) for m in res}
            tcpu = {m: statistics.median(r["thread_cpu"] for r in res[m]) for m in res}
            other = {m: statistics.median(r["other_cpu_share"] for r in res[m]) for m in res}
            # each round runs off then on back to back: the spread of their ratios shows the noise
            ratios = sorted(100 * (b["median"] / a["median"] - 1) for a, b in zip(res["off"], res["on"], strict=True))
            print(f"{wl}: workload thread CPU per iteration off {tcpu['off'] * 1e3:.1f} ms, on "
                  f"{tcpu['on'] * 1e3:.1f} ms ({100 * (tcpu['on'] / tcpu['off'] - 1):+.1f}%); other threads "
                  f"(sampler + uploads) {100 * other['on']:.1f}% of a core on, {100 * other['off']:.1f}% off; "
                  f"wall per iteration off {med['off'] * 1e3:.1f} ms, on {med['on'] * 1e3:.1f} ms "
                  f"({100 * (med['on'] / med['off'] - 1):+.1f}%, rounds {ratios[0]:+.1f}%..{ratios[-1]:+.1f}%)")
    finally:
        sink.terminate()
        sink.wait()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{a.rounds} rounds, {a.iterations} (python) / {max(1, a.iterations // 5)} (profscope) iterations, "
          "100 Hz, median of round medians")


if __name__ == "__main__":
    main()
