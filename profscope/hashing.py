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


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def str_hashes(strings) -> np.ndarray:
    """Python's (salted) hash of each string, as uint64."""
    return np.fromiter(map(hash, strings), np.int64, len(strings)).view(np.uint64)


def frame_content_keys(name: np.ndarray, system_name: np.ndarray, file: np.ndarray, line: np.ndarray,
                       start_line: np.ndarray, address: np.ndarray, mapping_file: np.ndarray) -> np.ndarray:
    """One key per frame from its seven fields: the string fields given as :func:`str_hashes`,
    the others as integers. The chain starts from the salted string hashes, so it cannot be
    inverted from outside the process."""
    with np.errstate(over="ignore"):
        h = mix64(name ^ (file * np.uint64(0x9FB21C651E98DF25)))
        h = mix64(h ^ system_name ^ (mapping_file * np.uint64(0xC2B2AE3D27D4EB4F)))
        h = mix64(h ^ line.astype(np.uint64))
        h = mix64(h ^ start_line.astype(np.uint64))
        return mix64(h ^ address.astype(np.uint64))
