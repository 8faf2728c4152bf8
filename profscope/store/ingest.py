"""Store a decoded profile: vectorized, transactional (whole or nothing).

Frames, stacks, label sets and series are content-addressed: a 64-bit hash of their content maps
to a dense integer id, kept in memory (:class:`Dictionaries`) so a stack seen in a thousand
profiles is written once. Sample rows are ``(profile_id, stack_id, labelset_id, value)`` sorted by
stack, one set of rows per sample type.
"""
from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain

import numpy as np
import pyarrow as pa

from ..analysis.stacks import label_units, stack_hashes, unique_inverse
from ..errors import BadInput, LimitExceeded, StoreError
from ..hashing import mix64 as _mix
from ..limits import Limits
from ..model import FrameTable, Label, Profile, csr_take
from ..traceids import Link
from .db import Database, load_sql, temp_tables
from .keyindex import KeyIndex
from .links import link_rows
from .stackindex import StackIndex

RESERVED_OK = {"__name__"}


def h64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


@dataclass
class Dictionaries:
    """hash -> dense id for each content-addressed table, plus decoded label sets and series."""
    frames: KeyIndex = field(default_factory=KeyIndex)     # content key (model.FrameTable) -> id
    stacks: KeyIndex = field(default_factory=KeyIndex)     # hash over the frames' content keys -> id
    labelsets: dict[int, int] = field(default_factory=dict)
    labelset_labels: dict[int, dict[str, str]] = field(default_factory=dict)
    series: dict[int, int] = field(default_factory=dict)
    series_info: dict[int, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    next_ids: dict[str, int] = field(default_factory=dict)
    labelset_links: dict[int, Link | None] = field(default_factory=dict)  # filled lazily by links.py
    lock: threading.RLock = field(default_factory=threading.RLock)
    index: StackIndex = field(default_factory=StackIndex)

    def take(self, table: str) -> int:
        """Next dense id of ``table`` (1-based)."""
        v = self.next_ids[table]
        self.next_ids[table] = v + 1
        return v

    def take_many(self, table: str, k: int) -> np.ndarray:
        """The next ``k`` dense ids of ``table``."""
        v = self.next_ids[table]
        self.next_ids[table] = v + k
        return np.arange(v, v + k, dtype=np.int64)

    def reset(self) -> None:
        for m in (self.frames, self.stacks, self.labelsets, self.labelset_labels, self.series, self.series_info,
                  self.labelset_links):
            m.clear()
        self.index = StackIndex()

    def load(self, db: Database) -> None:
        con = db.con
        rows = con.execute("SELECT id, name, system_name, file, line, start_line, address, "
                           "mapping_file FROM frames ORDER BY id").fetchall()
        stored = FrameTable.from_rows([r[1:] for r in rows])
        frame_ids = np.array([r[0] for r in rows], np.int64)
        self.frames.load(stored.content_keys(), frame_ids)
        self.index.frames.add([tuple(r[1:]) for r in rows])
        st = con.sql("SELECT id, frames FROM stacks ORDER BY id").to_arrow_table()
        ids = st.column("id").to_numpy()
        if len(ids) and int(ids[-1]) != len(ids):
            raise StoreError(f"stack ids are not dense (max {int(ids[-1])}, count {len(ids)}): store damaged")
        if len(ids):
            lists = st.column("frames").combine_chunks()
            offs = lists.offsets.to_numpy().astype(np.int64)
            offs -= offs[0]
            flat = lists.flatten().to_numpy()
            # the hash ingest computes: over the content keys of the stack's frames
            key_of = np.zeros(rows[-1][0] + 1 if rows else 1, np.uint64)
            key_of[frame_ids] = stored.content_keys()
            self.stacks.load(stack_hashes(offs, key_of[flat]), ids.astype(np.int64))
            self.index.add_stacks(offs, flat)
        self.labelset_labels[0] = {}
        for h, i, k, v in con.execute("SELECT hash, id, keys, vals FROM labelsets").fetchall():
            self.labelsets[h] = i
            self.labelset_labels[i] = dict(zip(k, v))
        for h, i, tenant, ptype, k, v in con.execute(
                "SELECT hash, id, tenant, profile_type, keys, vals FROM series").fetchall():
            self.series[h] = i
            self.series_info[i] = (tenant, ptype, dict(zip(k, v)))
        for table in ("frames", "stacks", "labelsets", "series", "profiles"):
            self.next_ids[table] = con.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchall()[0][0]


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


_ASCII_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")     # the ASCII names check_labels allows


def check_labels(labels: dict[str, str], limits: Limits) -> None:
    if len(labels) > limits.max_label_names:
        raise LimitExceeded(f"{len(labels)} labels on the series; limit max_label_names={limits.max_label_names}")
    for k, v in labels.items():
        if _ASCII_LABEL_NAME.fullmatch(k):          # the usual case, without a loop per character
            pass
        elif not k or not (k[0].isalpha() or k[0] == "_") or not all(c.isalnum() or c in "_." for c in k):
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


@dataclass
class Staged:
    """A validated profile with its samples merged per (stack, label set): everything ingest
    computes without the dictionaries. Merged row ``i`` is the stack of sample ``rows[i]``, with
    content hash ``row_hash[i]``, label set ``row_labels[i]`` and values ``m_vals[i]``."""
    profile: Profile
    labels: dict[str, str]
    tenant: str
    time_nanos: int
    source_id: str
    rows: np.ndarray
    row_hash: np.ndarray
    m_vals: np.ndarray
    row_labels: np.ndarray

    @property
    def n_rows(self) -> int:
        """Sample rows it will write, at most."""
        return int(self.m_vals.size)


def stage_input(profile: Profile, labels: dict[str, str], tenant: str, limits: Limits,
                source_id: str | None = None) -> Staged:
    """Validate ``profile`` and its series ``labels`` (every check that can refuse it runs here,
    before any dictionary changes) and merge its samples. ``source_id`` names the upload (all its
    sample types); by default one is made from its time and labels."""
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
    for ls in profile.label_sets:
        _check_sample_labels(ls, limits)
    time_nanos = profile.time_nanos or time.time_ns()
    source_id = source_id or f"{time_nanos:x}-{h64(repr((labels, tenant, time.time_ns()))):016x}"

    # one content hash per sample's stack, over its frames' content keys (so equal stacks hash
    # equal in every profile); samples merge per (stack, label set), all sample types at once
    ckeys = profile.frames.content_keys()
    flat, offs = profile.stack_frames, profile.stack_offsets
    s_hash = stack_hashes(offs, ckeys[flat])
    key = s_hash
    if profile.sample_labels.any():
        key = s_hash ^ _mix(profile.sample_labels.astype(np.uint64) + np.uint64(0x51))
    first, inv = unique_inverse(key)
    m_vals = np.zeros((len(first), profile.values.shape[1]), np.int64)
    np.add.at(m_vals, inv, profile.values)
    return Staged(profile, labels, tenant, time_nanos, source_id, first, s_hash[first], m_vals,
                  profile.sample_labels[first])


def prepare(d: Dictionaries, profile: Profile, labels: dict[str, str], tenant: str,
            limits: Limits) -> tuple[WriteJob, IngestResult]:
    """Validate ``profile``, give its new frames, stacks, label sets and series dense ids (entered
    into the dictionaries at once, so later profiles share them) and build the rows to write.
    Nothing is written here."""
    st = stage_input(profile, labels, tenant, limits)
    with d.lock:
        return _stage(d, st)


def _stage(d: Dictionaries, st: Staged) -> tuple[WriteJob, IngestResult]:
    """Assign ids and build rows; runs under the dictionaries' lock."""
    job = WriteJob()
    row_stack = _stack_ids(d, job, st)
    row_ls = _labelset_ids(d, job, st.profile)[st.row_labels]
    ptypes = _profile_rows(d, job, st, row_stack, row_ls)
    return job, IngestResult([r[0] for r in job.profiles], ptypes, st.profile.n_samples, st.source_id)


def _frame_ids(d: Dictionaries, job: WriteJob, profile: Profile) -> np.ndarray:
    """Global id of each of the profile's frames the samples use (0 for the others); new frames
    enter the dictionary and the job."""
    fr = profile.frames
    seen = np.zeros(len(fr), bool)
    seen[profile.stack_frames] = True
    used = np.flatnonzero(seen)
    ckeys = fr.content_keys()
    if len(used) != len(fr):      # usually equal: a profile lists only the frames it uses
        ckeys = ckeys[used]
    found = d.frames.lookup(ckeys)
    new_at = np.flatnonzero(found == 0)
    if len(new_at):
        nf = used[new_at].tolist()
        new_rows = list(zip(map(fr.name.__getitem__, nf), map(fr.system_name.__getitem__, nf),
                            map(fr.file.__getitem__, nf), fr.line[used[new_at]].tolist(),
                            fr.start_line[used[new_at]].tolist(), fr.address[used[new_at]].tolist(),
                            map(fr.mapping_file.__getitem__, nf)))
        new_ckeys = ckeys[new_at]
        # two rows of one profile may be the same frame: one id for each distinct key
        _, keep, inv = np.unique(new_ckeys, return_index=True, return_inverse=True)
        new_rows = [new_rows[i] for i in keep.tolist()]
        new_ids = d.take_many("frames", len(new_rows))
        d.frames.add(new_ckeys[keep], new_ids)
        found[new_at] = new_ids[inv.reshape(-1)]
        d.index.frames.add(new_rows)      # ids were taken in this order: rows stay id - 1
        job.frames.append((new_ids, new_rows))
    gid = np.zeros(len(fr), np.int32)
    gid[used] = found
    return gid


def _stack_ids(d: Dictionaries, job: WriteJob, st: Staged) -> np.ndarray:
    """Global stack id of each merged row; new stacks (as global frame ids) enter the dictionary,
    the call-path index and the job. The frames are looked up only when some stack is new: a
    known stack's frames are all known (usually the case after an agent's first pushes)."""
    ufirst, sinv = unique_inverse(st.row_hash)
    uniq_h = st.row_hash[ufirst]
    sid_u = d.stacks.lookup(uniq_h).astype(np.int32)
    new_stacks = np.flatnonzero(sid_u == 0)
    if len(new_stacks):
        sid_u[new_stacks] = new_sids = d.take_many("stacks", len(new_stacks))
        d.stacks.add(uniq_h[new_stacks], new_sids)
        p = st.profile
        gid = _frame_ids(d, job, p)
        s_offs, s_flat = csr_take(p.stack_offsets, p.stack_frames, st.rows[ufirst[new_stacks]])
        vals = gid[s_flat]
        d.index.add_stacks(s_offs, vals)
        job.stacks.append(pa.table({
            "id": pa.array(sid_u[new_stacks], pa.int32()),
            "frames": pa.ListArray.from_arrays(pa.array(s_offs, pa.int32()), pa.array(vals, pa.int32())),
        }))
    return sid_u[sinv]


def _labelset_ids(d: Dictionaries, job: WriteJob, profile: Profile) -> np.ndarray:
    """Global id of each of the profile's label sets (0: no labels). Numeric labels keep pprof's
    unit of their key (a unit is never '' for them, so a numeric label stays distinguishable from
    a string one: tag filters need both)."""
    num_units = label_units(profile.label_sets)
    ls_gid = np.zeros(len(profile.label_sets), np.int32)
    for li, ls in enumerate(profile.label_sets):
        if not ls:
            continue
        lkeys = [lb.key for lb in ls]
        lvals = [str(lb.num) if lb.is_num else lb.str for lb in ls]
        units = [(lb.unit or num_units[lb.key]) if lb.is_num else "" for lb in ls]
        h = h64(repr((lkeys, lvals, units)))
        g = d.labelsets.get(h)
        if g is None:
            g = d.labelsets[h] = d.take("labelsets")
            d.labelset_labels[g] = dict(zip(lkeys, lvals))
            job.labelsets.append((g, h, lkeys, lvals, units))
        ls_gid[li] = g
    return ls_gid


def _profile_rows(d: Dictionaries, job: WriteJob, st: Staged, row_stack: np.ndarray,
                  row_ls: np.ndarray) -> list[str]:
    """One series (found or new), profile row and set of sample rows per sample type; returns
    the profile types."""
    profile, labels, m_vals = st.profile, st.labels, st.m_vals
    pt = profile.period_type
    order = np.argsort(row_stack, kind="stable")
    ptypes = []
    for t, vt in enumerate(profile.sample_types):
        name = profile_name(vt.type, labels)
        ptype = f"{name}:{vt.type}:{vt.unit}:{pt.type if pt else ''}:{pt.unit if pt else ''}"
        slabels = dict(labels)
        slabels["__name__"] = name
        skeys = sorted(slabels)
        svals = [slabels[k] for k in skeys]
        h = h64(repr((st.tenant, ptype, skeys, svals)))
        sid = d.series.get(h)
        if sid is None:
            sid = d.series[h] = d.take("series")
            d.series_info[sid] = (st.tenant, ptype, dict(zip(skeys, svals)))
            job.series.append((sid, h, st.tenant, ptype, skeys, svals))
        pid = d.take("profiles")
        col = m_vals[order, t]
        nz = col != 0
        job.profiles.append((pid, sid, st.tenant, ptype, vt.type, vt.unit, pt.type if pt else "",
                             pt.unit if pt else "", int(profile.period), int(st.time_nanos),
                             int(profile.duration_nanos), int(nz.sum()), int(np.abs(m_vals[:, t]).sum()),
                             profile.source_format, st.source_id, list(profile.comments)))
        # values are stored as raw * scale, scale = their greatest common divisor (the
        # period, typically), so raw values are small and bit-pack tightly
        scale = int(np.gcd.reduce(np.abs(col[nz]))) if nz.any() else 1
        ls_col = row_ls[order][nz]
        job.samples.append((pid, row_stack[order][nz], ls_col, col[nz] // scale, scale))
        job.links.append(link_rows(d, pid, ls_col, int(st.time_nanos), int(profile.duration_nanos)))
        ptypes.append(ptype)
    return ptypes


def _check_sample_labels(ls: tuple[Label, ...], limits: Limits) -> None:
    for lb in ls:
        if len(lb.key) > limits.max_label_name_len or len(lb.str) > limits.max_label_value_len:
            raise LimitExceeded(f"sample label {lb.key[:40]!r} exceeds max_label_name_len="
                                f"{limits.max_label_name_len} / max_label_value_len={limits.max_label_value_len}")


@dataclass
class WriteJob:
    """Rows one prepared profile adds to each table."""
    frames: list[tuple[np.ndarray, list[tuple]]] = field(default_factory=list)   # (ids, content keys)
    stacks: list[pa.Table] = field(default_factory=list)
    labelsets: list[tuple] = field(default_factory=list)
    series: list[tuple] = field(default_factory=list)
    profiles: list[tuple] = field(default_factory=list)
    # per profile: (profile id, stack ids, label set ids, raw values, scale), sorted by stack
    samples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, int]] = field(default_factory=list)
    links: list[pa.Table | None] = field(default_factory=list)   # sample_links rows (links.py)


# DuckDB writes the rows of a transaction that fills a whole row group (122,880 rows) straight into
# row groups of their own, which compress worse (about 4.0 instead of 3.4 bytes per sample row in
# bench_core's store); smaller transactions go through the WAL and are compressed in full row
# groups at checkpoints. Group commit therefore stops adding submissions at this many rows.
ROWS_PER_TRANSACTION = 100_000


class PendingIngest:
    """One ingest call, stored whole or not at all: created before its profiles are staged (a
    decoding worker may still be at them), handed them by :meth:`deliver`, and waited for with
    :meth:`result`."""

    def __init__(self, writer: GroupWriter) -> None:
        self.writer = writer
        self.seq = writer.expect()
        self.staged: list[Staged] = []
        self.results: list[IngestResult] = []
        self.error: BaseException | None = None
        self._done = threading.Lock()
        self._done.acquire()

    def deliver(self, ok: bool, value: list[Staged] | BaseException) -> None:
        """The staged profiles (``ok``), queued for the writer; or the error staging raised,
        which :meth:`result` raises. Never blocks (a decoding pool's results thread calls it)."""
        if ok and value:
            self.staged = value
            try:
                self.writer.enqueue(self)
                return
            except StoreError as e:
                value = e
        elif ok:                  # nothing to store
            value = None
        self.writer.delivered(self.seq)
        self.finish(value)

    def finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self._done.release()

    def result(self) -> list[IngestResult]:
        """Wait until the profiles are committed (or refused); raises what refused them."""
        self._done.acquire()
        if self.error is not None:
            raise self.error
        return self.results


class GroupWriter:
    """Group commit through one writer thread. Callers validate and merge their profiles
    (:func:`stage_input`) in their own threads or in decoding workers, and queue them
    (:class:`PendingIngest`); the writer thread takes every queued submission (up to
    ``ROWS_PER_TRANSACTION`` sample rows, never splitting one), gives their frames, stacks, label
    sets and series ids, and writes them in ONE transaction (one fsync). Only the writer thread
    changes the dictionaries, so ingesting threads never queue for their lock. A failed transaction fails every submission in it and the dictionaries are
    reloaded from the database, so nothing half-stored is ever referenced.

    ``linger`` (seconds): when the previous transaction held several submissions (ingests are
    arriving concurrently), the writer first waits for the PendingIngests created before it began
    waiting and still being staged (a decoding worker has them), at most this long, so each
    transaction's fixed cost in DuckDB is shared by more of them. A lone submission after a lone
    one is written at once. (A fixed wait instead of this one pushed 5% less in six alternating
    ``benchmarks/bench_push.py`` runs: the pushes a commit releases come back as one burst, and
    the writer now starts as soon as the burst is decoded.)"""

    def __init__(self, db: Database, d: Dictionaries, linger: float = 0.0):
        self.db, self.d = db, d
        self.linger = linger
        self._queue: deque[PendingIngest] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._seq = 0                             # PendingIngests created
        self._undelivered: set[int] = set()       # ... and not yet delivered

    def ingest(self, staged: list[Staged]) -> list[IngestResult]:
        """Store ``staged`` (all or none) and wait until it is committed."""
        pending = PendingIngest(self)
        pending.deliver(True, staged)
        return pending.result()

    def expect(self) -> int:
        """A number for a new :class:`PendingIngest`, counted as undelivered until it is."""
        with self._cv:
            self._seq += 1
            self._undelivered.add(self._seq)
            return self._seq

    def delivered(self, seq: int) -> None:
        """PendingIngest ``seq`` will not be queued (it failed, or had nothing to store)."""
        with self._cv:
            self._undelivered.discard(seq)
            self._cv.notify()

    def enqueue(self, pending: PendingIngest) -> None:
        """Queue ``pending`` for the next transaction (StoreError once the store is closed)."""
        with self._cv:
            self._undelivered.discard(pending.seq)
            if self._closed:
                raise StoreError("the store is closed")
            self._queue.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="profscope-writer", daemon=True)
                self._thread.start()
            self._cv.notify()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._cv:
            self._closed = True
            self._cv.notify()
            t = self._thread
        if t is not None:
            t.join()

    def _run(self) -> None:
        busy = False          # the previous transaction held several submissions
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                if busy and self.linger > 0:      # submitters can queue meanwhile: the wait releases the lock
                    last = self._seq
                    self._cv.wait_for(lambda last=last: self._closed or not self._older_undelivered(last),
                                      timeout=self.linger)
                batch = self._take_batch()
            busy = len(batch) > 1
            self._commit(batch)

    def _older_undelivered(self, last: int) -> bool:
        return any(s <= last for s in self._undelivered)

    def _take_batch(self) -> list[PendingIngest]:
        """Queued submissions, whole, up to ``ROWS_PER_TRANSACTION`` sample rows (at least one)."""
        batch: list[PendingIngest] = []
        rows = 0
        while self._queue:
            n = sum(st.n_rows for st in self._queue[0].staged)
            if batch and rows + n > ROWS_PER_TRANSACTION:
                break
            batch.append(self._queue.popleft())
            rows += n
        return batch

    def _commit(self, batch: list[PendingIngest]) -> None:
        try:
            with self.db.write_lock:
                try:
                    jobs = []
                    with self.d.lock:
                        for sub in batch:
                            for st in sub.staged:
                                job, res = _stage(self.d, st)
                                jobs.append(job)
                                sub.results.append(res)
                    _write(self.db, jobs)
                except BaseException as e:
                    for sub in batch:
                        sub.error = e
                    with self.d.lock:
                        self.d.reset()
                        self.d.load(self.db)
        except BaseException as e:           # the reload failed too: the submitters still hear
            for sub in batch:
                sub.error = sub.error or e
        finally:
            for sub in batch:
                sub.finish(sub.error)

    def write_all(self, batches: Iterable[list[WriteJob]]) -> None:
        """Write every batch ``batches`` yields (they may be prepared lazily, e.g. while files are
        still being decoded) in ONE transaction: all or nothing. Other writers wait meanwhile."""
        with self.db.write_lock:
            con = self.db.con
            con.execute("BEGIN TRANSACTION")
            try:
                for batch in batches:
                    _insert(con, batch)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                with self.d.lock:
                    self.d.reset()
                    self.d.load(self.db)
                raise


def _write(db: Database, batch: list[WriteJob]) -> None:
    con = db.con
    con.execute("BEGIN TRANSACTION")
    try:
        _insert(con, batch)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


# the profiles table's columns in order (001_init.sql, 004_profile_comments.sql; test_store checks
# this against the database); a WriteJob.profiles row holds them all but ``ingested_at``
_PROFILES_TABLE = (
    ("id", pa.int64()), ("series_id", pa.int32()), ("tenant", pa.string()), ("profile_type", pa.string()),
    ("sample_type", pa.string()), ("sample_unit", pa.string()), ("period_type", pa.string()),
    ("period_unit", pa.string()), ("period", pa.int64()), ("time_nanos", pa.int64()),
    ("duration_nanos", pa.int64()), ("n_samples", pa.int32()), ("total", pa.int64()),
    ("source_format", pa.string()), ("source_id", pa.string()), ("ingested_at", pa.timestamp("us")),
    ("comments", pa.list_(pa.string())))
_PROFILE_COLUMNS = tuple(name for name, _ in _PROFILES_TABLE if name != "ingested_at")


def _insert(con, batch: list[WriteJob]) -> None:
    """Insert the rows of ``batch`` inside the caller's transaction."""
    frames = [f for j in batch for f in j.frames]
    if frames:
        ids = np.concatenate([f[0] for f in frames])
        cols = list(zip(*chain.from_iterable(f[1] for f in frames)))
        t = pa.table({"id": pa.array(ids, pa.int32()), "name": pa.array(cols[0], pa.string()),
                      "system_name": pa.array(cols[1], pa.string()), "file": pa.array(cols[2], pa.string()),
                      "line": pa.array(cols[3], pa.int64()), "start_line": pa.array(cols[4], pa.int64()),
                      "address": pa.array(cols[5], pa.uint64()), "mapping_file": pa.array(cols[6], pa.string())})
        with temp_tables(con, new_frames=t):
            con.execute(load_sql("frames_insert"))
    stacks = [t for j in batch for t in j.stacks]
    if stacks:
        con.from_arrow(pa.concat_tables(stacks)).insert_into("stacks")
    labelsets = [row for j in batch for row in j.labelsets]
    if labelsets:  # one insert: span/trace labels make a new label set per request
        cols = list(zip(*labelsets, strict=True))
        strs = pa.list_(pa.string())
        con.from_arrow(pa.table({"id": pa.array(cols[0], pa.int32()), "hash": pa.array(cols[1], pa.uint64()),
                                 "keys": pa.array(cols[2], strs), "vals": pa.array(cols[3], strs),
                                 "units": pa.array(cols[4], strs)})).insert_into("labelsets")
    for j in batch:
        for row in j.series:
            con.execute("INSERT INTO series VALUES (?, ?, ?, ?, ?, ?)", list(row))
    profiles = [p for j in batch for p in j.profiles]
    if profiles:
        cols = dict(zip(_PROFILE_COLUMNS, zip(*profiles), strict=True))
        cols["ingested_at"] = [datetime.now(UTC).replace(tzinfo=None)] * len(profiles)
        # every column, in the table's order: a direct append (no temporary view, no SQL to plan)
        con.from_arrow(pa.table({nm: pa.array(cols[nm], ty) for nm, ty in _PROFILES_TABLE})).insert_into("profiles")
    samples = [t for j in batch for t in j.samples]
    if samples:      # one Arrow table for the whole batch, built from the profiles' columns
        n = np.fromiter((len(t[1]) for t in samples), np.int64, len(samples))
        con.from_arrow(pa.table({
            "profile_id": pa.array(np.repeat(np.fromiter((t[0] for t in samples), np.int64, len(samples)), n)),
            "stack_id": pa.array(np.concatenate([t[1] for t in samples]), pa.int32()),
            "labelset_id": pa.array(np.concatenate([t[2] for t in samples]), pa.int32()),
            "raw": pa.array(np.concatenate([t[3] for t in samples]), pa.int64()),
            "scale": pa.array(np.repeat(np.fromiter((t[4] for t in samples), np.int64, len(samples)), n)),
        })).insert_into("samples")
    links = [t for j in batch for t in j.links if t is not None]
    if links:
        con.from_arrow(pa.concat_tables(links)).insert_into("sample_links")
