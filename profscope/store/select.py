"""Read side of the store: which profiles a selection covers, and their merged stacks.

Matching runs on the small series and label-set dictionaries in memory; merging runs in DuckDB
(``GROUP BY`` over the narrow samples table); the result comes back as numpy columns and becomes
a :class:`StackSet`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..analysis.stacks import unique_sorted
from ..errors import BadInput
from ..model import FrameTable, StackSet, ValueType, csr_take
from ..query.selector import Matcher, Selection
from .db import Database, ids_table, load_sql, pairs_table, temp_tables
from .ingest import Dictionaries

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Matched:
    """Profiles covered by a selection. ``pairs`` is None when whole profiles match; otherwise
    (profile id, label set id) pairs where sample labels decided a matcher."""
    profile_ids: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray] | None
    profile_type: str
    duration_nanos: int
    period: int
    period_type: ValueType | None
    call_site: tuple[str, ...] = ()   # keep only stacks under this root-first prefix
    total: int | None = None   # with tag filters: the total of the selection without them (pprof's)


def type_matches(ptype: str, wanted: str | None) -> bool:
    if not wanted:
        return True
    if ptype == wanted:
        return True
    parts = ptype.split(":")
    w = wanted.split(":")
    if len(w) == 1:
        return wanted in (parts[0], parts[1])
    if len(w) == 2:
        return w == parts[1:3] or w == parts[0:2]
    return parts[: len(w)] == w


def candidate_series(d: Dictionaries, sel: Selection) -> dict[int, list[Matcher]]:
    """Series of the tenant and type whose own labels do not exclude them; the value lists the
    matchers that the series' labels cannot decide (to be checked on sample labels)."""
    out: dict[int, list[Matcher]] = {}
    for sid, (tenant, ptype, labels) in d.series_info.items():
        if tenant != sel.tenant or not type_matches(ptype, sel.profile_type):
            continue
        undecided = []
        ok = True
        for m in sel.matchers:
            if m.name in labels:
                if not m.matches(labels[m.name]):
                    ok = False
                    break
            else:
                undecided.append(m)
        if ok:
            out[sid] = undecided
    return out


def match_profiles(db: Database, d: Dictionaries, sel: Selection) -> Matched:
    series = candidate_series(d, sel)
    types = sorted({d.series_info[s][1] for s in series})
    if len(types) > 1:
        raise BadInput(f"selection matches several profile types; choose one of: {', '.join(types)}")
    ptype = types[0] if types else (sel.profile_type or "")
    if not series:
        return Matched(np.zeros(0, np.int64), None, ptype, 0, 0, None)
    start = sel.start_ns if sel.start_ns is not None else INT64_MIN
    end = sel.end_ns if sel.end_ns is not None else INT64_MAX
    con = db.con
    with temp_tables(con, want_series=ids_table(list(series), pa.int32())):
        rows = con.execute(
            "SELECT id, series_id, duration_nanos, period, period_type, period_unit, source_id, total FROM profiles "
            "WHERE tenant = ? AND series_id IN (SELECT id FROM want_series) AND time_nanos BETWEEN ? AND ? "
            "ORDER BY id", [sel.tenant, start, end]).fetchnumpy()
    if sel.profile_ids:
        rows = _only_profile_ids(rows, sel.profile_ids)
    pids = rows["id"].astype(np.int64)
    sids = rows["series_id"]
    duration = int(rows["duration_nanos"].sum()) if len(pids) else 0
    period = int(rows["period"].max()) if len(pids) else 0
    ptyp = ValueType(str(rows["period_type"][0]), str(rows["period_unit"][0])) if len(pids) and rows["period_type"][0] else None
    needs_samples = {s for s, um in series.items() if um}
    if not len(pids) or (not needs_samples and not sel.tags):
        return Matched(pids, None, ptype, duration, period, ptyp, call_site=sel.call_site)
    # some matchers are decided by sample labels: find the (profile, label set) pairs that pass
    with temp_tables(con, sel_profiles=ids_table(pids)):
        pl = con.sql(load_sql("labelsets_of_profiles")).fetchnumpy()
    series_of = dict(zip(pids.tolist(), sids.tolist()))
    tag_ok = _tags_pass(db, unique_sorted(pl["labelset_id"]), sel.tags) if sel.tags else None
    keep_p, keep_l, base_p, base_l = [], [], [], []
    cache: dict[tuple[int, int], bool] = {}
    for p, ls in zip(pl["profile_id"].tolist(), pl["labelset_id"].tolist()):
        s = series_of[p]
        um = series[s]
        if not um:
            ok = True
        else:
            key = (s, ls)
            ok = cache.get(key)
            if ok is None:
                labels = d.labelset_labels.get(ls, {})
                ok = cache[key] = all(m.matches(labels.get(m.name)) for m in um)
        if ok and tag_ok is not None:
            base_p.append(p)
            base_l.append(ls)
            ok = tag_ok[ls]
        if ok:
            keep_p.append(p)
            keep_l.append(ls)
    total = None
    if tag_ok is not None:   # pprof keeps the total of everything the tag filters looked at
        total = int(rows["total"].sum()) if not needs_samples else _pairs_total(db, base_p, base_l)
    return Matched(np.array(sorted(set(keep_p)), np.int64),
                   (np.array(keep_p, np.int64), np.array(keep_l, np.int32)), ptype, duration, period, ptyp,
                   call_site=sel.call_site, total=total)


def _only_profile_ids(rows: dict[str, np.ndarray], wanted: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Rows of ``profiles`` whose id (decimal text) or source_id is in ``wanted``."""
    ids = {int(w) for w in wanted if w.isdigit()}
    sources = [w for w in wanted if not w.isdigit()]
    keep = np.isin(rows["id"].astype(np.int64), np.array(sorted(ids), np.int64))
    if sources:
        keep |= np.isin(rows["source_id"].astype(str), np.array(sources, dtype=str))
    return {k: v[keep] for k, v in rows.items()}


def _tags_pass(db: Database, labelset_ids: np.ndarray, tags: tuple) -> dict[int, bool]:
    """Whether each label set passes every tag filter (pprof rules: numeric labels are the ones
    stored with a unit)."""
    from ..analysis.tagfilter import LabelView
    con = db.con
    with temp_tables(con, want_ids=ids_table(labelset_ids, pa.int32())):
        rows = con.execute(load_sql("labelsets_by_id")).fetchall()
    out = {0: all(t.passes(LabelView({}, {}), {}) for t in tags)}
    for ls, keys, vals, units in rows:
        view, unit_of = LabelView({}, {}), {}
        for k, v, u in zip(keys, vals, units, strict=True):
            if u:
                view.nums.setdefault(k, []).append(int(v))
                unit_of.setdefault(k, u)
            else:
                view.strs.setdefault(k, []).append(v)
        out[ls] = all(t.passes(view, unit_of) for t in tags)
    return out


def _pairs_total(db: Database, profile_ids: list[int], labelset_ids: list[int]) -> int:
    """pprof total over (profile, label set) pairs."""
    if not profile_ids:
        return 0
    con = db.con
    with temp_tables(con, sel_pairs=pairs_table(profile_ids, labelset_ids)):
        t = con.sql(load_sql("profile_totals_labelsets")).fetchnumpy()
    return int(t["total"].sum())


def merged_rows(db: Database, m: Matched) -> dict[str, np.ndarray]:
    """``stack_id, value`` merged over the matched profiles (one row per stack)."""
    con = db.con
    if m.pairs is None:
        with temp_tables(con, sel_profiles=ids_table(m.profile_ids)):
            return con.sql(load_sql("merge_by_stack")).fetchnumpy()
    with temp_tables(con, sel_pairs=pairs_table(*m.pairs)):
        return con.sql(load_sql("merge_by_stack_labelsets")).fetchnumpy()


def stacks_and_frames(d: Dictionaries, stack_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, FrameTable]:
    """CSR (offsets, local frame indices) for ``stack_ids`` and their frames, from memory."""
    snap = d.index.snapshot()
    offs, gflat = csr_take(snap.stack_offs, snap.stack_flat, stack_ids.astype(np.int64))
    # frame ids are dense: presence and local indices through a lookup table (np.unique without
    # flags is hash-based and slow on millions of values in numpy 2.4; searchsorted is log n)
    present = np.zeros(int(gflat.max()) + 1 if len(gflat) else 0, bool)
    present[gflat] = True
    fids = np.flatnonzero(present)
    local = (np.cumsum(present) - 1).astype(np.int32)[gflat]
    return offs, local, snap.frames.table(fids.astype(np.int64))


def call_site_stacks(d: Dictionaries, stack_ids: np.ndarray, call_site: tuple[str, ...]) -> np.ndarray:
    """Mask over ``stack_ids`` (store ids): the stacks under ``call_site``."""
    from ..analysis.stacks import call_site_mask
    if not call_site or not len(stack_ids):
        return np.ones(len(stack_ids), bool)
    uniq, inv = np.unique(stack_ids, return_inverse=True)
    offs, flat, frames = stacks_and_frames(d, uniq)
    return call_site_mask(offs, flat, frames, call_site)[inv]


def _merged_per_stack(db: Database, d: Dictionaries, m: Matched) -> tuple[np.ndarray, np.ndarray, int]:
    rows = merged_rows(db, m)
    stack = rows["stack_id"].astype(np.int64)
    value = rows["value"].astype(np.int64)
    if m.call_site:   # Pyroscope's stack_trace_selector: the total is that of the kept stacks
        keep = call_site_stacks(d, stack, m.call_site)
        stack, value = stack[keep], value[keep]
    total = int(np.abs(value).sum())
    order = np.argsort(stack)           # one row per stack already: only the order is left
    return stack[order], value[order], total


def _sample_type(m: Matched) -> ValueType:
    parts = m.profile_type.split(":")
    return ValueType(parts[1], parts[2]) if len(parts) >= 3 else ValueType("", "")


def empty_stackset(st: ValueType) -> StackSet:
    return StackSet(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), FrameTable(),
                    st, 0, 0, 0, 0, None)


def select_tree(db: Database, d: Dictionaries, sel: Selection, granularity: str, max_nodes: int):
    """(StackSet carrying totals only, flame graph Tree) without materializing stacks."""
    return tree_of(db, d, match_profiles(db, d, sel), granularity, max_nodes)


def tree_of(db: Database, d: Dictionaries, m: Matched, granularity: str, max_nodes: int):
    """Like :func:`select_tree` for matched profiles (or (profile, label set) pairs)."""
    from ..analysis.stacks import frame_keys
    from ..analysis.tree import ancestors_closure, build_tree, tree_from_nodes
    st = _sample_type(m)
    if not len(m.profile_ids):
        e = empty_stackset(st)
        e.total = m.total or 0     # tag filters that kept nothing still report what they looked at
        return e, build_tree([e], granularity, max_nodes)
    stacks, per_stack, total = _merged_per_stack(db, d, m)
    total = total if m.total is None else m.total
    snap = d.index.snapshot(with_nodes=True)
    leaves = snap.stack_leaf[stacks]
    touched = ancestors_closure(snap.node_parent, leaves)
    fids = unique_sorted(snap.node_frame[touched])
    fids = fids[fids > 0]
    keys_local, knames = frame_keys(snap.frames.table(fids.astype(np.int64)), granularity)
    frame_key = np.full(len(snap.frames) + 1, -1, np.int64)
    frame_key[fids] = keys_local
    tree = tree_from_nodes(snap.node_parent, snap.node_frame, snap.node_depth, leaves, per_stack, frame_key,
                           knames, max_nodes, touched)
    info = StackSet(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64), FrameTable(), st,
                    total, len(m.profile_ids), m.duration_nanos, m.period, m.period_type)
    return info, tree


def select_stackset(db: Database, d: Dictionaries, sel: Selection) -> StackSet:
    return stackset_of(db, d, match_profiles(db, d, sel))


def stackset_of(db: Database, d: Dictionaries, m: Matched) -> StackSet:
    """Merge matched profiles (or (profile, label set) pairs) into a stack set."""
    st = _sample_type(m)
    if not len(m.profile_ids):
        e = empty_stackset(st)
        e.total = m.total or 0
        return e
    stacks, per_stack, total = _merged_per_stack(db, d, m)
    total = total if m.total is None else m.total
    offs, flat, frames = stacks_and_frames(d, stacks)
    return StackSet(offs, flat, per_stack, frames, st, total, len(m.profile_ids), m.duration_nanos,
                    m.period, m.period_type, profile_comments(db, m.profile_ids))


def profile_comments(db: Database, profile_ids: np.ndarray) -> list[str]:
    """The pprof comments of ``profile_ids``, without repeats, by profile id then file order."""
    from ..analysis.stacks import unique_comments
    con = db.con
    with temp_tables(con, sel_profiles=ids_table(profile_ids)):
        rows = con.execute(load_sql("profile_comments")).fetchall()
    return unique_comments(c for _, cs in rows for c in cs)


@dataclass
class PerProfile:
    """A selection whose profiles stay apart: stacks with values summed over the profiles (what
    ``select`` gives), per-profile totals and durations, and :meth:`profile_sums` to ask the store
    for per-profile sums of chosen stacks (the noise test of a diff). Selections read together
    share one stack and frame table (the same objects)."""
    stacks: StackSet               # values summed over the profiles (0 for another selection's stacks)
    stack_ids: np.ndarray          # int64 store id of each stack row
    profile_ids: np.ndarray        # int64 [n]
    profile_totals: np.ndarray     # int64 [n] pprof total of each profile (selected samples only)
    profile_durations: np.ndarray  # int64 [n]
    db: Database | None = None
    match: Matched | None = None

    def profile_sums(self, stack_index: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
        """[n_groups, n_profiles]: in each profile, the sum of the values of stacks
        ``stack_index[i]`` in group ``group[i]`` (a stack may be listed in several groups)."""
        out = np.zeros((n_groups, len(self.profile_ids)), np.float64)
        if not len(stack_index) or self.db is None or self.match is None:
            return out
        groups = pa.table({"stack_id": pa.array(self.stack_ids[stack_index].astype(np.int32)),
                           "grp": pa.array(np.asarray(group, np.int32))})
        tables = {"stack_groups": groups, "sel_profiles": ids_table(self.match.profile_ids)}
        if self.match.pairs is not None:
            tables["sel_pairs"] = pairs_table(*self.match.pairs)
        with temp_tables(self.db.con, **tables) as con:
            rows = con.sql(load_sql("profile_group_sums" if self.match.pairs is None
                                    else "profile_group_sums_labelsets")).fetchnumpy()
        col = np.searchsorted(self.profile_ids, rows["profile_id"].astype(np.int64))
        np.add.at(out, (rows["grp"].astype(np.int64), col), rows["value"].astype(np.float64))
        return out


def _profile_meta(db: Database, m: Matched) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, pprof totals, durations) of the matched profiles, by id."""
    con = db.con
    with temp_tables(con, sel_profiles=ids_table(m.profile_ids)):
        meta = con.sql(load_sql("profiles_meta")).fetchnumpy()
    ids = meta["id"].astype(np.int64)
    totals = meta["total"].astype(np.int64)
    if m.pairs is not None:   # only the samples whose labels passed count
        with temp_tables(con, sel_pairs=pairs_table(*m.pairs)):
            t = con.sql(load_sql("profile_totals_labelsets")).fetchnumpy()
        totals = np.zeros(len(ids), np.int64)
        totals[np.searchsorted(ids, t["profile_id"].astype(np.int64))] = t["total"].astype(np.int64)
    return ids, totals, meta["duration_nanos"].astype(np.int64)


def select_per_profile(db: Database, d: Dictionaries, sels: list[Selection]) -> list[PerProfile]:
    """Each selection with its profiles kept apart; all results share one stack table."""
    matches = [match_profiles(db, d, sel) for sel in sels]
    merged = [merged_rows(db, m) if len(m.profile_ids) else None for m in matches]
    # stack ids are dense: presence over a lookup table instead of a sort
    top = max((int(r["stack_id"].max()) for r in merged if r is not None and len(r["stack_id"])), default=-1)
    present = np.zeros(top + 1, bool)
    for r in merged:
        if r is not None:
            present[r["stack_id"]] = True
    uniq = np.flatnonzero(present)
    remap = np.cumsum(present) - 1
    if len(uniq):
        offs, flat, frames = stacks_and_frames(d, uniq)
    else:
        offs, flat, frames = np.zeros(1, np.int64), np.zeros(0, np.int32), FrameTable()
    out = []
    for m, r in zip(matches, merged, strict=True):
        parts = m.profile_type.split(":")
        st = ValueType(parts[1], parts[2]) if len(parts) >= 3 else ValueType("", "")
        per_stack = np.zeros(len(uniq), np.int64)
        if r is None:
            empty = np.zeros(0, np.int64)
            ss = StackSet(offs, flat, per_stack, frames, st, 0, 0, 0, 0, None)
            out.append(PerProfile(ss, uniq, empty, empty, empty))
            continue
        per_stack[remap[r["stack_id"]]] = r["value"].astype(np.int64)   # one row per stack
        ids, totals, durations = _profile_meta(db, m)
        ss = StackSet(offs, flat, per_stack, frames, st, int(totals.sum()), len(ids), int(durations.sum()),
                      m.period, m.period_type)
        out.append(PerProfile(ss, uniq, ids, totals, durations, db, m))
    return out
