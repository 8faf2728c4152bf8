"""Store a decoded profile: vectorized, transactional (whole or nothing).

Frames, stacks, label sets and series are content-addressed: a 64-bit hash of their content maps
to a dense integer id, kept in memory (:class:`Dictionaries`) so a stack seen in a thousand
profiles is written once. Sample rows are ``(profile_id, stack_id, labelset_id, value)`` sorted by
stack, one set of rows per sample type.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..analysis.stacks import merge_rows, stack_hashes
from ..errors import BadInput, LimitExceeded
from ..limits import Limits
from ..model import Label, Profile
from .db import Database

RESERVED_OK = {"__name__"}


def h64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@dataclass
class Dictionaries:
    """hash -> dense id for each content-addressed table, plus decoded label sets and series."""
    frames: dict[int, int] = field(default_factory=dict)
    stacks: dict[int, int] = field(default_factory=dict)
    labelsets: dict[int, int] = field(default_factory=dict)
    labelset_labels: dict[int, dict[str, str]] = field(default_factory=dict)
    series: dict[int, int] = field(default_factory=dict)
    series_info: dict[int, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    next_profile: int = 1

    def load(self, db: Database) -> None:
        con = db.con
        for h, i in con.execute("SELECT hash, id FROM frames").fetchall():
            self.frames[h] = i
        ids = con.sql("SELECT hash, id FROM stacks").fetchnumpy()
        self.stacks.update(zip(ids["hash"].tolist(), ids["id"].tolist()))
        self.labelset_labels[0] = {}
        for h, i, k, v in con.execute("SELECT hash, id, keys, vals FROM labelsets").fetchall():
            self.labelsets[h] = i
            self.labelset_labels[i] = dict(zip(k, v))
        for h, i, tenant, ptype, k, v in con.execute(
                "SELECT hash, id, tenant, profile_type, keys, vals FROM series").fetchall():
            self.series[h] = i
            self.series_info[i] = (tenant, ptype, dict(zip(k, v)))
        self.next_profile = con.execute("SELECT coalesce(max(id), 0) + 1 FROM profiles").fetchall()[0][0]


def profile_name(sample_type: str, labels: dict[str, str]) -> str:
    """The ``__name__`` of a series: given, or derived from the sample type like Pyroscope's."""
    if labels.get("__name__"):
        return labels["__name__"]
    st = sample_type.lower()
    if st in ("cpu", "samples"):
        return "process_cpu"
    if st.startswith(("alloc_", "inuse_")) or st in ("space", "objects"):
        return "memory"
    if st in ("contentions", "delay"):
        return "block"
    if st in ("goroutine", "goroutines"):
        return "goroutine"
    if st in ("wall", "time"):
        return "wall"
    return "profile"


def check_labels(labels: dict[str, str], limits: Limits) -> None:
    if len(labels) > limits.max_label_names:
        raise LimitExceeded(f"{len(labels)} labels on the series; limit max_label_names={limits.max_label_names}")
    for k, v in labels.items():
        if not k or not (k[0].isalpha() or k[0] == "_") or not all(c.isalnum() or c in "_." for c in k):
            raise BadInput(f"label name {k!r} is invalid: use letters, digits, '_' and '.', not starting with a digit")
        if k.startswith("__") and k not in RESERVED_OK:
            raise BadInput(f"label name {k!r} is reserved (names starting with '__')")
        if len(k) > limits.max_label_name_len:
            raise LimitExceeded(f"label name {k[:40]!r}... is {len(k)} chars; limit max_label_name_len="
                                f"{limits.max_label_name_len}")
        if len(v) > limits.max_label_value_len:
            raise LimitExceeded(f"value of label {k!r} is {len(v)} chars; limit max_label_value_len="
                                f"{limits.max_label_value_len}")


@dataclass
class IngestResult:
    profile_ids: list[int]
    profile_types: list[str]
    samples: int
    source_id: str

    def to_json(self) -> dict:
        return {"profile_ids": self.profile_ids, "profile_types": self.profile_types,
                "samples": self.samples, "source_id": self.source_id}


def ingest_profile(db: Database, d: Dictionaries, profile: Profile, labels: dict[str, str],
                   tenant: str, limits: Limits) -> IngestResult:
    labels = {k: str(v) for k, v in labels.items()}
    labels.setdefault("service_name", "unknown_service")
    check_labels(labels, limits)
    if not profile.sample_types:
        raise BadInput("profile has no sample types")
    n = profile.n_samples
    if n > limits.max_samples:
        raise LimitExceeded(f"profile has {n} samples; limit max_samples={limits.max_samples}")
    depth = int(profile.stack_lengths().max()) if n else 0
    if depth > limits.max_stack_depth:
        raise LimitExceeded(f"a stack has {depth} frames; limit max_stack_depth={limits.max_stack_depth}")
    time_nanos = profile.time_nanos or time.time_ns()
    source_id = f"{time_nanos:x}-{h64(repr((labels, tenant, time.time_ns()))):016x}"

    # 1. merge samples per (stack, label set), all sample types at once
    m_offs, m_flat, m_vals, inv = merge_rows(profile.stack_offsets, profile.stack_frames, profile.values,
                                             extra_key=profile.sample_labels)
    row_labels = np.zeros(len(m_offs) - 1, np.int64)
    row_labels[inv] = profile.sample_labels

    with db.write_lock:
        new: dict[str, list] = {"frames": [], "stacks": [], "labelsets": [], "series": []}
        staged: dict[str, dict] = {"frames": {}, "stacks": {}, "labelsets": {}, "series": {}}
        counters = _Counters.from_db(db, d)

        # 2. frames -> global ids
        fr = profile.frames
        gid = np.empty(len(fr), np.int32)
        for i in range(len(fr)):
            key = "\x1f".join((fr.name[i], fr.system_name[i], fr.file[i], str(int(fr.line[i])),
                               str(int(fr.start_line[i])), str(int(fr.address[i])), fr.mapping_file[i]))
            h = h64(key)
            g = d.frames.get(h)
            if g is None:
                g = staged["frames"].get(h)
            if g is None:
                g = staged["frames"][h] = counters.take("frames")
                new["frames"].append((g, h, fr.name[i], fr.system_name[i], fr.file[i], int(fr.line[i]),
                                      int(fr.start_line[i]), int(fr.address[i]), fr.mapping_file[i]))
            gid[i] = g
        gflat = gid[m_flat] if len(m_flat) else np.zeros(0, np.int32)

        # 3. stacks -> global ids
        sh = stack_hashes(m_offs, gflat)
        uniq_h, first, sinv = np.unique(sh, return_index=True, return_inverse=True)
        sid_u = np.empty(len(uniq_h), np.int32)
        new_rows = []
        for j, h in enumerate(uniq_h.tolist()):
            g = d.stacks.get(h)
            if g is None:
                g = staged["stacks"][h] = counters.take("stacks")
                new_rows.append(j)
            sid_u[j] = g
        if new_rows:
            rows = first[np.array(new_rows)]
            lens = np.diff(m_offs)[rows]
            offs = np.zeros(len(rows) + 1, np.int32)
            np.cumsum(lens, out=offs[1:])
            from ..model import csr_take
            _, vals = csr_take(m_offs, gflat, rows)
            new["stacks"] = pa.table({
                "id": pa.array(sid_u[np.array(new_rows)], pa.int32()),
                "hash": pa.array(uniq_h[np.array(new_rows)], pa.uint64()),
                "frames": pa.ListArray.from_arrays(pa.array(offs, pa.int32()), pa.array(vals, pa.int32())),
            })
        row_stack = sid_u[sinv]

        # 4. label sets
        ls_gid = np.zeros(len(profile.label_sets), np.int32)
        for li, ls in enumerate(profile.label_sets):
            if not ls:
                continue
            _check_sample_labels(ls, limits)
            keys = [lb.key for lb in ls]
            vals = [str(lb.num) if lb.is_num else lb.str for lb in ls]
            units = [lb.unit if lb.is_num else "" for lb in ls]
            h = h64(repr((keys, vals, units)))
            g = d.labelsets.get(h) or staged["labelsets"].get(h)
            if g is None:
                g = staged["labelsets"][h] = counters.take("labelsets")
                new["labelsets"].append((g, h, keys, vals, units))
            ls_gid[li] = g
        row_ls = ls_gid[row_labels]

        # 5. one series + profile per sample type
        profile_rows, sample_tables, ptypes = [], [], []
        pt = profile.period_type
        order = np.argsort(row_stack, kind="stable")
        for t, st in enumerate(profile.sample_types):
            name = profile_name(st.type, labels)
            ptype = f"{name}:{st.type}:{st.unit}:{pt.type if pt else ''}:{pt.unit if pt else ''}"
            slabels = dict(labels)
            slabels["__name__"] = name
            keys = sorted(slabels)
            h = h64(repr((tenant, ptype, keys, [slabels[k] for k in keys])))
            sid = d.series.get(h) or staged["series"].get(h)
            if sid is None:
                sid = staged["series"][h] = counters.take("series")
                new["series"].append((sid, h, tenant, ptype, keys, [slabels[k] for k in keys]))
            pid = counters.take("profiles")
            col = m_vals[order, t]
            nz = col != 0
            total = int(np.abs(m_vals[:, t]).sum())
            profile_rows.append((pid, sid, tenant, ptype, st.type, st.unit, pt.type if pt else "",
                                 pt.unit if pt else "", int(profile.period), int(time_nanos),
                                 int(profile.duration_nanos), int(nz.sum()), total,
                                 profile.source_format, source_id))
            sample_tables.append(pa.table({
                "profile_id": pa.array(np.full(int(nz.sum()), pid, np.int64)),
                "stack_id": pa.array(row_stack[order][nz], pa.int32()),
                "labelset_id": pa.array(row_ls[order][nz], pa.int32()),
                "value": pa.array(col[nz], pa.int64()),
            }))
            ptypes.append(ptype)

        _write(db, new, profile_rows, sample_tables)
        # caches change only after a successful commit
        d.frames.update(staged["frames"])
        d.stacks.update(staged["stacks"])
        d.labelsets.update(staged["labelsets"])
        for g, _h, keys, vals, _u in new["labelsets"]:
            d.labelset_labels[g] = dict(zip(keys, vals))
        d.series.update(staged["series"])
        for sid, _h, tenant_, ptype, keys, vals in new["series"]:
            d.series_info[sid] = (tenant_, ptype, dict(zip(keys, vals)))
        counters.commit(d)
    return IngestResult([r[0] for r in profile_rows], ptypes, n, source_id)


def _check_sample_labels(ls: tuple[Label, ...], limits: Limits) -> None:
    for lb in ls:
        if len(lb.key) > limits.max_label_name_len or len(lb.str) > limits.max_label_value_len:
            raise LimitExceeded(f"sample label {lb.key[:40]!r} exceeds max_label_name_len="
                                f"{limits.max_label_name_len} / max_label_value_len={limits.max_label_value_len}")


class _Counters:
    """Next dense ids, taken from the in-memory dictionaries' sizes (ids are 1-based)."""

    def __init__(self, start: dict[str, int]):
        self.next = dict(start)

    @classmethod
    def from_db(cls, db: Database, d: Dictionaries) -> "_Counters":
        return cls({"frames": len(d.frames) + 1, "stacks": len(d.stacks) + 1,
                    "labelsets": len(d.labelsets) + 1, "series": len(d.series) + 1,
                    "profiles": d.next_profile})

    def take(self, what: str) -> int:
        v = self.next[what]
        self.next[what] = v + 1
        return v

    def commit(self, d: Dictionaries) -> None:
        d.next_profile = self.next["profiles"]


def _write(db: Database, new: dict, profile_rows: list[tuple], sample_tables: list[pa.Table]) -> None:
    con = db.con
    con.execute("BEGIN TRANSACTION")
    try:
        if new["frames"]:
            cols = list(zip(*new["frames"]))
            t = pa.table({"id": pa.array(cols[0], pa.int32()), "hash": pa.array(cols[1], pa.uint64()),
                          "name": cols[2], "system_name": cols[3], "file": cols[4],
                          "line": pa.array(cols[5], pa.int64()), "start_line": pa.array(cols[6], pa.int64()),
                          "address": pa.array(cols[7], pa.uint64()), "mapping_file": cols[8]})
            con.register("new_frames", t)
            con.execute("INSERT INTO frames SELECT * FROM new_frames")
            con.unregister("new_frames")
        if len(new["stacks"]):
            con.register("new_stacks", new["stacks"])
            con.execute("INSERT INTO stacks SELECT * FROM new_stacks")
            con.unregister("new_stacks")
        for g, h, keys, vals, units in new["labelsets"]:
            con.execute("INSERT INTO labelsets VALUES (?, ?, ?, ?, ?)", [g, h, keys, vals, units])
        for sid, h, tenant, ptype, keys, vals in new["series"]:
            con.execute("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?)", [sid, h, tenant, ptype, keys, vals])
        con.executemany("INSERT INTO profiles (id, series_id, tenant, profile_type, sample_type, sample_unit, "
                        "period_type, period_unit, period, time_nanos, duration_nanos, n_samples, total, "
                        "source_format, source_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        profile_rows)
        samples = pa.concat_tables(sample_tables) if len(sample_tables) > 1 else sample_tables[0]
        con.register("new_samples", samples)
        con.execute("INSERT INTO samples SELECT * FROM new_samples")
        con.unregister("new_samples")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
