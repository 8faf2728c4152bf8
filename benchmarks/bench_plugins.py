"""What plugins cost: `profscope top` start-up with and without the plugin machinery, building a
plugin manager (entry-point scan), and isolated analyzer calls versus one pluggy call.

Run: python3 benchmarks/bench_plugins.py [pprof file]   (from the project root)
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _wall(cmd: list[str], n: int = 7) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _modules(cmd: list[str]) -> set[str]:
    r = subprocess.run([sys.executable, "-X", "importtime", *cmd], check=True, capture_output=True, text=True, cwd=ROOT)
    return {ln.rsplit("|", 1)[1].strip() for ln in r.stderr.splitlines() if ln.startswith("import time:")}


def main() -> None:
    pprof = sys.argv[1] if len(sys.argv) > 1 else str(ROOT.parent / "shared/data/pprof/gp_sample.cpu.pb.gz")
    top = ["-m", "profscope.cli", "top", pprof]
    mods = _modules(top)
    print(f"profscope top: {_wall([sys.executable, *top]) * 1000:.0f} ms median wall, {len(mods)} modules, "
          f"pluggy imported: {'pluggy' in mods}")
    probe = "import time; t=time.perf_counter(); from profscope import plugins; pm = plugins.get_plugin_manager(" \
            "{'data_dir': ':memory:'}); print((time.perf_counter()-t)*1000)"
    cold = [float(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True,
                                 cwd=ROOT).stdout) for _ in range(5)]
    print(f"import plugins + get_plugin_manager (entry-point scan), fresh process: {statistics.median(cold):.1f} ms")

    from profscope import hookimpl, plugins
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.analysis.tree import build_tree
    from profscope.formats import decode

    class Quiet:
        @hookimpl
        def profscope_analyze(self, tree, meta):
            return [{"severity": "info", "title": "t", "message": "m"}]
    pm = plugins.get_plugin_manager({"data_dir": ":memory:"}, entry_points=False,
                                    plugins={f"a{i}": Quiet() for i in range(10)})
    tree = build_tree([profile_to_stackset(decode(Path(pprof).read_bytes()))])
    n = 2000
    t = time.perf_counter()
    for _ in range(n):
        plugins.run_analyzers(tree, {}, pm)
    iso = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(n):
        pm.hook.profscope_analyze(tree=tree, meta={})
    direct = (time.perf_counter() - t) / n
    print(f"10 analyzers, {tree.n_nodes}-node tree: isolated run_analyzers {iso * 1e6:.0f} us "
          f"(incl. read-only views and finding checks), one pluggy call {direct * 1e6:.0f} us")


if __name__ == "__main__":
    main()
