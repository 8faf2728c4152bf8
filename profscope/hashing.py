"""64-bit hashing shared by decoders and the store, vectorized with numpy.

``mix64`` is the splitmix64 finalizer: stable across versions, so hashes built only from it
(stack hashes) may be stored. ``frame_content_keys`` is not stable: it starts from Python's
``hash`` of the frame's strings, which the interpreter salts with a secret per process (inherited
by forked children). The keys therefore live in memory only, are rebuilt from the stored frames
at start-up, and cannot be aimed at by crafted input while the salt is secret (that is, unless
``PYTHONHASHSEED`` is set).
"""
from __future__ import annotations

import numpy as np

_GOLDEN, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        return _mix_in_place(np.asarray(x).astype(np.uint64))      # a copy, worked on in place


def _mix_in_place(z: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
    """:func:`mix64` of uint64 array ``z``, written over it (``t``: scratch of z's shape)."""
    if t is None:
        t = np.empty_like(z)
    z += _GOLDEN
    np.right_shift(z, _S30, out=t)
    z ^= t
    z *= _M1
    np.right_shift(z, _S27, out=t)
    z ^= t
    z *= _M2
    np.right_shift(z, _S31, out=t)
    z ^= t
    return z


def str_hashes(strings) -> np.ndarray:
    """Python's (salted) hash of each string, as uint64."""
    return np.fromiter(map(hash, strings), np.int64, len(strings)).view(np.uint64)


def frame_content_keys(name: np.ndarray, system_name: np.ndarray, file: np.ndarray, line: np.ndarray,
                       start_line: np.ndarray, address: np.ndarray, mapping_file: np.ndarray) -> np.ndarray:
    """One key per frame from its seven fields: the string fields given as :func:`str_hashes`,
    the others as integers. The chain starts from the salted string hashes, so it cannot be
    inverted from outside the process."""
    with np.errstate(over="ignore"):
        t = np.empty(len(name), np.uint64)
        h = np.multiply(file, np.uint64(0x9FB21C651E98DF25), dtype=np.uint64)
        h ^= name
        _mix_in_place(h, t)
        np.multiply(mapping_file, np.uint64(0xC2B2AE3D27D4EB4F), out=t)
        h ^= system_name
        h ^= t
        _mix_in_place(h, t)
        for col in (line, start_line, address):
            h ^= col.astype(np.uint64, copy=False)
            _mix_in_place(h, t)
        return h
