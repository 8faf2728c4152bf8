"""go tool pprof's ``-tagfocus`` / ``-tagignore`` rules, for files and stored selections alike.

A filter is ``[key=]value``. ``value`` is a numeric range when it is exactly ``N``, ``N:``, ``:N``
or ``N:M``, each number an integer with an optional unit (``32kb``, ``1mb:``, ``:64ms``,
``12kb:64mb``); otherwise it is a comma-separated list of regular expressions. Rules (as pprof's
driver applies them):

* a range tests numeric labels only: ``key`` given, the sample's values of that key; no key, the
  values of every numeric key. Values and bounds are converted to the unit of the first bound
  (``measurement.Scale``: bytes and their binary multiples, time units, GCU); a label whose unit
  does not convert to it never matches; a unitless bound only matches labels of unknown units.
* regexes test string labels only: ``key`` given, any regex finding any value of that key; no
  key, every regex finding some ``key:value`` of the sample.
* the unit of a numeric label key is the first unit given for it in the profile, else ``bytes``
  for ``alignment`` and ``request``, else the key itself (pprof's ``NumLabelUnits``).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import NamedTuple

from ..errors import BadInput

_RANGE = re.compile(r"([+-]?[0-9]+)([A-Za-z]+)?")


class _Unit(NamedTuple):
    name: str
    aliases: tuple[str, ...]
    factor: float


class _UnitType(NamedTuple):
    default: _Unit
    units: tuple[_Unit, ...]


_SEC = _Unit("s", ("s", "sec", "second"), 1e9)
_UNIT_TYPES = (
    _UnitType(_Unit("B", ("b", "byte"), 1.0), (
        _Unit("B", ("b", "byte"), 1.0), _Unit("kB", ("kb", "kbyte", "kilobyte"), float(1 << 10)),
        _Unit("MB", ("mb", "mbyte", "megabyte"), float(1 << 20)),
        _Unit("GB", ("gb", "gbyte", "gigabyte"), float(1 << 30)),
        _Unit("TB", ("tb", "tbyte", "terabyte"), float(1 << 40)),
        _Unit("PB", ("pb", "pbyte", "petabyte"), float(1 << 50)))),
    _UnitType(_Unit("s", (), 1e9), (
        _Unit("ns", ("ns", "nanosecond"), 1.0), _Unit("us", ("μs", "us", "microsecond"), 1e3),
        _Unit("ms", ("ms", "millisecond"), 1e6), _SEC, _Unit("hrs", ("hour", "hr"), 3.6e12))),
    _UnitType(_Unit("GCU", (), 1.0), (
        _Unit("n*GCU", ("nanogcu",), 1e-9), _Unit("u*GCU", ("microgcu",), 1e-6),
        _Unit("m*GCU", ("milligcu",), 1e-3), _Unit("GCU", ("gcu",), 1.0), _Unit("k*GCU", ("kilogcu",), 1e3),
        _Unit("M*GCU", ("megagcu",), 1e6), _Unit("G*GCU", ("gigagcu",), 1e9),
        _Unit("T*GCU", ("teragcu",), 1e12), _Unit("P*GCU", ("petagcu",), 1e15))),
)


def _sniff(ut: _UnitType, unit: str) -> _Unit | None:
    u = unit.lower()
    if len(u.encode()) > 2:          # pprof counts bytes, not characters
        u = u.removesuffix("s")
    for cand in ut.units:
        if u in cand.aliases:
            return cand
    return None


def _convert(ut: _UnitType, value: int, frm: str, to: str) -> tuple[float, str] | None:
    f = _sniff(ut, frm)
    if f is None:
        return None
    v = float(value) * f.factor
    if to in ("minimum", "auto"):
        best = None
        for cand in ut.units:
            if (best is None or cand.factor >= best.factor) and v / cand.factor >= 1.0:
                best = cand
        if best is not None:
            return v / best.factor, best.name
        return v / ut.default.factor, ut.default.name
    t = _sniff(ut, to)
    if t is None:
        return v / ut.default.factor, ut.default.name
    return v / t.factor, t.name


def scale(value: int, frm: str, to: str) -> tuple[float, str]:
    """``value`` in unit ``frm`` expressed in unit ``to``: (number, canonical unit name), the way
    pprof's ``measurement.Scale`` does it (unknown units pass through unchanged)."""
    if value < 0:
        v, u = scale(-value, frm, to)
        return -v, u
    for ut in _UNIT_TYPES:
        r = _convert(ut, value, frm, to)
        if r is not None:
            return r
    if to in ("count", "sample", "unit", "minimum", "auto"):
        return float(value), ""
    return float(value), to


NumTest = Callable[[int, str], bool]


def _int(text: str) -> int:
    v = int(text)
    if not -(2**63) <= v < 2**63:
        raise BadInput(f"tag filter number {text} does not fit in 64 bits")
    return v


def parse_range(value: str) -> NumTest | None:
    """The numeric test of a range filter value, or None when ``value`` is not a range."""
    found = list(_RANGE.finditer(value))[:2]
    if not found:
        return None
    first = found[0]
    lo, unit = scale(_int(first.group(1)), first.group(2) or "", first.group(2) or "")

    def conv(v: int, u: str) -> float | None:
        sv, su = scale(v, u, unit)
        return sv if su == unit else None

    if len(found) == 1:
        m = first.group(0)
        if value == m:
            return lambda v, u: conv(v, u) == lo
        if value == m + ":":
            return lambda v, u: (x := conv(v, u)) is not None and x >= lo
        if value == ":" + m:
            return lambda v, u: (x := conv(v, u)) is not None and x <= lo
        return None
    second = found[1]
    if value != first.group(0) + ":" + second.group(0):
        return None
    hi, unit2 = scale(_int(second.group(1)), second.group(2) or "", unit)
    if unit2 != unit:
        return None
    return lambda v, u: (x := conv(v, u)) is not None and lo <= x <= hi


def infer_units(keys_with_units: Iterable[tuple[str, str]]) -> dict[str, str]:
    """pprof's unit per numeric label key from (key, unit) pairs in sample order ('' = no unit)."""
    out: dict[str, str] = {}
    for k, u in keys_with_units:
        if u and not out.get(k):
            out[k] = u
        else:
            out.setdefault(k, "")
    return {k: u or ("bytes" if k in ("alignment", "request") else k) for k, u in out.items()}


class LabelView(NamedTuple):
    """A sample's labels as pprof sees them: string values and numeric values per key."""
    strs: dict[str, list[str]]
    nums: dict[str, list[int]]


class CompiledTagFilter:
    """One ``[key=]value`` filter, compiled; ``test(view, units)`` says whether a sample passes."""

    def __init__(self, key: str, value: str):
        self.key, self.value = key, value
        self.num = parse_range(value)
        self.regexes: list[re.Pattern] = []
        if self.num is None:
            for part in value.split(","):
                try:
                    self.regexes.append(re.compile(part))
                except re.error as e:
                    raise BadInput(f"tag filter {key + '=' if key else ''}{value!r}: bad regex {part!r} ({e})") from None

    def test(self, view: LabelView, units: dict[str, str]) -> bool:
        if self.num is not None:
            num = self.num
            keys = [self.key] if self.key else list(view.nums)
            return any(num(v, units.get(k, k)) for k in keys for v in view.nums.get(k, ()))
        if self.key:
            vals = view.strs.get(self.key)
            return vals is not None and any(rx.search(v) for rx in self.regexes for v in vals)
        return all(any(rx.search(f"{k}:{v}") for k, vs in view.strs.items() for v in vs) for rx in self.regexes)
