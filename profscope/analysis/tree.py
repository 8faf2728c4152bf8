"""Flame graph trees, built late from flat stacks (no I/O here).

A :class:`Tree` is a flat pre-order array: node 0 is the root ``total``; ``parent[i] < i``;
children of a node are contiguous in pre-order and sorted by name. ``self``/``total`` have one
column per side (one for a plain flame graph, two for a diff: base then head).

Construction is vectorized: prefix hashes of every root-first path identify nodes in one
``np.unique``; ordering and subtree sizes are computed one depth level at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import StackSet
from .stacks import _POS_MIX, _mix, frame_keys

OTHER = "other"


@dataclass
class Tree:
    names: list[str]          # name table; names[0] == "total"
    name: np.ndarray          # int32 [n] index into names
    parent: np.ndarray        # int32 [n], -1 for the root
    depth: np.ndarray         # int32 [n]
    self_: np.ndarray         # int64 [n, k]
    total: np.ndarray         # int64 [n, k]

    @property
    def n_nodes(self) -> int:
        return len(self.parent)

    def self_check(self) -> None:
        """Totals add up: a node's total is its self plus its children's totals."""
        acc = self.self_.copy()
        np.add.at(acc, self.parent[1:], self.total[1:])
        assert np.array_equal(acc, self.total), "tree totals do not add up"
        assert (self.parent[1:] < np.arange(1, self.n_nodes)).all(), "not pre-order"

    def to_json(self, column: int = 0) -> dict:
        """Nested JSON ``{"name", "self", "total", "children": [...]}``."""
        nodes = [{"name": self.names[self.name[i]], "self": int(self.self_[i, column]),
                  "total": int(self.total[i, column]), "children": []} for i in range(self.n_nodes)]
        for i in range(1, self.n_nodes):
            nodes[self.parent[i]]["children"].append(nodes[i])
        return nodes[0] if nodes else {"name": "total", "self": 0, "total": 0, "children": []}


def build_tree(sets: list[StackSet], granularity: str = "functions", max_nodes: int = 0) -> Tree:
    """Union tree of one or more stack sets; column ``j`` of the values is ``sets[j]``."""
    from .stacks import concat_stacksets
    k = len(sets)
    merged = concat_stacksets(sets) if k > 1 else sets[0]
    # values per stack per side: recompute by tagging stacks of each side
    keys, knames = frame_keys(merged.frames, granularity)
    if k == 1:
        vals = merged.values.reshape(-1, 1)
        offs, flat = merged.stack_offsets, merged.stack_frames
    else:
        offs_l, flat_l, vals_l = [], [], []
        base_f, base_o = 0, 0
        for j, s in enumerate(sets):
            offs_l.append(s.stack_offsets[:-1] + base_o)
            flat_l.append(s.stack_frames.astype(np.int64) + base_f)
            v = np.zeros((s.n_stacks, k), np.int64)
            v[:, j] = s.values
            vals_l.append(v)
            base_o += int(s.stack_offsets[-1])
            base_f += len(s.frames)
        offs = np.concatenate(offs_l + [np.array([base_o])]).astype(np.int64)
        flat = np.concatenate(flat_l)
        vals = np.concatenate(vals_l)
    return _tree_from_stacks(offs, keys[flat] if len(flat) else flat.astype(np.int32), vals, knames, max_nodes)


def _tree_from_stacks(offs: np.ndarray, kflat: np.ndarray, vals: np.ndarray, knames: list[str],
                      max_nodes: int) -> Tree:
    n_st = len(offs) - 1
    kcols = vals.shape[1]
    lens = np.diff(offs)
    # root-first positions: depth d of stack s is kflat[offs[s+1]-1-d]
    depth = np.arange(len(kflat), dtype=np.int64) - np.repeat(offs[:-1], lens)   # leaf-first rank
    depth = np.repeat(lens, lens) - 1 - depth                                      # root-first depth
    sidx = np.repeat(np.arange(n_st), lens)
    # prefix hash of each position: sum over j <= d of mix(key_j) * P[j], in root-first order
    order = np.lexsort((depth, sidx))                 # stack-major, root first
    kd = kflat[order].astype(np.uint64)
    dd = depth[order]
    with np.errstate(over="ignore"):
        terms = _mix(kd + np.uint64(1)) * _POS_MIX[dd % len(_POS_MIX)] + dd.astype(np.uint64)
        csum = np.cumsum(terms, dtype=np.uint64)
        starts = np.repeat(offs[:-1], lens)
        base = np.concatenate([np.zeros(1, np.uint64), csum])[starts]
        prefix = _mix((csum - base) ^ _mix(dd.astype(np.uint64)))
    uniq, first, inv = np.unique(prefix, return_index=True, return_inverse=True)
    n = len(uniq) + 1                       # + root
    node = inv + 1
    ndepth = np.zeros(n, np.int64)
    ndepth[1:] = dd[first] + 1
    nkey = np.full(n, -1, np.int64)
    nkey[1:] = kd[first].astype(np.int64)
    nparent = np.zeros(n, np.int64)
    # parent of a position = node of the previous position in the same stack (or root)
    prev_node = np.concatenate([[0], node[:-1]])
    prev_node[dd == 0] = 0
    nparent[node] = prev_node
    nparent[0] = -1
    total = np.zeros((n, kcols), np.int64)
    selfv = np.zeros((n, kcols), np.int64)
    sv = vals[sidx[order]]
    np.add.at(total, node, sv)
    leaf_pos = np.flatnonzero(dd == np.repeat(lens, lens)[order] - 1) if len(dd) else np.zeros(0, np.int64)
    np.add.at(selfv, node[leaf_pos], sv[leaf_pos])
    # empty stacks count at the root
    empty = lens == 0
    if empty.any():
        selfv[0] += vals[empty].sum(axis=0)
    total[0] = vals.sum(axis=0)
    names = ["total"] + list(knames)
    name = np.where(nkey >= 0, nkey + 1, 0)
    tree = _preorder(nparent, ndepth, name, names, selfv, total)
    if max_nodes and tree.n_nodes > max_nodes:
        tree = prune(tree, max_nodes)
    return tree


def _preorder(parent, depth, name, names, selfv, total) -> Tree:
    n = len(parent)
    if n == 1:
        return Tree(names, name.astype(np.int32), np.array([-1], np.int32), np.zeros(1, np.int32),
                    selfv, total)
    name_rank = np.empty(len(names), np.int64)
    name_rank[np.argsort(np.array(names, dtype=object), kind="stable")] = np.arange(len(names))
    size = np.ones(n, np.int64)
    maxd = int(depth.max())
    by_depth = [np.flatnonzero(depth == d) for d in range(maxd + 1)]
    for d in range(maxd, 0, -1):
        ids = by_depth[d]
        np.add.at(size, parent[ids], size[ids])
    pos = np.zeros(n, np.int64)
    for d in range(1, maxd + 1):
        ids = by_depth[d]
        par = parent[ids]
        o = np.lexsort((name_rank[name[ids]], pos[par]))
        ids, par = ids[o], par[o]
        sz = size[ids]
        csum = np.cumsum(sz)
        grp_start = np.r_[True, par[1:] != par[:-1]]
        start_idx = np.flatnonzero(grp_start)
        before = csum - sz
        before -= np.repeat(before[start_idx], np.diff(np.r_[start_idx, len(ids)]))
        pos[ids] = pos[par] + 1 + before
    inv = np.empty(n, np.int64)
    inv[pos] = np.arange(n)
    new_parent = np.where(parent[inv] >= 0, pos[np.maximum(parent[inv], 0)], -1)
    return Tree(names, name[inv].astype(np.int32), new_parent.astype(np.int32),
                depth[inv].astype(np.int32), selfv[inv], total[inv])


def prune(tree: Tree, max_nodes: int) -> Tree:
    """Keep the ``max_nodes`` largest nodes (by total of the first column, ties in pre-order);
    what each kept node loses is merged into one ``other`` child of it."""
    n = tree.n_nodes
    weight = np.abs(tree.total).max(axis=1)
    order = np.lexsort((np.arange(n), -weight))
    keep = np.zeros(n, bool)
    keep[order[:max_nodes]] = True
    keep[0] = True
    # a node survives only if its parent does (totals shrink with depth, so this rarely bites)
    for d in range(1, int(tree.depth.max()) + 1):
        ids = np.flatnonzero(tree.depth == d)
        keep[ids] &= keep[tree.parent[ids]]
    dropped = np.flatnonzero(~keep)
    dropped_top = dropped[keep[tree.parent[dropped]]]
    lost = np.zeros_like(tree.total)
    np.add.at(lost, tree.parent[dropped_top], tree.total[dropped_top])
    kept = np.flatnonzero(keep)
    names = list(tree.names)
    if OTHER not in names:
        names.append(OTHER)
    other_name = names.index(OTHER)
    has_other = kept[np.abs(lost[kept]).sum(axis=1) > 0]
    remap = np.full(n, -1, np.int64)
    remap[kept] = np.arange(len(kept))
    nk = len(kept)
    m = nk + len(has_other)
    parent = np.empty(m, np.int64)
    parent[:nk] = np.where(tree.parent[kept] >= 0, remap[np.maximum(tree.parent[kept], 0)], -1)
    parent[nk:] = remap[has_other]
    depth = np.concatenate([tree.depth[kept], tree.depth[has_other] + 1]).astype(np.int64)
    name = np.concatenate([tree.name[kept], np.full(len(has_other), other_name)]).astype(np.int64)
    selfv = np.concatenate([tree.self_[kept], lost[has_other]])
    total = np.concatenate([tree.total[kept], lost[has_other]])
    return _preorder(parent, depth, name, names, selfv, total)
