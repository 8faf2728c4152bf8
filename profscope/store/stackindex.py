"""In-memory index of everything content-addressed in the store, for fast queries.

* frames by id (the columns of a :class:`FrameTable`),
* stacks by id as one CSR of global frame ids (leaf first),
* a global call-path tree: every distinct root-first prefix of a stored stack is a node
  ``(parent node, frame)``; each stack points at its leaf node.

A flame graph of a selection then needs no per-frame work: values per stack land on leaf nodes
and flow up the parent pointers one depth level at a time, over the touched nodes only.
Arrays grow by doubling; ingest appends under the dictionaries' lock, queries read a snapshot.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..analysis.stacks import root_first, unique_inverse
from ..model import FrameTable


class _Grow:
    """A growable 1-D numpy array."""

    def __init__(self, dtype, fill=0):
        self.a = np.full(1024, fill, dtype)
        self.n = 0
        self.fill = fill

    def extend(self, values: np.ndarray) -> None:
        need = self.n + len(values)
        if need > len(self.a):
            cap = max(need, 2 * len(self.a))
            b = np.full(cap, self.fill, self.a.dtype)
            b[: self.n] = self.a[: self.n]
            self.a = b
        self.a[self.n:need] = values
        self.n = need

    def view(self) -> np.ndarray:
        return self.a[: self.n]


@dataclass
class Snapshot:
    """Consistent read-only views for one query."""
    stack_offs: np.ndarray
    stack_flat: np.ndarray
    stack_leaf: np.ndarray
    node_parent: np.ndarray
    node_frame: np.ndarray
    node_depth: np.ndarray
    frames: FrameCache


class FrameCache:
    """Frame columns by global id (row ``id - 1``)."""

    def __init__(self) -> None:
        self.name: list[str] = []
        self.system_name: list[str] = []
        self.file: list[str] = []
        self.line = _Grow(np.int64)
        self.start_line = _Grow(np.int64)
        self.address = _Grow(np.uint64)
        self.mapping_file: list[str] = []

    def __len__(self) -> int:
        return len(self.name)

    def add(self, rows: list[tuple]) -> None:
        """Rows of (name, system_name, file, line, start_line, address, mapping_file), in id order."""
        if not rows:
            return
        name, sysn, file, line, start, addr, mfile = zip(*rows)
        self.name.extend(name)
        self.system_name.extend(sysn)
        self.file.extend(file)
        self.line.extend(np.array(line, np.int64))
        self.start_line.extend(np.array(start, np.int64))
        self.address.extend(np.array(addr, np.uint64))
        self.mapping_file.extend(mfile)

    def table(self, ids: np.ndarray) -> FrameTable:
        """FrameTable of the frames ``ids`` (global, 1-based), in that order."""
        ix = (ids - 1).tolist()
        idx = ids - 1
        return FrameTable([self.name[i] for i in ix], [self.system_name[i] for i in ix],
                          [self.file[i] for i in ix], self.line.view()[idx], self.start_line.view()[idx],
                          self.address.view()[idx], [self.mapping_file[i] for i in ix])


class StackIndex:
    def __init__(self) -> None:
        self.frames = FrameCache()
        self.offs = _Grow(np.int64)
        self.offs.extend(np.zeros(2, np.int64))   # stack ids are 1-based: slot 0 is an empty stack
        self.flat = _Grow(np.int32)
        self.leaf = _Grow(np.int32)
        self.leaf.extend(np.zeros(1, np.int32))
        self.node_parent = _Grow(np.int32, -1)
        self.node_frame = _Grow(np.int32)
        self.node_depth = _Grow(np.int32)
        # node 0 is the root
        self.node_parent.extend(np.array([-1], np.int32))
        self.node_frame.extend(np.zeros(1, np.int32))
        self.node_depth.extend(np.zeros(1, np.int32))
        self.node_of: dict[int, int] = {}           # prefix hash -> node id
        self._nodes_done = 1                        # stacks [1, _nodes_done) have their leaf node
        self._lock = threading.Lock()

    def add_stacks(self, offs: np.ndarray, flat: np.ndarray) -> None:
        """Append stacks (next ids, in order) given as CSR of global frame ids, leaf first. Their
        call-path nodes are made lazily, in one batch, by the next query that needs them."""
        n = len(offs) - 1
        if n == 0:
            return
        with self._lock:
            base = int(self.offs.view()[-1])
            self.offs.extend(offs[1:] + base)
            self.flat.extend(flat.astype(np.int32))
            self.leaf.extend(np.zeros(n, np.int32))

    def _catch_up(self) -> None:
        """Give every stack added since the last query its leaf node (caller holds the lock)."""
        n = self.leaf.n
        if self._nodes_done >= n:
            return
        all_offs = self.offs.view()
        offs = all_offs[self._nodes_done:n + 1]
        flat = self.flat.view()[offs[0]:offs[-1]]
        self.leaf.a[self._nodes_done:n] = self._nodes_for(offs - offs[0], flat)
        self._nodes_done = n

    def _nodes_for(self, offs: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """Leaf node of every stack, creating the missing prefix nodes."""
        lens = np.diff(offs)
        n_st = len(lens)
        npos = len(flat)
        leaf = np.zeros(n_st, np.int32)
        if npos == 0:
            return leaf
        _, dd, _, fr, prefix = root_first(offs, flat)     # fr: root-first frames
        fr = fr.astype(np.int64)
        first, slot_group = unique_inverse(prefix)
        uniq = prefix[first]
        known = np.array([self.node_of.get(h, 0) for h in uniq.tolist()], np.int64)
        # new prefixes, parents before children (by depth)
        new = np.flatnonzero(known == 0)
        if len(new):
            new = new[np.argsort(dd[first[new]], kind="stable")]
            start = self.node_parent.n
            ids = np.arange(start, start + len(new))
            known[new] = ids
            for h, i in zip(uniq[new].tolist(), ids.tolist()):
                self.node_of[h] = i
            # parent of the prefix at slot p is the prefix at slot p - 1 (same stack), or the root
            slot = first[new]
            par_slot = slot - 1
            has_par = dd[slot] > 0
            par_ids = np.zeros(len(new), np.int64)
            par_ids[has_par] = known[slot_group[par_slot[has_par]]]
            self.node_parent.extend(par_ids.astype(np.int32))
            self.node_frame.extend(fr[slot].astype(np.int32))
            self.node_depth.extend((dd[slot] + 1).astype(np.int32))
        slot_node = known[slot_group]
        leaf_slot = offs[1:][lens > 0] - 1
        leaf[lens > 0] = slot_node[leaf_slot]
        return leaf

    def snapshot(self, with_nodes: bool = False) -> Snapshot:
        with self._lock:
            if with_nodes:
                self._catch_up()
            return Snapshot(self.offs.view(), self.flat.view(), self.leaf.view(), self.node_parent.view(),
                            self.node_frame.view(), self.node_depth.view(), self.frames)
