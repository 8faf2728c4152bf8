"""PSF1, the flat-tree input of Wasm analyzers (see ``wasm/ABI.md``). No I/O here.

A PSF1 buffer is a 64-byte little-endian header of u32 fields followed by arrays that each
start on an 8-byte boundary: parent (u32), name (u32), self, total, base_self, base_total
(i64), the string offsets (u32[n_names + 1]), the UTF-8 string data and the metadata JSON.

Encoding is planned first (:func:`plan_psf1`) and then written straight into a destination
buffer (:meth:`Psf1Plan.write_into`), so the host can write into a guest's linear memory
without an intermediate copy. Everything is numpy except building the string data.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..analysis.tree import Tree
from ..errors import BadInput, LimitExceeded

MAGIC = b"PSF1"
VERSION = 1
FLAG_DIFF = 1
HEADER_SIZE = 64
NO_PARENT = 0xFFFFFFFF
MAX_LEN = 0xFFFFFFFF

# header field order after magic (each u32): byte offset = 4 + 4 * index
HEADER_FIELDS = ("version", "flags", "n_nodes", "n_names", "off_parent", "off_name", "off_self",
                 "off_total", "off_base_self", "off_base_total", "off_stroff", "off_strdata",
                 "off_meta", "meta_len", "total_len")


def _align8(x: int) -> int:
    return (x + 7) & ~7


def encode_names(names: list[str]) -> tuple[bytes, np.ndarray]:
    """UTF-8 string data and ``u32[n + 1]`` byte offsets of ``names``."""
    joined = "".join(names)
    try:
        data = joined.encode("utf-8")
        ascii_only = len(data) == len(joined)
    except UnicodeEncodeError:          # lone surrogates from a lenient decoder
        data, ascii_only = b"", False
    if ascii_only:
        lens = np.fromiter(map(len, names), np.int64, len(names))
    else:
        parts = [s.encode("utf-8", "replace") for s in names]
        data = b"".join(parts)
        lens = np.fromiter(map(len, parts), np.int64, len(parts))
    offs = np.zeros(len(names) + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    return data, offs


@dataclass
class Psf1Plan:
    """Offsets and prepared columns of one PSF1 buffer; :meth:`write_into` fills a buffer."""
    tree: Tree
    diff: bool
    strdata: bytes
    stroff: np.ndarray
    meta: bytes
    offsets: dict[str, int]
    total_len: int

    def header(self) -> np.ndarray:
        o = self.offsets
        vals = [VERSION, FLAG_DIFF if self.diff else 0, self.tree.n_nodes, len(self.tree.names),
                o["parent"], o["name"], o["self"], o["total"], o["base_self"], o["base_total"],
                o["stroff"], o["strdata"], o["meta"], len(self.meta), self.total_len]
        return np.array(vals, "<u4")

    def write_into(self, dst: np.ndarray) -> None:
        """Write the whole buffer into ``dst`` (a writable ``uint8`` array of ``total_len``)."""
        if dst.dtype != np.uint8 or len(dst) != self.total_len:
            raise ValueError(f"destination must be uint8[{self.total_len}]")
        t, o, n = self.tree, self.offsets, self.tree.n_nodes
        dst[:4] = np.frombuffer(MAGIC, np.uint8)
        dst[4:HEADER_SIZE].view("<u4")[:] = self.header()
        ends: list[tuple[int, int]] = []

        def put(key: str, arr: np.ndarray, dtype: str) -> None:
            start = o[key]
            nbytes = len(arr) * np.dtype(dtype).itemsize
            dst[start:start + nbytes].view(dtype)[:] = arr
            ends.append((start, start + nbytes))

        put("parent", t.parent.astype(np.int64) & NO_PARENT, "<u4")
        put("name", t.name, "<u4")
        head = 1 if self.diff else 0
        put("self", t.self_[:, head], "<i8")
        put("total", t.total[:, head], "<i8")
        if self.diff:
            put("base_self", t.self_[:, 0], "<i8")
            put("base_total", t.total[:, 0], "<i8")
        else:
            for key in ("base_self", "base_total"):
                dst[o[key]:o[key] + 8 * n] = 0
                ends.append((o[key], o[key] + 8 * n))
        put("stroff", self.stroff, "<u4")
        dst[o["strdata"]:o["strdata"] + len(self.strdata)] = np.frombuffer(self.strdata, np.uint8)
        ends.append((o["strdata"], o["strdata"] + len(self.strdata)))
        dst[o["meta"]:o["meta"] + len(self.meta)] = np.frombuffer(self.meta, np.uint8)
        # zero the alignment padding between arrays (the destination may hold old bytes)
        ends.sort()
        for (_, end), (nxt, _) in zip(ends, ends[1:] + [(o["meta"], 0)], strict=True):
            if nxt > end:
                dst[end:nxt] = 0


def meta_bytes(meta: dict[str, Any]) -> bytes:
    """Metadata as compact UTF-8 JSON (non-finite floats refused)."""
    try:
        return json.dumps(meta, separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                          default=str).encode("utf-8", "replace")
    except ValueError as e:
        raise BadInput(f"PSF1 metadata is not JSON-serialisable: {e}") from None


def plan_psf1(tree: Tree, meta: dict[str, Any]) -> Psf1Plan:
    """Lay out ``tree`` (1 column, or 2 columns ``[base, head]`` for a diff) and ``meta``."""
    k = tree.self_.shape[1] if tree.self_.ndim == 2 else 1
    if k not in (1, 2):
        raise BadInput(f"PSF1 encodes a tree with 1 or 2 value columns, not {k}")
    n = tree.n_nodes
    strdata, stroff = encode_names(tree.names)
    mb = meta_bytes(meta)
    offsets: dict[str, int] = {}
    pos = HEADER_SIZE
    for key, size in (("parent", 4 * n), ("name", 4 * n), ("self", 8 * n), ("total", 8 * n),
                      ("base_self", 8 * n), ("base_total", 8 * n),
                      ("stroff", 4 * len(stroff)), ("strdata", len(strdata)), ("meta", len(mb))):
        offsets[key] = pos
        pos = _align8(pos + size) if key != "meta" else pos + size
    if pos > MAX_LEN:
        raise LimitExceeded(f"PSF1 buffer would be {pos} bytes; the format caps it at {MAX_LEN}")
    return Psf1Plan(tree, k == 2, strdata, stroff, mb, offsets, pos)


def encode_psf1(tree: Tree, meta: dict[str, Any]) -> bytes:
    """The PSF1 bytes of ``tree`` and ``meta``."""
    plan = plan_psf1(tree, meta)
    buf = np.empty(plan.total_len, np.uint8)
    plan.write_into(buf)
    return buf.tobytes()


@dataclass
class Psf1:
    """A decoded PSF1 buffer (used by tests and tools)."""
    diff: bool
    parent: np.ndarray       # uint32, NO_PARENT for the root
    name: np.ndarray         # uint32
    self_: np.ndarray        # int64 (head side for a diff)
    total: np.ndarray
    base_self: np.ndarray
    base_total: np.ndarray
    names: list[str]
    meta: dict[str, Any]
    header: dict[str, int]


def decode_psf1(buf: bytes) -> Psf1:
    """Parse and check a PSF1 buffer; raises :class:`BadInput` naming the broken field."""
    if len(buf) < HEADER_SIZE or buf[:4] != MAGIC:
        raise BadInput("not a PSF1 buffer: magic 'PSF1' missing")
    hv = np.frombuffer(buf, "<u4", len(HEADER_FIELDS), 4)
    h = dict(zip(HEADER_FIELDS, (int(x) for x in hv), strict=True))
    if h["version"] != VERSION:
        raise BadInput(f"PSF1 version {h['version']} is not {VERSION}")
    if h["total_len"] != len(buf):
        raise BadInput(f"PSF1 total_len {h['total_len']} != buffer length {len(buf)}")
    n, m = h["n_nodes"], h["n_names"]

    def arr(key: str, dtype: str, count: int) -> np.ndarray:
        off = h[key]
        size = count * np.dtype(dtype).itemsize
        if off % 8 or off + size > len(buf):
            raise BadInput(f"PSF1 {key}={off} is misaligned or out of bounds")
        return np.frombuffer(buf, dtype, count, off)

    parent, name = arr("off_parent", "<u4", n), arr("off_name", "<u4", n)
    cols = [arr(k, "<i8", n) for k in ("off_self", "off_total", "off_base_self", "off_base_total")]
    stroff = arr("off_stroff", "<u4", m + 1)
    if m and (np.diff(stroff.astype(np.int64)) < 0).any():
        raise BadInput("PSF1 string offsets are not monotonic")
    data = arr("off_strdata", "u1", int(stroff[-1]) if m + 1 else 0).tobytes()
    names = [data[stroff[i]:stroff[i + 1]].decode("utf-8") for i in range(m)]
    if h["off_meta"] + h["meta_len"] > len(buf):
        raise BadInput("PSF1 metadata is out of bounds")
    meta = json.loads(buf[h["off_meta"]:h["off_meta"] + h["meta_len"]].decode("utf-8"))
    if n and (parent[0] != NO_PARENT or (parent[1:].astype(np.int64) >= np.arange(1, n)).any()):
        raise BadInput("PSF1 nodes are not in pre-order with the root first")
    if n and (name >= max(m, 1)).any():
        raise BadInput("PSF1 node name index out of range")
    return Psf1(bool(h["flags"] & FLAG_DIFF), parent, name, *cols, names, meta, h)
