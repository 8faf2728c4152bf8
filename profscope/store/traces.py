"""Store side of trace joins: the spans table and the sample_links table.

``TraceStore`` is reached as ``store.traces``. It stores spans, finds spans by id, trace or
:class:`~profscope.query.spanquery.SpanQuery`, finds the linked (profile, label set) pairs of a
selection, and sums sampled values per link. Turning pairs into flame graphs goes through
:func:`profscope.store.select.stackset_of` like every other selection.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..analysis.tree import Tree
from ..formats.otlp_traces import SpanBatch
from ..model import FrameTable, StackSet
from ..query.selector import Selection
from ..query.spanquery import STATUS, SpanQuery
from .db import Database, load_sql
from .ingest import Dictionaries
from .links import backfill
from .select import Matched, match_profiles, stackset_of, tree_of

U64 = pa.uint64()
_MAP = pa.map_(pa.string(), pa.string())
SPAN_COLUMNS = ("trace_hi", "trace_lo", "span_id", "parent_span_id", "name", "service", "kind", "start_ns",
                "end_ns", "status_code", "status_message", "profile_span_id")


class TraceStore:
    def __init__(self, db: Database, dicts: Dictionaries):
        self.db = db
        self.dicts = dicts
        if 2 in db.applied:  # links did not exist when older samples were stored
            backfill(db, dicts)

    # ------------------------------------------------------------------ spans
    def ingest_spans(self, batch: SpanBatch, tenant: str = "anonymous") -> int:
        """Store spans (atomic); spans already stored (same tenant, trace and span id) are
        skipped. Returns the number of new spans."""
        n = len(batch)
        if n == 0:
            return 0
        t = pa.table({
            "tenant": pa.array([tenant] * n, pa.string()),
            "trace_hi": pa.array(batch.trace_hi, U64), "trace_lo": pa.array(batch.trace_lo, U64),
            "span_id": pa.array(batch.span_id, U64), "parent_span_id": pa.array(batch.parent_span_id, U64),
            "name": pa.array(batch.name, pa.string()), "service": pa.array(batch.service, pa.string()),
            "kind": pa.array(batch.kind, pa.int32()), "start_ns": pa.array(batch.start_ns, pa.int64()),
            "end_ns": pa.array(batch.end_ns, pa.int64()), "status_code": pa.array(batch.status_code, pa.int32()),
            "status_message": pa.array(batch.status_message, pa.string()),
            "profile_span_id": pa.array(batch.profile_span_id, U64),
            "attributes": pa.array(batch.attributes, _MAP), "resource": pa.array(batch.resource, _MAP),
        })
        con = self.db.con
        with self.db.write_lock:
            before = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
            con.register("new_spans", t)
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute(load_sql("spans_insert"))
                after = con.execute("SELECT count(*) FROM spans").fetchall()[0][0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("new_spans")
        return int(after - before)

    def find_spans(self, tenant: str, query: SpanQuery | None = None, span_ids: list[int] | None = None,
                   trace_ids: list[int] | None = None, limit: int | None = None,
                   attributes: bool = False) -> dict[str, np.ndarray]:
        """Spans matching all the given conditions, as numpy columns (``SPAN_COLUMNS``; with
        ``attributes`` also ``attributes`` as a list of dicts). Newest first."""
        q = query or SpanQuery()
        where: list[str] = []
        params: dict = {"tenant": tenant}
        tables: list[str] = []
        if span_ids is not None:
            tables.append(self._register_ids("want_spans", span_ids))
            where.append("span_id IN (SELECT id FROM want_spans)")
        if trace_ids is not None:
            tables.append(self._register_traces(trace_ids))
            where.append("EXISTS (SELECT 1 FROM want_traces w WHERE w.hi = trace_hi AND w.lo = trace_lo)")
        if q.service is not None:
            where.append("service = $service")
            params["service"] = q.service
        if q.name is not None:
            where.append("name = $name")
            params["name"] = q.name
        if q.min_duration_ns is not None:
            where.append("end_ns - start_ns >= $min_dur")
            params["min_dur"] = q.min_duration_ns
        if q.max_duration_ns is not None:
            where.append("end_ns - start_ns <= $max_dur")
            params["max_dur"] = q.max_duration_ns
        if q.status is not None:
            where.append("status_code = $status")
            params["status"] = STATUS[q.status]
        if q.start_ns is not None:
            where.append("end_ns >= $start")
            params["start"] = q.start_ns
        if q.end_ns is not None:
            where.append("start_ns <= $end")
            params["end"] = q.end_ns
        for i, (k, v) in enumerate(q.attributes):
            where.append(f"coalesce(attributes[$ak{i}], resource[$ak{i}]) = $av{i}")
            params[f"ak{i}"], params[f"av{i}"] = k, v
        sql = load_sql("spans_select_attributes" if attributes else "spans_select")
        sql += "".join(f"\n  AND {w}" for w in where)
        sql += "\nORDER BY start_ns DESC, span_id"
        if limit is not None:
            sql += "\nLIMIT $limit"
            params["limit"] = int(limit)
        con = self.db.con
        try:
            tbl = con.sql(sql, params=params).to_arrow_table()
        finally:
            for name in tables:
                con.unregister(name)
        out: dict = {c: tbl.column(c).to_numpy(zero_copy_only=False) for c in SPAN_COLUMNS}
        if attributes:
            out["attributes"] = [dict(m) for m in tbl.column("attributes").to_pylist()]
        return out

    def trace_spans(self, tenant: str, trace_ids: list[int]) -> dict[str, np.ndarray]:
        """All stored spans of the given traces."""
        return self.find_spans(tenant, trace_ids=trace_ids)

    # ------------------------------------------------------------------ links
    def links(self, profile_ids: np.ndarray, span_ids=(), root_ids=(), trace_ids=()) -> dict[str, np.ndarray]:
        """Linked pairs of ``profile_ids`` with a wanted span, local root or trace id."""
        con = self.db.con
        names = [self._register_ids("sel_profiles", profile_ids, pa.int64()),
                 self._register_ids("want_spans", span_ids), self._register_ids("want_roots", root_ids),
                 self._register_traces(trace_ids)]
        try:
            return con.sql(load_sql("links_for_spans")).fetchnumpy()
        finally:
            for n in names:
                con.unregister(n)

    def all_links(self, profile_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Every linked pair of ``profile_ids``."""
        con = self.db.con
        self._register_ids("sel_profiles", profile_ids, pa.int64())
        try:
            return con.sql(load_sql("links_of_profiles")).fetchnumpy()
        finally:
            con.unregister("sel_profiles")

    def link_values(self, links: dict[str, np.ndarray], stack_ids: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
        """Sampled value per (span id, else local root span id; trace) over the given linked pairs;
        with ``stack_ids``, only samples of those stacks count."""
        con = self.db.con
        con.register("sel_links", pa.table({k: links[k] for k in (
            "profile_id", "labelset_id", "span_id", "trace_hi", "trace_lo", "root_span_id")}))
        names = ["sel_links"]
        if stack_ids is not None:
            names.append(self._register_ids("want_stacks", stack_ids, pa.int32()))
        try:
            return con.sql(load_sql("link_values" if stack_ids is None else "link_values_in_stacks")).fetchnumpy()
        finally:
            for n in names:
                con.unregister(n)

    def stacks_with_frames(self, frame_ids: list[int]) -> np.ndarray:
        """Ids of the stored stacks that contain any of ``frame_ids`` (from the in-memory index)."""
        snap = self.dicts.index.snapshot()
        hit = np.zeros(len(snap.frames) + 1, bool)
        hit[np.asarray(frame_ids, np.int64)] = True
        csum = np.concatenate([[0], np.cumsum(hit[snap.stack_flat], dtype=np.int64)])
        per_stack = csum[snap.stack_offs[1:]] - csum[snap.stack_offs[:-1]]
        return np.flatnonzero(per_stack > 0).astype(np.int32)

    def frames(self) -> tuple[np.ndarray, FrameTable]:
        """Every stored frame: (global ids, table), from the in-memory index."""
        snap = self.dicts.index.snapshot()
        ids = np.arange(1, len(snap.frames) + 1, dtype=np.int64)
        return ids, snap.frames.table(ids)

    def overlapping(self, profile_ids: np.ndarray, start_ns: int, end_ns: int) -> np.ndarray:
        """Those of ``profile_ids`` whose time window overlaps ``[start_ns, end_ns]``."""
        con = self.db.con
        self._register_ids("sel_profiles", profile_ids, pa.int64())
        try:
            return con.execute(load_sql("profiles_overlapping"), {"start": int(start_ns), "end": int(end_ns)}
                               ).fetchnumpy()["id"].astype(np.int64)
        finally:
            con.unregister("sel_profiles")

    def pairs_of_profiles(self, profile_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (profile, label set) pair with samples in ``profile_ids``."""
        con = self.db.con
        self._register_ids("sel_profiles", profile_ids, pa.int64())
        try:
            pl = con.sql(load_sql("labelsets_of_profiles")).fetchnumpy()
        finally:
            con.unregister("sel_profiles")
        return pl["profile_id"].astype(np.int64), pl["labelset_id"].astype(np.int32)

    def match(self, sel: Selection) -> Matched:
        """The profiles (and label-set pairs) a selection covers, as for ``Store.select``."""
        return match_profiles(self.db, self.dicts, sel)

    def stackset(self, m: Matched) -> StackSet:
        """Merge matched pairs into a stack set (the same code as ``Store.select``)."""
        return stackset_of(self.db, self.dicts, m)

    def tree(self, m: Matched, granularity: str = "functions", max_nodes: int = 0) -> tuple[StackSet, Tree]:
        """(totals-only stack set, flame graph) of matched pairs, as ``Store.select_tree``."""
        return tree_of(self.db, self.dicts, m, granularity, max_nodes)

    # ------------------------------------------------------------------ helpers
    def _register_ids(self, name: str, ids, typ: pa.DataType = U64) -> str:
        dtype = {pa.int64(): np.int64, pa.int32(): np.int32}.get(typ, np.uint64)
        arr = np.asarray(ids, dtype=dtype)
        self.db.con.register(name, pa.table({"id": pa.array(arr, typ)}))
        return name

    def _register_traces(self, trace_ids) -> str:
        his = np.array([t >> 64 for t in trace_ids], np.uint64)
        los = np.array([t & ((1 << 64) - 1) for t in trace_ids], np.uint64)
        self.db.con.register("want_traces", pa.table({"hi": pa.array(his, U64), "lo": pa.array(los, U64)}))
        return "want_traces"
