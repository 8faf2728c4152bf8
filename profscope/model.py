"""The canonical, columnar profile every decoder produces and every consumer reads.

A :class:`Profile` holds samples as numpy columns. Stacks are stored flat (CSR): sample ``i``
has frames ``stack_frames[stack_offsets[i]:stack_offsets[i + 1]]``, **leaf first**, each an
index into :class:`FrameTable`. Values are an ``int64[n_samples, n_types]`` matrix.

A :class:`StackSet` is what analysis works on: one sample type, values merged per distinct
stack. Both a decoded file and a store query produce one.
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


class ValueType(NamedTuple):
    type: str
    unit: str


class Label(NamedTuple):
    """A pprof sample label: a string label has ``num == 0`` and ``unit == ""``; a numeric one
    has ``str == ""``."""
    key: str
    str: str = ""
    num: int = 0
    unit: str = ""
    is_num: bool = False


class _PackedColumns:
    """Columns a pickle carried packed (``__dict__["_packed"]``, see each class's ``__getstate__``),
    rebuilt by ``_unpack`` the first time one of them (``_LAZY``) is read."""
    _LAZY: tuple[str, ...] = ()

    def _unpack(self, packed) -> dict:
        raise NotImplementedError

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def __getattr__(self, attr: str):
        # only called for a missing attribute: a packed column not yet rebuilt
        packed = self.__dict__.get("_packed")
        if packed is None or attr not in self._LAZY:
            raise AttributeError(attr)
        self.__dict__.update(self._unpack(packed))
        del self.__dict__["_packed"]
        return self.__dict__[attr]


@dataclass
class FrameTable(_PackedColumns):
    """One row per distinct frame. ``name == ""`` marks an address-only frame."""
    name: list[str] = field(default_factory=list)
    system_name: list[str] = field(default_factory=list)
    file: list[str] = field(default_factory=list)
    line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    start_line: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    address: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    mapping_file: list[str] = field(default_factory=list)
    # per-frame content keys (uint64) of :func:`profscope.hashing.frame_content_keys`, when the
    # decoder computed them cheaply (pprof: from its string table); valid in this process and its
    # forks only. Whatever changes the columns afterwards must set this back to None.
    keys: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the four string columns as (string table, int64 indices of shape (4, n)), when the decoder
    # had them: a FrameTable then crosses processes as one string and four index arrays (see
    # __getstate__), not as thousands of strings. Same rule as ``keys``.
    strtab: tuple[list[str], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.line)

    def changed(self) -> None:
        """Drop what was derived from the columns (call after changing them in place)."""
        self.keys = self.strtab = None

    # Pickling (decoding worker -> storing process): with a string table the four string columns
    # travel as one string plus indices, and are rebuilt only when first read; the store reads
    # them only for frames it has not seen before.
    _STR_COLUMNS = _LAZY = ("name", "system_name", "file", "mapping_file")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.strtab is not None:
            table, idx = self.strtab
            joined = "\0".join(table)
            if idx.shape == (4, len(self)) and joined.count("\0") == len(table) - 1:
                for c in self._STR_COLUMNS:
                    del state[c]
                state["strtab"] = None
                state["_packed"] = (joined, idx)
        return state

    def _unpack(self, packed: tuple[str, np.ndarray]) -> dict:
        joined, idx = packed             # rebuilt, the columns may be changed: no strtab from now on
        table = joined.split("\0")
        return {c: list(map(table.__getitem__, ix)) for c, ix in zip(self._STR_COLUMNS, idx.tolist(), strict=True)}

    def content_keys(self) -> np.ndarray:
        """The frames' content keys: equal keys mean equal frames (see :mod:`profscope.hashing`)."""
        if self.keys is None or len(self.keys) != len(self):
            from .hashing import frame_content_keys, str_hashes
            self.keys = frame_content_keys(
                str_hashes(self.name), str_hashes(self.system_name), str_hashes(self.file), self.line,
                self.start_line, self.address, str_hashes(self.mapping_file))
        return self.keys

    @classmethod
    def from_rows(cls, rows: list[tuple[str, str, str, int, int, int, str]]) -> FrameTable:
        """Rows of (name, system_name, file, line, start_line, address, mapping_file)."""
        if not rows:
            return cls()
        name, sysname, file, line, start, addr, mfile = zip(*rows)
        return cls(list(name), list(sysname), list(file), np.array(line, np.int64),
                   np.array(start, np.int64), np.array(addr, np.uint64), list(mfile))

    @classmethod
    def from_names(cls, names: list[str], files: list[str] | None = None,
                   lines: list[int] | None = None) -> FrameTable:
        n = len(names)
        return cls(list(names), [""] * n, list(files) if files else [""] * n,
                   np.array(lines if lines else [0] * n, np.int64), np.zeros(n, np.int64),
                   np.zeros(n, np.uint64), [""] * n)

    def take(self, idx: np.ndarray) -> FrameTable:
        ix = idx.tolist()
        return FrameTable([self.name[i] for i in ix], [self.system_name[i] for i in ix],
                          [self.file[i] for i in ix], self.line[idx], self.start_line[idx],
                          self.address[idx], [self.mapping_file[i] for i in ix],
                          None if self.keys is None else self.keys[idx])


@dataclass
class Profile(_PackedColumns):
    sample_types: list[ValueType]
    values: np.ndarray            # int64 [n_samples, n_types]
    stack_offsets: np.ndarray     # int64 [n_samples + 1]
    stack_frames: np.ndarray      # int32, leaf first
    frames: FrameTable
    sample_labels: np.ndarray     # int32 [n_samples], index into label_sets; 0 = no labels
    label_sets: list[tuple[Label, ...]] = field(default_factory=lambda: [()])
    period_type: ValueType | None = None
    period: int = 0
    time_nanos: int = 0
    duration_nanos: int = 0
    default_sample_type: str = ""
    comments: list[str] = field(default_factory=list)
    doc_url: str = ""
    drop_frames: str = ""
    keep_frames: str = ""
    source_format: str = "pprof"
    warnings: list[str] = field(default_factory=list)

    # Pickling (decoding worker -> storing process): the sample and frame columns travel as one
    # nested pickle, unpickled when first read. The store's writer reads them only for a profile
    # with stacks it has not seen before, so for the usual push it never rebuilds its arrays.
    _LAZY = ("values", "stack_offsets", "stack_frames", "frames", "sample_labels")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if "_packed" not in state:
            cols = {c: state.pop(c) for c in self._LAZY}
            state["_packed"] = (int(cols["values"].shape[0]),
                                 pickle.dumps(cols, protocol=pickle.HIGHEST_PROTOCOL))
        return state

    def _unpack(self, packed: tuple[int, bytes]) -> dict:
        return pickle.loads(packed[1])

    @property
    def n_samples(self) -> int:
        packed = self.__dict__.get("_packed")
        return packed[0] if packed is not None else int(self.values.shape[0])

    def default_type_index(self) -> int:
        """pprof's rule: ``default_sample_type`` if it names a type, else the last type."""
        if self.default_sample_type:
            for i, st in enumerate(self.sample_types):
                if st.type == self.default_sample_type:
                    return i
        return len(self.sample_types) - 1

    def type_index(self, sample_type: str | None) -> int:
        from .errors import BadInput
        if not self.sample_types:
            raise BadInput("profile has no sample types")
        if sample_type is None or sample_type == "":
            return self.default_type_index()
        for i, st in enumerate(self.sample_types):
            if sample_type in (st.type, f"{st.type}:{st.unit}"):
                return i
        if sample_type.isdigit() and int(sample_type) < len(self.sample_types):
            return int(sample_type)
        avail = ", ".join(st.type or "''" for st in self.sample_types)
        raise BadInput(f"sample_type {sample_type!r} not in profile; available: {avail}")

    def stack_lengths(self) -> np.ndarray:
        return np.diff(self.stack_offsets)


@dataclass
class StackSet:
    """Distinct stacks (leaf first, CSR) with one merged value each, for one sample type."""
    stack_offsets: np.ndarray     # int64 [n_stacks + 1]
    stack_frames: np.ndarray      # int32 frame indices, leaf first
    values: np.ndarray            # int64 [n_stacks]
    frames: FrameTable
    sample_type: ValueType = ValueType("", "")
    total: int = 0                # pprof total: sum of |value| over all samples selected
    n_profiles: int = 1
    duration_nanos: int = 0
    period: int = 0
    period_type: ValueType | None = None
    comments: list[str] = field(default_factory=list)   # pprof comments of the merged profiles

    @property
    def n_stacks(self) -> int:
        return int(self.values.shape[0])

    def lengths(self) -> np.ndarray:
        return np.diff(self.stack_offsets)

    def stack_index(self) -> np.ndarray:
        """For every entry of ``stack_frames``, the index of the stack it belongs to."""
        return np.repeat(np.arange(self.n_stacks, dtype=np.int64), self.lengths())

    def leaf_frames(self) -> np.ndarray:
        """Leaf frame of each stack, -1 for empty stacks."""
        lens = self.lengths()
        out = np.full(self.n_stacks, -1, np.int64)
        nz = lens > 0
        out[nz] = self.stack_frames[self.stack_offsets[:-1][nz]]
        return out

    def subset(self, keep: np.ndarray) -> StackSet:
        """Keep the stacks where the boolean mask ``keep`` is true (frames table shared)."""
        offs, frames = csr_take(self.stack_offsets, self.stack_frames, np.flatnonzero(keep))
        return StackSet(offs, frames, self.values[keep], self.frames, self.sample_type,
                        self.total, self.n_profiles, self.duration_nanos, self.period,
                        self.period_type, self.comments)


def csr_take(offsets: np.ndarray, flat: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Select ``rows`` of a CSR array, vectorized."""
    lens = np.diff(offsets)[rows]
    new_offs = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lens, out=new_offs[1:])
    if new_offs[-1] == 0:
        return new_offs, flat[:0]
    starts = offsets[:-1][rows]
    # position of each output element in the input: start of its row + rank within the row
    idx = np.repeat(starts - new_offs[:-1], lens) + np.arange(new_offs[-1])
    return new_offs, flat[idx]
