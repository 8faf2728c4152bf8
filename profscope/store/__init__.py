"""The store: the only package that talks to DuckDB.

``Store(path)`` opens (and migrates) a DuckDB file; ``ingest`` writes a decoded profile whole or
not at all; ``select`` merges a selection into a :class:`~profscope.model.StackSet`; the metadata
calls answer what profile types, label names/values and series exist.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..limits import DEFAULT_LIMITS, Limits
from ..model import Profile, StackSet
from ..query.selector import Matcher, Selection
from .db import Database, ids_table, load_sql, pairs_table, temp_tables
from .ingest import Dictionaries, GroupWriter, IngestResult, PendingIngest, prepare, stage_input
from .select import (
    INT64_MAX,
    INT64_MIN,
    PerProfile,
    candidate_series,
    match_profiles,
    select_per_profile,
    select_stackset,
    select_tree,
)
from .traces import TraceStore

__all__ = ["Store", "IngestResult", "PerProfile", "default_data_dir"]

DB_FILE = "profscope.duckdb"


def default_data_dir() -> str:
    return os.environ.get("PROFSCOPE_DATA_DIR", "./profscope-data")


class Store:
    def __init__(self, data_dir: str | None = None, limits: Limits = DEFAULT_LIMITS, *,
                 memory_limit: str | None = None, threads: int | None = None, write_linger_ms: float = 0):
        """``data_dir`` holds ``profscope.duckdb``; ``":memory:"`` keeps everything in memory;
        ``write_linger_ms``: see :class:`~profscope.store.ingest.GroupWriter`'s ``linger``."""
        data_dir = data_dir or default_data_dir()
        path = data_dir if data_dir == ":memory:" else str(Path(data_dir) / DB_FILE)
        self.data_dir = data_dir
        self.db = Database(path, memory_limit=memory_limit, threads=threads)
        self.limits = limits
        self.dicts = Dictionaries()
        self.dicts.load(self.db)
        self.writer = GroupWriter(self.db, self.dicts, write_linger_ms / 1000)
        self.traces = TraceStore(self.db, self.dicts)  # spans and trace links (store/traces.py)

    # ------------------------------------------------------------------ write
    def ingest(self, profile: Profile, labels: dict[str, str] | None = None, tenant: str = "anonymous") -> IngestResult:
        """Store ``profile`` (every sample type) under series ``labels``; atomic. Concurrent calls
        share one transaction (group commit)."""
        return self.ingest_many([(profile, labels or {})], tenant)[0]

    def ingest_many(self, items: list[tuple[Profile, dict[str, str]]], tenant: str = "anonymous") -> list[IngestResult]:
        """Store several profiles in one transaction: all are validated first, then all or none
        are written."""
        staged = [stage_input(p, dict(labels or {}), tenant, self.limits) for p, labels in items]
        return self.writer.ingest(staged)

    def pending_ingest(self) -> PendingIngest:
        """An ingest whose profiles are still being staged elsewhere (a decoding worker): hand
        them over with its ``deliver(ok, staged or error)``, wait with its ``result()``."""
        return PendingIngest(self.writer)

    def ingest_all(self, chunks: Iterable[list[tuple[Profile, dict[str, str]]]],
                   tenant: str = "anonymous") -> list[IngestResult]:
        """Store every chunk of profiles ``chunks`` yields in ONE transaction: all or none. The
        chunks may still be arriving (decoded by worker processes, say) while earlier ones are
        written; a chunk that fails validation, or an iterator that raises, stores nothing."""
        results: list[IngestResult] = []

        def batches():
            for chunk in chunks:
                prepared = [prepare(self.dicts, p, dict(labels or {}), tenant, self.limits) for p, labels in chunk]
                results.extend(r for _, r in prepared)
                yield [job for job, _ in prepared]
        self.writer.write_all(batches())
        return results

    # ------------------------------------------------------------------ read
    def warm_index(self) -> None:
        """Build the call-path nodes of every stored stack now (otherwise the first flame graph
        after start-up builds them)."""
        self.dicts.index.snapshot(with_nodes=True)

    def select(self, sel: Selection) -> StackSet:
        """The merged stacks of a selection."""
        return select_stackset(self.db, self.dicts, sel)

    def select_per_profile(self, *sels: Selection) -> list[PerProfile]:
        """Like :meth:`select`, but keeps each profile's values apart (for noise estimates); the
        results of one call share one stack and frame table."""
        return select_per_profile(self.db, self.dicts, list(sels))

    def select_tree(self, sel: Selection, granularity: str = "functions", max_nodes: int = 0):
        """(StackSet with the selection's totals only, flame graph Tree), straight from the
        call-path index: faster than building the tree from stacks."""
        return select_tree(self.db, self.dicts, sel, granularity, max_nodes)

    def profile_types(self, tenant: str = "anonymous", start_ns: int | None = None,
                      end_ns: int | None = None) -> list[str]:
        rows = self.db.con.execute(load_sql("profile_types"), {
            "tenant": tenant, "start": INT64_MIN if start_ns is None else start_ns,
            "end": INT64_MAX if end_ns is None else end_ns}).fetchall()
        return [r[0] for r in rows]

    def series(self, tenant: str = "anonymous", matchers: list[Matcher] | None = None,
               profile_type: str | None = None, start_ns: int | None = None,
               end_ns: int | None = None) -> list[dict]:
        """Series (label sets with their profile type) with data in the range."""
        sel = Selection(profile_type, tuple(matchers or ()), start_ns, end_ns, tenant)
        cands = candidate_series(self.dicts, sel)
        if not cands:
            return []
        with_data = self._series_with_data(list(cands), sel)
        out = []
        for sid in sorted(with_data):
            _, ptype, labels = self.dicts.series_info[sid]
            out.append({"profile_type": ptype, "labels": dict(labels)})
        return out

    def _series_with_data(self, sids: list[int], sel: Selection) -> set[int]:
        import pyarrow as pa
        with temp_tables(self.db.con, want_series=ids_table(sids, pa.int32())) as con:
            rows = con.execute("SELECT DISTINCT series_id FROM profiles WHERE series_id IN "
                               "(SELECT id FROM want_series) AND time_nanos BETWEEN ? AND ?",
                               [INT64_MIN if sel.start_ns is None else sel.start_ns,
                                INT64_MAX if sel.end_ns is None else sel.end_ns]).fetchall()
        return {r[0] for r in rows}

    def label_names(self, tenant: str = "anonymous", matchers: list[Matcher] | None = None,
                    profile_type: str | None = None, start_ns: int | None = None,
                    end_ns: int | None = None) -> list[str]:
        names: set[str] = set()
        for s in self.series(tenant, matchers, profile_type, start_ns, end_ns):
            names.update(s["labels"])
        names.update(self._sample_label_keys(tenant, matchers, profile_type, start_ns, end_ns))
        return sorted(names)

    def label_values(self, name: str, tenant: str = "anonymous", matchers: list[Matcher] | None = None,
                     profile_type: str | None = None, start_ns: int | None = None,
                     end_ns: int | None = None) -> list[str]:
        vals: set[str] = set()
        for s in self.series(tenant, matchers, profile_type, start_ns, end_ns):
            if name in s["labels"]:
                vals.add(s["labels"][name])
        vals.update(self._sample_label_values(name, tenant, matchers, profile_type, start_ns, end_ns))
        return sorted(vals)

    def _labelsets_in(self, tenant, matchers, profile_type, start_ns, end_ns) -> list[int]:
        types = {t for t in self.profile_types(tenant, start_ns, end_ns)
                 if profile_type is None or t == profile_type or profile_type in t.split(":")}
        ids: set[int] = set()
        for t in types:
            m = match_profiles(self.db, self.dicts, Selection(t, tuple(matchers or ()), start_ns, end_ns, tenant))
            if not len(m.profile_ids):
                continue
            if m.pairs is not None:
                ids.update(m.pairs[1].tolist())
                continue
            with temp_tables(self.db.con, sel_profiles=ids_table(m.profile_ids)) as con:
                ids.update(r[0] for r in con.execute(
                    "SELECT DISTINCT labelset_id FROM samples WHERE profile_id IN (SELECT id FROM sel_profiles)"
                ).fetchall())
        ids.discard(0)
        return sorted(ids)

    def _sample_label_keys(self, *args) -> set[str]:
        out: set[str] = set()
        for ls in self._labelsets_in(*args):
            out.update(self.dicts.labelset_labels.get(ls, {}))
        return out

    def _sample_label_values(self, name, *args) -> set[str]:
        out: set[str] = set()
        for ls in self._labelsets_in(*args):
            v = self.dicts.labelset_labels.get(ls, {}).get(name)
            if v is not None:
                out.add(v)
        return out

    def list_profiles(self, sel: Selection, limit: int = 1000) -> list[dict]:
        """Metadata of the selection's profiles, newest first: ids, series labels, type, time,
        duration, sample count, pprof total, source, and the pprof comments."""
        m = match_profiles(self.db, self.dicts, sel)
        if not len(m.profile_ids):
            return []
        with temp_tables(self.db.con, sel_profiles=ids_table(m.profile_ids)) as con:
            cur = con.execute(load_sql("profiles_list"), {"limit": limit})
            cols = [c[0] for c in cur.description]
            rows = [dict(zip(cols, r)) for r in cur.fetchall()]
        for r in rows:
            r["labels"] = dict(self.dicts.series_info[r["series_id"]][2])
        return rows

    def time_series(self, sel: Selection, step_ns: int, group_by: list[str] | None = None,
                    aggregation: str = "sum") -> list[dict]:
        """Sum of values per time bucket of ``step_ns``, per group of series labels;
        ``aggregation="avg"`` divides each bucket by the number of profiles in it."""
        if aggregation not in ("sum", "avg"):
            from ..errors import BadInput
            raise BadInput(f"aggregation {aggregation!r} is not one of: sum, avg")
        m = match_profiles(self.db, self.dicts, sel)
        if not len(m.profile_ids):
            return []
        step_ns = max(int(step_ns), 1)
        if m.call_site:
            rows = self._series_in_stacks(m, step_ns)
        elif m.pairs is None:
            with temp_tables(self.db.con, sel_profiles=ids_table(m.profile_ids)) as con:
                rows = con.execute(
                    "SELECT series_id, (time_nanos // $step) * $step AS t, SUM(total)::BIGINT AS v, count(*) AS n "
                    "FROM profiles WHERE id IN (SELECT id FROM sel_profiles) GROUP BY ALL ORDER BY t",
                    {"step": step_ns}).fetchall()
        else:
            with temp_tables(self.db.con, sel_pairs=pairs_table(*m.pairs)) as con:
                rows = con.execute(
                    "SELECT p.series_id, (p.time_nanos // $step) * $step AS t, SUM(s.value)::BIGINT AS v, "
                    "count(DISTINCT p.id) AS n FROM samples s "
                    "JOIN sel_pairs x ON x.profile_id = s.profile_id AND x.labelset_id = s.labelset_id "
                    "JOIN profiles p ON p.id = s.profile_id GROUP BY ALL ORDER BY t", {"step": step_ns}).fetchall()
        groups: dict[tuple, dict[int, list[int]]] = {}
        for sid, t, v, cnt in rows:
            labels = self.dicts.series_info[sid][2]
            key = tuple((g, labels.get(g, "")) for g in (group_by or []))
            acc = groups.setdefault(key, {}).setdefault(int(t), [0, 0])
            acc[0] += int(v)
            acc[1] += int(cnt)
        out = []
        for k, b in sorted(groups.items()):
            pts = sorted((t, (v / n if n else 0.0) if aggregation == "avg" else v) for t, (v, n) in b.items())
            out.append({"labels": dict(k), "points": pts})
        return out

    def _series_in_stacks(self, m, step_ns: int) -> list[tuple]:
        """(series_id, bucket, value, n_profiles) rows counting only the stacks under
        ``m.call_site``."""
        import pyarrow as pa

        from .select import call_site_stacks, merged_rows
        stack = merged_rows(self.db, m)["stack_id"].astype(np.int64)
        keep = stack[call_site_stacks(self.dicts, stack, m.call_site)]
        tables = {"sel_profiles": ids_table(m.profile_ids), "sel_stacks": ids_table(np.unique(keep), pa.int32())}
        if m.pairs is not None:
            tables["sel_pairs"] = pairs_table(*m.pairs)
        with temp_tables(self.db.con, **tables) as con:
            query = "series_in_stacks" if m.pairs is None else "series_in_stacks_labelsets"
            return con.execute(load_sql(query), {"step": step_ns}).fetchall()

    def time_bounds(self, tenant: str = "anonymous") -> tuple[int, int] | None:
        """(oldest, newest) profile time of a tenant in unix ns, or None without data."""
        lo, hi = self.db.con.execute(load_sql("time_bounds"), {"tenant": tenant}).fetchall()[0]
        return None if lo is None else (int(lo), int(hi))

    def stats(self) -> dict:
        con = self.db.con
        n_samples = con.execute("SELECT count(*) FROM samples").fetchall()[0][0]
        n_profiles = con.execute("SELECT count(*) FROM profiles").fetchall()[0][0]
        return {"profiles": n_profiles, "sample_rows": n_samples, "stacks": len(self.dicts.stacks),
                "frames": len(self.dicts.frames), "series": len(self.dicts.series),
                "bytes": self.db.size_bytes(), "schema_version": self.db.schema_version(),
                "time": time.time()}

    def close(self) -> None:
        self.writer.close()
        self.db.close()


