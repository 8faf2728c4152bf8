"""``profscope diff BASE HEAD``: differential profiling and a CI regression gate.

Each side is profile files (a file, a directory or a glob; each file counts as one profile for
the noise test), a stored selection in a local store (``--data-dir`` with ``--base-query`` /
``--head-query``), or, with ``--server``, two stored selections diffed by a running server.
Exit codes: 0 no regression, 1 regression, 2 bad input, 3 operational error.
"""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import click

from ..errors import BadInput, ProfscopeError

FORMATS = ("text", "json", "markdown")


def expand_paths(arg: str) -> list[str]:
    """Files named by ``arg``: the file itself, every file under a directory, or a glob's matches."""
    p = Path(arg)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not files:
            raise BadInput(f"directory {arg} holds no profile files")
        return files
    if p.is_file():
        return [arg]
    if glob.has_magic(arg):
        files = sorted(f for f in glob.glob(arg, recursive=True) if os.path.isfile(f))
        if not files:
            raise BadInput(f"{arg!r} matches no file")
        return files
    raise BadInput(f"{arg}: no such file or directory")


def load_profiles(files: list[str], sample_type: str | None, side: str):
    """One StackSet per file, all of the same sample type."""
    from ..analysis.stacks import profile_to_stackset
    from ..formats import decode
    sets = []
    from .top import read_input
    for f in files:
        data = read_input(f)
        try:
            sets.append(profile_to_stackset(decode(data), sample_type))
        except ProfscopeError as e:
            e.message = f"{f}: {e.message}"
            raise
    types = sorted({f"{s.sample_type.type}:{s.sample_type.unit}" for s in sets})
    if len(types) > 1:
        raise BadInput(f"{side} files have different sample types ({', '.join(types)}); "
                       "choose one with --sample-type")
    return sets


def _selection(query: str, sample_type: str | None, start: str | None, end: str | None, tenant: str):
    from ..query.selector import Selection
    from ..query.timeparse import parse_time
    sel = Selection.from_query(query, parse_time(start, what="--from"), parse_time(end, what="--until"), tenant)
    if sel.profile_type is None and sample_type:
        sel = Selection(sample_type, sel.matchers, sel.start_ns, sel.end_ns, sel.tenant)
    return sel


def _server_report(server: str, body: dict, tenant: str) -> dict:
    from .store_cmds import http
    raw = http("POST", server.rstrip("/") + "/api/v1/diff", json.dumps(body).encode(),
               {"Content-Type": "application/json", "X-Scope-OrgID": tenant})
    try:
        return json.loads(raw)
    except ValueError:
        from ..errors import StoreError
        raise StoreError(f"{server} answered something that is not JSON") from None


@click.command()
@click.argument("sources", nargs=-1, metavar="BASE HEAD")
@click.option("--sample-type", help="sample type to compare (cpu, alloc_space, ...); default: each file's default")
@click.option("--normalize", type=click.Choice(["total", "duration", "none"]), default="total", show_default=True,
              help="compare shares of the total, values per second of profiling, or raw values")
@click.option("--threshold", type=float, default=10.0, show_default=True,
              help="a regression grows by at least this percentage")
@click.option("--min-share", type=float, default=1.0, show_default=True,
              help="only functions holding at least this percentage of the total can regress")
@click.option("--min-delta", type=float, default=0.1, show_default=True,
              help="... and change by at least this percentage of the base total")
@click.option("--alpha", type=float, default=0.01, show_default=True,
              help="false discovery rate of the significance test (several profiles per side)")
@click.option("--metric", type=click.Choice(["flat", "cum"]), default="flat", show_default=True,
              help="gate on self values (flat) or values including callees (cum)")
@click.option("--granularity", type=click.Choice(["functions", "files", "lines", "addresses"]),
              default="functions", show_default=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--limit", default=10, show_default=True, help="rows per table")
@click.option("-o", "--output", default="-", help="write the report to this file (default stdout)")
@click.option("--server", default=None, help="URL of a running profscope: it diffs two stored selections")
@click.option("--data-dir", default=None, help="local store for --base-query / --head-query")
@click.option("--base-query", default=None, help='stored base selection, e.g. cpu{service_name="api",version="1.4.0"}')
@click.option("--head-query", default=None, help="stored head selection")
@click.option("--from", "start", default=None, help="start of both selections (unix time, now-1h, ISO 8601)")
@click.option("--until", "end", default=None, help="end of both selections")
@click.option("--base-from", default=None, help="start of the base selection (overrides --from)")
@click.option("--base-until", default=None, help="end of the base selection (overrides --until)")
@click.option("--head-from", default=None, help="start of the head selection (overrides --from)")
@click.option("--head-until", default=None, help="end of the head selection (overrides --until)")
@click.option("--tenant", default="anonymous", show_default=True)
def diff(sources, sample_type, normalize, threshold, min_share, min_delta, alpha, metric, granularity, fmt,
         limit, output, server, data_dir, base_query, head_query, start, end, base_from, base_until,
         head_from, head_until, tenant):
    """Compare HEAD profiles against BASE profiles; exit 1 on a regression.

    BASE and HEAD are files, directories or globs (quote globs). With several profiles per side
    a Mann-Whitney U test on per-profile values separates regressions from noise; with one
    profile per side only the thresholds decide, and the report says so.
    """
    from ..analysis.diff import DiffOptions
    opts = DiffOptions(threshold, min_share, min_delta, alpha, metric)
    ranges = {"base": (base_from or start, base_until or end), "head": (head_from or start, head_until or end)}
    queries = {"base": base_query, "head": head_query}
    if server:
        if sources or not (base_query and head_query):
            raise click.UsageError("with --server give --base-query and --head-query (and no files)")
        body = {side: {"query": queries[side], "from": ranges[side][0], "until": ranges[side][1]}
                for side in ("base", "head")}
        body.update({"normalize": normalize, "granularity": granularity, "threshold": threshold,
                     "min_share": min_share, "min_delta": min_delta, "alpha": alpha, "metric": metric,
                     "sample_type": sample_type, "limit": limit, "flamegraph": False})
        report = _server_report(server, body, tenant)
    else:
        need = [s for s in ("base", "head") if not queries[s]]
        if len(sources) != len(need):
            names = " and ".join(n.upper() for n in need) or "no file argument"
            raise click.UsageError(f"expected {names} (got {len(sources)} argument(s))")
        result = _local_report(dict(zip(need, sources, strict=False)), queries, ranges, data_dir, sample_type,
                               normalize, granularity, opts, limit, tenant)
        report = result.to_json(limit)
        plugin = _plugin_findings(result, report, data_dir, queries, ranges)
        if plugin["findings"] or plugin["errors"]:
            report["plugin_findings"] = plugin["findings"]
            report["plugin_errors"] = plugin["errors"]
    text = _render(report, fmt, limit)
    if output == "-":
        click.echo(text, nl=False)
    else:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 1 if report["regressions"] else 0


def _local_report(paths: dict, queries: dict, ranges: dict, data_dir: str | None, sample_type: str | None,
                  normalize: str, granularity: str, opts, limit: int, tenant: str):
    from ..analysis.diff import Side
    from ..analysis.diff import diff as run_diff
    sides: dict = {}
    for side, arg in paths.items():
        sides[side] = Side.from_stacksets(load_profiles(expand_paths(arg), sample_type, side))
    stored = [s for s in ("base", "head") if queries[s]]
    if not stored:
        return run_diff(sides["base"], sides["head"], normalize, granularity, opts)
    from ..store import Store
    store = Store(data_dir)
    try:    # open until the diff is done: the noise test asks the store for per-profile sums
        sels = [_selection(queries[side], sample_type, *ranges[side], tenant) for side in stored]
        for side, per in zip(stored, store.select_per_profile(*sels), strict=True):
            if not len(per.profile_ids):
                raise BadInput(f"{side} selection {queries[side]!r} matches no stored profile")
            sides[side] = Side.from_selection(per)
        return run_diff(sides["base"], sides["head"], normalize, granularity, opts)
    finally:
        store.close()


def _plugin_findings(result, report: dict, data_dir: str | None, queries: dict, ranges: dict) -> dict:
    """Findings of the diff analyzers on the union tree: Python plugins' ``profscope_analyze_diff``
    and the Wasm plugins flagged ``on_diff`` in the store's plugin registry (``--data-dir``, else
    ``$PROFSCOPE_DATA_DIR`` or ``./profscope-data`` when it has one). A failing plugin is reported
    in ``errors`` and never changes the verdict."""
    import os
    from pathlib import Path
    tree = result.tree(max_nodes=20_000)
    meta = {"profile_type": "", "sample_type": report.get("sample_type", ""), "unit": report.get("unit", ""),
            "query": queries.get("head") or "", "from": ranges["head"][0], "until": ranges["head"][1],
            "config": {}}
    out: dict[str, list] = {"findings": [], "errors": []}
    from ..plugins import run_diff_analyzers
    py = run_diff_analyzers(tree, meta)
    out["findings"] += py["findings"]
    out["errors"] += py["errors"]
    reg_dir = Path(data_dir or os.environ.get("PROFSCOPE_DATA_DIR") or "./profscope-data") / "plugins"
    if reg_dir.is_dir():
        from ..wasm.registry import PluginRegistry
        registry = PluginRegistry(reg_dir)
        for run in registry.run_many(registry.auto_run("on_diff"), tree, meta):
            if "error" in run:
                out["errors"].append({"plugin": f"wasm:{run['plugin']}", "kind": run["error"]["kind"],
                                      "error": run["error"]["message"]})
            else:
                out["findings"] += [{**f, "plugin": f"wasm:{run['plugin']}"} for f in run["findings"]]
    return out


def _render(report: dict, fmt: str, limit: int) -> str:
    from ..analysis.diff_report import render_markdown, render_text
    if fmt == "json":
        return json.dumps(report, indent=2) + "\n"
    if fmt == "markdown":
        return render_markdown(report, limit)
    return render_text(report, limit)
