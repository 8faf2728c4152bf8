"""Synthetic but realistic profiles for benchmarks: a pool of distinct stacks drawn from a
call tree, Zipf-distributed sample weights, CPU values in nanoseconds (period 10 ms)."""
from __future__ import annotations

import numpy as np

from profscope.model import FrameTable, Profile, ValueType


def stack_pool(n_stacks: int, n_funcs: int = 5000, max_depth: int = 40, seed: int = 1):
    """``n_stacks`` distinct leaf-first stacks over ``n_funcs`` functions (CSR)."""
    rng = np.random.default_rng(seed)
    lens = rng.integers(3, max_depth, n_stacks)
    offs = np.zeros(n_stacks + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    # shared prefixes: root-side frames drawn from a small set, leaves from the whole set
    depth_pos = np.arange(offs[-1]) - np.repeat(offs[:-1], lens)
    from_root = np.repeat(lens, lens) - 1 - depth_pos
    width = np.minimum(n_funcs, 4 + from_root * 25)
    flat = (rng.random(offs[-1]) * width).astype(np.int32)
    frames = FrameTable.from_names([f"pkg{i % 50}.func{i}" for i in range(n_funcs)],
                                   [f"src/pkg{i % 50}/file{i % 300}.go" for i in range(n_funcs)],
                                   list(range(1, n_funcs + 1)))
    return offs, flat, frames


def profile_from_pool(pool, n_samples: int, seed: int, time_nanos: int = 0) -> Profile:
    offs, flat, frames = pool
    rng = np.random.default_rng(seed)
    n_stacks = len(offs) - 1
    pick = np.minimum(rng.zipf(1.3, n_samples) - 1, n_stacks - 1)
    pick = (pick * 7919 + seed) % n_stacks  # different hot stacks per seed, still skewed
    lens = np.diff(offs)[pick]
    new_offs = np.zeros(n_samples + 1, np.int64)
    np.cumsum(lens, out=new_offs[1:])
    idx = np.repeat(offs[:-1][pick] - new_offs[:-1], lens) + np.arange(new_offs[-1])
    counts = rng.integers(1, 20, n_samples)
    values = np.stack([counts, counts * 10_000_000], axis=1).astype(np.int64)
    return Profile([ValueType("samples", "count"), ValueType("cpu", "nanoseconds")], values, new_offs,
                   flat[idx], frames, np.zeros(n_samples, np.int32), period_type=ValueType("cpu", "nanoseconds"),
                   period=10_000_000, time_nanos=time_nanos, duration_nanos=10 * 10**9)
