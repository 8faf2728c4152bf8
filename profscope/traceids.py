"""Span and trace ids: parsing, formatting, and the sample labels that carry them.

Span ids are 64-bit and trace ids 128-bit, as in OpenTelemetry. Inside profscope a span id is
an unsigned int (0 = none) and a trace id a pair of unsigned ints ``(hi, lo)`` (``(0, 0)`` =
none), so DuckDB can compare them as ``UBIGINT`` columns. Text forms are lower-case hex, 16 and
32 digits.

Profilers write the ids as sample labels (``../shared/specs/wire-protocols.md`` section 5):

=======================  ============  =============================================
label                    meaning       text form
=======================  ============  =============================================
``span_id``              span          hex (``239`` reads as 0x239, like Pyroscope)
``profile_id``           span          hex; legacy Pyroscope alias of ``span_id``
``trace_id``             trace         hex, up to 32 digits
``span id``              span          decimal (Datadog)
``local root span id``   local root    decimal (Datadog)
``span_name``            span name     any (kept as a plain label)
``trace endpoint``       root name     any (Datadog; kept as a plain label)
=======================  ============  =============================================
"""
from __future__ import annotations

from typing import NamedTuple

from .errors import BadInput

_HEX = set("0123456789abcdefABCDEF")
MAX_U64 = (1 << 64) - 1

# label name -> (which id, text base)
SPAN_LABELS = {"span_id": 16, "profile_id": 16, "span id": 10}
ROOT_LABELS = {"local root span id": 10}
TRACE_LABELS = {"trace_id": 16}
NAME_LABELS = ("span_name", "trace endpoint")


class Link(NamedTuple):
    """The trace link of one label set. Zero means absent."""
    span_id: int = 0
    trace_hi: int = 0
    trace_lo: int = 0
    root_span_id: int = 0

    @property
    def trace_id(self) -> int:
        return (self.trace_hi << 64) | self.trace_lo


def _parse_int(text: str, base: int, bits: int) -> int | None:
    t = text.strip()
    if base == 16:
        if t[:2] in ("0x", "0X"):
            t = t[2:]
        if not t or len(t) > bits // 4 or not set(t) <= _HEX:
            return None
        return int(t, 16)
    if not t.isdigit() or len(t) > 20:
        return None
    v = int(t)
    return v if v <= MAX_U64 else None


def parse_span_label(text: str, base: int = 16) -> int | None:
    """A span id from a label value; None when it is not one (or is zero)."""
    v = _parse_int(text, base, 64)
    return v or None


def parse_trace_label(text: str) -> int | None:
    v = _parse_int(text, 16, 128)
    return v or None


def link_from_labels(labels: dict[str, str]) -> Link | None:
    """The link carried by a sample's labels, or None when it carries none."""
    span = root = trace = 0
    for key, base in SPAN_LABELS.items():
        v = labels.get(key)
        if v is not None and not span:
            span = parse_span_label(v, base) or 0
    for key, base in ROOT_LABELS.items():
        v = labels.get(key)
        if v is not None:
            root = parse_span_label(v, base) or 0
    for key in TRACE_LABELS:
        v = labels.get(key)
        if v is not None:
            trace = parse_trace_label(v) or 0
    if not (span or root or trace):
        return None
    return Link(span, trace >> 64, trace & MAX_U64, root)


def span_id_arg(text: str, what: str = "span_id") -> int:
    """A user-given span id (hex, up to 16 digits); errors name the parameter."""
    v = parse_span_label(str(text))
    if v is None:
        raise BadInput(f"{what} {str(text)[:40]!r} is not a span id: give up to 16 hex digits, not all zero")
    return v


def trace_id_arg(text: str, what: str = "trace_id") -> int:
    """A user-given trace id (hex, up to 32 digits)."""
    v = parse_trace_label(str(text))
    if v is None:
        raise BadInput(f"{what} {str(text)[:40]!r} is not a trace id: give up to 32 hex digits, not all zero")
    return v


def split_trace(trace_id: int) -> tuple[int, int]:
    return trace_id >> 64, trace_id & MAX_U64


def span_hex(span_id: int) -> str:
    return f"{int(span_id):016x}"


def trace_hex(hi: int, lo: int | None = None) -> str:
    v = int(hi) if lo is None else (int(hi) << 64) | int(lo)
    return f"{v:032x}"


def bytes_to_int(b: bytes) -> int:
    """OTLP ids are big-endian bytes (8 for spans, 16 for traces); empty means none."""
    return int.from_bytes(b, "big") if b else 0
