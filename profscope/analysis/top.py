"""Flat and cumulative value per function (pprof ``-top``), vectorized."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import StackSet
from .stacks import frame_keys


@dataclass
class TopTable:
    sample_type: str
    unit: str
    total: int
    names: list[str]
    flat: np.ndarray
    cum: np.ndarray

    def rows(self, limit: int = 0) -> list[dict]:
        n = len(self.names) if limit <= 0 else min(limit, len(self.names))
        return [{"name": self.names[i], "flat": int(self.flat[i]), "cum": int(self.cum[i])}
                for i in range(n)]

    def to_json(self, limit: int = 0) -> dict:
        return {"sample_type": self.sample_type, "unit": self.unit, "total": int(self.total),
                "rows": self.rows(limit)}


def flat_cum(ss: StackSet, granularity: str = "functions") -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per node key: flat (value where it is the leaf) and cum (value of stacks containing it,
    once per stack even under recursion)."""
    keys, names = frame_keys(ss.frames, granularity)
    nk = len(names)
    flat = np.zeros(nk, np.int64)
    cum = np.zeros(nk, np.int64)
    if ss.n_stacks == 0 or len(ss.stack_frames) == 0:
        return names, flat, cum
    lens = ss.lengths()
    nonempty = lens > 0
    leaf_keys = keys[ss.stack_frames[ss.stack_offsets[:-1][nonempty]]]
    np.add.at(flat, leaf_keys, ss.values[nonempty])
    stack_idx = ss.stack_index()
    pair = np.unique(stack_idx * nk + keys[ss.stack_frames].astype(np.int64))
    np.add.at(cum, pair % nk, ss.values[pair // nk])
    return names, flat, cum


def top_table(ss: StackSet, granularity: str = "functions") -> TopTable:
    names, flat, cum = flat_cum(ss, granularity)
    present = np.flatnonzero((flat != 0) | (cum != 0))
    # pprof order: |flat| desc, name asc, |cum| desc
    name_rank = np.empty(len(names), np.int64)
    name_rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    order = np.lexsort((-np.abs(cum[present]), name_rank[present], -np.abs(flat[present])))
    sel = present[order]
    return TopTable(ss.sample_type.type, ss.sample_type.unit, ss.total,
                    [names[i] for i in sel], flat[sel], cum[sel])
