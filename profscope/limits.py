"""Explicit limits on what profscope accepts. Each is documented in README.md ("Limits") and
can be changed through configuration (``PROFSCOPE_<NAME>`` environment variables, see
:mod:`profscope.config`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024          # compressed request body / input file
    max_decompressed_bytes: int = 64 * 1024 * 1024  # after gunzip: decompression bombs stop here
    max_samples: int = 2_000_000                    # samples in one profile
    max_stack_depth: int = 4096                     # frames in one stack; deeper stacks are refused
    max_label_names: int = 64                       # distinct label names on one series
    max_label_name_len: int = 1024
    max_label_value_len: int = 2048


DEFAULT_LIMITS = Limits()
