"""The DuckDB store: dedup, atomicity, selections, merges equal to go tool pprof, exports."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pprof_oracle import have_go, pprof_top

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.top import top_table
from profscope.errors import BadInput
from profscope.formats import decode
from profscope.formats.pprof_write import encode_stackset
from profscope.query.selector import Selection
from profscope.store import Store


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "store"))
    yield s
    s.close()


def load(data, name):
    return decode((data / name).read_bytes())


def test_same_profile_twice_stores_stacks_once(store, data):
    p = load(data, "pprof/gp_large.cpu.pb.gz")
    store.ingest(p, {"service_name": "a"})
    first = store.stats()
    store.ingest(p, {"service_name": "b"})
    second = store.stats()
    assert second["stacks"] == first["stacks"] and second["frames"] == first["frames"]
    assert second["profiles"] == 2 * first["profiles"]
    one = top_table(store.select(Selection.from_query('cpu{service_name="a"}')))
    assert one.rows() == top_table(profile_to_stackset(p, "cpu")).rows()
    both = top_table(store.select(Selection.from_query("cpu{}")))
    assert both.total == 2 * one.total


def test_profile_rows_are_appended_in_the_tables_column_order(store, data):
    """Profile rows are appended to ``profiles`` column by column in the order the migrations
    give the table (no SQL names them): the order must be the database's, and every value lands
    in its column."""
    import time

    from profscope.store.ingest import _PROFILES_TABLE
    cols = store.db.con.execute("SELECT column_name FROM information_schema.columns WHERE table_name = "
                                "'profiles' ORDER BY ordinal_position").fetchall()
    assert [c[0] for c in cols] == [name for name, _ in _PROFILES_TABLE]
    p = load(data, "pprof/gp_large.cpu.pb.gz")
    before = time.time()
    res = store.ingest(p, {"service_name": "cols", "__name__": "process_cpu"})
    row = store.db.con.execute("SELECT series_id > 0, tenant, profile_type, sample_type, period, time_nanos, "
                               "n_samples > 0, total, source_format, source_id, epoch(ingested_at), comments "
                               "FROM profiles WHERE id = ?", [res.profile_ids[0]]).fetchall()[0]
    assert row[:10] == (True, "anonymous", res.profile_types[0], p.sample_types[0].type, p.period, p.time_nanos,
                        True, int(abs(p.values[:, 0]).sum()), "pprof", res.source_id)
    assert before - 5 <= row[10] <= time.time() + 5 and row[11] == list(p.comments)


def test_store_survives_reopen(tmp_path, data):
    p = load(data, "pprof/parca_fib_bigint.cpu.pb.gz")
    s = Store(str(tmp_path))
    s.ingest(p, {"service_name": "a"})
    s.close()
    s = Store(str(tmp_path))
    s.ingest(p, {"service_name": "a"})   # dictionaries reloaded: no duplicate stacks
    ss = s.select(Selection.from_query("cpu"))
    assert ss.total == 2 * profile_to_stackset(p, "cpu").total
    n = s.db.con.execute("SELECT count(*), count(DISTINCT frames) FROM stacks").fetchall()[0]
    assert n[0] == n[1]
    s.close()


@pytest.mark.skipif(not have_go(), reason="needs go tool pprof")
def test_merged_selection_equals_pprof_merge(store, data):
    t0, t9 = data / "pprof/parca_many_heap_t0.pb.gz", data / "pprof/parca_many_heap_t9.pb.gz"
    for f in (t0, t9):
        store.ingest(decode(f.read_bytes()), {"service_name": "heap"})
    ss = store.select(Selection.from_query('memory:alloc_space:bytes:space:bytes{service_name="heap"}'))
    oracle = pprof_top(str(t0), "alloc_space", "bytes", extra=[str(t9)])
    mine = top_table(ss)
    assert mine.total == oracle["total"] and mine.rows() == oracle["rows"]


@pytest.mark.skipif(not have_go(), reason="needs go tool pprof")
def test_export_is_read_by_pprof_with_same_totals(store, data, tmp_path):
    store.ingest(load(data, "pyroscope-agpl/pyro_go.heap.pb.gz"), {"service_name": "x"})
    ss = store.select(Selection.from_query("inuse_space"))
    out = tmp_path / "export.pb.gz"
    out.write_bytes(encode_stackset(ss))
    oracle = pprof_top(str(out), None, "bytes")
    assert oracle["total"] == ss.total
    assert oracle["rows"] == top_table(ss).rows()


def test_matchers_and_time_range(store, data):
    p = load(data, "pprof/gp_sample.cpu.pb.gz")
    for env, t in (("dev", 1_000), ("prod", 2_000), ("prod", 3_000)):
        p.time_nanos = t * 10**9
        store.ingest(p, {"service_name": "api", "env": env, "pod": f"pod-{t}"})
    one = profile_to_stackset(p, "cpu").total

    def total(q, start=None, end=None):
        return store.select(Selection.from_query(q, start, end)).total
    assert total('cpu{env="prod"}') == 2 * one
    assert total('cpu{env!="prod"}') == one
    assert total('cpu{pod=~"pod-[12].*"}') == 2 * one
    assert total('cpu{pod!~"pod-1.*"}') == 2 * one
    assert total('cpu{missing="x"}') == 0
    assert total("cpu{}", 1_500 * 10**9, 2_500 * 10**9) == one
    assert store.label_values("env") == ["dev", "prod"]
    assert "pod" in store.label_names()


def test_sample_labels_select_like_tagfocus(store, data):
    p = load(data, "pprof/parca_labels_api.cpu.pb.gz")
    store.ingest(p, {"service_name": "api"})
    from profscope.analysis.stacks import Filters, TagFilter
    expected = profile_to_stackset(p, "cpu", Filters(tags=(TagFilter("api", "^query$"),)))
    got = store.select(Selection.from_query('cpu{api="query"}'))
    assert top_table(got).rows() == top_table(expected).rows()


def test_ambiguous_type_is_refused(store, data):
    store.ingest(load(data, "pprof/gp_sample.cpu.pb.gz"), {"service_name": "api"})
    with pytest.raises(BadInput, match="several profile types"):
        store.select(Selection.from_query('{service_name="api"}'))


def test_failed_ingest_leaves_nothing(store, data):
    p = load(data, "pprof/gp_sample.cpu.pb.gz")
    p.sample_types[0] = p.sample_types[0]._replace(type="x")
    bad = dict(service_name="a", **{"bad label": "1"})
    with pytest.raises(BadInput):
        store.ingest(p, bad)
    stats = store.stats()
    assert stats["profiles"] == stats["stacks"] == stats["frames"] == 0


def test_write_failure_mid_transaction_rolls_back(store, data):
    p = load(data, "pprof/gp_sample.cpu.pb.gz")
    store.db.con.execute("DROP TABLE samples")   # the last insert of the transaction will fail
    with pytest.raises(Exception, match="samples"):
        store.ingest(p, {"service_name": "a"})
    assert store.db.con.execute("SELECT count(*) FROM profiles").fetchall()[0][0] == 0
    assert store.db.con.execute("SELECT count(*) FROM frames").fetchall()[0][0] == 0
    assert len(store.dicts.frames) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=6),
                          st.integers(min_value=1, max_value=10**6)), min_size=1, max_size=30))
def test_property_store_round_trip_keeps_totals(tmp_path_factory, stacks):
    text = "".join(";".join(s) + f" {n}\n" for s, n in stacks)
    p = decode(text.encode(), "folded")
    s = Store(str(tmp_path_factory.mktemp("prop")))
    try:
        s.ingest(p, {"service_name": "prop"})
        ss = s.select(Selection.from_query("samples"))
        again = decode(encode_stackset(ss))
        assert profile_to_stackset(again).total == sum(n for _, n in stacks)
        assert top_table(profile_to_stackset(again)).rows() == top_table(profile_to_stackset(p)).rows()
    finally:
        s.close()


@pytest.mark.parametrize("granularity", ["functions", "lines"])
@pytest.mark.parametrize("max_nodes", [0, 40, 1000])
def test_index_flamegraph_equals_tree_from_stacks(tmp_path, data, granularity, max_nodes):
    """The call-path index gives exactly the tree built from the merged stacks, pruned alike."""
    from profscope.analysis.tree import build_tree
    s = Store(str(tmp_path))
    for f in ("pprof/gp_sample.cpu.pb.gz", "pprof/parca_fib_bigint.cpu.pb.gz", "pprof/parca_alloc_objects.heap.pb.gz"):
        s.ingest(load(data, f), {"service_name": f})
    s.close()
    s = Store(str(tmp_path))   # the index is rebuilt from the database on open
    s.ingest(load(data, "pprof/gp_sample.cpu.pb.gz"), {"service_name": "again"})
    for q in ("cpu", "alloc_objects", 'cpu{service_name="again"}'):
        ss = s.select(Selection.from_query(q))
        info, tree = s.select_tree(Selection.from_query(q), granularity, max_nodes)
        tree.self_check()
        assert tree.to_json() == build_tree([ss], granularity, max_nodes).to_json()
        assert info.total == ss.total
    s.close()


@pytest.mark.parametrize("granularity", ["functions", "lines"])
def test_top_from_index_tree_equals_top_from_stacks(store, data, granularity):
    """The API's top table (from the call-path index) equals the one from merged stacks."""
    from profscope.query import engine
    for f in ("pprof/gp_large.cpu.pb.gz", "pprof/parca_alloc_space_delta.heap.pb.gz", "pprof/gp_sample.cpu.pb.gz"):
        store.ingest(load(data, f), {"service_name": f})
    for q in ("cpu", "alloc_space", "inuse_objects", 'cpu{service_name="pprof/gp_sample.cpu.pb.gz"}'):
        sel = Selection.from_query(q)
        fast = engine.top(store, sel, engine.View(granularity=granularity))
        slow = top_table(store.select(sel), granularity)
        assert fast.rows() == slow.rows() and fast.total == slow.total


def test_store_written_with_hash_columns_migrates(tmp_path, data):
    """Stores from before migration 005 kept a hash column on stacks and frames: reopening drops
    them, and stacks found again by the hash recomputed from their frames are not stored twice."""
    p = load(data, "pprof/parca_fib_bigint.cpu.pb.gz")
    s = Store(str(tmp_path))
    s.ingest(p, {"service_name": "a"})
    con = s.db.con
    con.execute("ALTER TABLE stacks ADD COLUMN hash UBIGINT DEFAULT 7")
    con.execute("ALTER TABLE frames ADD COLUMN hash UBIGINT DEFAULT 7")
    con.execute("DELETE FROM schema_migrations WHERE version = 5")
    n_stacks = con.execute("SELECT count(*) FROM stacks").fetchall()[0][0]
    s.close()
    s = Store(str(tmp_path))
    try:
        assert 5 in s.db.applied
        cols = {r[0] for r in s.db.con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name IN ('stacks', 'frames')").fetchall()}
        assert "hash" not in cols
        s.ingest(p, {"service_name": "b"})
        assert s.db.con.execute("SELECT count(*) FROM stacks").fetchall()[0][0] == n_stacks
        ss = s.select(Selection.from_query("cpu"))
        assert ss.total == 2 * profile_to_stackset(p, "cpu").total
    finally:
        s.close()


def test_group_commit_splits_batches_but_loses_nothing(tmp_path, data, monkeypatch):
    """Concurrent ingests share transactions of at most ROWS_PER_TRANSACTION sample rows; what did
    not fit waits for the writer's next transaction, so every acknowledged ingest is stored."""
    import threading

    from profscope.store import ingest as store_ingest
    monkeypatch.setattr(store_ingest, "ROWS_PER_TRANSACTION", 1)
    p = load(data, "pprof/parca_fib_bigint.cpu.pb.gz")
    s = Store(str(tmp_path))
    batches: list[int] = []
    real_write = store_ingest._write
    monkeypatch.setattr(store_ingest, "_write", lambda db, batch: (batches.append(len(batch)), real_write(db, batch)))
    done: list[int] = []

    def push(i: int) -> None:
        s.ingest_many([(p, {"service_name": f"svc{i}"})])
        done.append(i)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(done) == list(range(16))
        assert max(batches) == 1 and len(batches) == 16     # one submission per transaction
        stored = s.db.con.execute("SELECT count(DISTINCT series_id) FROM profiles").fetchall()[0][0]
        assert stored == 16 * len(p.sample_types)
        assert s.select(Selection.from_query("cpu")).total == 16 * profile_to_stackset(p, "cpu").total
    finally:
        s.close()



def test_the_writer_waits_only_for_ingests_still_being_staged(tmp_path, data, monkeypatch):
    """``write_linger_ms``: a lone ingest after a lone one is written at once. After a transaction
    that held several ingests, the writer waits for the ingests created before its wait began and
    still being staged (a decoding worker has them), so they share the next transaction with what
    queued meanwhile; it waits no longer than their delivery, and not at all when none is
    pending."""
    import threading
    import time

    from profscope.store import ingest as store_ingest
    from profscope.store.ingest import stage_input
    p = load(data, "pprof/parca_fib_bigint.cpu.pb.gz")
    s = Store(str(tmp_path), write_linger_ms=3000)
    sizes: list[int] = []
    gate = threading.Event()
    real_commit = store_ingest.GroupWriter._commit

    def commit(self, batch):
        sizes.append(len(batch))
        if len(sizes) == 3:
            gate.wait(10)                   # holds the writer while more ingests queue
        return real_commit(self, batch)
    monkeypatch.setattr(store_ingest.GroupWriter, "_commit", commit)

    def push(name: str) -> threading.Thread:
        t = threading.Thread(target=s.ingest_many, args=([(p, {"service_name": name})],))
        t.start()
        return t
    try:
        t0 = time.monotonic()
        s.ingest_many([(p, {"service_name": "a"})])
        s.ingest_many([(p, {"service_name": "b"})])
        assert time.monotonic() - t0 < 2.5                 # neither waited for the 3 s linger
        held = push("c")                                   # a transaction of one, held at the gate
        while len(sizes) < 3:
            time.sleep(0.01)
        pair = [push("d"), push("e")]
        while len(s.writer._queue) < 2:
            time.sleep(0.01)
        staging = s.pending_ingest()                       # f: created, its profiles not yet staged
        gate.set()
        for t in [held, *pair]:
            t.join()                                       # d and e: one transaction of two
        waiting_since = time.monotonic()
        queued = push("g")                                 # queued while the writer waits for f
        time.sleep(0.3)
        assert len(sizes) == 4                             # g alone does not end the wait
        staging.deliver(True, [stage_input(p, {"service_name": "f"}, "anonymous", s.limits)])
        assert len(staging.result()) == 1                  # f and g: one transaction
        queued.join()
        assert time.monotonic() - waiting_since < 2.0      # ended by f's delivery, not the 3 s
        t1 = time.monotonic()
        s.ingest_many([(p, {"service_name": "h"})])        # nothing being staged: no wait
        assert time.monotonic() - t1 < 2.0
        assert sizes == [1, 1, 1, 2, 2, 1]
        assert s.db.con.execute("SELECT count(DISTINCT source_id) FROM profiles").fetchall()[0][0] == 8
    finally:
        s.close()


def test_flame_graph_of_profiles_without_samples(tmp_path, data):
    """A selection whose profiles hold no samples answers with an empty tree, not an error."""
    import dataclasses

    import numpy as np
    p = load(data, "edge/ok_baseline.pb.gz")
    empty = dataclasses.replace(p, values=np.zeros((0, len(p.sample_types)), np.int64),
                                stack_offsets=np.zeros(1, np.int64), stack_frames=np.zeros(0, np.int32),
                                sample_labels=np.zeros(0, np.int32), label_sets=[()])
    s = Store(str(tmp_path))
    try:
        s.ingest(empty, {"service_name": "idle"})
        info, tree = s.select_tree(Selection.from_query("cpu"))
        assert (info.total, info.n_profiles, tree.n_nodes) == (0, 1, 1)
    finally:
        s.close()
