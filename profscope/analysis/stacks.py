"""From a decoded :class:`Profile` to a merged :class:`StackSet`, and frame naming.

No I/O here. Everything is vectorized over samples; the only Python loops run over distinct
frames or label sets, which are far fewer.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..errors import BadInput
from ..hashing import mix64 as _mix
from ..model import FrameTable, Label, Profile, StackSet, ValueType, csr_take

GRANULARITIES = ("functions", "files", "lines", "addresses")



# odd per-position multipliers for order-sensitive stack hashes (deterministic, no RNG)
_POS_MIX = _mix(np.arange(1 << 16, dtype=np.uint64) * np.uint64(0x2545F4914F6CDD1D)) | np.uint64(1)


def unique_inverse(x: np.ndarray, first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(index of one occurrence of each distinct value, in sorted order; group of each element).
    ``first``: the first occurrence (a stable sort, a little slower)."""
    if not len(x):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(x, kind="stable" if first else None)
    xs = x[order]
    start = np.empty(len(x), bool)
    start[0] = True
    np.not_equal(xs[1:], xs[:-1], out=start[1:])
    inv = np.empty(len(x), np.int64)
    inv[order] = np.cumsum(start) - 1
    return order[start], inv


def unique_sorted(x: np.ndarray) -> np.ndarray:
    """Distinct values of ``x``, sorted."""
    xs = np.sort(x)
    if len(xs) < 2:
        return xs
    keep = np.empty(len(xs), bool)
    keep[0] = True
    np.not_equal(xs[1:], xs[:-1], out=keep[1:])
    return xs[keep]


def sequence_hashes(offs: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """A 64-bit hash per CSR row, sensitive to order and length: the sum over positions of
    (value + 1) times an odd key for the position (in memory only:
    stored hashes use :func:`stack_hashes`), then mixed with the length."""
    lens = np.diff(offs)
    if not len(flat):
        return _mix(lens.astype(np.uint64))
    pos = np.arange(len(flat), dtype=np.int64)
    pos -= np.repeat(offs[:-1], lens)
    np.bitwise_and(pos, 0xFFFF, out=pos)
    terms = _POS_MIX[pos]
    with np.errstate(over="ignore"):
        k = flat.astype(np.uint64)
        k += np.uint64(1)
        terms *= k
        csum = np.empty(len(flat) + 1, np.uint64)
        csum[0] = 0
        np.cumsum(terms, out=csum[1:])
        return _mix((csum[offs[1:]] - csum[offs[:-1]]) ^ _mix(lens.astype(np.uint64)))


class RootFirst(NamedTuple):
    """Leaf-first CSR stacks laid out root first: slot ``offs[s] + d`` is depth ``d`` of stack
    ``s``; ``prefix`` hashes the root-to-slot path, so equal paths share a hash."""
    sidx: np.ndarray      # stack of each slot
    depth: np.ndarray     # depth of each slot (0 = the root-side frame)
    length: np.ndarray    # length of the slot's stack
    key: np.ndarray       # value at the slot (uint64)
    prefix: np.ndarray    # uint64 hash of the path root..slot


def root_first(offs: np.ndarray, flat: np.ndarray) -> RootFirst:
    lens = np.diff(offs)
    sidx = np.repeat(np.arange(len(lens)), lens)
    dd = np.arange(len(flat), dtype=np.int64) - offs[:-1][sidx]
    slen = lens[sidx]
    kd = flat[offs[:-1][sidx] + slen - 1 - dd].astype(np.uint64)
    with np.errstate(over="ignore"):
        # sum over j <= d of mix(key_j) * P[j], then mixed with the depth
        terms = _mix(kd + np.uint64(1)) * _POS_MIX[dd % len(_POS_MIX)] + dd.astype(np.uint64)
        csum = np.cumsum(terms, dtype=np.uint64)
        base = np.concatenate([np.zeros(1, np.uint64), csum])[offs[:-1][sidx]]
        prefix = _mix((csum - base) ^ _mix(dd.astype(np.uint64)))
    return RootFirst(sidx, dd, slen, kd, prefix)


def stack_hashes(offsets: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """A 64-bit content hash per CSR row (order- and length-sensitive), vectorized."""
    n = len(offsets) - 1
    lens = np.diff(offsets)
    with np.errstate(over="ignore"):
        if len(flat) == 0:
            return _mix(lens.astype(np.uint64))
        pos = np.arange(len(flat), dtype=np.int64)
        pos -= np.repeat(offsets[:-1], lens)
        terms = _mix(flat)
        terms *= _POS_MIX[pos & (len(_POS_MIX) - 1)]      # a power of two: & is the modulo
        terms += pos.view(np.uint64)
        csum = np.cumsum(terms, dtype=np.uint64)
        csum0 = np.concatenate([np.zeros(1, np.uint64), csum])
        h = csum0[offsets[1:]] - csum0[offsets[:-1]]
        return _mix(h ^ _mix(lens.astype(np.uint64))) if n else h


def merge_rows(offsets: np.ndarray, flat: np.ndarray, values: np.ndarray,
               extra_key: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge equal CSR rows (optionally also equal ``extra_key``), summing ``values`` (1-D or 2-D).

    Returns (offsets, flat, summed values, inverse index of each input row)."""
    h = sequence_hashes(offsets, flat)
    if extra_key is not None:
        with np.errstate(over="ignore"):
            h = _mix(h ^ _mix(extra_key.astype(np.uint64) + np.uint64(0x51)))
    first, inv = unique_inverse(h)
    if values.ndim == 1:
        summed = np.zeros(len(first), np.int64)
        np.add.at(summed, inv, values)
    else:
        summed = np.zeros((len(first), values.shape[1]), np.int64)
        np.add.at(summed, inv, values)
    new_offs, new_flat = csr_take(offsets, flat, first)
    return new_offs, new_flat, summed, inv


# ---------------------------------------------------------------- label filters
@dataclass(frozen=True)
class TagFilter:
    """``[key=]regex[,regex...]`` (string labels) or ``[key=]lo:hi`` with optional units (numeric
    labels): pprof's -tagfocus / -tagignore, rules in :mod:`profscope.analysis.tagfilter`.
    ``negate`` makes it a tagignore."""
    key: str
    pattern: str
    negate: bool = False

    @classmethod
    def parse(cls, text: str, negate: bool = False) -> TagFilter:
        """pprof splits at the first ``=``; without one the filter looks at every label key."""
        if "=" not in text:
            return cls("", text.strip(), negate).check()
        k, v = text.split("=", 1)
        return cls(k.strip(), v.strip(), negate).check()

    def check(self) -> TagFilter:
        """Compile now, so a bad regex is refused when the filter is given."""
        self.compiled()
        return self

    @functools.cache  # noqa: B019 (frozen, hashable, few instances)
    def compiled(self):
        from .tagfilter import CompiledTagFilter
        return CompiledTagFilter(self.key, self.pattern)

    def passes(self, view, units: dict[str, str]) -> bool:
        """Whether a sample with labels ``view`` (a :class:`~profscope.analysis.tagfilter.LabelView`)
        is kept: the filter matches, or for a tagignore, it does not."""
        return self.compiled().test(view, units) != self.negate

    def matches(self, labels: tuple[Label, ...], units: dict[str, str] | None = None) -> bool:
        """``passes`` for a label set of a decoded profile; ``units`` as :func:`label_units`."""
        return self.passes(label_view(labels), units if units is not None else label_units([labels]))


def label_view(labels: tuple[Label, ...]):
    from .tagfilter import LabelView
    view = LabelView({}, {})
    for lb in labels:
        if lb.is_num:
            view.nums.setdefault(lb.key, []).append(lb.num)
        else:
            view.strs.setdefault(lb.key, []).append(lb.str)
    return view


def label_units(label_sets) -> dict[str, str]:
    """pprof's unit of every numeric label key of a profile (its ``NumLabelUnits``)."""
    from .tagfilter import infer_units
    return infer_units((lb.key, lb.unit) for ls in label_sets for lb in ls if lb.is_num)


def label_mask(profile: Profile, filters: list[TagFilter]) -> np.ndarray | None:
    """Boolean mask over samples, or None when no filter applies."""
    if not filters:
        return None
    units = label_units(profile.label_sets)
    views = [label_view(ls) for ls in profile.label_sets]
    ok_sets = np.array([all(f.passes(v, units) for f in filters) for v in views], bool)
    return ok_sets[profile.sample_labels]


# ---------------------------------------------------------------- frame names
def frame_keys(frames: FrameTable, granularity: str = "functions") -> tuple[np.ndarray, list[str]]:
    """Map every frame to a node id at ``granularity``; returns (key id per frame, key names).

    Names follow go tool pprof's ``NodeInfo.PrintableName``: address-only frames become
    ``[binary]`` of their mapping, or ``<unknown>`` without one."""
    if granularity not in GRANULARITIES:
        raise BadInput(f"granularity {granularity!r} is not one of: {', '.join(GRANULARITIES)}")
    names: list[str] = []
    index: dict[str, int] = {}
    out = np.empty(len(frames), np.int32)
    for i in range(len(frames)):
        nm = display_name(frames, i, granularity)
        k = index.get(nm)
        if k is None:
            k = index[nm] = len(names)
            names.append(nm)
        out[i] = k
    return out, names


def display_name(frames: FrameTable, i: int, granularity: str = "functions") -> str:
    name = frames.name[i]
    file = frames.file[i] if granularity in ("files", "lines", "addresses") else ""
    line = int(frames.line[i]) if granularity in ("lines", "addresses") else 0
    if granularity == "files":
        name = ""
    parts = []
    if granularity == "addresses" and int(frames.address[i]):
        parts.append(f"{int(frames.address[i]):016x}")
    if name:
        parts.append(name)
    if line and file:
        parts.append(f"{os.path.normpath(file)}:{line}")
    elif file:
        parts.append(os.path.normpath(file))
    elif name:
        pass
    elif frames.mapping_file[i]:
        parts.append("[" + os.path.basename(frames.mapping_file[i]) + "]")
    else:
        parts.append("<unknown>")
    return " ".join(parts)


def frame_regex_mask(frames: FrameTable, pattern: str) -> np.ndarray:
    """Frames whose function name, file name or mapping file matches ``pattern`` (pprof rules)."""
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise BadInput(f"regex {pattern!r} is invalid: {e}") from None
    return np.array([bool(rx.search(frames.name[i]) or rx.search(frames.file[i])
                          or rx.search(frames.mapping_file[i])) for i in range(len(frames))], bool)


def _rows_with_frame(ss_offsets: np.ndarray, flat: np.ndarray, frame_mask: np.ndarray) -> np.ndarray:
    n = len(ss_offsets) - 1
    if len(flat) == 0:
        return np.zeros(n, bool)
    hits = frame_mask[flat].astype(np.int64)
    csum = np.concatenate([[0], np.cumsum(hits)])
    return (csum[ss_offsets[1:]] - csum[ss_offsets[:-1]]) > 0


@dataclass(frozen=True)
class Filters:
    focus: str | None = None
    ignore: str | None = None
    tags: tuple[TagFilter, ...] = ()


def apply_frame_filters(ss: StackSet, focus: str | None, ignore: str | None) -> StackSet:
    if not focus and not ignore:
        return ss
    keep = np.ones(ss.n_stacks, bool)
    if focus:
        keep &= _rows_with_frame(ss.stack_offsets, ss.stack_frames, frame_regex_mask(ss.frames, focus))
    if ignore:
        keep &= ~_rows_with_frame(ss.stack_offsets, ss.stack_frames, frame_regex_mask(ss.frames, ignore))
    # like pprof, the total stays that of the whole selection: shares are of everything
    return ss.subset(keep)


def profile_to_stackset(profile: Profile, sample_type: str | None = None,
                        filters: Filters = Filters()) -> StackSet:
    """One sample type of a profile, merged per stack, with filters applied."""
    ti = profile.type_index(sample_type)
    v = profile.values[:, ti] if profile.n_samples else np.zeros(0, np.int64)
    offs, flat = profile.stack_offsets, profile.stack_frames
    labels = profile.sample_labels
    # pprof total: samples merged by (stack, labels), then sum of absolute values; filters
    # (tag or frame) keep the total of the whole profile, as pprof does
    if (v < 0).any():
        _, _, by_stack_label, _ = merge_rows(offs, flat, v, extra_key=labels)
        total = int(np.abs(by_stack_label).sum())
    else:
        total = int(v.sum())
    mask = label_mask(profile, list(filters.tags))
    if mask is not None:
        rows = np.flatnonzero(mask)
        offs, flat = csr_take(offs, flat, rows)
        v = v[rows]
    m_offs, m_flat, m_vals, _ = merge_rows(offs, flat, v)
    st = profile.sample_types[ti] if profile.sample_types else ValueType("", "")
    ss = StackSet(m_offs, m_flat, m_vals, profile.frames, st, total, 1, profile.duration_nanos,
                  profile.period, profile.period_type, list(profile.comments))
    return apply_frame_filters(ss, filters.focus, filters.ignore)


def concat_stacksets(sets: list[StackSet]) -> StackSet:
    """Merge several stack sets of the same sample type (frames tables are concatenated)."""
    if len(sets) == 1:
        return sets[0]
    offs_parts, flat_parts, vals, frame_tables = [], [], [], []
    base_frame = 0
    base_off = 0
    for s in sets:
        offs_parts.append(s.stack_offsets[:-1] + base_off)
        flat_parts.append(s.stack_frames.astype(np.int64) + base_frame)
        vals.append(s.values)
        base_off += int(s.stack_offsets[-1])
        base_frame += len(s.frames)
        frame_tables.append(s.frames)
    offs = np.concatenate(offs_parts + [np.array([base_off])]).astype(np.int64)
    flat = np.concatenate(flat_parts).astype(np.int32) if flat_parts else np.zeros(0, np.int32)
    frames = FrameTable(
        sum((f.name for f in frame_tables), []), sum((f.system_name for f in frame_tables), []),
        sum((f.file for f in frame_tables), []), np.concatenate([f.line for f in frame_tables]),
        np.concatenate([f.start_line for f in frame_tables]),
        np.concatenate([f.address for f in frame_tables]),
        sum((f.mapping_file for f in frame_tables), []))
    m_offs, m_flat, m_vals, _ = merge_rows(offs, flat, np.concatenate(vals))
    first = sets[0]
    return StackSet(m_offs, m_flat, m_vals, frames, first.sample_type, sum(s.total for s in sets),
                    sum(s.n_profiles for s in sets), sum(s.duration_nanos for s in sets),
                    first.period, first.period_type, unique_comments(c for s in sets for c in s.comments))


# ---------------------------------------------------------------- call-site selection
def call_site_mask(offs: np.ndarray, flat: np.ndarray, frames: FrameTable,
                   call_site: tuple[str, ...] | list[str]) -> np.ndarray:
    """Stacks (leaf-first CSR rows) whose root-first function names start with ``call_site``
    (names as the flame graph shows them, ``frame_keys`` at function granularity): Pyroscope's
    ``StackTraceSelector.call_site``. An empty ``call_site`` keeps every stack. Vectorized over
    stacks; the only loop runs over the (short) call site."""
    n = len(offs) - 1
    if not call_site:
        return np.ones(n, bool)
    depth = len(call_site)
    lens = np.diff(offs)
    keep = lens >= depth
    if not keep.any():
        return keep
    keys, knames = frame_keys(frames, "functions")
    index = {nm: k for k, nm in enumerate(knames)}
    rows = np.flatnonzero(keep)
    root_pos = offs[1:][rows] - 1            # leaf first: the root frame is the row's last entry
    for i, name in enumerate(call_site):
        k = index.get(name)
        if k is None:
            return np.zeros(n, bool)
        ok = keys[flat[root_pos - i]] == k
        rows, root_pos = rows[ok], root_pos[ok]
    out = np.zeros(n, bool)
    out[rows] = True
    return out


def keep_call_site(ss: StackSet, call_site: tuple[str, ...] | list[str]) -> StackSet:
    """The stacks of ``ss`` under ``call_site`` (see :func:`call_site_mask`); the total becomes
    that of the kept stacks, as Pyroscope reports it."""
    if not call_site:
        return ss
    out = ss.subset(call_site_mask(ss.stack_offsets, ss.stack_frames, ss.frames, call_site))
    out.total = int(np.abs(out.values).sum())
    return out


def unique_comments(comments) -> list[str]:
    """Comments without repeats, in first-seen order (what a merged export carries)."""
    return list(dict.fromkeys(comments))


def name_ranks(names: list[str]) -> np.ndarray:
    """Rank of each name in sorted order (equal names keep their order)."""
    rank = np.empty(len(names), np.int64)
    rank[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return rank
