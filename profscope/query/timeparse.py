"""Time parameters: unix seconds, milliseconds, microseconds or nanoseconds (told apart by
magnitude), ``now``, ``now-1h`` / ``now-30m`` / ``now-7d``, or ISO 8601. Results in unix ns."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from ..errors import BadInput

_REL = re.compile(r"^now\s*(?:([+-])\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w))?$")
_UNIT_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9,
            "w": 7 * 86400 * 10**9}


def parse_time(value: str | int | float | None, now_ns: int | None = None, what: str = "time") -> int | None:
    if value is None or value == "":
        return None
    now_ns = time.time_ns() if now_ns is None else now_ns
    if isinstance(value, (int, float)):
        return _from_number(float(value))
    text = str(value).strip()
    m = _REL.match(text)
    if m:
        if not m.group(1):
            return now_ns
        delta = int(float(m.group(2)) * _UNIT_NS[m.group(3)])
        return now_ns - delta if m.group(1) == "-" else now_ns + delta
    try:
        return _from_number(float(text))
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"{what} {text!r} is not a time: use unix s/ms/us/ns, now, now-1h or ISO 8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1e9)


def _from_number(x: float) -> int:
    ax = abs(x)
    if ax < 1e11:        # seconds (until year 5138)
        return int(x * 1e9)
    if ax < 1e14:        # milliseconds
        return int(x * 1e6)
    if ax < 1e17:        # microseconds
        return int(x * 1e3)
    return int(x)
