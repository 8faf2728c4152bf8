"""64-bit content key -> dense id, looked up for a whole profile at once.

Keys live in a sorted numpy array searched with ``np.searchsorted``; keys added since the last
merge wait in a dict, and are merged into the array once they outnumber an eighth of it (so a
key is re-sorted O(log n) times over its life). A profile's thousand frame keys cost one search
instead of a thousand dict lookups on 64-bit Python ints.
"""
from __future__ import annotations

from itertools import repeat

import numpy as np

MIN_RECENT = 4096        # recent keys kept in the dict before the first merge


class KeyIndex:
    def __init__(self) -> None:
        self._keys = np.zeros(0, np.uint64)      # sorted
        self._ids = np.zeros(0, np.int64)
        self._recent: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._keys) + len(self._recent)

    def clear(self) -> None:
        self.__init__()

    def load(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Replace the contents with ``keys`` (distinct) -> ``ids``."""
        order = np.argsort(keys, kind="stable")
        self._keys = np.ascontiguousarray(keys[order], np.uint64)
        self._ids = np.ascontiguousarray(ids[order], np.int64)
        self._recent = {}

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """The id of each of ``keys`` (uint64), 0 where absent."""
        out = np.zeros(len(keys), np.int64)
        if not len(keys):
            return out
        hit = np.zeros(len(keys), bool)
        if len(self._keys):
            pos = np.searchsorted(self._keys, keys)
            np.minimum(pos, len(self._keys) - 1, out=pos)
            hit = self._keys[pos] == keys
            out[hit] = self._ids[pos[hit]]
        if self._recent:
            miss = np.flatnonzero(~hit)
            if len(miss):
                out[miss] = list(map(self._recent.get, keys[miss].tolist(), repeat(0, len(miss))))
        return out

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Enter new, distinct ``keys`` -> ``ids``."""
        self._recent.update(zip(keys.tolist(), ids.tolist()))
        if len(self._recent) > max(MIN_RECENT, len(self._keys) // 8):
            self._merge()

    def _merge(self) -> None:
        n = len(self._recent)
        keys = np.concatenate([self._keys, np.fromiter(self._recent.keys(), np.uint64, n)])
        ids = np.concatenate([self._ids, np.fromiter(self._recent.values(), np.int64, n)])
        self.load(keys, ids)
