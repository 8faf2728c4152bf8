"""Wasm analyzer benchmark (issue 5). Run: python3 benchmarks/bench_wasm.py [--runs N] [--write]

End to end from a ``Tree`` to findings (PSF1 encode + fresh store and instance + guest run +
output parse) for the example analyzers over a ~100,000-node flame graph (and a diff tree of
the same size for ``regressions``), median of N runs after a warm-up. Target: the C analyzer
under 10 ms. Also shows the parts: PSF1 encoding alone and a run of a plugin that does nothing.
--write appends the results to benchmarks/RESULTS.md under "## Wasm analyzers".
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from bench_core import machine  # noqa: E402
from synth import profile_from_pool, stack_pool  # noqa: E402

from profscope.analysis.stacks import profile_to_stackset  # noqa: E402
from profscope.analysis.tree import build_tree  # noqa: E402
from profscope.wasm import WasmHost, encode_psf1  # noqa: E402
from profscope.wasm.binary import add_custom_section  # noqa: E402

TARGET_MS = 10.0
NODES = 100_000
NOOP_WAT = """(module (memory (export "memory") 1)
  (global $b (mut i32) (i32.const 1024))
  (func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $b))
    (global.set $b (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (drop (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))))
    (local.get $p))
  (func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0)))"""


def trees():
    """A ~100k-node flame graph, and a diff tree of two such profiles."""
    pool = stack_pool(60_000, n_funcs=8000, max_depth=40, seed=5)
    a = profile_to_stackset(profile_from_pool(pool, 200_000, seed=1), "cpu")
    b = profile_to_stackset(profile_from_pool(pool, 200_000, seed=2), "cpu")
    return build_tree([a], max_nodes=NODES), build_tree([a, b], max_nodes=NODES)


def median_ms(fn, runs: int) -> float:
    fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    import wasmtime
    tree, diff = trees()
    meta = {"sample_type": "cpu", "unit": "nanoseconds"}
    host = WasmHost()
    plugins = {n: host.load_module((ROOT / "wasm/plugins" / f"{n}.wasm").read_bytes())
               for n in ("hotspots", "regressions", "slowpatterns")}
    noop = host.load_module(add_custom_section(bytes(wasmtime.wat2wasm(NOOP_WAT)), "profscope.manifest",
                                               b'{"name":"noop","version":"1","abi":1}'))
    rows = [("PSF1 encode only", tree.n_nodes, median_ms(lambda: encode_psf1(tree, meta), args.runs), None, "")]
    for label, plugin, t in (("no-op plugin (encode + store + instance + copy)", noop, tree),
                             ("hotspots (C)", plugins["hotspots"], tree),
                             ("regressions (WAT), diff tree", plugins["regressions"], diff),
                             ("slowpatterns (AssemblyScript)", plugins["slowpatterns"], tree)):
        res = host.run(plugin, t, meta)
        ms = median_ms(lambda p=plugin, t=t: host.run(p, t, meta), args.runs)
        rows.append((label, t.n_nodes, ms, res.fuel_used, f"{len(res.findings)} findings"))
    host.close()
    hot = rows[2][2]
    lines = [f"### bench_wasm.py, {time.strftime('%Y-%m-%d')}", "",
             f"Machine: {machine()}; wasmtime-py {_wasmtime_version()}; "
             f"median of {args.runs} runs after a warm-up, end to end from Tree to findings.", "",
             "| what | nodes | median ms | fuel | result |", "|---|---:|---:|---:|---|"]
    for label, n, ms, fuel, note in rows:
        lines.append(f"| {label} | {n:,} | {ms:.2f} | {'' if fuel is None else f'{fuel:,}'} | {note} |")
    verdict = "met" if hot < TARGET_MS else "MISSED"
    lines += ["", f"Target: C analyzer over a 100k-node tree < {TARGET_MS:.0f} ms end to end: "
              f"{hot:.2f} ms ({verdict}). Most of a run is writing the ~4 MB PSF1 buffer into the",
              "fresh linear memory (first-touch page faults of a new store), not the guest's work;",
              "store creation plus instantiation costs about 0.05 ms.", ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = HERE / "RESULTS.md"
        old = results.read_text() if results.exists() else "# Benchmark results\n"
        if "## Wasm analyzers" not in old:
            old = old.rstrip("\n") + "\n\n## Wasm analyzers\n"
        head, _, tail = old.partition("## Wasm analyzers\n")
        nxt = tail.find("\n## ")
        section, rest = (tail, "") if nxt < 0 else (tail[:nxt + 1], tail[nxt + 1:])
        section = section.strip("\n")
        body = (section + "\n\n" if section else "") + text
        results.write_text(head + "## Wasm analyzers\n\n" + body + "\n" + rest)


def _wasmtime_version() -> str:
    from importlib.metadata import version
    return version("wasmtime")


if __name__ == "__main__":
    main()
