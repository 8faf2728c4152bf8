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
from .grouping import sum_int
from .stacks import _mix, frame_keys, name_ranks, root_first, unique_inverse, unique_sorted

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
    kcols = vals.shape[1]
    lens = np.diff(offs)
    sidx, dd, slen, kd, prefix = root_first(offs, kflat)
    first, inv = unique_inverse(prefix)
    n = len(first) + 1                      # + root
    node = inv + 1
    ndepth = np.zeros(n, np.int64)
    ndepth[1:] = dd[first] + 1
    nkey = np.full(n, -1, np.int64)
    nkey[1:] = kd[first].astype(np.int64)
    nparent = np.zeros(n, np.int64)
    # parent of a slot = node of the previous slot in the same stack (or the root)
    prev_node = np.concatenate([[0], node[:-1]])
    prev_node[dd == 0] = 0
    nparent[node] = prev_node
    nparent[0] = -1
    sv = vals[sidx]
    leaf = dd == slen - 1
    total = np.stack([sum_int(node, sv[:, c], n) for c in range(kcols)], axis=1)
    selfv = np.stack([sum_int(node[leaf], sv[leaf, c], n) for c in range(kcols)], axis=1)
    empty = lens == 0            # empty stacks count at the root
    if empty.any():
        selfv[0] += vals[empty].sum(axis=0)
    total[0] = vals.sum(axis=0)
    names = ["total"] + list(knames)
    name = np.where(nkey >= 0, nkey + 1, 0)
    if max_nodes and n > max_nodes:
        # prune before ordering: only the kept nodes (and their "other" children) are sorted
        nparent, ndepth, name, selfv, total, names = _prune_arrays(nparent, ndepth, name, names, selfv,
                                                                   total, max_nodes)
    return _preorder(nparent, ndepth, name, names, selfv, total)


def _path_hashes(parent, depth, name, names, by_depth, bounds) -> np.ndarray:
    """A hash of each node's root-to-node sequence of names (by name text, not name index)."""
    used = np.unique(name)
    rank_of = np.zeros(max(len(names), int(name.max()) + 1), np.uint64)
    rank_of[used[np.argsort(np.array([names[i] for i in used], dtype=object), kind="stable")]] = \
        np.arange(1, len(used) + 1, dtype=np.uint64)
    path = np.zeros(len(parent), np.uint64)
    with np.errstate(over="ignore"):
        for d in range(1, len(bounds) - 1):
            ids = by_depth[bounds[d]:bounds[d + 1]]
            path[ids] = _mix(path[parent[ids]] * np.uint64(0x100000001B3) + rank_of[name[ids]])
    return path


def _prune_arrays(parent, depth, name, names, selfv, total, max_nodes: int):
    """Keep the ``max_nodes`` largest nodes by |total| (whose ancestors are kept); what a kept node
    loses is merged into one ``other`` child of it."""
    n = len(parent)
    weight = np.abs(total).max(axis=1)
    maxd = int(depth.max())
    by_depth = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[by_depth], np.arange(maxd + 2))
    # the max_nodes largest: everything above the max_nodes-th largest weight, then ties at it
    # broken by depth and a hash of the node's name path, so the result depends on content only,
    # not on how the nodes happen to be numbered (the hashes are only computed when ties remain)
    thr = np.partition(weight, n - max_nodes)[n - max_nodes]
    keep = weight > thr
    need = max_nodes - int(keep.sum())
    tied = np.flatnonzero(weight == thr)
    if need >= len(tied):
        keep[tied] = True
    elif need > 0:
        path = _path_hashes(parent, depth, name, names, by_depth, bounds)
        keep[tied[np.lexsort((path[tied], depth[tied]))[:need]]] = True
    keep[0] = True
    for d in range(1, maxd + 1):
        ids = by_depth[bounds[d]:bounds[d + 1]]
        keep[ids] &= keep[parent[ids]]
    dropped = np.flatnonzero(~keep)
    dropped_top = dropped[keep[parent[dropped]]]
    lost = np.zeros((n, total.shape[1]), np.int64)
    np.add.at(lost, parent[dropped_top], total[dropped_top])
    kept = np.flatnonzero(keep)
    names = list(names)
    if OTHER not in names:
        names.append(OTHER)
    other_name = names.index(OTHER)
    has_other = kept[np.abs(lost[kept]).sum(axis=1) > 0]
    remap = np.full(n, -1, np.int64)
    remap[kept] = np.arange(len(kept))
    nk = len(kept)
    new_parent = np.empty(nk + len(has_other), np.int64)
    new_parent[:nk] = np.where(parent[kept] >= 0, remap[np.maximum(parent[kept], 0)], -1)
    new_parent[nk:] = remap[has_other]
    new_depth = np.concatenate([depth[kept], depth[has_other] + 1]).astype(np.int64)
    new_name = np.concatenate([name[kept], np.full(len(has_other), other_name)]).astype(np.int64)
    return (new_parent, new_depth, new_name, np.concatenate([selfv[kept], lost[has_other]]),
            np.concatenate([total[kept], lost[has_other]]), names)


def _preorder(parent, depth, name, names, selfv, total) -> Tree:
    n = len(parent)
    if n == 1:
        return Tree(names, name.astype(np.int32), np.array([-1], np.int32), np.zeros(1, np.int32),
                    selfv, total)
    name_rank = name_ranks(names)
    size = np.ones(n, np.int64)
    maxd = int(depth.max())
    srt = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[srt], np.arange(maxd + 2))
    by_depth = [srt[bounds[d]:bounds[d + 1]] for d in range(maxd + 1)]
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
    """A pruned copy of ``tree`` (see :func:`_prune_arrays`)."""
    parts = _prune_arrays(tree.parent.astype(np.int64), tree.depth.astype(np.int64), tree.name.astype(np.int64),
                          tree.names, tree.self_, tree.total, max_nodes)
    return _preorder(*parts[:3], parts[5], parts[3], parts[4])


def ancestors_closure(node_parent: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """Sorted ids of ``leaves`` and all their ancestors (one vectorized step per depth level)."""
    mark = np.zeros(len(node_parent), bool)
    cur = unique_sorted(leaves)
    while len(cur):
        mark[cur] = True
        cur = unique_sorted(node_parent[cur])
        cur = cur[cur >= 0]
        cur = cur[~mark[cur]]
    return np.flatnonzero(mark)


def tree_from_nodes(node_parent: np.ndarray, node_frame: np.ndarray, node_depth: np.ndarray,
                    leaf_nodes: np.ndarray, vals: np.ndarray, frame_key: np.ndarray, knames: list[str],
                    max_nodes: int = 0, touched: np.ndarray | None = None) -> Tree:
    """Flame graph from a global call-path tree (``node_parent``/``node_frame``, node 0 = root)
    and values landing on ``leaf_nodes``. Work is proportional to the nodes the values touch.

    ``frame_key[f]`` maps a frame id to a name index at the wanted granularity; sibling nodes
    whose frames share a name are merged."""
    k = vals.shape[1] if vals.ndim == 2 else 1
    vals = vals.reshape(len(leaf_nodes), k)
    if not len(leaf_nodes):                     # nothing selected: the root alone
        zero = np.zeros((1, k), np.int64)
        return Tree(["total"] + list(knames), np.zeros(1, np.int32), np.array([-1], np.int32),
                    np.zeros(1, np.int32), zero, zero.copy())
    # 1. touched nodes: the leaves and all their ancestors
    if touched is None:
        touched = ancestors_closure(node_parent, leaf_nodes)
    local = np.full(len(node_parent), -1, np.int64)
    local[touched] = np.arange(len(touched))
    depth = node_depth[touched].astype(np.int64)
    parent_g = node_parent[touched]
    parent = np.where(parent_g >= 0, local[np.maximum(parent_g, 0)], -1)
    selfv = np.zeros((len(touched), k), np.int64)
    np.add.at(selfv, local[leaf_nodes], vals)
    # 2. re-key by name at this granularity, merging siblings of the same name, root first
    key = np.full(len(touched), -1, np.int64)
    nz = depth > 0
    key[nz] = frame_key[node_frame[touched][nz]]
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    new_id = np.zeros(len(touched), np.int64)
    n_new = 1                                   # new node 0 = root (touched[0] is the root)
    new_parent = [np.array([-1], np.int64)]
    new_key = [np.array([-1], np.int64)]
    new_depth = [np.array([0], np.int64)]
    nk = max(len(knames), 1)
    for d in range(1, len(bounds) - 1):
        ids = order[bounds[d]:bounds[d + 1]]
        if not len(ids):
            continue
        pair = new_id[parent[ids]] * nk + key[ids]
        first, inv = unique_inverse(pair)
        u = pair[first]
        new_id[ids] = n_new + inv
        new_parent.append(u // nk)
        new_key.append(u % nk)
        new_depth.append(np.full(len(u), d, np.int64))
        n_new += len(u)
    nparent = np.concatenate(new_parent)
    nkey = np.concatenate(new_key)
    ndepth = np.concatenate(new_depth)
    nself = np.zeros((n_new, k), np.int64)
    np.add.at(nself, new_id, selfv)
    # 3. totals flow up one depth level at a time
    total = nself.copy()
    o2 = np.argsort(ndepth, kind="stable")
    b2 = np.searchsorted(ndepth[o2], np.arange(int(ndepth.max()) + 2))
    for d in range(int(ndepth.max()), 0, -1):
        ids = o2[b2[d]:b2[d + 1]]
        np.add.at(total, nparent[ids], total[ids])
    names = ["total"] + list(knames)
    name = np.where(nkey >= 0, nkey + 1, 0)
    if max_nodes and n_new > max_nodes:
        nparent, ndepth, name, nself, total, names = _prune_arrays(nparent, ndepth, name, names, nself,
                                                                   total, max_nodes)
    return _preorder(nparent, ndepth, name, names, nself, total)
