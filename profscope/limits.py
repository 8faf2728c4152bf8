"""Explicit limits on what profscope accepts. Each is documented in README.md ("Limits") and
can be changed through configuration (``PROFSCOPE_<NAME>`` environment variables)."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
import os


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024          # compressed request body / input file
    max_decompressed_bytes: int = 64 * 1024 * 1024  # after gunzip: decompression bombs stop here
    max_samples: int = 2_000_000                    # samples in one profile
    max_stack_depth: int = 4096                     # frames in one stack; deeper stacks are refused
    max_label_names: int = 64                       # distinct label names on one series
    max_label_name_len: int = 1024
    max_label_value_len: int = 2048

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: int) -> "Limits":
        env = os.environ if env is None else env
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get("PROFSCOPE_" + f.name.upper())
            if raw:
                values[f.name] = int(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


DEFAULT_LIMITS = Limits()
