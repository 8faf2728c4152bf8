"""Benchmark: diff two stored selections of 5 million samples each, end to end.

Synthetic but shaped like production CPU profiles: a call graph of 20,000 functions (60,000
frames: three lines each), a few hundred thousand distinct stacks (10-40 frames deep), stack popularity following a power law,
many profiles per side (one per "minute"), each sample row a (profile, stack, value) as the
store keeps them. The head version has a regression: one mid-sized function costs 1.5x.

Timed: ``Store.select_per_profile`` for both selections (DuckDB GROUP BY, numpy) + ``diff``
(normalize=total, Mann-Whitney on per-profile shares) + the JSON report. Target: < 600 ms.

    python3 benchmarks/bench_diff.py [--profiles 500] [--rows 10000] [--stacks 300000] [--repeat 5]

The store is built once under benchmarks/data/ (git-ignored) and reused.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from profscope.analysis.diff import Side, diff  # noqa: E402
from profscope.model import FrameTable, Profile, ValueType  # noqa: E402
from profscope.query.selector import Selection  # noqa: E402
from profscope.store import Store  # noqa: E402

PERIOD = 10_000_000  # 100 Hz


def call_tree_stacks(n_stacks: int, n_funcs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Distinct leaf-first stacks as CSR: random walks down a fixed call graph, so stacks share
    their root-side prefixes the way real ones do."""
    fanout = 6
    children = rng.integers(0, n_funcs, size=(n_funcs, fanout))
    depth = rng.integers(10, 41, size=n_stacks)
    offs = np.zeros(n_stacks + 1, np.int64)
    np.cumsum(depth, out=offs[1:])
    flat = np.empty(int(offs[-1]), np.int32)
    cur = rng.integers(0, 64, size=n_stacks)                # a few dozen entry points
    pos = np.zeros(n_stacks, np.int64)
    max_d = int(depth.max())
    # root-first walk, written leaf-first
    for d in range(max_d):
        alive = depth > d
        idx = offs[1:][alive] - 1 - pos[alive]
        flat[idx] = cur[alive]
        pos[alive] += 1
        cur = children[cur, rng.integers(0, fanout, size=n_stacks)]
    return offs, flat


def build_store(path: str, n_profiles: int, rows: int, n_stacks: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    n_funcs, lines_per_func = 20_000, 3          # frames are (function, line): 60,000 of them
    n_frames = n_funcs * lines_per_func
    offs, flat = call_tree_stacks(n_stacks, n_frames, rng)
    func = np.arange(n_frames) % n_funcs
    frames = FrameTable.from_names([f"pkg{f % 300}.(*T{f % 97}).fn{f}" for f in func.tolist()],
                                   [f"src/pkg{f % 300}/file{f % 13}.go" for f in func.tolist()],
                                   (10 + np.arange(n_frames) // n_funcs).tolist())
    pop = 1.0 / np.arange(1, n_stacks + 1) ** 0.9
    pop /= pop.sum()
    leaf = func[flat[offs[:-1]]]
    # the regressed function: a leaf holding a few percent of the samples
    shares = np.bincount(leaf, weights=pop, minlength=n_funcs)
    target = int(np.argmin(np.abs(shares - 0.03)))
    pop_head = pop * np.where(leaf == target, 1.5, 1.0)
    pop_head /= pop_head.sum()
    store = Store(path)
    t0 = time.perf_counter()
    try:
        for version, p in (("1.4.0", pop), ("1.5.0", pop_head)):
            for i in range(n_profiles):
                chosen = np.unique(rng.choice(n_stacks, size=rows * 2, p=p))
                if len(chosen) > rows:
                    chosen = rng.choice(chosen, size=rows, replace=False)
                chosen.sort()
                counts = rng.poisson(p[chosen] * 6000 * rows / 10_000) + 1
                lens = np.diff(offs)[chosen]
                s_offs = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
                idx = np.repeat(offs[:-1][chosen] - s_offs[:-1], lens) + np.arange(s_offs[-1])
                prof = Profile([ValueType("cpu", "nanoseconds")], (counts * PERIOD).reshape(-1, 1).astype(np.int64),
                               s_offs, flat[idx], frames, np.zeros(len(chosen), np.int32),
                               period_type=ValueType("cpu", "nanoseconds"), period=PERIOD,
                               time_nanos=1_700_000_000_000_000_000 + i * 60_000_000_000,
                               duration_nanos=60_000_000_000)
                store.ingest(prof, {"service_name": "api", "version": version})
            print(f"  stored {n_profiles} profiles of {version} ({time.perf_counter() - t0:.0f} s)", flush=True)
        print(f"  regressed function: {frames.name[target]}")
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=500, help="profiles per side")
    ap.add_argument("--rows", type=int, default=10_000, help="sample rows per profile")
    ap.add_argument("--stacks", type=int, default=300_000, help="distinct stacks")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default=str(ROOT / "benchmarks" / "data"))
    args = ap.parse_args()
    path = os.path.join(args.data, f"diff_{args.profiles}x{args.rows}_{args.stacks}_lines")
    if not os.path.exists(os.path.join(path, "profscope.duckdb")):
        print(f"building {path} ...", flush=True)
        build_store(path, args.profiles, args.rows, args.stacks)
    store = Store(path)
    base_q, head_q = 'cpu{service_name="api", version="1.4.0"}', 'cpu{service_name="api", version="1.5.0"}'
    rows = store.db.con.execute("SELECT count(*) FROM samples").fetchall()[0][0]
    per_side = [store.db.con.execute("SELECT count(*) FROM samples s JOIN profiles p ON p.id = s.profile_id "
                                     "JOIN series x ON x.id = p.series_id WHERE list_contains(x.vals, ?)",
                                     [v]).fetchall()[0][0] for v in ("1.4.0", "1.5.0")]
    times, parts, trees = [], [], []
    res = None
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        base, head = store.select_per_profile(Selection.from_query(base_q), Selection.from_query(head_q))
        t1 = time.perf_counter()
        res = diff(Side.from_selection(base), Side.from_selection(head), "total")
        t2 = time.perf_counter()
        report = res.to_json(20)
        t3 = time.perf_counter()
        times.append(t3 - t0)
        parts.append((t1 - t0, t2 - t1, t3 - t2))
        t4 = time.perf_counter()
        res.tree_json(8192)
        trees.append(time.perf_counter() - t4)
    store.close()
    best = int(np.argmin(times))
    sel_t, diff_t, json_t = parts[best]
    print(f"sample rows: {rows:,} ({per_side[0]:,} base, {per_side[1]:,} head); "
          f"distinct stacks (union): {base.stacks.n_stacks:,}; frames: {len(base.stacks.frames):,}; "
          f"profiles: {len(base.profile_ids)} + {len(head.profile_ids)}")
    print(f"end to end: best {times[best] * 1000:.0f} ms, median {np.median(times) * 1000:.0f} ms "
          f"(select both {sel_t * 1000:.0f} ms, diff {diff_t * 1000:.0f} ms, report {json_t * 1000:.0f} ms)")
    print(f"union flame graph (max_nodes 8192, not part of the above): best {min(trees) * 1000:.0f} ms")
    print(f"method: {report['method']}; regressions: {[r['name'] for r in report['regressions']]}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpus, Python {platform.python_version()}")


if __name__ == "__main__":
    main()
