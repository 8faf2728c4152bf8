"""Human-readable diff reports: plain text for terminals, Markdown for pull-request comments.

Both render the JSON report of :meth:`profscope.analysis.diff.DiffResult.to_json` (so a report a
server computed renders the same way as a local one). No I/O here.
"""
from __future__ import annotations

_TIME = [(1e9, "s"), (1e6, "ms"), (1e3, "µs"), (1.0, "ns")]
_BYTES = [(1024.0 ** 3, "GiB"), (1024.0 ** 2, "MiB"), (1024.0, "KiB"), (1.0, "B")]


def _scaled(v: float, steps: list[tuple[float, str]]) -> str:
    for size, suffix in steps:
        if abs(v) >= size or size == 1.0:
            x = v / size
            return f"{x:.3g} {suffix}" if abs(x) < 1000 else f"{x:,.0f} {suffix}"
    return str(v)


def fmt_value(v: float | int | None, report: dict) -> str:
    """A value as the report's normalization shows it: a share, a rate per second, or raw."""
    if v is None:
        return "-"
    unit = report.get("unit", "")
    norm = report.get("normalize", "none")
    if norm == "total":
        return f"{100.0 * v:.2f}%"
    steps = _TIME if unit == "nanoseconds" else _BYTES if unit == "bytes" else None
    if norm == "duration":
        return (_scaled(v, steps) if steps else f"{v:.3g}") + "/s"
    if steps:
        return _scaled(v, steps)
    return f"{v:,}" if isinstance(v, int) else f"{v:.4g}"


def fmt_change(row: dict) -> str:
    pct = row.get("delta_pct")
    if pct is None:
        return "new" if row.get("head") else "0"
    if row.get("head") == 0 and pct <= -100:
        return "gone"
    return f"{pct:+.1f}%"


def fmt_p(row: dict) -> str:
    q = row.get("q_value")
    if q is None:
        return "-"
    return f"{q:.2g}" if q >= 0.001 else f"{q:.1e}"


def summary_line(report: dict) -> str:
    n_reg, n_imp = len(report["regressions"]), len(report["improvements"])
    if n_reg:
        worst = report["regressions"][0]
        head = f"{n_reg} regression{'s' if n_reg > 1 else ''}: {worst['name']} {fmt_change(worst)}"
    else:
        head = "no regression"
    imp = f", {n_imp} improvement{'s' if n_imp != 1 else ''}" if n_imp else ""
    return head + imp


def _context(report: dict) -> str:
    b, h = report["base"], report["head"]
    st = report["sample_type"] or "(unnamed)"
    return (f"{st} ({report['unit'] or 'count'}), {report['metric']} per {report['granularity'][:-1]}, "
            f"normalize={report['normalize']}; base {b['profiles']} profile(s), head {h['profiles']} profile(s)")


def _md_name(name: str) -> str:
    name = name.replace("|", "\\|")
    return f"`{name}`" if "`" not in name else name


def _md_table(rows: list[dict], report: dict, limit: int) -> list[str]:
    out = ["| function | base | head | change | q-value |", "|---|---:|---:|---:|---:|"]
    for r in rows[:limit]:
        out.append(f"| {_md_name(r['name'])} | {fmt_value(r['base'], report)} | {fmt_value(r['head'], report)} "
                   f"| {fmt_change(r)} | {fmt_p(r)} |")
    if len(rows) > limit:
        out.append(f"| ... {len(rows) - limit} more | | | | |")
    return out


def render_markdown(report: dict, limit: int = 10) -> str:
    """A short report fit for a pull-request comment."""
    failed = bool(report["regressions"])
    lines = [f"### profscope diff: {':x:' if failed else ':white_check_mark:'} {summary_line(report)}", "",
             _context(report) + ".", ""]
    if report["method"] == "threshold":
        lines += [f"> **Note:** {report['method_note']}.", ""]
    else:
        lines += [f"Significance: {report['method_note']}.", ""]
    t = report["thresholds"]
    lines += [f"Gate: change >= {t['threshold_pct']:g}%, share >= {t['min_share_pct']:g}%, "
              f"delta >= {t['min_delta_pct']:g}% of the base total"
              + (f", q-value <= {t['alpha']:g}" if report["method"] != "threshold" else "") + ".", ""]
    if report["regressions"]:
        lines += ["**Regressions**", "", *_md_table(report["regressions"], report, limit), ""]
    if report["improvements"]:
        lines += ["**Improvements**", "", *_md_table(report["improvements"], report, limit), ""]
    if report.get("functions"):
        lines += ["<details><summary>Largest changes</summary>", "",
                  *_md_table(report["functions"], report, limit), "", "</details>", ""]
    if report.get("plugin_findings") or report.get("plugin_errors"):
        lines += ["**Plugin findings**", ""]
        lines += [f"- {_md(f['severity'])} `{_md(f['plugin'])}`: {_md(f['title'])}: {_md(f['message'])}"
                  for f in report.get("plugin_findings", [])[:limit]]
        lines += [f"- plugin `{_md(e['plugin'])}` failed ({_md(e.get('kind', 'error'))})"
                  for e in report.get("plugin_errors", [])]
        lines.append("")
    for w in report.get("warnings", []):
        lines.append(f"- warning: {w}")
    return "\n".join(lines).rstrip() + "\n"


def _md(text: object) -> str:
    """Plugin text in markdown: no markup, no HTML."""
    return str(text).replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")[:300]


def _text_table(rows: list[dict], report: dict, limit: int) -> list[str]:
    out = [f"  {'base':>12} {'head':>12} {'change':>9} {'q-value':>9}  function"]
    for r in rows[:limit]:
        out.append(f"  {fmt_value(r['base'], report):>12} {fmt_value(r['head'], report):>12} "
                   f"{fmt_change(r):>9} {fmt_p(r):>9}  {r['name']}")
    if len(rows) > limit:
        out.append(f"  ... {len(rows) - limit} more")
    return out


def render_text(report: dict, limit: int = 10) -> str:
    """The report for a terminal."""
    verdict = "REGRESSION" if report["regressions"] else "OK"
    lines = [f"{verdict}: {summary_line(report)}", _context(report),
             f"method: {report['method']}: {report['method_note']}"]
    if report["regressions"]:
        lines += ["", "Regressions:", *_text_table(report["regressions"], report, limit)]
    if report["improvements"]:
        lines += ["", "Improvements:", *_text_table(report["improvements"], report, limit)]
    if report.get("functions"):
        lines += ["", "Largest changes:", *_text_table(report["functions"], report, limit)]
    if report.get("stacks"):
        lines += ["", "Stacks with the largest changes:"]
        for s in report["stacks"][: max(1, limit // 2)]:
            lines.append(f"  {fmt_value(s['base'], report):>12} {fmt_value(s['head'], report):>12} "
                         f"{fmt_change(s):>9}  {s['stack']}")
    if report.get("plugin_findings") or report.get("plugin_errors"):
        lines += ["", "Plugin findings:"]
        lines += [f"  [{f['severity']}] {f['plugin']}: {f['title']}: {f['message']}"
                  for f in report.get("plugin_findings", [])[:limit]]
        lines += [f"  plugin {e['plugin']} failed ({e.get('kind', 'error')}): {e.get('error', '')}"
                  for e in report.get("plugin_errors", [])]
    for w in report.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
