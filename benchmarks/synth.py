"""Synthetic but realistic profiles for benchmarks: a pool of distinct stacks drawn from a
call tree, Zipf-distributed sample weights, CPU values in nanoseconds (period 10 ms)."""
from __future__ import annotations

import numpy as np

from profscope.model import FrameTable, Profile, ValueType


def stack_pool(n_stacks: int, n_funcs: int = 5000, max_depth: int = 64, seed: int = 1):
    """``n_stacks`` distinct leaf-first stacks over ``n_funcs`` functions (CSR): the paths from the
    root to every node of a random call tree (node i calls from a parent i*U(0.3,1), so depth grows
    like log(i), about 25 deep), as real services share call prefixes."""
    rng = np.random.default_rng(seed)
    parent = (np.arange(n_stacks) * rng.uniform(0.3, 1.0, n_stacks)).astype(np.int64)
    parent[0] = -1
    func = rng.integers(0, n_funcs, n_stacks).astype(np.int32)
    depth = np.zeros(n_stacks, np.int64)
    for i in range(1, n_stacks):            # parents come first: one pass
        depth[i] = depth[parent[i]] + 1
    depth = np.minimum(depth, max_depth - 1)
    lens = depth + 1
    offs = np.zeros(n_stacks + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    flat = np.empty(offs[-1], np.int32)
    cur = np.arange(n_stacks)
    pos = offs[:-1].copy()
    alive = np.ones(n_stacks, bool)
    for _ in range(max_depth):               # walk every path up at once, leaf first
        idx = np.flatnonzero(alive)
        if not len(idx):
            break
        flat[pos[idx]] = func[cur[idx]]
        pos[idx] += 1
        cur[idx] = parent[cur[idx]]
        alive[idx] = (cur[idx] >= 0) & (pos[idx] < offs[1:][idx])
    frames = FrameTable.from_names([f"pkg{i % 50}.func{i}" for i in range(n_funcs)],
                                   [f"src/pkg{i % 50}/file{i % 300}.go" for i in range(n_funcs)],
                                   list(range(1, n_funcs + 1)))
    return offs, flat, frames


def profile_from_pool(pool, n_samples: int, seed: int, time_nanos: int = 0) -> Profile:
    offs, flat, frames = pool
    rng = np.random.default_rng(seed)
    n_stacks = len(offs) - 1
    # distinct stacks per profile, skewed towards a hot set that shifts a little per profile
    pick = np.unique((np.minimum(rng.zipf(1.2, 3 * n_samples), n_stacks) * 7919 + seed) % n_stacks)
    if len(pick) < n_samples:
        pick = np.unique(np.concatenate([pick, rng.integers(0, n_stacks, 2 * n_samples)]))
    pick = rng.permutation(pick)[:n_samples]
    lens = np.diff(offs)[pick]
    new_offs = np.zeros(n_samples + 1, np.int64)
    np.cumsum(lens, out=new_offs[1:])
    idx = np.repeat(offs[:-1][pick] - new_offs[:-1], lens) + np.arange(new_offs[-1])
    counts = rng.integers(1, 20, n_samples)
    values = np.stack([counts, counts * 10_000_000], axis=1).astype(np.int64)
    return Profile([ValueType("samples", "count"), ValueType("cpu", "nanoseconds")], values, new_offs,
                   flat[idx], frames, np.zeros(n_samples, np.int32), period_type=ValueType("cpu", "nanoseconds"),
                   period=10_000_000, time_nanos=time_nanos, duration_nanos=10 * 10**9)
