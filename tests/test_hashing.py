"""The 64-bit hashes (profscope/hashing.py) against references computed another way: mix64 is
splitmix64's output function, so it must give splitmix64's published sequence, and the frame
keys must equal the same chain worked out with Python integers."""
from __future__ import annotations

import numpy as np

from profscope.hashing import frame_content_keys, mix64

MASK = 2**64 - 1
GOLDEN = 0x9E3779B97F4A7C15


def _mix(x: int) -> int:
    z = (x + GOLDEN) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_mix64_is_splitmix64():
    # splitmix64 seeded with 0: state k * golden, output mix of the state before the increment
    states = np.array([(k * GOLDEN) & MASK for k in range(3)], np.uint64)
    assert [hex(int(v)) for v in mix64(states)] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4",
                                                     "0x6c45d188009454f"]
    signed = np.array([-1, 0, 2**63 - 1, -(2**63)], np.int64)          # int64 input wraps to uint64
    assert mix64(signed).tolist() == [_mix(int(x) & MASK) for x in signed]


def test_frame_keys_equal_the_chain_in_python_integers():
    rng = np.random.default_rng(5)
    n = 64
    name, system, file, mapping = (rng.integers(0, 2**64 - 1, n, dtype=np.uint64) for _ in range(4))
    line = rng.integers(-10, 10**6, n)
    start = rng.integers(-10, 10**6, n)
    address = rng.integers(0, 2**64 - 1, n, dtype=np.uint64)
    got = frame_content_keys(name, system, file, line, start, address, mapping)
    for i in range(n):
        h = _mix(int(name[i]) ^ ((int(file[i]) * 0x9FB21C651E98DF25) & MASK))
        h = _mix(h ^ int(system[i]) ^ ((int(mapping[i]) * 0xC2B2AE3D27D4EB4F) & MASK))
        for v in (int(line[i]), int(start[i]), int(address[i])):
            h = _mix(h ^ (v & MASK))
        assert int(got[i]) == h
