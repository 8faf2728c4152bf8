"""Flame graphs in Grafana Pyroscope's ``levels`` encoding (querier.v1 ``FlameGraph`` /
``FlameGraphDiff`` and the flamebearer JSON of ``/pyroscope/render``). No I/O here.

The input is a :class:`~profscope.analysis.tree.Tree` (pre-order, children sorted by name).
Pyroscope's layout rules, reproduced exactly:

- each bar is ``[x_delta, total, self, name_index]``; a node's own (self) width comes first, then
  its children left to right by name; ``x_delta`` is measured from the end of the previous bar on
  the same level. So a node's x is the sum of ``self`` of every node before it in pre-order.
- ``max_nodes`` keeps the nodes whose total is at least the ``max_nodes``-th largest total (every
  node when the tree is not larger than that); what a kept node loses becomes one ``other`` child
  placed after its other children (a real frame called ``other`` is folded too).
- ``names`` lists each distinct name once, in the order Pyroscope's stack-based walk first meets
  it: root first, then children from right to left (the reverse of post-order). For stacks
  ``a;b 3``, ``a;c 2``, ``d 5``: names ``total, d, a, c, b``.
- diff bars are ``[xL, totalL, selfL, xR, totalR, selfR, name_index]`` over the union tree, each
  side delta-encoded on its own; the ``max_nodes`` threshold applies to ``max(left, right)``
  totals counted with the root; a node is kept when either side reaches it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..analysis.tree import Tree
from ..model import StackSet

DEFAULT_MAX_NODES = 8192
OTHER = "other"


@dataclass
class FlameGraph:
    names: list[str]
    levels: list[list[int]]
    total: int
    max_self: int

    def to_flamebearer(self) -> dict:
        return {"names": self.names, "levels": self.levels, "numTicks": self.total, "maxSelf": self.max_self}


@dataclass
class FlameGraphDiff:
    names: list[str]
    levels: list[list[int]]
    total: int
    max_self: int
    left_ticks: int
    right_ticks: int

    def to_flamebearer(self) -> dict:
        return {"names": self.names, "levels": self.levels, "numTicks": self.total, "maxSelf": self.max_self,
                "leftTicks": self.left_ticks, "rightTicks": self.right_ticks}


def resolve_max_nodes(requested: int | None, default: int = DEFAULT_MAX_NODES) -> int:
    """``None`` or 0 means the default; a negative number means no limit (returned as 0)."""
    if requested is None or requested == 0:
        return default
    return 0 if requested < 0 else int(requested)


def diff_from_stacksets(left: StackSet, right: StackSet, max_nodes: int | None = None) -> FlameGraphDiff:
    """The union tree of the diff engine (:mod:`profscope.analysis.diff`, raw values) encoded
    for Pyroscope; the engine also refuses sides of different sample types."""
    from ..analysis.diff import diff
    tree = diff([left], [right], normalize="none").tree()
    return flamegraph_diff(tree, resolve_max_nodes(max_nodes))


# ------------------------------------------------------------------------------------ helpers
@dataclass
class _Layout:
    """The kept nodes plus ``other`` nodes, in the final pre-order."""
    name: np.ndarray            # canonical name id (index into names table)
    depth: np.ndarray
    self_: np.ndarray           # [m, k]
    total: np.ndarray           # [m, k]
    parent: np.ndarray
    names: list[str] = field(default_factory=list)


def _levels_order(depth: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2)) if len(depth) else np.zeros(1, np.int64)
    return [order[bounds[d]:bounds[d + 1]] for d in range(len(bounds) - 1)]


def _subtree_sizes(parent: np.ndarray, by_depth: list[np.ndarray]) -> np.ndarray:
    size = np.ones(len(parent), np.int64)
    for ids in reversed(by_depth[1:]):
        np.add.at(size, parent[ids], size[ids])
    return size


def _canonical_names(tree_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Pyroscope keys names by string: map each name id to the first id with the same text,
    and make sure ``other`` has an id."""
    first: dict[str, int] = {}
    canon = np.empty(len(tree_names) + 1, np.int64)
    names = list(tree_names)
    for i, nm in enumerate(names):
        canon[i] = first.setdefault(nm, i)
    if OTHER in first:
        canon[-1] = first[OTHER]
    else:
        names.append(OTHER)
        canon[-1] = len(names) - 1
    return names, canon


def _layout(tree: Tree, keep: np.ndarray, fold_other_named: bool) -> _Layout:
    """Apply a keep mask (closed under ancestors after propagation) and add ``other`` nodes."""
    names, canon = _canonical_names(tree.names)
    other_id = int(canon[-1])
    node_name = canon[tree.name.astype(np.int64)]
    n = tree.n_nodes
    parent = tree.parent.astype(np.int64)
    depth = tree.depth.astype(np.int64)
    keep = keep.copy()
    keep[0] = True
    if fold_other_named:
        keep[1:] &= node_name[1:] != other_id
    by_depth = _levels_order(depth)
    for ids in by_depth[1:]:
        keep[ids] &= keep[parent[ids]]
    size = _subtree_sizes(parent, by_depth)
    dropped_top = np.flatnonzero(~keep)
    dropped_top = dropped_top[keep[parent[dropped_top]]]
    lost = np.zeros_like(tree.total)
    np.add.at(lost, parent[dropped_top], tree.total[dropped_top])
    kept = np.flatnonzero(keep)
    has_other = kept[(lost[kept] != 0).any(axis=1)]
    # order: kept nodes by pre-order index; an "other" node right after its parent's subtree,
    # deeper "other" nodes first when subtrees end together
    key = np.concatenate([kept.astype(np.float64), has_other + size[has_other] - 0.5])
    dep = np.concatenate([depth[kept], depth[has_other] + 1])
    order = np.lexsort((-dep, key))
    remap = np.full(n, -1, np.int64)
    remap[kept] = np.arange(len(kept))
    old_parent = np.concatenate([parent[kept], has_other])
    pos = np.empty(len(order), np.int64)
    pos[order] = np.arange(len(order))
    par_unordered = np.where(old_parent >= 0, pos[remap[np.maximum(old_parent, 0)]], -1)
    return _Layout(
        name=np.concatenate([node_name[kept], np.full(len(has_other), other_id)])[order],
        depth=dep[order],
        self_=np.concatenate([tree.self_[kept], lost[has_other]])[order],
        total=np.concatenate([tree.total[kept], lost[has_other]])[order],
        parent=par_unordered[order],
        names=names)


def _visit_names(lay: _Layout) -> tuple[list[str], np.ndarray]:
    """Names in first-visit order of Pyroscope's walk (reverse post-order) and the index of
    each node's name in that list."""
    m = len(lay.parent)
    by_depth = _levels_order(lay.depth)
    size = _subtree_sizes(lay.parent, by_depth)
    post = np.arange(m) + size - 1 - lay.depth
    visit = np.argsort(-post, kind="stable")
    seq = lay.name[visit]
    uniq, first = np.unique(seq, return_index=True)
    ordered = uniq[np.argsort(first)]
    out_index = np.empty(len(lay.names), np.int64)
    out_index[ordered] = np.arange(len(ordered))
    names = [lay.names[i] for i in ordered.tolist()]
    names[0] = "total"
    return names, out_index[lay.name]


def _encode_levels(lay: _Layout, name_idx: np.ndarray) -> list[list[int]]:
    k = lay.total.shape[1]
    x = np.zeros_like(lay.self_)
    if len(x) > 1:
        x[1:] = np.cumsum(lay.self_, axis=0)[:-1]
    levels = []
    for ids in _levels_order(lay.depth):
        cols = []
        for c in range(k):
            xs, tot = x[ids, c], lay.total[ids, c]
            delta = xs.copy()
            delta[1:] = xs[1:] - (xs[:-1] + tot[:-1])
            cols.extend([delta, tot, lay.self_[ids, c]])
        cols.append(name_idx[ids])
        levels.append(np.stack(cols, axis=1).reshape(-1).tolist())
    return levels


# ------------------------------------------------------------------------------------ public
def flamegraph(tree: Tree, max_nodes: int = DEFAULT_MAX_NODES, column: int = 0) -> FlameGraph:
    """One column of ``tree`` as a Pyroscope flame graph. ``max_nodes <= 0`` keeps every node."""
    sub = Tree(tree.names, tree.name, tree.parent, tree.depth, tree.self_[:, [column]], tree.total[:, [column]])
    tot = sub.total[:, 0]
    min_val = 0
    if max_nodes > 0 and sub.n_nodes - 1 > max_nodes:
        min_val = int(np.sort(tot[1:])[-max_nodes])
    lay = _layout(sub, tot >= min_val, fold_other_named=True)
    names, name_idx = _visit_names(lay)
    return FlameGraph(names, _encode_levels(lay, name_idx), int(lay.total[0, 0]),
                      max(0, int(lay.self_[:, 0].max())))


def flamegraph_diff(tree: Tree, max_nodes: int = DEFAULT_MAX_NODES) -> FlameGraphDiff:
    """A two-column ``tree`` (left, right) as a Pyroscope diff flame graph."""
    if tree.total.shape[1] != 2:
        raise ValueError("a diff flame graph needs a tree with two columns (left, right)")
    both = tree.total.max(axis=1)
    min_val = 0
    if max_nodes > 0 and tree.n_nodes > max_nodes:
        min_val = int(np.sort(both)[-max_nodes])
    lay = _layout(tree, both >= min_val, fold_other_named=False)
    names, name_idx = _visit_names(lay)
    left, right = int(lay.total[0, 0]), int(lay.total[0, 1])
    return FlameGraphDiff(names, _encode_levels(lay, name_idx), left + right,
                          max(0, int(lay.self_.max())), left, right)
