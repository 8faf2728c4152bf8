"""Trace-join benchmarks (issue 6). Run: python3 benchmarks/bench_traces.py [--quick] [--write] [--keep DIR]

A store of 10 million sample rows (10,000 profiles x 1,000 rows, 10 services) where every
profile holds 20 requests: each request is a trace with a root span (tagged in the samples like
pyroscope-otel does: span_id, span_name, trace_id) and an untagged child span; 1 sample in 21 is
unlinked. 400,000 spans are stored through TraceStore.ingest_spans.

Measured (in-process engine, then through a live server):
1. span-filtered flame graph for one span id (join + tree), random spans; target < 200 ms;
2. the same through the link table vs a full scan of the samples (the generic sample-label
   matcher path, and a plain SQL scan of the samples by label set);
3. trace flame graph, span-query flame graph (about 1% of the spans), per-span table, exemplars.
--write appends the results to benchmarks/RESULTS.md under "## Trace joins".
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import append_results, machine  # noqa: E402

CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
REQS = 20          # requests (traces) per profile
T0 = 1_700_000_000 * 10**9
PROFILE_NS = 10 * 10**9


def build(path: Path, n_profiles: int, per_profile: int) -> dict:
    from synth import profile_from_pool, stack_pool

    from profscope.formats.otlp_traces import SpanBatch
    from profscope.model import Label
    from profscope.store import Store
    store = Store(str(path))
    pool = stack_pool(200_000, n_funcs=20_000)
    rng = np.random.default_rng(7)
    t_ingest = t_spans = 0.0
    batch, spans = [], SpanBatch()
    for i in range(n_profiles):
        svc = f"svc{i % 10}"
        t = T0 + i * PROFILE_NS
        p = profile_from_pool(pool, per_profile, i, t)
        span_ids = rng.integers(1, 2**63, REQS, dtype=np.int64).astype(np.uint64)
        trace_ids = [int(x) << 64 | int(y) for x, y in rng.integers(1, 2**63, (REQS, 2), dtype=np.int64)]
        p.label_sets = [()] + [(Label("span_id", f"{int(s):016x}"), Label("span_name", "GET /checkout"),
                                Label("trace_id", f"{tr:032x}")) for s, tr in zip(span_ids, trace_ids, strict=True)]
        p.sample_labels = rng.integers(0, REQS + 1, p.n_samples).astype(np.int32)
        batch.append((p, {"service_name": svc}))
        starts = t + rng.integers(0, PROFILE_NS - 2 * 10**9, REQS)
        durs = rng.integers(10**7, 2 * 10**9, REQS)
        for j in range(REQS):
            child = int(rng.integers(1, 2**63))
            for sid, parent, name, s0, s1 in ((int(span_ids[j]), 0, "GET /checkout", starts[j], starts[j] + durs[j]),
                                              (child, int(span_ids[j]), "db", starts[j] + 1000, starts[j] + durs[j] // 2)):
                spans.trace_hi.append(trace_ids[j] >> 64)
                spans.trace_lo.append(trace_ids[j] & (2**64 - 1))
                spans.span_id.append(sid)
                spans.parent_span_id.append(parent)
                spans.name.append(name)
                spans.service.append(svc)
                spans.kind.append(2)
                spans.start_ns.append(int(s0))
                spans.end_ns.append(int(s1))
                spans.status_code.append(0)
                spans.status_message.append("")
                spans.profile_span_id.append(int(span_ids[j]) if parent == 0 else 0)
                spans.attributes.append([("http.route", "/checkout")] if parent == 0 else [])
                spans.resource.append([("service.name", svc)])
        if len(batch) == 100:
            t1 = time.perf_counter()
            store.ingest_many(batch)
            t_ingest += time.perf_counter() - t1
            t1 = time.perf_counter()
            store.traces.ingest_spans(spans)
            t_spans += time.perf_counter() - t1
            batch, spans = [], SpanBatch()
            if i % 1000 == 999:
                print(f"  built {i + 1} profiles", file=sys.stderr, flush=True)
    if batch:
        store.ingest_many(batch)
        store.traces.ingest_spans(spans)
    store.db.checkpoint()
    con = store.db.con
    out = {"profiles": con.execute("SELECT count(*) FROM profiles").fetchall()[0][0],
           "sample_rows": con.execute("SELECT count(*) FROM samples").fetchall()[0][0],
           "sample_links_rows": con.execute("SELECT count(*) FROM sample_links").fetchall()[0][0],
           "spans": con.execute("SELECT count(*) FROM spans").fetchall()[0][0],
           "ingest_profiles_s": round(t_ingest, 1), "ingest_spans_s": round(t_spans, 1)}
    store.close()
    return out


def _ms(fn, runs: int) -> tuple[float, object]:
    times, res = [], None
    for _ in range(runs):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1), res


def bench_engine(path: Path, runs: int) -> dict:
    import pyarrow as pa

    from profscope.query.engine import View
    from profscope.query.selector import Matcher, Selection
    from profscope.query.spanquery import SpanQuery
    from profscope.query.trace_tables import exemplars, span_table
    from profscope.query.traces import flamegraph, join
    from profscope.store import Store
    store = Store(str(path))
    con = store.db.con
    rng = np.random.default_rng(3)
    picks = con.execute("SELECT span_id, trace_hi, trace_lo FROM spans WHERE parent_span_id = 0 "
                        "USING SAMPLE 50 ROWS").fetchall()
    sel = Selection(CPU)
    out: dict = {}

    def span_fg(sid):
        res, tree = flamegraph(store, sel, View(), span_ids=[f"{sid:016x}"])
        tree.to_json()
        return res.stackset.total

    join(store, sel, span_ids=[f"{picks[0][0]:016x}"])            # warm caches
    per_span = []
    totals = []
    for sid, _, _ in picks[: max(runs, 10)]:
        t = time.perf_counter()
        totals.append(span_fg(sid))
        per_span.append(time.perf_counter() - t)
    out["span_flamegraph_ms_median"] = round(statistics.median(per_span) * 1000, 1)
    out["span_flamegraph_ms_max"] = round(max(per_span) * 1000, 1)
    out["span_flamegraph_spans_measured"] = len(per_span)
    out["span_total_example"] = int(totals[0])
    out["target"] = "span flame graph < 200 ms"

    # the same span without the link table. Whole answer: the engine vs the generic selection path
    # (a sample-label matcher span_id="..." reads every (profile, label set) of the type).
    sid = picks[1][0]
    link_ms, link_total = _ms(lambda: join(store, sel, span_ids=[f"{sid:016x}"]).stackset.total, runs)
    out["join_select_ms"] = link_ms
    matcher_sel = Selection(CPU, (Matcher("span_id", "=", f"{sid:016x}"),))
    scan_ms, scan_total = _ms(lambda: store.select(matcher_sel).total, max(1, runs // 3))
    out["sample_label_matcher_select_ms"] = scan_ms
    # The samples step alone: rows of the pairs found in sample_links (row groups of other profiles
    # skipped) vs a scan of every sample row for the span's label sets.
    pairs = con.execute("SELECT profile_id, labelset_id FROM sample_links WHERE span_id = ? AND profile_id IN "
                        "(SELECT id FROM profiles WHERE profile_type = ?)", [sid, CPU]).fetchnumpy()
    con.register("sel_pairs", pa.table({"profile_id": pa.array(pairs["profile_id"]),
                                        "labelset_id": pa.array(pairs["labelset_id"])}))
    from profscope.store.db import load_sql
    q_pairs = load_sql("merge_by_stack_labelsets")
    out["samples_step_link_pairs_ms"], rows_a = _ms(lambda: con.sql(q_pairs).fetchall(), runs)
    q_scan = ("SELECT stack_id, labelset_id, SUM(value)::BIGINT FROM samples "
              "WHERE labelset_id IN (SELECT labelset_id FROM sel_pairs) "
              f"AND profile_id IN (SELECT id FROM profiles WHERE profile_type = '{CPU}') GROUP BY ALL")
    out["samples_step_full_scan_ms"], rows_b = _ms(lambda: con.sql(q_scan).fetchall(), runs)
    con.unregister("sel_pairs")
    assert link_total == scan_total == sum(r[-1] for r in rows_a) == sum(r[-1] for r in rows_b), (link_total, scan_total)
    out["same_total_all_ways"] = True
    out["samples_rows_total"] = con.execute("SELECT count(*) FROM samples").fetchall()[0][0]

    hi, lo = picks[2][1], picks[2][2]
    out["trace_flamegraph_ms"], _ = _ms(lambda: flamegraph(store, sel, View(), trace_ids=[f"{hi << 64 | lo:032x}"]),
                                        runs)
    q = SpanQuery(service="svc3", name="GET /checkout", min_duration_ns=19 * 10**8)
    n_q = join(store, sel, span_query=q).spans_matched
    out["span_query_spans_matched"] = n_q
    out["span_query_flamegraph_ms"], _ = _ms(lambda: flamegraph(store, sel, View(), span_query=q), max(1, runs // 2))
    out["span_table_ms"], _ = _ms(lambda: span_table(store, sel, f"{hi << 64 | lo:032x}"), runs)
    # a hot function: the top of one span's top table
    from profscope.analysis.top import top_table
    fn = top_table(join(store, sel, span_ids=[f"{picks[3][0]:016x}"]).stackset).names[0]
    out["exemplars_all_linked_ms"], ex = _ms(lambda: exemplars(store, sel, function=fn, limit=10), 1)
    out["exemplars_function"] = fn
    out["exemplars_total_in_function"] = ex["total"]
    out["exemplars_best_span_value"] = ex["spans"][0]["value"] if ex["spans"] else 0
    out["exemplars_one_service_ms"], _ = _ms(lambda: exemplars(
        store, Selection(CPU, (Matcher("service_name", "=", "svc3"),)), function=fn, limit=10), 1)
    store.close()
    _ = rng
    return out


def bench_http(path: Path, runs: int) -> dict:
    import duckdb
    con = duckdb.connect(str(path / "profscope.duckdb"), read_only=True)
    sids = [r[0] for r in con.execute("SELECT span_id FROM spans WHERE parent_span_id = 0 USING SAMPLE 20 ROWS"
                                      ).fetchall()]
    con.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([sys.executable, "-c", "from profscope.cli import main; main()", "serve", "--port",
                             str(port), "--data-dir", str(path)], stderr=subprocess.DEVNULL, cwd=str(ROOT))
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        urllib.request.urlopen(f"{base}/api/v1/traces/flamegraph?span_id={sids[0]:x}", timeout=120).read()
        times = []
        for sid in sids[1: 1 + max(runs, 10)]:
            t = time.perf_counter()
            urllib.request.urlopen(f"{base}/api/v1/traces/flamegraph?span_id={sid:x}", timeout=120).read()
            times.append(time.perf_counter() - t)
        return {"http_span_flamegraph_ms_median": round(statistics.median(times) * 1000, 1),
                "http_span_flamegraph_ms_max": round(max(times) * 1000, 1)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="1M samples instead of 10M")
    ap.add_argument("--write", action="store_true", help="append results to benchmarks/RESULTS.md")
    ap.add_argument("--keep", default=None, help="directory for the store (reused if present)")
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "load_average_at_start": [round(x, 1) for x in os.getloadavg()]}
    tmp = Path(tempfile.mkdtemp(prefix="profscope-bench-traces-"))
    try:
        big = Path(args.keep) if args.keep else tmp / "store"
        if not (big / "profscope.duckdb").exists():
            results["store"] = build(big, 1000 if args.quick else 10_000, 1000)
            print(json.dumps(results["store"]), flush=True)
        results["engine"] = bench_engine(big, args.runs)
        print(json.dumps(results["engine"]), flush=True)
        results["http"] = bench_http(big, args.runs)
        print(json.dumps(results["http"]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.write:
        append_results("Trace joins", results)


if __name__ == "__main__":
    main()
