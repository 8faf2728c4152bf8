"""Pyroscope push and OTLP ingest benchmarks (issue 3).

Run: python3 benchmarks/bench_push.py [--clients 50] [--duration 30] [--write]

1. Sustained push: a `profscope serve` process on 127.0.0.1; N client threads (keep-alive
   connections, pre-built requests so the client costs little CPU) each push one Pyroscope
   PushRequest after the other: gzip-compressed, one 10-second CPU profile (pprof like the
   pyroscope-io SDK sends: cpu/nanoseconds, ~1,000 samples over ~200 distinct stacks) per request.
   Meanwhile one flame-graph query (querier.v1 SelectMergeStacktraces) runs every second. The
   first --warmup seconds (default 3) run the same load but are not timed: the server's first
   seconds store every stack for the first time; their latencies are reported apart
   (``warmup_p99_ms``) and the p99 over every request as ``p99_all_ms``. Afterwards the server is
   stopped and the stored profiles are counted in the DuckDB file: every acknowledged push,
   warm-up included, must be there. Targets: >= 1,000 req/s, p99 < 100 ms, nothing lost.
2. OTLP: the OpenTelemetry eBPF profiler payload (317 samples, 77 resource profiles) posted to
   /v1development/profiles; time to the HTTP response (decode, checks, convert, commit).
   Target: < 20 ms.
--write appends the results to benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
from common import free_port, machine, start_server, stop_server  # noqa: E402,F401

DATA = Path(os.environ.get("PROFSCOPE_SHARED", ROOT.parent / "shared")) / "data"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


# ------------------------------------------------------------------ payloads
def sdk_like_pprof(seed: int, time_ns: int, n_stacks: int = 200, n_funcs: int = 400, hz: int = 100) -> bytes:
    """A 10-second CPU profile shaped like pyroscope-io's: cpu/nanoseconds values = count x period."""
    from profscope.wire.proto.google.v1 import profile_pb2 as pb
    rnd = random.Random(seed)
    period = 10**9 // hz
    strings = ["", "cpu", "nanoseconds"]
    p = pb.Profile(period=period, time_nanos=time_ns, duration_nanos=10 * 10**9)
    p.sample_type.add(type=1, unit=2)
    p.period_type.type, p.period_type.unit = 1, 2
    for f in range(1, n_funcs + 1):
        strings += [f"handler_{f}", f"/srv/app/module_{f % 23}.py"]
        p.function.add(id=f, name=len(strings) - 2, filename=len(strings) - 1)
        p.location.add(id=f).line.add(function_id=f, line=10 + f % 90)
    counts = [1] * n_stacks
    for _ in range(10 * hz - n_stacks):       # ~1,000 samples in 10 s at 100 Hz
        counts[rnd.randrange(n_stacks)] += 1
    for c in counts:
        depth = rnd.randint(8, 32)
        p.sample.add(location_id=[rnd.randint(1, n_funcs) for _ in range(depth)], value=[c * period])
    p.string_table.extend(strings)
    return gzip.compress(p.SerializeToString())


def push_request(service: str, raw: bytes) -> bytes:
    from profscope.wire.proto.push.v1 import push_pb2
    req = push_pb2.PushRequest()
    s = req.series.add()
    for k, v in (("__name__", "process_cpu"), ("service_name", service), ("region", "eu"),
                 ("otel.scope.name", "com.grafana.pyroscope/python"), ("process.runtime.name", "cpython")):
        s.labels.add(name=k, value=v)
    s.samples.add(raw_profile=raw)
    return gzip.compress(req.SerializeToString())


def http_post(path: str, body: bytes, ctype: str, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def read_response(sock: socket.socket, buf: bytearray) -> int:
    """Read one HTTP/1.1 response (Content-Length framed); returns the status code."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk
    buf[:] = rest[length:]
    return status


# ------------------------------------------------------------------ server
def count_stored(data_dir: Path) -> int:
    import duckdb
    con = duckdb.connect(str(data_dir / "profscope.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM profiles").fetchall()[0][0]
    finally:
        con.close()


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# ------------------------------------------------------------------ 1. push
def bench_push(clients: int, duration: float, threads: int, variants: int, decode_workers: int | None = None,
               warmup: float = 3.0) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench_push_"))
    now = time.time_ns()
    payloads = []
    for i in range(variants):
        body = push_request(f"svc-{i % 25}", sdk_like_pprof(i, now))
        payloads.append(http_post("/push.v1.PusherService/Push", body, "application/proto",
                                  "Content-Encoding: gzip\r\n"))
    extra = ("--decode-workers", str(decode_workers)) if decode_workers is not None else ()
    proc, port = start_server(tmp, threads, extra)
    lat: list[list[float]] = [[] for _ in range(clients)]
    warm: list[list[float]] = [[] for _ in range(clients)]   # started during the warm-up
    bad: list[int] = [0] * clients
    timed_from = [float("inf")]
    stop = threading.Event()
    started = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        k = i
        started.wait()
        while not stop.is_set():
            t = time.perf_counter()
            sock.sendall(payloads[k % len(payloads)])
            status = read_response(sock, buf)
            if status == 200:
                (lat if t >= timed_from[0] else warm)[i].append(time.perf_counter() - t)
            else:
                bad[i] += 1
            k += clients
        sock.close()

    qlat: list[float] = []
    qbad = [0]

    def querier() -> None:
        body = json.dumps({"profileTypeID": CPU, "labelSelector": '{service_name="svc-3"}',
                           "start": str(now // 10**6 - 600_000), "end": str(now // 10**6 + 3_600_000)}).encode()
        while not stop.is_set():
            t0 = time.perf_counter()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/querier.v1.QuerierService/SelectMergeStacktraces",
                                         data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    json.loads(r.read())
                if t0 >= timed_from[0]:
                    qlat.append(time.perf_counter() - t0)
            except OSError:
                qbad[0] += 1
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - t0)))

    ths = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in ths:
        th.start()
    started.wait()
    qt = threading.Thread(target=querier)
    qt.start()
    time.sleep(warmup)
    t_start = timed_from[0] = time.perf_counter()
    time.sleep(duration)
    stop.set()
    for th in ths + [qt]:
        th.join()
    elapsed = time.perf_counter() - t_start
    stop_server(proc)
    ok = sum(len(x) for x in lat)
    warm_ok = sum(len(x) for x in warm)
    stored = count_stored(tmp)
    all_lat = [x for xs in lat for x in xs]
    warm_lat = [x for xs in warm for x in xs]
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return {"clients": clients, "duration_s": round(elapsed, 1), "server_threads": threads,
            "decode_workers": "default" if decode_workers is None else decode_workers,
            "payload_bytes": round(statistics.mean(len(p) for p in payloads)),
            "warmup_s": warmup, "warmup_acknowledged": warm_ok, "warmup_p99_ms": round(pct(warm_lat, 99) * 1e3, 1),
            "acknowledged": ok, "refused": sum(bad), "stored": stored, "lost": ok + warm_ok - stored,
            "req_per_s": round(ok / elapsed, 1), "p50_ms": round(pct(all_lat, 50) * 1e3, 1),
            "p99_ms": round(pct(all_lat, 99) * 1e3, 1), "p99_all_ms": round(pct(all_lat + warm_lat, 99) * 1e3, 1), "queries": len(qlat), "query_errors": qbad[0],
            "query_p50_ms": round(pct(qlat, 50) * 1e3, 1), "query_max_ms": round(max(qlat, default=0) * 1e3, 1)}


# ------------------------------------------------------------------ 2. OTLP
def bench_otlp(runs: int) -> dict:
    path = DATA / "pyroscope-agpl/pyroscope_ebpf_v1.10_b3eb92a.pb.bin"
    body = path.read_bytes()
    tmp = Path(tempfile.mkdtemp(prefix="bench_otlp_"))
    proc, port = start_server(tmp, 8)
    times = []
    try:
        for i in range(runs + 3):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1development/profiles", data=body,
                                         headers={"Content-Type": "application/x-protobuf",
                                                  "X-Scope-OrgID": f"t{i % 5}"})
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
            if i >= 3:                        # first requests warm imports and caches
                times.append(time.perf_counter() - t)
    finally:
        stop_server(proc)
    from profscope.wire.otlp import convert_request, decode_export_request
    conv = []
    for _ in range(runs):
        t = time.perf_counter()
        convert_request(decode_export_request(body))
        conv.append(time.perf_counter() - t)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return {"runs": runs, "bytes": len(body), "http_p50_ms": round(pct(times, 50) * 1e3, 1),
            "http_p95_ms": round(pct(times, 95) * 1e3, 1), "decode_convert_p50_ms": round(pct(conv, 50) * 1e3, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds timed, after the warm-up")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of the same load before timing starts")
    ap.add_argument("--server-threads", type=int, default=48)
    ap.add_argument("--variants", type=int, default=100, help="distinct payloads cycled by the clients")
    ap.add_argument("--decode-workers", type=int, default=None, help="the server's --decode-workers (default: its own)")
    ap.add_argument("--otlp-runs", type=int, default=50)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    load_before = open("/proc/loadavg").read().split()[:3]
    push = bench_push(args.clients, args.duration, args.server_threads, args.variants, args.decode_workers,
                      args.warmup)
    print("push:", json.dumps(push))
    otlp = bench_otlp(args.otlp_runs)
    print("otlp:", json.dumps(otlp))
    verdict_push = (f"target >= 1000 req/s: {'MET' if push['req_per_s'] >= 1000 else 'NOT MET'}; "
                    f"p99 < 100 ms: {'MET' if push['p99_ms'] < 100 else 'NOT MET'}; "
                    f"lost: {push['lost']}")
    verdict_otlp = f"target < 20 ms: {'MET' if otlp['http_p50_ms'] < 20 else 'NOT MET'} (median)"
    load_after = open("/proc/loadavg").read().split()[:3]
    print(verdict_push)
    print(verdict_otlp)
    print(f"load average before {' '.join(load_before)}, after {' '.join(load_after)} (other processes on the machine "
          "share the cores)")
    if args.write:
        with open(HERE / "RESULTS.md", "a") as fh:
            fh.write(f"\n## Pyroscope push / OTLP\n\n{time.strftime('%Y-%m-%d')}, {machine()}; "
                     f"`python3 benchmarks/bench_push.py --clients {args.clients} --duration {args.duration:g} "
                     f"--warmup {args.warmup:g} "
                     f"--server-threads {args.server_threads}"
                     f"{f' --decode-workers {args.decode_workers}' if args.decode_workers is not None else ''}`; load average before {' '.join(load_before)}, "
                     f"after {' '.join(load_after)}\n\n")
            fh.write("| push | value |\n|---|---|\n")
            for k, v in push.items():
                fh.write(f"| {k} | {v} |\n")
            fh.write(f"\n{verdict_push}\n\n| OTLP eBPF payload | value |\n|---|---|\n")
            for k, v in otlp.items():
                fh.write(f"| {k} | {v} |\n")
            fh.write(f"\n{verdict_otlp}\n")


if __name__ == "__main__":
    main()
