"""Span queries: which spans to join with profiles.

A :class:`SpanQuery` names spans by service, name, duration bounds, attribute equality, status
and a time range (spans that overlap ``[start_ns, end_ns]``). Parsing helpers turn the text
forms used by the API (``attr=http.route=/checkout``, ``min_duration=500ms``) into values.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadInput

_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_DUR_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9,
           "h": 3600 * 10**9}
STATUS = {"unset": 0, "ok": 1, "error": 2}


@dataclass(frozen=True)
class SpanQuery:
    service: str | None = None
    name: str | None = None
    min_duration_ns: int | None = None
    max_duration_ns: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()   # span attribute (else resource attribute) equals
    status: str | None = None                      # unset | ok | error
    start_ns: int | None = None                    # spans overlapping [start_ns, end_ns]
    end_ns: int | None = None

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in STATUS:
            raise BadInput(f"span status {self.status!r} is not one of: {', '.join(STATUS)}")
        lo, hi = self.min_duration_ns, self.max_duration_ns
        if lo is not None and hi is not None and lo > hi:
            raise BadInput("min_duration must not be larger than max_duration")

    def is_empty(self) -> bool:
        return self == SpanQuery()

    def to_json(self) -> dict:
        return {"service": self.service, "span_name": self.name, "min_duration_ns": self.min_duration_ns,
                "max_duration_ns": self.max_duration_ns, "attributes": dict(self.attributes),
                "status": self.status, "start_ns": self.start_ns, "end_ns": self.end_ns}


def parse_duration(text: str | None, what: str = "duration") -> int | None:
    """``500ms``, ``1.5s``, ``250us``, ``1000`` (nanoseconds) -> nanoseconds."""
    if text is None or text == "":
        return None
    m = _DUR.match(str(text))
    if not m:
        raise BadInput(f"{what} {str(text)[:40]!r} is not a duration: use e.g. 500ms, 1.5s, 250us or nanoseconds")
    return int(float(m.group(1)) * _DUR_NS[m.group(2) or "ns"])


def parse_attribute(text: str) -> tuple[str, str]:
    """``key=value`` (the first ``=`` splits; keys may contain dots)."""
    if "=" not in text:
        raise BadInput(f"attribute filter {text[:60]!r} must look like key=value, e.g. http.route=/checkout")
    k, v = text.split("=", 1)
    if not k.strip():
        raise BadInput(f"attribute filter {text[:60]!r} has an empty key")
    return k.strip(), v
