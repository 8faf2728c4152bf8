"""Core engine benchmarks (issue 2). Run: python3 benchmarks/bench_core.py [--quick] [--write] [--only top|ingest|query]

1. `profscope top` on gp_large.cpu.pb.gz as a whole process vs `go tool pprof -top` (interleaved runs).
2. Store ingest of a 20k-sample profile; 1,000 small (~300-sample) profiles: decoded ones into the store,
   and from files: `profscope ingest` as a whole process, and the same pipeline (worker processes
   decode, one transaction stores) timed from before decoding to the store's close.
3. Flame graph and top over 10 million stored samples (10,000 profiles), in a server process; its RSS.
4. Bytes on disk per stored sample.
Targets are printed next to each figure; --write appends the results to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from common import append_results, machine, peak_rss_mib, start_server, stop_server  # noqa: E402

DATA = Path(os.environ.get("PROFSCOPE_SHARED", ROOT.parent / "shared")) / "data"


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def bench_top(runs: int) -> dict:
    f = str(DATA / "pprof/gp_large.cpu.pb.gz")
    # the console script installed beside this interpreter (a pyenv shim on PATH is a bash
    # script that adds ~80 ms before Python even starts)
    script = Path(sys.executable).parent / "profscope"
    exe = str(script) if script.exists() else (shutil.which("profscope") or sys.executable)
    ours = [exe, "top", f, "--limit", "20"] if exe.endswith("profscope") else [exe, "-m", "profscope.cli", "top", f]
    go = ["go", "tool", "pprof", "-symbolize=none", "-top", f]
    timed(ours), timed(go)  # warm caches
    a, b = [], []
    for _ in range(runs):
        a.append(timed(ours))
        b.append(timed(go))
    ma, mb = statistics.median(a), statistics.median(b)
    return {"profscope_top_s": round(ma, 3), "go_pprof_top_s": round(mb, 3), "ratio": round(ma / mb, 2),
            "target": "ratio <= 0.5"}


_PIPELINE = """
import sys, time
from profscope.formats.parallel import decode_files
from profscope.store import Store
t = time.perf_counter()
decoded = decode_files(sys.argv[2:])
store = Store(sys.argv[1])
def chunks():
    buf = []
    for _, p in decoded:
        buf.append((p, {"service_name": "small-pipe"}))
        if len(buf) == 64:
            yield buf
            buf = []
    if buf:
        yield buf
store.ingest_all(chunks())
store.close()
print(time.perf_counter() - t)
"""


def bench_ingest(tmp: Path) -> dict:
    from synth import profile_from_pool, stack_pool

    from profscope.formats import decode
    from profscope.gcpolicy import for_service
    from profscope.store import Store
    raw = (DATA / "pprof/gp_large.cpu.pb.gz").read_bytes()
    for_service()                     # the collector settings of `profscope serve`
    # the 20k profile into a fresh store (every frame and stack new), five times: medians. As in a
    # running server: the decoder has run before (a warm-up decode of the file), and the five
    # stores are opened first (closing a store between runs made the next decode 1.5-2x slower,
    # glibc handing the freed memory back and faulting it in again)
    stores = [Store(str(tmp / f"ingest{i}")) for i in range(5)]
    decode(raw)
    decs, firsts, agains = [], [], []
    for store in stores:
        t = time.perf_counter()
        p = decode(raw)
        decs.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.ingest(p, {"service_name": "big"})
        firsts.append(time.perf_counter() - t)
        p2 = decode(raw)
        t = time.perf_counter()
        store.ingest(p2, {"service_name": "big2"})   # the same stacks again: only samples are new
        agains.append(time.perf_counter() - t)
    for other in stores[:-1]:
        other.close()
    store = stores[-1]
    t_dec, t_first, t_again = statistics.median(decs), statistics.median(firsts), statistics.median(agains)
    totals = sorted(a + b for a, b in zip(decs, firsts))
    pool = stack_pool(20_000)
    small = [profile_from_pool(pool, 300, i, 10**18 + i * 10**10) for i in range(1000)]
    t = time.perf_counter()
    for k in range(0, 1000, 100):
        store.ingest_many([(q, {"service_name": "small"}) for q in small[k:k + 100]])
    rate_batched = 1000 / (time.perf_counter() - t)
    small2 = [profile_from_pool(pool, 300, i, 2 * 10**18 + i * 10**10) for i in range(200)]
    t = time.perf_counter()
    for q in small2:
        store.ingest(q, {"service_name": "small-seq"})
    rate_seq = 200 / (time.perf_counter() - t)
    store.close()
    # the user's way: `profscope ingest` of 1,000 pprof files, the whole process (decode included)
    import numpy as np

    from profscope.formats.pprof_write import encode_profile
    files = tmp / "small_files"
    files.mkdir()
    for i in range(1000):   # each file lists only the frames its samples use, as profilers write them
        q = profile_from_pool(pool, 300, i, 3 * 10**18 + i * 10**10)
        used = np.unique(q.stack_frames)
        remap = np.zeros(len(q.frames), np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        q = dataclasses.replace(q, frames=q.frames.take(used), stack_frames=remap[q.stack_frames])
        (files / f"p{i:04d}.pb.gz").write_bytes(encode_profile(q))
    script = Path(sys.executable).parent / "profscope"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "profscope.cli"]
    paths = sorted(map(str, files.iterdir()))
    cli_s = []
    for i in range(3):     # the whole command: interpreter, imports, workers, store open, commit, close
        t = time.perf_counter()
        subprocess.run(cmd + ["ingest", "--data-dir", str(tmp / f"cli_store{i}"), "--service", "small-cli", *paths],
                       check=True, stdout=subprocess.DEVNULL)
        cli_s.append(time.perf_counter() - t)
    rate_cli = 1000 / statistics.median(cli_s)
    # the same pipeline once running (as a service's bulk ingest would): decode in worker processes,
    # store in one transaction, from opening a fresh store to its close; in a fresh process
    pipe_s = []
    for i in range(3):
        out = subprocess.run([sys.executable, "-c", _PIPELINE, str(tmp / f"pipe_store{i}"), *paths], check=True,
                             capture_output=True, text=True)
        pipe_s.append(float(out.stdout.split()[-1]))
    rate_pipe = 1000 / statistics.median(pipe_s)
    # the same with real profiles of 120-480 samples from ../shared (Go, Python, fgprof, heap; with
    # and without sample labels), each file named 143 times
    real = [DATA / f for f in ("pprof/parca_agent_thread_labels.pb.gz", "pprof/parca_fgprof.wall.pb.gz",
                               "pprof/parca_fib_bigint.cpu.pb.gz", "pprof/parca_labels_api.cpu.pb.gz",
                               "pprof/parca_many_heap_t9.pb.gz", "pyroscope-agpl/pyro_python.cpu.pb.gz",
                               "pyroscope-agpl/pyro_go_labels_profile_id.cpu.pb.gz")]
    t = time.perf_counter()
    subprocess.run(cmd + ["ingest", "--data-dir", str(tmp / "cli_real"), "--service", "real-cli",
                          *[str(f) for f in real] * 143], check=True, stdout=subprocess.DEVNULL)
    rate_real = len(real) * 143 / (time.perf_counter() - t)
    return {"decode_20k_ms": round(t_dec * 1000, 1), "store_20k_first_ms": round(t_first * 1000, 1),
            "store_20k_again_ms": round(t_again * 1000, 1),
            "decode_plus_store_20k_ms": round((t_dec + t_first) * 1000, 1),
            "decode_plus_store_20k_ms_all_runs": [round(x * 1000) for x in totals], "target_20k": "< 150 ms",
            "small_profiles_per_s_batched_100": round(rate_batched), "small_profiles_per_s_one_by_one": round(rate_seq),
            "small_profiles_per_s_cli_1000_files": round(rate_cli),
            "cli_1000_files_s_all_runs": [round(x, 2) for x in cli_s],
            "small_profiles_per_s_pipeline_1000_files": round(rate_pipe),
            "pipeline_1000_files_s_all_runs": [round(x, 2) for x in pipe_s],
            "real_small_profiles_per_s_cli_1001_files": round(rate_real),
            "target_small": ">= 500/s"}


def build_10m(path: Path, n_profiles: int, per_profile: int) -> dict:
    from synth import profile_from_pool, stack_pool

    from profscope.store import Store
    store = Store(str(path))
    pool = stack_pool(200_000, n_funcs=20_000)
    t = time.perf_counter()
    batch = []
    for i in range(n_profiles):
        batch.append((profile_from_pool(pool, per_profile, i, 10**18 + i * 10**10),
                      {"service_name": f"svc{i % 10}", "pod": f"pod-{i % 100}"}))
        if len(batch) == 40:   # 80k sample rows per transaction, as `profscope ingest` chunks files
            store.ingest_many(batch)
            batch = []
    if batch:
        store.ingest_many(batch)
    dt = time.perf_counter() - t
    store.db.checkpoint()
    stats = store.stats()
    store.close()
    size = sum(f.stat().st_size for f in path.iterdir())
    return {"profiles": stats["profiles"], "sample_rows": stats["sample_rows"], "stacks": stats["stacks"],
            "build_s": round(dt, 1), "bytes_on_disk": size,
            "bytes_per_sample_row": round(size / max(stats["sample_rows"], 1), 2), "target_bytes": "< 4"}


def bench_query(path: Path, runs: int) -> dict:
    proc, port = start_server(path)
    base = f"http://127.0.0.1:{port}"
    try:
        q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{}"
        out = {}
        # the first flame graph after start-up builds the call-path index of every stored stack
        t = time.perf_counter()
        urllib.request.urlopen(base + f"/api/v1/flamegraph?query={urllib.request.quote(q)}", timeout=300).read()
        out["first_flamegraph_after_start_ms"] = round((time.perf_counter() - t) * 1000, 1)
        for name, url in (("flamegraph", f"/api/v1/flamegraph?query={urllib.request.quote(q)}&max_nodes=8192"),
                          ("top", f"/api/v1/top?query={urllib.request.quote(q)}&limit=100")):
            times = []
            for _ in range(runs):
                t = time.perf_counter()
                body = urllib.request.urlopen(base + url, timeout=120).read()
                times.append(time.perf_counter() - t)
            out[f"{name}_ms_median"] = round(statistics.median(times) * 1000, 1)
            out[f"{name}_ms_first"] = round(times[0] * 1000, 1)
            out[f"{name}_total"] = json.loads(body)["total"]
        # Grafana's query: querier.v1 SelectMergeStacktraces (Connect, JSON) over the same selection
        body = json.dumps({"profileTypeID": q[:-2], "labelSelector": "{}", "start": "0",
                           "end": str(4 * 10**12)}).encode()
        times = []
        for _ in range(runs):
            req = urllib.request.Request(base + "/querier.v1.QuerierService/SelectMergeStacktraces", data=body,
                                         headers={"Content-Type": "application/json"})
            t = time.perf_counter()
            answer = json.loads(urllib.request.urlopen(req, timeout=120).read())
            times.append(time.perf_counter() - t)
        out["querier_select_merge_stacktraces_ms_median"] = round(statistics.median(times) * 1000, 1)
        out["querier_total"] = int(answer["flamegraph"]["total"])
        rss = peak_rss_mib(proc.pid)       # granian's main process, its worker (the store), the decoders
        out["server_peak_rss_mib"] = rss["largest"]
        out["server_processes_peak_rss_sum_mib"] = rss["sum"]
        out["target"] = "< 300 ms each, RSS < 1 GiB"
        return out
    finally:
        stop_server(proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1M samples instead of 10M")
    ap.add_argument("--write", action="store_true", help="append results to benchmarks/RESULTS.md")
    ap.add_argument("--keep", default=None, help="directory for the 10M-sample store (reused if present)")
    ap.add_argument("--only", choices=("top", "ingest", "query"), default=None, help="run one part only")
    args = ap.parse_args()
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    tmp = Path(tempfile.mkdtemp(prefix="profscope-bench-"))
    try:
        if args.only in (None, "top"):
            results["top_vs_pprof"] = bench_top(5 if args.quick else 11)
            print(json.dumps(results["top_vs_pprof"]), flush=True)
        if args.only in (None, "ingest"):
            results["ingest"] = bench_ingest(tmp)
            print(json.dumps(results["ingest"]), flush=True)
        if args.only not in (None, "query"):
            return
        n_prof = 1000 if args.quick else 10_000
        big = Path(args.keep) if args.keep else tmp / "10m"
        if not (big / "profscope.duckdb").exists():
            results["store_10m"] = build_10m(big, n_prof, 1000)
            print(json.dumps(results["store_10m"]), flush=True)
        results["query_10m"] = bench_query(big, 5)
        print(json.dumps(results["query_10m"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.write:
        append_results("Core engine", results)


if __name__ == "__main__":
    main()
