"""Functions that often cost more than they should when they sit on a hot path: compiling
regular expressions, (de)serializing JSON or pickles, deep copies.

A function's share is its cumulative value (its topmost occurrences in the flame graph, so
recursion is not counted twice) over the tree's total. Work is per tree node with numpy; loops
run over the few function names that match, and over tree depths.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_PATTERNS: tuple[str, ...] = (
    r"(^|[.:/ ])re\.(compile|match|search|sub|findall)$",
    r"(^|[.:/ ])json\.(loads|dumps)$",
    r"(^|[.:/ ])pickle\.(loads|dumps)$",
    r"(^|[.:/ ])copy\.deepcopy$",
    r"(^|[.:/ ])yaml\.(load|safe_load)$",
)


@dataclass(frozen=True)
class Settings:
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    min_share: float = 0.01        # report a function above this share of the total
    critical_share: float = 0.20   # ... as critical above this one
    min_growth: float = 0.01       # diff: report when the share grew by at least this much

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> Settings:
        unknown = set(cfg) - {"patterns", "min_share", "critical_share", "min_growth"}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: patterns, min_share, "
                             "critical_share, min_growth")
        s = cls(tuple(cfg.get("patterns", DEFAULT_PATTERNS)), float(cfg.get("min_share", cls.min_share)),
                float(cfg.get("critical_share", cls.critical_share)), float(cfg.get("min_growth", cls.min_growth)))
        for p in s.patterns:
            re.compile(p)          # a bad pattern fails here, with re's message
        for name in ("min_share", "critical_share", "min_growth"):
            if not 0 <= getattr(s, name) <= 1:
                raise ValueError(f"{name}={getattr(s, name)} must be between 0 and 1")
        return s


def cum_by_name(tree, name_ids: list[int]) -> np.ndarray:
    """Cumulative value per column of each name in ``name_ids``: the sum of ``total`` over its
    nodes that have no ancestor of the same name."""
    depth = np.asarray(tree.depth)
    parent = np.asarray(tree.parent)
    names = np.asarray(tree.name)
    levels = [np.flatnonzero(depth == d) for d in range(1, int(depth.max(initial=0)) + 1)]
    out = np.zeros((len(name_ids), tree.total.shape[1]), np.int64)
    for k, nid in enumerate(name_ids):
        below = np.zeros(len(parent), bool)      # has an ancestor named nid
        for ids in levels:
            p = parent[ids]
            below[ids] = below[p] | (names[p] == nid)
        top = (names == nid) & ~below
        out[k] = tree.total[top].sum(axis=0)
    return out


def _matching(tree, settings: Settings) -> list[int]:
    rx = re.compile("|".join(f"(?:{p})" for p in settings.patterns)) if settings.patterns else None
    present = np.unique(np.asarray(tree.name)).tolist()
    return [i for i in present if i != 0 and rx is not None and rx.search(tree.names[i])]


def hot_path_findings(tree, meta: dict, settings: Settings) -> list[dict]:
    total = int(tree.total[0, 0]) if tree.n_nodes else 0
    ids = _matching(tree, settings)
    if total <= 0 or not ids:
        return []
    cum = cum_by_name(tree, ids)[:, 0]
    out = []
    for nid, value in sorted(zip(ids, cum.tolist(), strict=True), key=lambda t: -t[1]):
        share = value / total
        if share < settings.min_share:
            continue
        name = tree.names[nid]
        out.append({"severity": "critical" if share >= settings.critical_share else "warning",
                    "title": "expensive library call in the hot path", "function": name,
                    "value": int(value), "share": round(share, 6),
                    "message": f"{name} holds {share:.1%} of {meta.get('sample_type') or 'the total'}; "
                               "cache or hoist it out of the hot path"})
    return out


def hot_path_growth(tree, meta: dict, settings: Settings) -> list[dict]:
    base_total, head_total = (int(v) for v in tree.total[0]) if tree.n_nodes else (0, 0)
    ids = _matching(tree, settings)
    if base_total <= 0 or head_total <= 0 or not ids:
        return []
    cum = cum_by_name(tree, ids)
    out = []
    for nid, (b, h) in zip(ids, cum.tolist(), strict=True):
        before, after = b / base_total, h / head_total
        if after - before < settings.min_growth:
            continue
        name = tree.names[nid]
        out.append({"severity": "critical" if after >= settings.critical_share else "warning",
                    "title": "expensive library call grew", "function": name,
                    "value": int(h - b), "share": round(after, 6), "base_share": round(before, 6),
                    "message": f"{name} went from {before:.1%} to {after:.1%} of the total"})
    return out
