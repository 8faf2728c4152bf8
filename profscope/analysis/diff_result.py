"""What a diff answers: per-function values of both sides, test results, regressions, and (built
on demand) cumulative values, stacks and the union flame graph. No I/O here."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..model import ValueType
from .grouping import sequence_hashes, sum_int, unique_inverse, unique_sorted
from .tree import Tree, _tree_from_stacks

if TYPE_CHECKING:
    from .diff import DiffOptions

BASE, HEAD = 0, 1


@dataclass
class SideSummary:
    profiles: int
    total: int                     # pprof total (sum of profile totals)
    duration_nanos: int
    denominator: float             # what values are divided by under the chosen normalization

    def to_json(self) -> dict:
        return {"profiles": self.profiles, "total": self.total,
                "duration_seconds": self.duration_nanos / 1e9}


def cum_values(offs: np.ndarray, kflat: np.ndarray, vals: np.ndarray, nk: int,
               subset: np.ndarray | None = None) -> np.ndarray:
    """Cum [len(subset) or nk, k]: the value of the stacks a function appears in, once per stack
    however often it recurses there. ``subset`` limits the work to some functions."""
    lens = np.diff(offs)
    if not len(kflat):
        return np.zeros((nk if subset is None else len(subset), vals.shape[1]), np.int64)
    st = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    k, width = kflat.astype(np.int64), nk
    if subset is not None:
        member = np.full(nk, -1, np.int64)
        member[subset] = np.arange(len(subset))
        k = member[k]
        keep = k >= 0
        st, k, width = st[keep], k[keep], len(subset)
    pair = unique_sorted(st * max(width, 1) + k)
    key, stack = pair % max(width, 1), pair // max(width, 1)
    return np.stack([sum_int(key, vals[stack, j], width) for j in range(vals.shape[1])], axis=1)


@dataclass
class DiffResult:
    sample_type: ValueType
    normalize: str
    granularity: str
    options: DiffOptions
    method: str                     # "mann-whitney" or "threshold"
    method_note: str
    base: SideSummary
    head: SideSummary
    names: list[str]                # function names (per granularity)
    flat: np.ndarray                # int64 [n_functions, 2] raw values, base then head
    p_greater: np.ndarray           # float [n_functions], nan where not tested
    q_greater: np.ndarray
    p_less: np.ndarray
    q_less: np.ndarray
    regressions: np.ndarray         # function indices, largest increase first
    improvements: np.ndarray        # function indices, largest decrease first
    stack_offsets: np.ndarray       # stacks of both sides (leaf first, CSR; not necessarily distinct)
    stack_keys: np.ndarray          # function index per stack entry
    stack_values: np.ndarray        # int64 [n_stacks, 2]
    warnings: list[str] = field(default_factory=list)
    _cum: np.ndarray | None = None

    # ------------------------------------------------------------ values
    @property
    def cum(self) -> np.ndarray:
        """int64 [n_functions, 2] cumulative values (computed on first use)."""
        if self._cum is None:
            self._cum = cum_values(self.stack_offsets, self.stack_keys, self.stack_values, len(self.names))
        return self._cum

    def norm(self, raw: np.ndarray) -> np.ndarray:
        """Raw [n, 2] values under the chosen normalization (float; int64 for ``none``)."""
        if self.normalize == "none":
            return raw
        return raw / np.array([self.base.denominator, self.head.denominator])

    def metric_values(self, metric: str | None = None) -> np.ndarray:
        return self.norm(self.flat if (metric or self.options.metric) == "flat" else self.cum)

    @property
    def base_norm_total(self) -> float:
        return float(self.base.total) / (1.0 if self.normalize == "none" else self.base.denominator)

    @property
    def regressed(self) -> bool:
        return len(self.regressions) > 0

    def value_unit(self) -> str:
        u = self.sample_type.unit or "count"
        return {"total": "share", "duration": f"{u}/s", "none": u}[self.normalize]

    # ------------------------------------------------------------ trees and stacks
    def tree(self, max_nodes: int = 0) -> Tree:
        """The union flame graph: column 0 base, column 1 head (raw values)."""
        return _tree_from_stacks(self.stack_offsets, self.stack_keys, self.stack_values, list(self.names),
                                 max_nodes)

    def tree_json(self, max_nodes: int = 0) -> dict:
        """The union flame graph as nested JSON: ``{"name", "base": {"self", "total"}, "head":
        {...}, "children": [...]}`` (raw values)."""
        t = self.tree(max_nodes)
        nodes = [{"name": t.names[t.name[i]],
                  "base": {"self": int(t.self_[i, 0]), "total": int(t.total[i, 0])},
                  "head": {"self": int(t.self_[i, 1]), "total": int(t.total[i, 1])},
                  "children": []} for i in range(t.n_nodes)]
        for i in range(1, t.n_nodes):
            nodes[t.parent[i]]["children"].append(nodes[i])
        return nodes[0]

    def stack_name(self, s: int) -> str:
        """Stack ``s`` root first, frames joined by ';'."""
        ks = self.stack_keys[self.stack_offsets[s]:self.stack_offsets[s + 1]]
        return ";".join(self.names[int(k)] for k in ks[::-1])

    def top_stacks(self, limit: int = 20) -> list[dict]:
        """Distinct stacks (at the granularity) with the largest change of their normalized value."""
        if limit <= 0 or not len(self.stack_values):
            return []
        first, inv = unique_inverse(sequence_hashes(self.stack_offsets, self.stack_keys))
        vals = np.stack([sum_int(inv, self.stack_values[:, j], len(first)) for j in (0, 1)], axis=1)
        v = self.norm(vals)
        d = v[:, HEAD] - v[:, BASE]
        order = np.lexsort((np.arange(len(d)), -np.abs(d)))[:limit]
        return [dict(self._change(v[g, BASE], v[g, HEAD]), stack=self.stack_name(int(first[g])))
                for g in order if d[g] != 0]

    # ------------------------------------------------------------ rows
    def _change(self, b, h) -> dict:
        d = h - b
        pct = None if b == 0 else float(100.0 * d / abs(b))
        conv = int if self.normalize == "none" else float
        return {"base": conv(b), "head": conv(h), "delta": conv(d), "delta_pct": pct}

    def function_rows(self, idx: list[int]) -> list[dict]:
        """Rows for functions ``idx``: the gating metric, flat and cum, shares and test results."""
        if not idx:
            return []
        ix = np.asarray(idx, np.int64)
        cum = self.cum[ix] if self._cum is not None else cum_values(
            self.stack_offsets, self.stack_keys, self.stack_values, len(self.names), ix)
        flat = self.flat[ix]
        gate_raw = flat if self.options.metric == "flat" else cum
        mv, fl, cu = self.norm(gate_raw), self.norm(flat), self.norm(cum)
        tot = np.array([max(self.base.total, 1), max(self.head.total, 1)], np.float64)
        share = 100.0 * gate_raw / tot
        conv = int if self.normalize == "none" else float
        rows = []
        for r, i in enumerate(idx):
            row = {"name": self.names[i], **self._change(mv[r, BASE], mv[r, HEAD])}
            row["base_share_pct"], row["head_share_pct"] = float(share[r, BASE]), float(share[r, HEAD])
            row["delta_of_base_total_pct"] = (float(100.0 * (mv[r, HEAD] - mv[r, BASE]) / self.base_norm_total)
                                              if self.base_norm_total else None)
            up = mv[r, HEAD] >= mv[r, BASE]
            p, q = (self.p_greater, self.q_greater) if up else (self.p_less, self.q_less)
            row["p_value"] = None if np.isnan(p[i]) else float(p[i])
            row["q_value"] = None if np.isnan(q[i]) else float(q[i])
            row["flat"] = {"base": conv(fl[r, 0]), "head": conv(fl[r, 1]), "delta": conv(fl[r, 1] - fl[r, 0])}
            row["cum"] = {"base": conv(cu[r, 0]), "head": conv(cu[r, 1]), "delta": conv(cu[r, 1] - cu[r, 0])}
            row["raw"] = {"base": int(gate_raw[r, 0]), "head": int(gate_raw[r, 1])}
            rows.append(row)
        return rows

    def function_order(self, limit: int = 0) -> np.ndarray:
        """Functions with a value on either side, by |change of the gating metric| then name.

        With the flat metric and a limit, cum values are not needed (nor computed)."""
        full = self.options.metric == "cum" or limit <= 0 or self._cum is not None
        raw = self.cum if self.options.metric == "cum" else self.flat
        present = self.flat.any(axis=1) | (self.cum.any(axis=1) if full else False)
        mv = self.norm(raw).astype(np.float64)
        d = np.abs(mv[:, HEAD] - mv[:, BASE])
        idx = np.flatnonzero(present)
        if limit > 0 and len(idx) > limit:
            # the limit largest changes, ties kept so that names can order them
            cut = np.partition(d[idx], len(idx) - limit)[len(idx) - limit]
            idx = idx[d[idx] >= cut]
        names = np.array([self.names[i] for i in idx], dtype=object)
        order = idx[np.lexsort((np.argsort(np.argsort(names, kind="stable")), -d[idx]))]
        return order[:limit] if limit > 0 else order

    def to_json(self, limit: int = 20, stacks: int = 10) -> dict:
        """The report: summary, regressions, improvements, top functions and stacks."""
        order = self.function_order(limit).tolist()
        reg, imp = self.regressions.tolist(), self.improvements.tolist()
        rows = dict(zip(reg + imp + order, self.function_rows(reg + imp + order), strict=False))
        return {
            "sample_type": self.sample_type.type, "unit": self.sample_type.unit,
            "value_unit": self.value_unit(), "normalize": self.normalize,
            "granularity": self.granularity, "metric": self.options.metric,
            "method": self.method, "method_note": self.method_note,
            "thresholds": {"threshold_pct": self.options.threshold_pct,
                           "min_share_pct": self.options.min_share_pct,
                           "min_delta_pct": self.options.min_delta_pct, "alpha": self.options.alpha},
            "base": self.base.to_json(), "head": self.head.to_json(),
            "regressed": self.regressed,
            "regressions": [rows[i] for i in reg],
            "improvements": [rows[i] for i in imp],
            "functions": [rows[i] for i in order],
            "stacks": self.top_stacks(stacks),
            "warnings": list(self.warnings),
        }
