"""pprof's tables read as varint streams: one upb parse, then numpy over every field at once.

Every pprof sub-message (Sample, Mapping, Location, Line, Function, Label) holds only varints:
integers (wire type 0), and packed integer lists or nested messages (wire type 2). The
``ProfileView`` reading of the bytes hands over each sub-message's raw bytes; their concatenation
is parsed by upb once more as one packed varint stream, and the fields of all messages of a table
are then walked together with numpy, one field of every message per round. No Python code runs
per sample, location or function.

:func:`scan` returns None for anything this reading does not cover (another wire type, a value
cut short, a message with very many fields); the caller then decodes message by message, which
also words the error.

The same reading is compiled (``_pprofscan.c``, built at install by ``hatch_build.py``): one pass
over the bytes, about seven times faster on a pyroscope-sized profile (51 against 390 us). It covers a subset of what
the numpy reading covers and gives the same columns; when it is not built, or steps aside, the
numpy reading runs.
"""
from __future__ import annotations

import os
from itertools import chain
from typing import NamedTuple

import numpy as np
from google.protobuf.message import DecodeError

from ..varint import uvarint
from .proto import profile_pb2 as pb

try:
    from . import _pprofscan as native
except ImportError:          # no C compiler at install: the numpy reading alone
    native = None
if os.environ.get("PROFSCOPE_PPROF_READER", "").lower() == "numpy":     # documented in docs/configuration.md
    native = None

MAX_ROUNDS = 512          # fields in one message before falling back to the message-by-message path


class _NotCovered(Exception):
    pass


class Tables(NamedTuple):
    """Columns of pprof's mapping, function and location tables (string fields are indices)."""
    map_ids: np.ndarray        # uint64
    map_file: np.ndarray       # int64
    fn_ids: np.ndarray         # uint64
    fn_name: np.ndarray        # int64
    fn_sys: np.ndarray
    fn_file: np.ndarray
    fn_start: np.ndarray
    loc_ids: np.ndarray        # uint64
    loc_map: np.ndarray        # uint64
    loc_addr: np.ndarray       # uint64
    nlines: np.ndarray         # int64, lines per location
    line_fn: np.ndarray        # uint64, function id per line (locations in order)
    line_no: np.ndarray        # int64


class LabelRows(NamedTuple):
    """One row per sample label: the sample's index and the Label's four fields."""
    sample: np.ndarray
    key: np.ndarray
    str: np.ndarray
    num: np.ndarray
    unit: np.ndarray


class SampleColumns(NamedTuple):
    slens: np.ndarray          # location ids per sample
    sloc: np.ndarray           # uint64, all samples' location ids, leaf first
    vlens: np.ndarray          # values per sample
    values: np.ndarray         # int64, all samples' values
    labels: LabelRows | None


class Scanned(NamedTuple):
    view: pb.ProfileView       # header fields (strings, sample types, period, times, comments, ...)
    tables: Tables
    samples: SampleColumns


class _Stream:
    """The concatenated bytes of one table's messages as varints ``v``; ``sb[k]`` is the byte
    offset where varint ``k`` starts (``sb[len(v)]`` = the byte length); message ``e`` spans the
    varints ``starts[e]:ends[e]``."""

    def __init__(self, parts) -> None:
        parts = list(parts)
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
        head = b"\x0a" + uvarint(int(lens.sum()))
        buf = b"".join([head, *parts])
        self.v = np.array(pb.Varints.FromString(buf).v, np.uint64)
        ends = np.flatnonzero(np.frombuffer(buf, np.uint8, offset=len(head)) < 128)
        if len(ends) != len(self.v):
            raise _NotCovered
        self.sb = np.empty(len(ends) + 1, np.int64)
        self.sb[0] = 0
        self.sb[1:] = ends + 1
        eb = np.zeros(len(parts) + 1, np.int64)
        np.cumsum(lens, out=eb[1:])
        ei = np.searchsorted(self.sb, eb)
        if (self.sb[ei] != eb).any():          # a message ends inside a varint
            raise _NotCovered
        self.starts, self.ends = ei[:-1], ei[1:]


class _Fields(NamedTuple):
    """Every top-level field of a set of messages, in order within each message."""
    elem: np.ndarray           # message index
    num: np.ndarray            # field number
    wt: np.ndarray             # wire type, 0 or 2
    a: np.ndarray              # value: v[a] (wire type 0); payload: v[a:b] (wire type 2)
    b: np.ndarray


def _walk(st: _Stream, starts: np.ndarray, ends: np.ndarray) -> _Fields:
    v, sb = st.v, st.sb
    elem = np.flatnonzero(ends > starts)
    pos, end = starts[elem], ends[elem]
    out = []
    for _ in range(MAX_ROUNDS):
        if not len(elem):
            break
        tag = v[pos]
        wt = tag & np.uint64(7)
        a = pos + 1
        if (a >= end).any():
            raise _NotCovered
        two = wt == 2
        if not (two | (wt == 0)).all() or (tag < np.uint64(8)).any():    # field number 0 is invalid
            raise _NotCovered
        b = pos + 2
        if two.any():
            p2 = pos[two]
            length = v[p2 + 1]
            if (length > np.uint64(len(sb))).any():
                raise _NotCovered
            bs = sb[p2 + 2] + length.astype(np.int64)
            bi = np.searchsorted(sb, bs)
            if (bi > end[two]).any() or (sb[np.minimum(bi, len(sb) - 1)] != bs).any():
                raise _NotCovered
            a[two] = p2 + 2
            b[two] = bi
        out.append((elem, (tag >> np.uint64(3)).astype(np.int64), wt.astype(np.int8), a, b))
        more = b < end
        elem, pos, end = elem[more], b[more], end[more]
    else:
        raise _NotCovered
    if not out:
        z = np.zeros(0, np.int64)
        return _Fields(z, z, np.zeros(0, np.int8), z, z)
    return _Fields(*(np.concatenate(c) for c in zip(*out)))


def _scalar(st: _Stream, f: _Fields, num: int, n: int) -> np.ndarray:
    """Field ``num`` (a single integer) per message as uint64; 0 when absent, the last one wins."""
    m = f.num == num
    if (f.wt[m] != 0).any():
        raise _NotCovered
    col = np.zeros(n, np.uint64)
    col[f.elem[m]] = st.v[f.a[m]]
    return col


def _select(f: _Fields, num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Occurrences of field ``num`` ordered by message, then by position: (elem, wt, a, b)."""
    m = np.flatnonzero(f.num == num)
    elem = f.elem[m]
    if len(elem) > 1 and not (elem[1:] > elem[:-1]).all():
        m = m[np.argsort(elem, kind="stable")]      # rounds were appended in order: stable keeps it
        elem = f.elem[m]
    return elem, f.wt[m], f.a[m], f.b[m]


def _repeated(st: _Stream, f: _Fields, num: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A repeated integer field (packed or not) per message: (count per message, all values)."""
    elem, _, a, b = _select(f, num)
    seg = b - a
    lens = np.zeros(n, np.int64)
    if len(elem) > 1 and not (elem[1:] > elem[:-1]).all():
        np.add.at(lens, elem, seg)        # several fields (unpacked values) in one message
    else:
        lens[elem] = seg
    total = int(seg.sum())
    if total == 0:
        return lens, np.zeros(0, np.uint64)
    before = np.cumsum(seg) - seg
    idx = np.repeat(a - before, seg) + np.arange(total)
    return lens, st.v[idx]


def _i64(x: np.ndarray) -> np.ndarray:
    return x.view(np.int64)


def scan(raw: bytes, use_native: bool = True) -> Scanned | None:
    """Read ``raw`` (an uncompressed pprof) into columns, or None if this reading does not cover it.
    The compiled reading runs first when it is built; otherwise the four tables form one varint
    stream and are walked together with numpy; so are the nested messages (location lines and
    sample labels)."""
    try:
        view = pb.ProfileView.FromString(raw)
    except DecodeError:
        return None
    if use_native and native is not None:
        cols = native.scan(raw)
        if cols is not None:
            return _from_native(view, cols)
    return _scan_numpy(view)


_U64, _I64 = np.dtype(np.uint64), np.dtype(np.int64)      # native byte order, as the C code writes
_NATIVE_TYPES = (_U64, _I64, _U64, _I64, _I64, _I64, _I64, _U64, _U64, _U64, _I64, _U64, _I64,
                 _I64, _U64, _I64, _I64, _I64, _I64, _I64, _I64, _I64)


def _from_native(view: pb.ProfileView, cols: tuple) -> Scanned:
    c = [np.frombuffer(b, t) for b, t in zip(cols, _NATIVE_TYPES)]
    labels = LabelRows(*c[17:22]) if len(c[17]) else None
    return Scanned(view, Tables(*c[:13]), SampleColumns(c[13], c[14], c[15], c[16], labels))


def _scan_numpy(view: pb.ProfileView) -> Scanned | None:
    try:
        counts = (len(view.mapping), len(view.function), len(view.location), len(view.sample))
        st = _Stream(chain(view.mapping, view.function, view.location, view.sample))
        f = _walk(st, st.starts, st.ends)
        lo = np.cumsum((0,) + counts)
        maps, funcs, locs, samples = (_subset(f, int(lo[i]), int(lo[i + 1])) for i in range(4))
        line_parent, line_wt, line_a, line_b = _select(locs, 4)
        label_parent, label_wt, label_a, label_b = _select(samples, 3)
        if (line_wt != 2).any() or (label_wt != 2).any():
            raise _NotCovered
        nested = _walk(st, np.concatenate([line_a, label_a]), np.concatenate([line_b, label_b]))
        k = len(line_parent)
        lines = _subset(nested, 0, k)
        labels = _subset(nested, k, k + len(label_parent))
        return Scanned(view, _tables(st, counts, maps, funcs, locs, line_parent, lines),
                       _samples(st, counts[3], samples, label_parent, labels))
    except (_NotCovered, DecodeError):
        return None


def _subset(f: _Fields, lo: int, hi: int) -> _Fields:
    """The fields of messages ``lo..hi-1``, renumbered from 0."""
    m = (f.elem >= lo) & (f.elem < hi)
    return _Fields(f.elem[m] - lo, f.num[m], f.wt[m], f.a[m], f.b[m])


def _tables(st: _Stream, counts, maps: _Fields, funcs: _Fields, locs: _Fields, line_parent: np.ndarray,
            lines: _Fields) -> Tables:
    nm, nf, nl = counts[0], counts[1], counts[2]
    fn = [_scalar(st, funcs, k, nf) for k in (1, 2, 3, 4, 5)]
    k = len(line_parent)
    nlines = np.bincount(line_parent, minlength=nl).astype(np.int64) if k else np.zeros(nl, np.int64)
    return Tables(_scalar(st, maps, 1, nm), _i64(_scalar(st, maps, 5, nm)),
                  fn[0], _i64(fn[1]), _i64(fn[2]), _i64(fn[3]), _i64(fn[4]),
                  _scalar(st, locs, 1, nl), _scalar(st, locs, 2, nl), _scalar(st, locs, 3, nl), nlines,
                  _scalar(st, lines, 1, k), _i64(_scalar(st, lines, 2, k)))


def _samples(st: _Stream, n: int, f: _Fields, label_parent: np.ndarray, lf: _Fields) -> SampleColumns:
    slens, sloc = _repeated(st, f, 1, n)
    vlens, values = _repeated(st, f, 2, n)
    k = len(label_parent)
    labels = LabelRows(label_parent, *(_i64(_scalar(st, lf, j, k)) for j in (1, 2, 3, 4))) if k else None
    return SampleColumns(slens, sloc, vlens, _i64(values), labels)
