"""Trace links at ingest: which (profile, label set) pairs carry a span or trace id.

The ingest hook :func:`link_rows` runs while a profile is staged: for the label sets one
profile's samples use, it returns ``sample_links`` rows (span, trace and local root ids, see
:mod:`profscope.traceids`), written in the same transaction as the samples. Label sets are few
compared to samples, so the per-label-set work here is a cached dictionary lookup.
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

LINK_COLUMNS = ("span_id", "trace_hi", "trace_lo", "root_span_id")


def labelset_link(d: Dictionaries, labelset_id: int) -> Link | None:
    """The link of a label set in ``d`` (cached in ``d.labelset_links``, which is cleared
    whenever the dictionaries are reset)."""
    cache = d.labelset_links
    if labelset_id not in cache:
        labels = d.labelset_labels.get(labelset_id)
        cache[labelset_id] = link_from_labels(labels) if labels else None
    return cache[labelset_id]


def _link_columns(rows: list[tuple[int, Link]]) -> dict[str, pa.Array]:
    return {"labelset_id": pa.array([r[0] for r in rows], pa.int32()),
            **{c: pa.array([getattr(r[1], c) for r in rows], pa.uint64()) for c in LINK_COLUMNS}}


def link_rows(d: Dictionaries, profile_id: int, col: np.ndarray, time_nanos: int,
              duration_nanos: int) -> pa.Table | None:
    """``sample_links`` rows for one profile's sample rows, given their label set ids ``col``
    (None when no label set has a link)."""
    if not col.any():                 # no sample labels at all (the usual case)
        return None
    rows: list[tuple[int, Link]] = []
    for ls in np.unique(col).tolist():
        link = labelset_link(d, ls) if ls else None
        if link is not None:
            rows.append((ls, link))
    if not rows:
        return None
    n = len(rows)
    cols = _link_columns(rows)
    return pa.table({"profile_id": pa.array(np.full(n, profile_id, np.int64)),
                     **cols, "time_nanos": pa.array(np.full(n, time_nanos, np.int64)),
                     "duration_nanos": pa.array(np.full(n, duration_nanos, np.int64))})


def backfill(db: Database, d: Dictionaries) -> int:
    """Fill ``sample_links`` for samples stored before schema version 2. Returns its rows."""
    rows = [(ls, lk) for ls in list(d.labelset_labels) if ls and (lk := labelset_link(d, ls)) is not None]
    if not rows:
        return 0
    t = pa.table(_link_columns(rows))
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
