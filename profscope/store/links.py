"""Trace links at ingest: which (profile, label set) pairs carry a span or trace id.

The ingest hook :func:`labelset_link_table` runs just before the write transaction: for the
label sets the new samples use, it returns their links (span, trace, local root ids; see
:mod:`profscope.traceids`). Inside the transaction ``sql/queries/sample_links_insert.sql``
turns them into ``sample_links`` rows, one per distinct (profile, label set) pair. Label sets
are few compared to samples, so the per-label-set work here is a dictionary lookup.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..traceids import Link, link_from_labels
from .db import load_sql

if TYPE_CHECKING:
    from .db import Database
    from .ingest import Dictionaries

LINK_SCHEMA = pa.schema([("labelset_id", pa.int32()), ("span_id", pa.uint64()), ("trace_hi", pa.uint64()),
                         ("trace_lo", pa.uint64()), ("root_span_id", pa.uint64())])


def labelset_link(d: Dictionaries, labelset_id: int) -> Link | None:
    """The link of a stored label set (cached in ``d.labelset_links``)."""
    cache = d.labelset_links
    if labelset_id not in cache:
        labels = d.labelset_labels.get(labelset_id)
        cache[labelset_id] = link_from_labels(labels) if labels else None
    return cache[labelset_id]


def _table(rows: list[tuple[int, Link]]) -> pa.Table | None:
    if not rows:
        return None
    return pa.table({"labelset_id": pa.array([r[0] for r in rows], pa.int32()),
                     "span_id": pa.array([r[1].span_id for r in rows], pa.uint64()),
                     "trace_hi": pa.array([r[1].trace_hi for r in rows], pa.uint64()),
                     "trace_lo": pa.array([r[1].trace_lo for r in rows], pa.uint64()),
                     "root_span_id": pa.array([r[1].root_span_id for r in rows], pa.uint64())},
                    schema=LINK_SCHEMA)


def labelset_link_table(d: Dictionaries, new_labelsets: list[tuple], sample_tables: list[pa.Table]
                        ) -> pa.Table | None:
    """Links of the label sets used by ``sample_tables`` (None when none carries a link).

    ``new_labelsets`` are the ``(id, hash, keys, vals, units)`` rows this ingest adds; their links
    are not cached, since their ids are only final once the transaction commits."""
    new = {g: dict(zip(keys, vals, strict=True)) for g, _h, keys, vals, _u in new_labelsets}
    used = [t.column("labelset_id").to_numpy() for t in sample_tables if t.num_rows]
    if not used:
        return None
    rows: list[tuple[int, Link]] = []
    for ls in np.unique(np.concatenate(used)).tolist():
        if ls == 0:
            continue
        link = link_from_labels(new[ls]) if ls in new else labelset_link(d, ls)
        if link is not None:
            rows.append((ls, link))
    return _table(rows)


def backfill(db: Database, d: Dictionaries) -> int:
    """Fill ``sample_links`` for samples stored before schema version 2. Returns its rows."""
    t = _table([(ls, lk) for ls in d.labelset_labels if ls and (lk := labelset_link(d, ls)) is not None])
    if t is None:
        return 0
    con = db.con
    with db.write_lock:
        con.register("linked_labelsets", t)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(load_sql("sample_links_backfill"))
            n = con.execute("SELECT count(*) FROM sample_links").fetchall()[0][0]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("linked_labelsets")
    return int(n)
