"""Sort- and table-based grouping helpers for large arrays. No I/O here.

numpy 2.4's ``np.unique`` is slow on tens of millions of int64/uint64 values (a hash path
without flags, a stable merge sort with them); these helpers use one quicksort or a lookup table
instead. Exact integer sums go through ``np.bincount`` when float64 cannot round.
"""
from __future__ import annotations

import numpy as np

from ..model import FrameTable
from .stacks import _mix, frame_keys, sequence_hashes, unique_inverse, unique_sorted  # noqa: F401 (re-exported)


def sum_int(idx: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of ``values`` grouped by ``idx`` in ``range(n)``."""
    # float64 sums are exact while every partial sum stays below 2**53; the sum of |values| bounds them
    if not len(values) or int(np.abs(values).sum(dtype=np.uint64)) < 2**53:
        return np.rint(np.bincount(idx, weights=values, minlength=n)).astype(np.int64)
    out = np.zeros(n, np.int64)
    np.add.at(out, idx, values)
    return out


def function_keys(frames: FrameTable, granularity: str) -> tuple[np.ndarray, list[str]]:
    """Like :func:`~profscope.analysis.stacks.frame_keys` (same names), with a fast path for named
    frames at function granularity, where the name is the key."""
    if granularity != "functions":
        return frame_keys(frames, granularity)
    index: dict[str, int] = {}
    keys = np.fromiter((index.setdefault(n, len(index)) if n else -1 for n in frames.name), np.int64,
                       len(frames))
    unnamed = np.flatnonzero(keys < 0)
    if len(unnamed):
        sub_keys, sub_names = frame_keys(frames.take(unnamed), granularity)
        for nm in sub_names:
            index.setdefault(nm, len(index))
        keys[unnamed] = np.array([index[sub_names[k]] for k in sub_keys.tolist()], np.int64)
    return keys.astype(np.int32), list(index)


def concat_frames(tables: list[FrameTable]) -> FrameTable:
    """One frame table after another (indices of table j shift by the lengths before it)."""
    return FrameTable(sum((t.name for t in tables), []), sum((t.system_name for t in tables), []),
                      sum((t.file for t in tables), []), np.concatenate([t.line for t in tables]),
                      np.concatenate([t.start_line for t in tables]),
                      np.concatenate([t.address for t in tables]),
                      sum((t.mapping_file for t in tables), []))
