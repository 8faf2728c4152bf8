"""Trace links at ingest: which (profile, label set) pairs carry a span or trace id.

The ingest hook :func:`link_rows` is called once per stored profile with the label set ids its
samples use; it returns the rows for the ``sample_links`` table (written in the same
transaction as the samples). Label sets are few compared to samples, so the per-label-set work
here is a dictionary lookup.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from ..traceids import Link, link_from_labels

if TYPE_CHECKING:
    from .db import Database
    from .ingest import Dictionaries

LINK_SCHEMA = pa.schema([("profile_id", pa.int64()), ("labelset_id", pa.int32()), ("span_id", pa.uint64()),
                         ("trace_hi", pa.uint64()), ("trace_lo", pa.uint64()),
                         ("root_span_id", pa.uint64()), ("time_nanos", pa.int64()),
                         ("duration_nanos", pa.int64())])


def labelset_link(d: Dictionaries, labelset_id: int) -> Link | None:
    """The link of a stored label set (cached in ``d.labelset_links``)."""
    cache = d.labelset_links
    if labelset_id not in cache:
        labels = d.labelset_labels.get(labelset_id)
        cache[labelset_id] = link_from_labels(labels) if labels else None
    return cache[labelset_id]


def link_rows(d: Dictionaries, profile_id: int, labelset_ids: np.ndarray, time_nanos: int,
              duration_nanos: int, new_labels: dict[int, dict[str, str]]) -> pa.Table | None:
    """``sample_links`` rows for one profile; ``new_labels`` holds the label sets this ingest adds
    (not cached: their ids are only final once the transaction commits)."""
    rows: list[tuple[int, Link]] = []
    for ls in np.unique(labelset_ids).tolist():
        if ls == 0:
            continue
        link = link_from_labels(new_labels[ls]) if ls in new_labels else labelset_link(d, ls)
        if link is not None:
            rows.append((ls, link))
    if not rows:
        return None
    n = len(rows)
    links = [r[1] for r in rows]
    return pa.table({
        "profile_id": pa.array(np.full(n, profile_id, np.int64)),
        "labelset_id": pa.array([r[0] for r in rows], pa.int32()),
        "span_id": pa.array([lk.span_id for lk in links], pa.uint64()),
        "trace_hi": pa.array([lk.trace_hi for lk in links], pa.uint64()),
        "trace_lo": pa.array([lk.trace_lo for lk in links], pa.uint64()),
        "root_span_id": pa.array([lk.root_span_id for lk in links], pa.uint64()),
        "time_nanos": pa.array(np.full(n, time_nanos, np.int64)),
        "duration_nanos": pa.array(np.full(n, duration_nanos, np.int64)),
    }, schema=LINK_SCHEMA)


def backfill(db: Database, d: Dictionaries) -> int:
    """Fill ``sample_links`` for samples stored before schema version 2. Returns rows added."""
    linked = [(ls, lk) for ls in d.labelset_labels if ls and (lk := labelset_link(d, ls)) is not None]
    if not linked:
        return 0
    t = pa.table({"labelset_id": pa.array([ls for ls, _ in linked], pa.int32()),
                  "span_id": pa.array([lk.span_id for _, lk in linked], pa.uint64()),
                  "trace_hi": pa.array([lk.trace_hi for _, lk in linked], pa.uint64()),
                  "trace_lo": pa.array([lk.trace_lo for _, lk in linked], pa.uint64()),
                  "root_span_id": pa.array([lk.root_span_id for _, lk in linked], pa.uint64())})
    con = db.con
    with db.write_lock:
        con.register("linked_labelsets", t)
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("""
                INSERT INTO sample_links
                SELECT p.profile_id, p.labelset_id, l.span_id, l.trace_hi, l.trace_lo, l.root_span_id,
                       pr.time_nanos, pr.duration_nanos
                FROM (SELECT DISTINCT profile_id, labelset_id FROM samples
                      WHERE labelset_id IN (SELECT labelset_id FROM linked_labelsets)) p
                JOIN linked_labelsets l USING (labelset_id)
                JOIN profiles pr ON pr.id = p.profile_id""")
            n = con.execute("SELECT count(*) FROM sample_links").fetchall()[0][0]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("linked_labelsets")
    return int(n)
