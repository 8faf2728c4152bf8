"""Flat and cumulative value per function (pprof ``-top``), vectorized."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import StackSet
from .grouping import sum_int
from .stacks import frame_keys, name_ranks


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
    flat = sum_int(leaf_keys, ss.values[nonempty], nk)
    # each function counts once per stack (recursion): sort (key, stack) codes, keep distinct ones
    n = ss.n_stacks
    code = keys[ss.stack_frames].astype(np.int64) * n + np.repeat(np.arange(n, dtype=np.int64), lens)
    code.sort()
    first = np.ones(len(code), bool)
    first[1:] = code[1:] != code[:-1]
    code = code[first]
    cum = sum_int(code // n, ss.values[code % n], nk)
    return names, flat, cum


def top_table(ss: StackSet, granularity: str = "functions") -> TopTable:
    names, flat, cum = flat_cum(ss, granularity)
    present = np.flatnonzero((flat != 0) | (cum != 0))
    # pprof order: |flat| desc, name asc, |cum| desc
    name_rank = name_ranks(names)
    order = np.lexsort((-np.abs(cum[present]), name_rank[present], -np.abs(flat[present])))
    sel = present[order]
    return TopTable(ss.sample_type.type, ss.sample_type.unit, ss.total,
                    [names[i] for i in sel], flat[sel], cum[sel])


def top_from_tree(tree, sample_type: str = "", unit: str = "", total: int = 0) -> TopTable:
    """The top table of an unpruned flame graph ``tree`` (one value column): flat is the self of
    every node of a name; cum adds a node's total unless an ancestor has the same name (recursion
    counts once, as in :func:`flat_cum`). Work is per tree node, not per stack frame."""
    name = tree.name.astype(np.int64)
    parent = tree.parent.astype(np.int64)
    selfv = tree.self_[:, 0]
    tot = tree.total[:, 0]
    nk = len(tree.names)
    flat = np.zeros(nk, np.int64)
    cum = np.zeros(nk, np.int64)
    real = np.arange(tree.n_nodes) > 0                 # node 0 is the root "total"
    np.add.at(flat, name[real], selfv[real])
    # a node is a repeat when some ancestor carries its name: walk all nodes up together
    repeat = np.zeros(tree.n_nodes, bool)
    anc = parent.copy()
    live = np.flatnonzero(anc > 0)
    while len(live):
        hit = name[anc[live]] == name[live]
        repeat[live[hit]] = True
        live = live[~hit]
        anc[live] = parent[anc[live]]
        live = live[anc[live] > 0]
    keep = real & ~repeat
    np.add.at(cum, name[keep], tot[keep])
    present = np.flatnonzero((flat != 0) | (cum != 0))
    names = tree.names
    name_rank = name_ranks(names)
    order = np.lexsort((-np.abs(cum[present]), name_rank[present], -np.abs(flat[present])))
    sel = present[order]
    return TopTable(sample_type, unit, total, [names[i] for i in sel], flat[sel], cum[sel])
