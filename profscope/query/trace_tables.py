"""Tables over trace joins: sampled time per span of a trace, and exemplar spans for a function.

Both aggregate in DuckDB over the linked (profile, label set) pairs and finish with numpy over
distinct stacks and label sets (never per sample).
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..analysis.stacks import display_name, frame_regex_mask
from ..errors import BadInput
from ..store.select import Matched
from ..traceids import span_hex, trace_hex, trace_id_arg
from .selector import Selection
from .spantree import SpanForest
from .traces import resolve_type


def _unit(ptype: str) -> tuple[str, str]:
    parts = ptype.split(":")
    return (parts[1], parts[2]) if len(parts) >= 3 else ("", "")


def _restrict(links: dict[str, np.ndarray], m: Matched) -> dict[str, np.ndarray]:
    """Keep links inside the selection's own (profile, label set) pairs, when it has some."""
    if m.pairs is None or not len(links["profile_id"]):
        return links
    want = (m.pairs[0].astype(np.int64) << 32) | m.pairs[1].astype(np.int64)
    have = (links["profile_id"].astype(np.int64) << 32) | links["labelset_id"].astype(np.int64)
    keep = np.isin(have, want)
    return {k: v[keep] for k, v in links.items()}


def span_table(store, sel: Selection, trace_id: str | int) -> dict:
    """Self and total sampled value of every span of a trace.

    A sample counts in the self value of the span whose id it carries (its ``span_id`` label
    or link; else its Datadog local root); a span's total adds its descendants' totals. Linked
    samples whose span is not stored appear as rows with ``stored: false``."""
    tid = trace_id if isinstance(trace_id, int) else trace_id_arg(trace_id)
    sel = resolve_type(store, sel)
    tr = store.traces
    m = tr.match(sel)
    forest = SpanForest(tr.trace_spans(sel.tenant, [tid]))
    by_id: dict[int, tuple] = {}
    for k in forest.keys:                        # pyroscope.profile.id first, own ids win
        p = int(forest.value(k, "profile_span_id"))
        if p:
            by_id.setdefault(p, k)
    for k in forest.keys:
        by_id[k[2]] = k
    ids = sorted(by_id)
    links = _restrict(tr.links(m.profile_ids, span_ids=ids, root_ids=ids, trace_ids=[tid]), m)
    self_: dict = defaultdict(int)
    if len(links["profile_id"]):
        vals = tr.link_values(links)
        for who, v in zip(vals["who"].tolist(), vals["value"].tolist(), strict=True):
            self_[by_id.get(who, who)] += int(v)     # a stored span's key, else the bare id
    order = forest.preorder()
    total: dict = {}
    for k, _d in reversed(order):
        total[k] = self_.get(k, 0) + sum(total[c] for c in forest.children.get(k, ()) if c in total)
    rows = []
    for k, depth in order:
        start, end = int(forest.value(k, "start_ns")), int(forest.value(k, "end_ns"))
        parent = forest.parent[k]
        rows.append({"span_id": span_hex(k[2]), "parent_span_id": span_hex(parent[2]) if parent else None,
                     "name": str(forest.value(k, "name")), "service": str(forest.value(k, "service")),
                     "depth": depth, "start_ns": start, "duration_ns": end - start,
                     "self": self_.get(k, 0), "total": total[k], "stored": True})
    for who, v in sorted(self_.items(), key=lambda kv: -kv[1]):
        if not isinstance(who, tuple):
            rows.append({"span_id": span_hex(who), "parent_span_id": None, "name": None, "service": None,
                         "depth": 0, "start_ns": None, "duration_ns": None, "self": v, "total": v,
                         "stored": False})
    st, unit = _unit(m.profile_type)
    notes = []
    tagged_roots_only = all(r["self"] == 0 for r in rows if r["depth"] > 0) and any(
        int(forest.value(k, "profile_span_id")) for k in forest.keys)
    if tagged_roots_only and rows:
        notes.append("profiles tag only the local root span (pyroscope.profile.id): the CPU of child spans "
                     "is counted in the self value of their local root")
    return {"trace_id": trace_hex(tid), "profile_type": m.profile_type, "sample_type": st, "unit": unit,
            "total": int(sum(self_.values())), "spans": rows, "notes": notes}


def exemplars(store, sel: Selection, function: str | None = None, frame: str | None = None,
              limit: int = 10) -> dict:
    """Spans and traces that spent the most in a function (exact name at function granularity)
    or in frames matching a regex, within a selection, with the value spent there and each
    span's total sampled value.

    The frames are matched in the in-memory frame dictionary; DuckDB finds the stacks holding
    them and sums the linked samples of those stacks per span."""
    if bool(function) == bool(frame):
        raise BadInput("give exactly one of function (a function name) or frame (a regex)")
    sel = resolve_type(store, sel)
    tr = store.traces
    m = tr.match(sel)
    st, unit = _unit(m.profile_type)
    out = {"profile_type": m.profile_type, "sample_type": st, "unit": unit, "function": function,
           "frame": frame, "total": 0, "spans": [], "traces": []}
    ids, table = tr.frames()
    if function:
        hit = [int(ids[i]) for i in range(len(table)) if display_name(table, i, "functions") == function]
    else:
        hit = ids[frame_regex_mask(table, frame or "")].tolist()
    links = _restrict(tr.all_links(m.profile_ids), m) if hit else None
    if links is None or not len(links["profile_id"]):
        return out
    who, hi, lo, value = _cols(tr.link_values(links, tr.stacks_with_frames(hit)))
    keep = value > 0
    who, hi, lo, value = who[keep], hi[keep], lo[keep], value[keep]
    # span -> trace from the spans table where the samples carry no trace id
    missing = np.flatnonzero((hi == 0) & (lo == 0) & (who != 0))
    if len(missing):
        found = _span_info(tr, sel.tenant, set(who[missing].tolist()))
        for i in missing.tolist():
            t = found.get(int(who[i]), {}).get("trace", 0)
            hi[i], lo[i] = t >> 64, t & ((1 << 64) - 1)
    top = np.lexsort((lo, hi, who, -value))[:limit]
    info = _span_info(tr, sel.tenant, set(who[top].tolist()) - {0})
    # each shown span's total sampled value (all stacks), over its own links only
    top_ids = who[top]
    mine = np.isin(links["span_id"], top_ids) | (np.isin(links["root_span_id"], top_ids) & (links["span_id"] == 0))
    totals: dict = defaultdict(int)
    if mine.any():
        for w, v in zip(*(x.tolist() for x in _cols(tr.link_values({k: v[mine] for k, v in links.items()}))[::3]),
                        strict=True):
            totals[w] += v
    for i in top.tolist():
        sid, trace = int(who[i]), (int(hi[i]) << 64) | int(lo[i])
        sp = info.get(sid)
        out["spans"].append({"span_id": span_hex(sid) if sid else None,
                             "trace_id": trace_hex(trace) if trace else None,
                             "value": int(value[i]), "span_total": int(totals.get(sid, 0)),
                             "name": sp["name"] if sp else None, "service": sp["service"] if sp else None,
                             "start_ns": sp["start_ns"] if sp else None,
                             "duration_ns": sp["duration_ns"] if sp else None})
    out["traces"] = _top_traces(who, hi, lo, value, limit)
    out["total"] = int(value.sum())
    return out


def _cols(vals: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (vals["who"].astype(np.uint64), vals["trace_hi"].astype(np.uint64), vals["trace_lo"].astype(np.uint64),
            vals["value"].astype(np.int64))


def _top_traces(who: np.ndarray, hi: np.ndarray, lo: np.ndarray, value: np.ndarray, limit: int) -> list[dict]:
    """Value and number of spans per trace, largest first (vectorized group-by on (hi, lo))."""
    has = (hi != 0) | (lo != 0)
    if not has.any():
        return []
    h, lw, v, w = hi[has], lo[has], value[has], who[has]
    order = np.lexsort((lw, h))
    h, lw, v, w = h[order], lw[order], v[order], w[order]
    start = np.flatnonzero(np.concatenate([[True], (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])]))
    sums = np.add.reduceat(v, start)
    spans = np.add.reduceat((w != 0).astype(np.int64), start)
    best = np.lexsort((lw[start], h[start], -sums))[:limit]
    return [{"trace_id": trace_hex(int(h[start][i]), int(lw[start][i])), "value": int(sums[i]),
             "spans": int(spans[i])} for i in best.tolist()]


def _span_info(tr, tenant: str, span_ids: set[int]) -> dict[int, dict]:
    """Stored span (or the span whose pyroscope.profile.id it is) per id."""
    if not span_ids:
        return {}
    sp = tr.find_spans(tenant, span_ids=sorted(span_ids))
    out: dict[int, dict] = {}
    for i, sid in enumerate(sp["span_id"].tolist()):
        out[sid] = {"trace": (int(sp["trace_hi"][i]) << 64) | int(sp["trace_lo"][i]), "name": str(sp["name"][i]),
                    "service": str(sp["service"][i]), "start_ns": int(sp["start_ns"][i]),
                    "duration_ns": int(sp["end_ns"][i]) - int(sp["start_ns"][i])}
    return out
