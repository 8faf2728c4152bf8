"""Grafana Pyroscope's tree shapes on the query API. No I/O here.

- :func:`tree_bytes`: the serialized function-name tree that ``SelectMergeStacktraces`` returns
  for ``PROFILE_FORMAT_TREE`` (Pyroscope's ``pkg/model`` tree bytes). Format, per node, in
  depth-first order starting with a virtual root (empty name, self 0): uvarint name length, the
  name's UTF-8 bytes, uvarint self value, uvarint number of children. Children are visited
  last-to-first (children are kept sorted by name, bytewise). ``max_nodes`` truncation: when the
  tree has more than ``max_nodes`` nodes (the virtual root not counted), a child whose total is
  below the ``max_nodes``-th largest total is dropped (with its subtree) and its total goes to a
  child called ``other`` of its parent (self = total = the dropped sum; an existing ``other``
  child takes the sum and is never dropped itself). An empty tree is zero bytes.
- :func:`truncate_stacks`: ``max_nodes`` on ``SelectMergeProfile``: the pprof keeps, for each
  sample, the root-side part of its stack that lies on the ``max_nodes`` heaviest nodes of the
  function call tree; the cut-off rest becomes one leaf frame ``other`` (a stack cut at the root
  becomes just ``other``); samples that end up with the same stack are merged.
"""
from __future__ import annotations

import bisect

import numpy as np

from ..analysis.stacks import frame_keys, merge_rows, root_first
from ..analysis.tree import Tree
from ..model import FrameTable, StackSet
from ..varint import uvarint

OTHER = "other"


def _min_value(totals: np.ndarray, max_nodes: int) -> int:
    """The smallest total a node needs to be kept (0 = keep all)."""
    if max_nodes <= 0 or len(totals) <= max_nodes:
        return 0
    return int(np.partition(totals, len(totals) - max_nodes)[len(totals) - max_nodes])


def _levels(depth: np.ndarray) -> list[np.ndarray]:
    """Node ids per depth, shallowest first."""
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2))
    return [order[bounds[d]:bounds[d + 1]] for d in range(len(bounds) - 1)]


def tree_bytes(tree: Tree, max_nodes: int = 0, column: int = 0) -> bytes:
    """Column ``column`` of ``tree`` (node 0 = root) in Pyroscope's tree byte format, truncated to
    ``max_nodes`` (``<= 0`` keeps everything). Nodes with a total of 0 or less are left out
    (Pyroscope's tree never holds them). The loops run per tree node, never per sample."""
    tot = tree.total[:, column].astype(np.int64)
    slf = tree.self_[:, column].astype(np.int64)
    n = tree.n_nodes
    parent = tree.parent.astype(np.int64)
    present = tot > 0
    present[0] = True
    levels = _levels(tree.depth)
    for ids in levels[1:]:                  # absent parent -> absent child, one depth at a time
        present[ids] &= present[parent[ids]]
    real = np.flatnonzero(present[1:]) + 1
    if not len(real):
        return b""
    names = tree.names
    is_other = np.array([names[k] == OTHER for k in tree.name.tolist()], bool)
    min_val = _min_value(tot[real], max_nodes)
    keep = present & ((tot >= min_val) | is_other)
    keep[0] = True
    for ids in levels[1:]:
        keep[ids] &= keep[parent[ids]]
    # dropped children: their totals go to "other" under the parent
    dropped = np.flatnonzero(present & ~keep)
    dropped = dropped[keep[parent[dropped]]]
    lost = np.zeros(n, np.int64)
    np.add.at(lost, parent[dropped], tot[dropped])

    # children lists in name order (the tree is pre-order with children sorted by name)
    kids: dict[int, list[int]] = {}
    for i in np.flatnonzero(keep)[1:].tolist():
        kids.setdefault(int(parent[i]), []).append(i)
    self_of = {i: int(slf[i]) for i in np.flatnonzero(keep).tolist()}
    self_of[0] = 0                          # the virtual root carries no value of its own
    name_of = {i: names[tree.name[i]] for i in self_of}
    next_id = n
    for p in np.flatnonzero(lost).tolist():
        ch = kids.setdefault(p, [])
        existing = next((c for c in ch if name_of[c] == OTHER), None)
        if existing is not None:
            self_of[existing] += int(lost[p])
            continue
        keys = [name_of[c].encode() for c in ch]
        pos = bisect.bisect_left(keys, OTHER.encode())
        ch.insert(pos, next_id)
        self_of[next_id] = int(lost[p])
        name_of[next_id] = OTHER
        next_id += 1
    name_of[0] = ""

    out = bytearray()
    encoded: dict[str, bytes] = {}
    stack = [0]
    while stack:
        i = stack.pop()
        nm = name_of[i]
        head = encoded.get(nm)
        if head is None:
            raw = nm.encode()
            head = encoded[nm] = uvarint(len(raw)) + raw
        ch = kids.get(i, ())
        out += head
        out += uvarint(self_of[i])
        out += uvarint(len(ch))
        stack.extend(ch)
    return bytes(out)


def truncate_stacks(ss: StackSet, max_nodes: int) -> StackSet:
    """``ss`` with every stack cut to the part on the ``max_nodes`` heaviest nodes of its
    function call tree plus an ``other`` leaf (see the module docstring). Vectorized over
    stack frames; ``max_nodes <= 0`` or a tree that fits returns ``ss`` unchanged."""
    if max_nodes <= 0 or not ss.n_stacks:
        return ss
    keys, _ = frame_keys(ss.frames, "functions")
    offs, flat = ss.stack_offsets, ss.stack_frames
    kflat = keys[flat] if len(flat) else flat
    rf = root_first(offs, kflat)
    _, inv = np.unique(rf.prefix, return_inverse=True)
    node_total = np.zeros(int(inv.max()) + 1 if len(inv) else 0, np.int64)
    np.add.at(node_total, inv, ss.values[rf.sidx])
    min_val = _min_value(node_total, max_nodes)
    if min_val == 0:
        return ss
    lens = np.diff(offs)
    keep_len = lens.copy()                  # root-side frames kept: depth of the first cut node
    cut = node_total[inv] < min_val
    np.minimum.at(keep_len, rf.sidx[cut], rf.depth[cut])
    trunc = (keep_len < lens).astype(np.int64)
    drop = lens - keep_len
    new_len = keep_len + trunc
    new_offs = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(new_len, out=new_offs[1:])
    other_id = len(ss.frames)
    out = np.empty(int(new_offs[-1]), np.int64)
    out[new_offs[:-1][trunc == 1]] = other_id       # leaf first: "other" is the new leaf
    rows = np.repeat(np.arange(len(lens)), keep_len)
    j = np.arange(len(rows)) - np.repeat(np.cumsum(keep_len) - keep_len, keep_len)
    out[new_offs[:-1][rows] + trunc[rows] + j] = flat[offs[:-1][rows] + drop[rows] + j]
    f = ss.frames
    frames = FrameTable(name=f.name + [OTHER], system_name=f.system_name + [OTHER], file=f.file + [""],
                        line=np.r_[f.line, 0], start_line=np.r_[f.start_line, 0], address=np.r_[f.address, 0],
                        mapping_file=f.mapping_file + [""])
    m_offs, m_flat, m_vals, _ = merge_rows(new_offs, out.astype(np.int32), ss.values)
    return StackSet(m_offs, m_flat, m_vals, frames, ss.sample_type, ss.total, ss.n_profiles, ss.duration_nanos,
                    ss.period, ss.period_type)
