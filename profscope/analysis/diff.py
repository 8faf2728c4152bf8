"""Differential profiling: compare two selections of profiles, and tell regressions from noise.

Pure functions over flat arrays, no I/O here. A :class:`Side` is one selection: its distinct
stacks (merged over all its profiles) plus sparse per-profile rows ``(profile, stack, value)``
that carry the run-to-run spread. :func:`diff` gives a :class:`DiffResult`:

- per function (at a granularity) flat and cum on both sides, normalized by the side's total
  (shares), by its profiling duration (per second) or not at all (raw, which agrees with
  ``go tool pprof -diff_base``/``-base``);
- per stack, the same numbers, and a two-column union flame-graph tree (base, head);
- regressions and improvements: functions whose change passes the thresholds and, when both
  sides have enough profiles, a one-sided Mann-Whitney U test on per-profile values with
  Benjamini-Hochberg control over the family of relevant functions. With too few profiles the
  decision falls back to thresholds only (``method == "threshold"``) and the result says so.

Everything is vectorized over stacks and rows; loops run over distinct frames (naming) and
over the few reported rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BadInput
from ..model import FrameTable, StackSet, ValueType, csr_take
from .stacks import GRANULARITIES, frame_keys, stack_hashes
from .stats import benjamini_hochberg, mann_whitney, min_p_value
from .tree import Tree, _tree_from_stacks

NORMALIZATIONS = ("total", "duration", "none")
METRICS = ("flat", "cum")
BASE, HEAD = 0, 1


@dataclass
class Side:
    """One selection of a diff: distinct stacks plus the per-profile rows behind them.

    ``stacks.values`` must equal the per-row values summed by ``row_stack``; its ``total`` is
    the sum of ``profile_totals``."""
    stacks: StackSet
    row_stack: np.ndarray          # int64 [r] index into stacks
    row_profile: np.ndarray        # int64 [r] profile number, 0 .. n_profiles-1
    row_value: np.ndarray          # int64 [r]
    profile_totals: np.ndarray     # int64 [n_profiles] pprof total of each profile
    profile_durations: np.ndarray  # int64 [n_profiles] duration_nanos of each profile

    @property
    def n_profiles(self) -> int:
        return len(self.profile_totals)

    @classmethod
    def from_selection(cls, sel) -> Side:
        """From the store's per-profile selection (:class:`profscope.store.PerProfile`)."""
        return cls(sel.stacks, sel.row_stack, sel.row_profile, sel.row_value, sel.profile_totals,
                   sel.profile_durations)

    @classmethod
    def from_stacksets(cls, sets: list[StackSet]) -> Side:
        """One profile per stack set; stack sets that share a FrameTable object keep sharing it."""
        if not sets:
            raise BadInput("a diff side has no profiles")
        tables: list[FrameTable] = []
        first_frame: dict[int, int] = {}
        for s in sets:
            if id(s.frames) not in first_frame:
                first_frame[id(s.frames)] = sum(len(t) for t in tables)
                tables.append(s.frames)
        frames = tables[0] if len(tables) == 1 else concat_frames(tables)
        offs, flat, vals = [], [], []
        base_off = 0
        for s in sets:
            offs.append(s.stack_offsets[:-1] + base_off)
            flat.append(s.stack_frames.astype(np.int64) + first_frame[id(s.frames)])
            vals.append(s.values)
            base_off += int(s.stack_offsets[-1])
        stacks = StackSet(np.concatenate(offs + [np.array([base_off])]).astype(np.int64),
                          np.concatenate(flat).astype(np.int32), np.concatenate(vals).astype(np.int64),
                          frames, sets[0].sample_type, sum(s.total for s in sets), len(sets),
                          sum(s.duration_nanos for s in sets), sets[0].period, sets[0].period_type)
        n = stacks.n_stacks
        prof = np.repeat(np.arange(len(sets), dtype=np.int64), [s.n_stacks for s in sets])
        return cls(stacks, np.arange(n, dtype=np.int64), prof, stacks.values,
                   np.array([s.total for s in sets], np.int64),
                   np.array([s.duration_nanos for s in sets], np.int64))


def concat_frames(tables: list[FrameTable]) -> FrameTable:
    """One frame table after another (indices of table j shift by the lengths before it)."""
    return FrameTable(sum((t.name for t in tables), []), sum((t.system_name for t in tables), []),
                      sum((t.file for t in tables), []), np.concatenate([t.line for t in tables]),
                      np.concatenate([t.start_line for t in tables]),
                      np.concatenate([t.address for t in tables]),
                      sum((t.mapping_file for t in tables), []))


@dataclass(frozen=True)
class DiffOptions:
    """What counts as a regression. Percentages are in percent (10.0 means 10 %)."""
    threshold_pct: float = 10.0    # minimum relative change of the function's normalized value
    min_share_pct: float = 1.0     # the function holds at least this share of its side's total
    min_delta_pct: float = 0.1     # minimum change, in percent of the base side's normalized total
    alpha: float = 0.01            # false discovery rate over the tested functions
    metric: str = "flat"           # which value gates: flat (self) or cum (with callees)
    max_tests: int = 500           # at most this many functions (largest shares) are tested

    def __post_init__(self) -> None:
        checks = [("threshold", self.threshold_pct, 0.0, None), ("min_share", self.min_share_pct, 0.0, 100.0),
                  ("min_delta", self.min_delta_pct, 0.0, None), ("alpha", self.alpha, 0.0, 1.0),
                  ("max_tests", self.max_tests, 1, None)]
        for name, v, lo, hi in checks:
            if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
                raise BadInput(f"{name} must be a number, got {v!r}")
            if v < lo or (hi is not None and v > hi) or (name == "alpha" and v == 0):
                raise BadInput(f"{name}={v} must be between {lo:g} and {hi if hi is not None else 'inf'}")
        if self.metric not in METRICS:
            raise BadInput(f"metric {self.metric!r} is not one of: {', '.join(METRICS)}")


@dataclass
class SideSummary:
    profiles: int
    total: int                     # pprof total (sum of profile totals)
    duration_nanos: int
    denominator: float             # what values are divided by under the chosen normalization

    def to_json(self) -> dict:
        return {"profiles": self.profiles, "total": self.total,
                "duration_seconds": self.duration_nanos / 1e9}


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
    cum: np.ndarray                 # int64 [n_functions, 2]
    p_greater: np.ndarray           # float [n_functions], nan where not tested
    q_greater: np.ndarray
    p_less: np.ndarray
    q_less: np.ndarray
    regressions: np.ndarray         # function indices, largest increase first
    improvements: np.ndarray        # function indices, largest decrease first
    stack_offsets: np.ndarray       # distinct stacks at the granularity (leaf first, CSR)
    stack_keys: np.ndarray          # function index per stack entry
    stack_values: np.ndarray        # int64 [n_stacks, 2]
    warnings: list[str] = field(default_factory=list)

    # ------------------------------------------------------------ normalized values
    def norm(self, raw: np.ndarray) -> np.ndarray:
        """Raw [n, 2] values under the chosen normalization (float; int64 for ``none``)."""
        if self.normalize == "none":
            return raw
        return raw / np.array([self.base.denominator, self.head.denominator])

    def metric_values(self, metric: str | None = None) -> np.ndarray:
        raw = self.flat if (metric or self.options.metric) == "flat" else self.cum
        return self.norm(raw)

    def shares(self, raw: np.ndarray) -> np.ndarray:
        """Share of each side's pprof total, in percent."""
        tot = np.array([max(self.base.total, 1), max(self.head.total, 1)], np.float64)
        return 100.0 * raw / tot

    @property
    def base_norm_total(self) -> float:
        return float(self.base.total) / (1.0 if self.normalize == "none" else self.base.denominator)

    @property
    def regressed(self) -> bool:
        return len(self.regressions) > 0

    # ------------------------------------------------------------ trees and stacks
    def tree(self, max_nodes: int = 0) -> Tree:
        """The union flame graph: column 0 base, column 1 head (raw values)."""
        names = self.names
        return _tree_from_stacks(self.stack_offsets, self.stack_keys, self.stack_values, list(names),
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
        """Stacks with the largest absolute change of their normalized value."""
        v = self.norm(self.stack_values)
        d = v[:, HEAD] - v[:, BASE]
        order = np.lexsort((np.arange(len(d)), -np.abs(d)))[:limit]
        return [dict(self._change(v[s, BASE], v[s, HEAD]), stack=self.stack_name(int(s)))
                for s in order if d[s] != 0]

    # ------------------------------------------------------------ rows
    def _change(self, b, h) -> dict:
        d = h - b
        pct = None if b == 0 else float(100.0 * d / abs(b))
        conv = int if self.normalize == "none" else float
        return {"base": conv(b), "head": conv(h), "delta": conv(d), "delta_pct": pct}

    def function_row(self, i: int) -> dict:
        """One function: the gating metric, both flat and cum, shares and test results."""
        mv = self.metric_values()
        row = {"name": self.names[i], **self._change(mv[i, BASE], mv[i, HEAD])}
        sh = self.shares(self.flat if self.options.metric == "flat" else self.cum)
        row["base_share_pct"], row["head_share_pct"] = float(sh[i, BASE]), float(sh[i, HEAD])
        row["delta_of_base_total_pct"] = float(100.0 * (mv[i, HEAD] - mv[i, BASE]) / self.base_norm_total) \
            if self.base_norm_total else None
        up = mv[i, HEAD] >= mv[i, BASE]
        p, q = (self.p_greater, self.q_greater) if up else (self.p_less, self.q_less)
        row["p_value"] = None if np.isnan(p[i]) else float(p[i])
        row["q_value"] = None if np.isnan(q[i]) else float(q[i])
        fl, cu = self.norm(self.flat), self.norm(self.cum)
        conv = int if self.normalize == "none" else float
        row["flat"] = {"base": conv(fl[i, 0]), "head": conv(fl[i, 1]), "delta": conv(fl[i, 1] - fl[i, 0])}
        row["cum"] = {"base": conv(cu[i, 0]), "head": conv(cu[i, 1]), "delta": conv(cu[i, 1] - cu[i, 0])}
        row["raw"] = {"base": int(self.flat[i, 0] if self.options.metric == "flat" else self.cum[i, 0]),
                      "head": int(self.flat[i, 1] if self.options.metric == "flat" else self.cum[i, 1])}
        return row

    def function_order(self) -> np.ndarray:
        """Functions by |change of the gating metric|, then name (pprof-like, stable)."""
        mv = self.metric_values()
        d = np.abs(mv[:, HEAD] - mv[:, BASE]).astype(np.float64)
        other = self.norm(self.cum if self.options.metric == "flat" else self.flat)
        d2 = np.abs(other[:, HEAD] - other[:, BASE]).astype(np.float64)
        name_rank = np.empty(len(self.names), np.int64)
        name_rank[np.argsort(np.array(self.names, dtype=object), kind="stable")] = np.arange(len(self.names))
        return np.lexsort((name_rank, -d2, -d))

    def to_json(self, limit: int = 20, stacks: int = 10) -> dict:
        """The report: summary, regressions, improvements, top functions and stacks."""
        order = [int(i) for i in self.function_order()
                 if self.flat[i].any() or self.cum[i].any()]
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
            "regressions": [self.function_row(int(i)) for i in self.regressions],
            "improvements": [self.function_row(int(i)) for i in self.improvements],
            "functions": [self.function_row(i) for i in (order[:limit] if limit > 0 else order)],
            "stacks": self.top_stacks(stacks),
            "warnings": list(self.warnings),
        }

    def value_unit(self) -> str:
        u = self.sample_type.unit or "count"
        return {"total": "share", "duration": f"{u}/s", "none": u}[self.normalize]


# ---------------------------------------------------------------- the engine
def diff(base: Side | list[StackSet], head: Side | list[StackSet], normalize: str = "total",
         granularity: str = "functions", options: DiffOptions = DiffOptions()) -> DiffResult:
    """Compare ``head`` against ``base``. Lists of stack sets count one profile each."""
    if normalize not in NORMALIZATIONS:
        raise BadInput(f"normalize {normalize!r} is not one of: {', '.join(NORMALIZATIONS)}")
    if granularity not in GRANULARITIES:
        raise BadInput(f"granularity {granularity!r} is not one of: {', '.join(GRANULARITIES)}")
    sides = [s if isinstance(s, Side) else Side.from_stacksets(s) for s in (base, head)]
    _check_types(sides)
    warnings: list[str] = []
    summaries = [_summary(s, normalize, name) for s, name in zip(sides, ("base", "head"))]

    # function keys over both sides' frames (computed once per distinct frame table)
    if sides[0].stacks.frames is sides[1].stacks.frames:
        keys, names = frame_keys(sides[0].stacks.frames, granularity)
        shift = [0, 0]
    else:
        keys, names = frame_keys(concat_frames([sides[0].stacks.frames, sides[1].stacks.frames]),
                                 granularity)
        shift = [0, len(sides[0].stacks.frames)]
    nk = len(names)

    # distinct stacks at this granularity, shared by both sides
    kflats = [keys[s.stacks.stack_frames.astype(np.int64) + sh] for s, sh in zip(sides, shift)]
    hashes = [stack_hashes(s.stacks.stack_offsets, kf) for s, kf in zip(sides, kflats)]
    uniq, first, inv = np.unique(np.concatenate(hashes), return_index=True, return_inverse=True)
    n0 = sides[0].stacks.n_stacks
    sids = [inv[:n0], inv[n0:]]
    all_offs = np.concatenate([sides[0].stacks.stack_offsets[:-1],
                               sides[1].stacks.stack_offsets + int(sides[0].stacks.stack_offsets[-1])])
    st_offs, st_keys = csr_take(all_offs, np.concatenate(kflats), first)
    n_st = len(uniq)
    st_vals = np.zeros((n_st, 2), np.int64)
    for j, s in enumerate(sides):
        np.add.at(st_vals[:, j], sids[j], s.stacks.values)

    flat, cum, leaf = _flat_cum(st_offs, st_keys, st_vals, nk)
    gate = flat if options.metric == "flat" else cum
    share = 100.0 * gate / np.array([max(summaries[0].total, 1), max(summaries[1].total, 1)], np.float64)

    # significance on per-profile values of the relevant functions
    method, note = _method(sides, options)
    p_g, q_g, p_l, q_l = (np.full(nk, np.nan) for _ in range(4))
    if method == "mann-whitney":
        fam = _family(share, options)
        if len(fam):
            mats = [_per_profile(s, sid, fam, leaf, st_offs, st_keys, nk, options.metric, normalize)
                    for s, sid in zip(sides, sids)]
            for j, (m, s) in enumerate(zip(mats, sides)):
                if m.shape[1] < s.n_profiles:
                    warnings.append(f"{('base', 'head')[j]}: {s.n_profiles - m.shape[1]} profile(s) with a "
                                    f"zero {'total' if normalize == 'total' else 'duration'} left out of the test")
            if min_p_value(mats[0].shape[1], mats[1].shape[1]) * len(fam) > options.alpha:
                warnings.append(f"{mats[0].shape[1]} base and {mats[1].shape[1]} head profiles cannot show "
                                f"significance over {len(fam)} tested functions at alpha {options.alpha:g}; "
                                "give more profiles per side (8 or more is a good start)")
            p_g[fam] = mann_whitney(mats[0], mats[1], "greater")
            p_l[fam] = mann_whitney(mats[0], mats[1], "less")
            q_g[fam] = benjamini_hochberg(p_g[fam])
            q_l[fam] = benjamini_hochberg(p_l[fam])

    res = DiffResult(sides[0].stacks.sample_type, normalize, granularity, options, method, note,
                     summaries[0], summaries[1], names, flat, cum, p_g, q_g, p_l, q_l,
                     np.zeros(0, np.int64), np.zeros(0, np.int64), st_offs, st_keys, st_vals, warnings)
    res.regressions, res.improvements = _decide(res, share)
    if normalize == "none" and sides[0].n_profiles != sides[1].n_profiles:
        warnings.append(f"normalize=none sums {sides[0].n_profiles} base and {sides[1].n_profiles} head "
                        "profiles: totals are not comparable; --normalize total or duration compares them")
    return res


def _check_types(sides: list[Side]) -> None:
    tb, th = sides[0].stacks.sample_type, sides[1].stacks.sample_type
    if (tb.type, tb.unit) != (th.type, th.unit):
        raise BadInput(f"base and head have different sample types: base {tb.type}:{tb.unit}, "
                       f"head {th.type}:{th.unit}; select the same sample type on both sides (--sample-type)")


def _summary(s: Side, normalize: str, name: str) -> SideSummary:
    total = int(s.profile_totals.sum())
    dur = int(s.profile_durations.sum())
    if normalize == "duration":
        missing = int((s.profile_durations <= 0).sum())
        if missing:
            raise BadInput(f"normalize=duration needs the duration of every profile, but {missing} of "
                           f"{s.n_profiles} {name} profile(s) have none; use --normalize total or none")
        denom = dur / 1e9
    elif normalize == "total":
        denom = float(total) if total else 1.0
    else:
        denom = 1.0
    return SideSummary(s.n_profiles, total, dur, denom)


def _flat_cum(offs: np.ndarray, kflat: np.ndarray, vals: np.ndarray, nk: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat and cum [nk, k] of stacks whose frames are already function keys; leaf key per stack."""
    n = len(offs) - 1
    lens = np.diff(offs)
    leaf = np.full(n, -1, np.int64)
    nz = lens > 0
    leaf[nz] = kflat[offs[:-1][nz]]
    flat = np.zeros((nk, vals.shape[1]), np.int64)
    np.add.at(flat, leaf[nz], vals[nz])
    cum = np.zeros_like(flat)
    if len(kflat):
        pair = np.unique(np.repeat(np.arange(n, dtype=np.int64), lens) * nk + kflat)
        np.add.at(cum, pair % nk, vals[pair // nk])
    return flat, cum, leaf


def _method(sides: list[Side], o: DiffOptions) -> tuple[str, str]:
    nb, nh = sides[0].n_profiles, sides[1].n_profiles
    if nb >= 2 and nh >= 2 and min_p_value(nb, nh) <= o.alpha:
        return "mann-whitney", (f"one-sided Mann-Whitney U test on per-profile values ({nb} base, {nh} head "
                                f"profiles), Benjamini-Hochberg false discovery rate {o.alpha:g}")
    why = ("one profile per side" if nb == 1 and nh == 1 else
           f"{nb} base and {nh} head profiles are too few for a rank test at alpha {o.alpha:g}")
    return "threshold", (f"{why}: noise cannot be estimated, so the decision uses thresholds only "
                         f"(change >= {o.threshold_pct:g}%, share >= {o.min_share_pct:g}%, "
                         f"delta >= {o.min_delta_pct:g}% of the base total); give several profiles per "
                         "side for a significance test")


def _family(share: np.ndarray, o: DiffOptions) -> np.ndarray:
    """Functions tested: share >= min_share on either side, the largest ``max_tests`` of them."""
    big = share.max(axis=1)
    fam = np.flatnonzero(big >= o.min_share_pct)
    if len(fam) > o.max_tests:
        fam = fam[np.argsort(-big[fam], kind="stable")[:o.max_tests]]
    return np.sort(fam)


def _per_profile(s: Side, sid: np.ndarray, fam: np.ndarray, leaf: np.ndarray, st_offs: np.ndarray,
                 st_keys: np.ndarray, nk: int, metric: str, normalize: str) -> np.ndarray:
    """[len(fam), n_profiles] normalized value of each family function in each profile."""
    fidx = np.full(nk + 1, -1, np.int64)        # slot nk for "no leaf"
    fidx[fam] = np.arange(len(fam))
    row_sid = sid[s.row_stack]
    mat = np.zeros((len(fam), s.n_profiles), np.float64)
    if metric == "flat":
        f = fidx[np.where(leaf[row_sid] >= 0, leaf[row_sid], nk)]
        ok = f >= 0
        np.add.at(mat, (f[ok], s.row_profile[ok]), s.row_value[ok])
    else:
        # (stack, family function) pairs, once per stack, as CSR by stack
        lens = np.diff(st_offs)
        st_of = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
        fk = fidx[st_keys]
        keep = fk >= 0
        pair = np.unique(st_of[keep] * len(fam) + fk[keep])
        p_stack, p_fam = pair // len(fam), pair % len(fam)
        cnt = np.bincount(p_stack, minlength=len(lens))
        start = np.concatenate([[0], np.cumsum(cnt)])
        rows = np.flatnonzero(cnt[row_sid] > 0)
        rc = cnt[row_sid[rows]]
        total = int(rc.sum())
        if total:
            first = np.repeat(start[row_sid[rows]], rc)
            rank = np.arange(total) - np.repeat(np.cumsum(rc) - rc, rc)
            r = np.repeat(rows, rc)
            np.add.at(mat, (p_fam[first + rank], s.row_profile[r]), s.row_value[r])
    if normalize == "total":
        den = s.profile_totals.astype(np.float64)
    elif normalize == "duration":
        den = s.profile_durations.astype(np.float64) / 1e9
    else:
        return mat
    ok = den != 0
    return mat[:, ok] / den[ok]


def _decide(r: DiffResult, share: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of regressions (largest increase first) and improvements (largest decrease first)."""
    o = r.options
    mv = r.metric_values().astype(np.float64)
    b, h = mv[:, BASE], mv[:, HEAD]
    d = h - b
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(b != 0, 100.0 * d / np.abs(b), np.where(d > 0, np.inf, np.where(d < 0, -np.inf, 0.0)))
        of_total = 100.0 * d / r.base_norm_total if r.base_norm_total else np.sign(d) * np.inf
    up = (share[:, HEAD] >= o.min_share_pct) & (rel >= o.threshold_pct) & (of_total >= o.min_delta_pct)
    down = (share[:, BASE] >= o.min_share_pct) & (rel <= -o.threshold_pct) & (-of_total >= o.min_delta_pct)
    if r.method == "mann-whitney":
        up &= np.nan_to_num(r.q_greater, nan=1.0) <= o.alpha
        down &= np.nan_to_num(r.q_less, nan=1.0) <= o.alpha
    reg = np.flatnonzero(up)
    imp = np.flatnonzero(down)
    return reg[np.argsort(-d[reg], kind="stable")], imp[np.argsort(d[imp], kind="stable")]
