"""Differential profiling: compare two selections of profiles, and tell regressions from noise.

Pure functions over flat arrays, no I/O here. A :class:`Side` is one selection: its stacks
(merged over its profiles), and a way to get per-profile sums of chosen stacks, which carry the
run-to-run spread (the store computes them in SQL, an injected function). :func:`diff` gives a :class:`DiffResult`:

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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import BadInput
from ..model import FrameTable, StackSet
from .diff_result import BASE, HEAD, DiffResult, SideSummary, cum_values
from .grouping import concat_frames, function_keys, sum_int, unique_sorted
from .stacks import GRANULARITIES
from .stats import benjamini_hochberg, mann_whitney, min_p_value

__all__ = ["Side", "DiffOptions", "DiffResult", "diff", "NORMALIZATIONS", "METRICS", "BASE", "HEAD"]

NORMALIZATIONS = ("total", "duration", "none")
METRICS = ("flat", "cum")


ProfileSums = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass
class Side:
    """One selection of a diff: its stacks (values summed over its profiles), each profile's
    total and duration, and ``profile_sums(stack_index, group, n_groups) -> [n_groups,
    n_profiles]``, which sums in every profile the values of the listed stacks per group (a
    stack may be listed in several groups). That is the per-profile spread the noise test
    needs; the store answers it in SQL, files from their rows."""
    stacks: StackSet
    profile_totals: np.ndarray     # int64 [n_profiles] pprof total of each profile
    profile_durations: np.ndarray  # int64 [n_profiles] duration_nanos of each profile
    profile_sums: ProfileSums

    @property
    def n_profiles(self) -> int:
        return len(self.profile_totals)

    @classmethod
    def from_selection(cls, sel) -> Side:
        """From the store's per-profile selection (:class:`profscope.store.PerProfile`)."""
        return cls(sel.stacks, sel.profile_totals, sel.profile_durations, sel.profile_sums)

    @classmethod
    def from_rows(cls, stacks: StackSet, row_stack: np.ndarray, row_profile: np.ndarray,
                  row_value: np.ndarray, totals: np.ndarray, durations: np.ndarray) -> Side:
        """From sparse per-profile rows ``(stack, profile, value)``."""
        return cls(stacks, totals, durations, _RowSums(row_stack, row_profile, row_value, len(totals),
                                                       stacks.n_stacks))

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
        prof = np.repeat(np.arange(len(sets), dtype=np.int64), [s.n_stacks for s in sets])
        return cls.from_rows(stacks, np.arange(stacks.n_stacks, dtype=np.int64), prof, stacks.values,
                             np.array([s.total for s in sets], np.int64),
                             np.array([s.duration_nanos for s in sets], np.int64))


@dataclass
class _RowSums:
    """``profile_sums`` over in-memory rows, vectorized: rows of listed stacks are expanded once
    per group of their stack and summed with one bincount."""
    row_stack: np.ndarray
    row_profile: np.ndarray
    row_value: np.ndarray
    n_profiles: int
    n_stacks: int

    def __call__(self, stack_index: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
        order = np.argsort(stack_index, kind="stable")
        grp = np.asarray(group, np.int64)[order]
        cnt = np.bincount(np.asarray(stack_index, np.int64), minlength=self.n_stacks)
        start = np.concatenate([[0], np.cumsum(cnt)])
        rows = np.flatnonzero(cnt[self.row_stack] > 0)
        rc = cnt[self.row_stack[rows]]
        total = int(rc.sum())
        if not total:
            return np.zeros((n_groups, self.n_profiles))
        first = np.repeat(start[self.row_stack[rows]], rc)
        rank = np.arange(total) - np.repeat(np.cumsum(rc) - rc, rc)
        r = np.repeat(rows, rc)
        return np.bincount(grp[first + rank] * self.n_profiles + self.row_profile[r],
                           weights=self.row_value[r], minlength=n_groups * self.n_profiles
                           ).reshape(n_groups, self.n_profiles)


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
    summaries = [_summary(s, normalize, name) for s, name in zip(sides, ("base", "head"), strict=False)]

    names, st_offs, st_keys, st_vals, offsets = _union_stacks(sides, granularity)
    nk = len(names)
    flat, leaf = _flat(st_offs, st_keys, st_vals, nk)
    cum = cum_values(st_offs, st_keys, st_vals, nk) if options.metric == "cum" else None
    gate = flat if cum is None else cum
    share = 100.0 * gate / np.array([max(summaries[0].total, 1), max(summaries[1].total, 1)], np.float64)

    # significance on per-profile values of the relevant functions
    fam = _family(share, options)
    method, note = _method(sides, options, len(fam))
    p_g, q_g, p_l, q_l = (np.full(nk, np.nan) for _ in range(4))
    if method == "mann-whitney" and len(fam):
        mats = [_per_profile(s, off, fam, leaf, st_offs, st_keys, nk, options.metric, normalize)
                for s, off in zip(sides, offsets, strict=True)]
        for j, (m, s) in enumerate(zip(mats, sides, strict=False)):
            if m.shape[1] < s.n_profiles:
                warnings.append(f"{('base', 'head')[j]}: {s.n_profiles - m.shape[1]} profile(s) with a "
                                f"zero {'total' if normalize == 'total' else 'duration'} left out of the test")
        p_g[fam] = mann_whitney(mats[0], mats[1], "greater")
        p_l[fam] = mann_whitney(mats[0], mats[1], "less")
        q_g[fam] = benjamini_hochberg(p_g[fam])
        q_l[fam] = benjamini_hochberg(p_l[fam])

    res = DiffResult(sides[0].stacks.sample_type, normalize, granularity, options, method, note,
                     summaries[0], summaries[1], names, flat, p_g, q_g, p_l, q_l,
                     np.zeros(0, np.int64), np.zeros(0, np.int64), st_offs, st_keys, st_vals, warnings, cum)
    res.regressions, res.improvements = _decide(res, share)
    if normalize == "none" and sides[0].n_profiles != sides[1].n_profiles:
        warnings.append(f"normalize=none sums {sides[0].n_profiles} base and {sides[1].n_profiles} head "
                        "profiles: totals are not comparable; --normalize total or duration compares them")
    return res


def _union_stacks(sides: list[Side], granularity: str):
    """The stacks of both sides in function keys (leaf first, CSR), their values per side [n, 2],
    and where each side's stacks start among them (both at 0 when the sides share a table).
    Stacks need not be distinct: flat, cum, trees and the noise test do not care, and
    top_stacks groups them when asked.

    Sides read together from the store share their stack and frame tables: the work is then
    done once."""
    a, b = sides[0].stacks, sides[1].stacks
    shared_frames = a.frames is b.frames
    keys, names = function_keys(a.frames if shared_frames else concat_frames([a.frames, b.frames]), granularity)
    shared = shared_frames and a.stack_offsets is b.stack_offsets and a.stack_frames is b.stack_frames
    if shared:
        offs = a.stack_offsets
        kflat = keys[a.stack_frames] if len(a.stack_frames) else np.zeros(0, np.int32)
        vals = np.stack([a.values, b.values], axis=1)
        offsets = [0, 0]
    else:
        offs = np.concatenate([a.stack_offsets[:-1], b.stack_offsets + int(a.stack_offsets[-1])])
        shift = 0 if shared_frames else len(a.frames)
        flat = np.concatenate([a.stack_frames.astype(np.int64), b.stack_frames.astype(np.int64) + shift])
        kflat = keys[flat] if len(flat) else np.zeros(0, np.int32)
        vals = np.zeros((a.n_stacks + b.n_stacks, 2), np.int64)
        vals[:a.n_stacks, 0] = a.values
        vals[a.n_stacks:, 1] = b.values
        offsets = [0, a.n_stacks]
    return names, offs, kflat, vals, offsets


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


def _flat(offs: np.ndarray, kflat: np.ndarray, vals: np.ndarray, nk: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat [nk, k] of stacks whose frames are function keys, and the leaf key of each stack."""
    lens = np.diff(offs)
    leaf = np.full(len(lens), -1, np.int64)
    nz = lens > 0
    leaf[nz] = kflat[offs[:-1][nz]]
    flat = np.stack([sum_int(leaf[nz], vals[nz, j], nk) for j in range(vals.shape[1])], axis=1)
    return flat, leaf


def _method(sides: list[Side], o: DiffOptions, n_tests: int) -> tuple[str, str]:
    """The rank test when it can show significance: the smallest p-value the profile counts allow,
    times the number of tested functions (Benjamini-Hochberg's bar for one regression), must be
    within alpha. Otherwise thresholds decide, and the note says why."""
    nb, nh = sides[0].n_profiles, sides[1].n_profiles
    m = max(n_tests, 1)
    if nb >= 2 and nh >= 2 and min_p_value(nb, nh) * m <= o.alpha:
        return "mann-whitney", (f"one-sided Mann-Whitney U test on per-profile values ({nb} base, {nh} head "
                                f"profiles, {n_tests} functions tested), Benjamini-Hochberg false discovery "
                                f"rate {o.alpha:g}")
    if nb == 1 and nh == 1:
        why = "one profile per side"
    else:
        why = (f"{nb} base and {nh} head profiles are too few for a rank test over {m} function(s) at alpha "
               f"{o.alpha:g} (smallest possible p-value {min_p_value(nb, nh):.2g})")
    return "threshold", (f"{why}: noise cannot be estimated, so the decision uses thresholds only "
                         f"(change >= {o.threshold_pct:g}%, share >= {o.min_share_pct:g}%, "
                         f"delta >= {o.min_delta_pct:g}% of the base total); give more profiles per "
                         "side (8 or more) for a significance test")


def _family(share: np.ndarray, o: DiffOptions) -> np.ndarray:
    """Functions tested: share >= min_share on either side, the largest ``max_tests`` of them."""
    big = share.max(axis=1)
    fam = np.flatnonzero(big >= o.min_share_pct)
    if len(fam) > o.max_tests:
        fam = fam[np.argsort(-big[fam], kind="stable")[:o.max_tests]]
    return np.sort(fam)


def _per_profile(s: Side, offset: int, fam: np.ndarray, leaf: np.ndarray, st_offs: np.ndarray,
                 st_keys: np.ndarray, nk: int, metric: str, normalize: str) -> np.ndarray:
    """[len(fam), n_profiles] normalized value of each family function in each profile of side
    ``s``, whose stacks are rows ``offset .. offset + n_stacks`` of the union."""
    fidx = np.full(nk + 1, -1, np.int64)        # slot nk for "no leaf"
    fidx[fam] = np.arange(len(fam))
    n = s.stacks.n_stacks
    if metric == "flat":
        lf = leaf[offset:offset + n]
        grp = fidx[np.where(lf >= 0, lf, nk)]
        stack = np.flatnonzero(grp >= 0)
        grp = grp[stack]
    else:
        # (stack, family function) pairs, once per stack however often it recurses
        lo, hi = int(st_offs[offset]), int(st_offs[offset + n])
        lens = np.diff(st_offs[offset:offset + n + 1])
        fk = fidx[st_keys[lo:hi]]
        keep = fk >= 0
        st_of = np.repeat(np.arange(n, dtype=np.int64), lens)[keep]
        pair = unique_sorted(st_of * len(fam) + fk[keep])
        stack, grp = pair // len(fam), pair % len(fam)
    mat = np.asarray(s.profile_sums(stack, grp, len(fam)), np.float64)
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
