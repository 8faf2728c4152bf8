"""Significance tests for differential profiling, in numpy (no scipy). No I/O here.

:func:`mann_whitney` runs a one-sided Mann-Whitney U test on many rows at once (one row per
function, one column per profile). It is exact (a full permutation distribution of the rank
sums, ties included) when the number of ways to split the profiles is small, and otherwise
uses the normal approximation with tie and continuity corrections.
:func:`benjamini_hochberg` controls the false discovery rate over a family of tests.
"""
from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np

EXACT_MAX_SPLITS = 20_000    # exact permutation distribution up to this many base/head splits


def average_ranks(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average ranks (1-based) within each row of ``z`` [m, N], ties sharing their mean rank.

    Also returns the tie term ``sum(t**3 - t)`` per row (t = size of each tie group)."""
    m, n = z.shape
    order = np.argsort(z, axis=1, kind="stable")
    zs = np.take_along_axis(z, order, axis=1)
    # a new tie group starts at column 0 and wherever the sorted value changes
    starts = np.ones((m, n), bool)
    starts[:, 1:] = zs[:, 1:] != zs[:, :-1]
    flat_starts = starts.ravel()
    group = np.cumsum(flat_starts) - 1                        # group id over the flattened rows
    pos = np.tile(np.arange(1, n + 1, dtype=np.float64), m)   # 1-based rank before tie averaging
    n_groups = int(group[-1]) + 1 if group.size else 0
    sums = np.bincount(group, weights=pos, minlength=n_groups)
    sizes = np.bincount(group, minlength=n_groups).astype(np.float64)
    avg = (sums / sizes)[group].reshape(m, n)
    ranks = np.empty_like(avg)
    np.put_along_axis(ranks, order, avg, axis=1)
    row_of_group = np.repeat(np.arange(m), n)[np.flatnonzero(flat_starts)]
    ties = np.bincount(row_of_group, weights=sizes ** 3 - sizes, minlength=m)
    return ranks, ties


@lru_cache(maxsize=32)
def _splits(n_base: int, n_head: int) -> np.ndarray:
    """Indicator matrix [N, n_splits]: column j marks which of the N profiles are 'head'."""
    n = n_base + n_head
    combos = list(itertools.combinations(range(n), n_head))
    ind = np.zeros((n, len(combos)), np.float64)
    cols = np.repeat(np.arange(len(combos)), n_head)
    ind[np.fromiter(itertools.chain.from_iterable(combos), np.int64, len(combos) * n_head), cols] = 1.0
    return ind


def _norm_sf(z: np.ndarray) -> np.ndarray:
    """Survival function of the standard normal distribution."""
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return (erfc(np.asarray(z, np.float64) / math.sqrt(2.0)) / 2.0).astype(np.float64)


def min_p_value(n_base: int, n_head: int) -> float:
    """Smallest one-sided p-value a rank test can reach with these sample sizes."""
    return 1.0 / math.comb(n_base + n_head, n_head)


def mann_whitney(base: np.ndarray, head: np.ndarray, alternative: str = "greater") -> np.ndarray:
    """One-sided Mann-Whitney U p-values, one per row.

    ``base`` is [m, n_base], ``head`` is [m, n_head]; ``alternative="greater"`` tests whether
    head values tend to be larger than base values, ``"less"`` whether they tend to be smaller.
    """
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', not {alternative!r}")
    m, n1 = base.shape
    n2 = head.shape[1]
    if m == 0:
        return np.zeros(0)
    if n1 == 0 or n2 == 0:
        return np.ones(m)
    z = np.concatenate([base, head], axis=1).astype(np.float64)
    if alternative == "less":
        z = -z
    ranks, ties = average_ranks(z)
    r_head = ranks[:, n1:].sum(axis=1)
    if math.comb(n1 + n2, n2) <= EXACT_MAX_SPLITS:
        # exact: the observed head rank sum against every way to pick n2 of the N profiles
        perm = ranks @ _splits(n1, n2)                       # [m, n_splits]
        return ((perm >= r_head[:, None] - 1e-9).sum(axis=1) / perm.shape[1]).astype(np.float64)
    u = r_head - n2 * (n2 + 1) / 2.0
    n = n1 + n2
    mean = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    p = np.ones(m)
    ok = var > 0
    zstat = (u[ok] - mean - 0.5) / np.sqrt(var[ok])
    p[ok] = _norm_sf(zstat)
    return np.clip(p, 0.0, 1.0)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) for a family of tests."""
    m = len(p)
    if m == 0:
        return np.zeros(0)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q_sorted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(q_sorted, 1.0)
    return q
