"""Bulk ingest: frame content keys, the key index, FrameTable pickling, worker-process decoding and
`profscope ingest` storing every file in one transaction."""
from __future__ import annotations

import multiprocessing
import pickle
import random
import subprocess
import sys

import duckdb
import numpy as np
import pytest
from conftest import pprof_files
from hypothesis import given, settings
from hypothesis import strategies as st

from profscope.formats import decode
from profscope.formats.parallel import MIN_FILES, decode_files
from profscope.model import FrameTable
from profscope.store import Store
from profscope.store.keyindex import KeyIndex


def _rows(fr: FrameTable) -> list[tuple]:
    return list(zip(fr.name, fr.system_name, fr.file, fr.line.tolist(), fr.start_line.tolist(),
                    fr.address.tolist(), fr.mapping_file))


def test_decoder_keys_equal_keys_computed_from_the_columns(data):
    for f in pprof_files(data):
        fr = decode(f.read_bytes()).frames
        assert fr.keys is not None, f.name
        from_decoder = fr.keys.copy()
        fr.changed()
        assert np.array_equal(fr.content_keys(), from_decoder), f.name
        # equal keys exactly when the seven fields are equal
        rows = _rows(fr)
        by_key: dict[int, tuple] = {}
        for k, r in zip(from_decoder.tolist(), rows):
            assert by_key.setdefault(k, r) == r, f.name
        assert len(by_key) == len(set(rows)), f.name


def test_every_field_changes_the_key():
    base = ("f", "sys", "a.go", 10, 3, 0, "/bin/x")
    variants = [("g",) + base[1:], base[:1] + ("sys2",) + base[2:], base[:2] + ("b.go",) + base[3:],
                base[:3] + (11,) + base[4:], base[:4] + (4,) + base[5:], base[:5] + (0x1000,) + base[6:],
                base[:6] + ("/bin/y",),
                # values that only differ by where they sit must not collide
                ("", "f", "a.go", 10, 3, 0, "/bin/x"), ("f", "sys", "a.go", 3, 10, 0, "/bin/x")]
    keys = FrameTable.from_rows([base] + variants).content_keys()
    assert len(set(keys.tolist())) == len(variants) + 1


def test_frame_table_pickles_its_strings_as_one_table_and_rebuilds_them(data):
    p = decode((data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    q = pickle.loads(pickle.dumps(p))
    assert "name" not in q.frames.__dict__          # rebuilt only when read
    assert len(q.frames) == len(p.frames)
    assert _rows(q.frames) == _rows(p.frames)
    assert np.array_equal(q.frames.keys, p.frames.keys)
    # a frame table without a string table, or with NUL in a string, pickles plainly
    fr = FrameTable.from_rows([("a\0b", "", "f.go", 1, 0, 0, ""), ("c", "", "f.go", 2, 0, 0, "")])
    fr.strtab = (["", "a\0b", "c", "f.go"], np.array([[1, 2], [0, 0], [3, 3], [0, 0]]))
    assert _rows(pickle.loads(pickle.dumps(fr))) == _rows(fr)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2**64 - 1), max_size=400), max_size=12), st.integers(0, 2**31))
def test_key_index_answers_like_a_dict(batches, seed):
    rnd = random.Random(seed)
    idx, ref = KeyIndex(), {}
    import profscope.store.keyindex as ki
    old, ki.MIN_RECENT = ki.MIN_RECENT, 16           # merge often
    try:
        for batch in batches:
            keys = np.array(batch, np.uint64)
            probe = np.concatenate([keys, np.array(rnd.sample(sorted(ref), min(len(ref), 20)), np.uint64)])
            assert idx.lookup(probe).tolist() == [ref.get(k, 0) for k in probe.tolist()]
            new = np.array(sorted({k for k in batch if k not in ref}), np.uint64)
            ids = np.arange(len(ref) + 1, len(ref) + 1 + len(new), dtype=np.int64)
            idx.add(new, ids)
            ref.update(zip(new.tolist(), ids.tolist()))
            assert len(idx) == len(ref)
    finally:
        ki.MIN_RECENT = old


def test_reopened_store_finds_the_same_frames_and_stacks(tmp_path, data):
    raw = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()
    s = Store(str(tmp_path))
    s.ingest(decode(raw), {"service_name": "a"})
    counts = (len(s.dicts.frames), len(s.dicts.stacks))
    s.close()
    s = Store(str(tmp_path))
    assert (len(s.dicts.frames), len(s.dicts.stacks)) == counts
    s.ingest(decode(raw), {"service_name": "a"})
    assert (len(s.dicts.frames), len(s.dicts.stacks)) == counts     # nothing new
    s.close()
    con = duckdb.connect(str(tmp_path / "profscope.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM frames").fetchall()[0][0] == counts[0]
    assert con.execute("SELECT count(*) FROM stacks").fetchall()[0][0] == counts[1]
    con.close()


def _files(data, n: int) -> list[str]:
    pool = sorted(str(p) for p in (data / "pprof").glob("parca_*.pb.gz"))[:6]
    return [pool[i % len(pool)] for i in range(n)]


def test_decode_files_yields_every_file_in_order_with_or_without_workers(data):
    files = _files(data, MIN_FILES + 20)
    serial = [(f, p.n_samples, _rows(p.frames)) for f, p in decode_files(files, jobs=0)]
    parallel = [(f, p.n_samples, _rows(p.frames)) for f, p in decode_files(files, jobs=2)]
    assert serial == parallel and [f for f, *_ in serial] == files


def test_decode_files_stops_at_the_first_bad_file(data, tmp_path):
    files = _files(data, MIN_FILES + 20)
    files[37] = str(data / "edge/bad_truncated_gzip.pb.gz")
    seen = []
    with pytest.raises(Exception) as e:
        for f, _ in decode_files(files, jobs=2):
            seen.append(f)
    assert "bad_truncated_gzip.pb.gz" in str(e.value) and "unexpected EOF" in str(e.value)
    assert seen == files[:37]


def test_keys_from_a_worker_with_another_hash_salt_are_dropped(data):
    """A spawned worker salts str hashes differently: its frame keys must not be used."""
    files = _files(data, MIN_FILES)
    if "spawn" not in multiprocessing.get_all_start_methods():
        pytest.skip("no spawn")
    import profscope.formats.parallel as par
    old = multiprocessing.get_context
    par.multiprocessing.get_context = lambda method=None: old("spawn")
    try:
        got = list(decode_files(files, jobs=1))
    finally:
        par.multiprocessing.get_context = old
    for _, p in got:
        assert p.frames.keys is None or np.array_equal(p.frames.keys, FrameTable.from_rows(_rows(p.frames)).content_keys())


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "profscope.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_ingest_stores_every_file_or_none(tmp_path, data):
    files = _files(data, MIN_FILES + 30)
    bad = list(files)
    bad[-5] = str(data / "edge/bad_truncated_gzip.pb.gz")
    store = tmp_path / "s"
    out = _cli("ingest", "--data-dir", str(store), "--service", "bulk", *bad)
    assert out.returncode == 2 and "bad_truncated_gzip.pb.gz" in out.stderr and "Traceback" not in out.stderr
    assert "stored" not in out.stdout
    con = duckdb.connect(str(store / "profscope.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM profiles").fetchall()[0][0] == 0
    assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 0
    con.close()

    out = _cli("ingest", "--data-dir", str(store), "--service", "bulk", "--jobs", "2", *files)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": stored ") == len(files)
    expected = sum(int(np.abs(decode(open(f, "rb").read()).values).sum()) for f in files)
    con = duckdb.connect(str(store / "profscope.duckdb"), read_only=True)
    n_sources, total = con.execute("SELECT count(DISTINCT source_id), sum(total) FROM profiles").fetchone()
    con.close()
    assert n_sources == len(files) and total == expected > 0


# ------------------------------------------------------------------ the server's decoding workers

def _children(pid: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def test_decode_pool_decodes_like_the_caller_and_survives_a_dead_worker(data):
    import os
    import signal

    from profscope.errors import MalformedProfile
    from profscope.formats.parallel import DecodePool
    from profscope.formats.pprof import decode_pprof
    raw = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()
    bad = (data / "edge/bad_truncated_gzip.pb.gz").read_bytes()
    pool = DecodePool(2)
    try:
        assert pool.active and len(_children(os.getpid())) >= 2
        here, there = decode_pprof(raw), pool.builtin(raw, "pprof")
        assert _rows(there.frames) == _rows(here.frames) and np.array_equal(there.values, here.values)
        assert np.array_equal(there.frames.keys, here.frames.keys)
        with pytest.raises(MalformedProfile) as inline:
            decode_pprof(bad)
        with pytest.raises(MalformedProfile) as pooled:
            pool.builtin(bad, "pprof")
        assert pooled.value.message == inline.value.message
        assert pool.builtin(b"main;work 3\nmain 1\n", None).n_samples == 2
        for pid in _children(os.getpid()):
            os.kill(pid, signal.SIGKILL)
        assert pool.builtin(raw, "pprof").n_samples == here.n_samples     # decoded here from now on
        assert not pool.active
    finally:
        pool.close()


def test_decode_pool_answers_each_thread_with_its_own_result(data):
    """Many threads share two workers: each gets the answer to its own request, errors included
    (a worker's pipe never hands one thread another's answer)."""
    import threading

    from profscope.errors import MalformedProfile
    from profscope.formats.parallel import DecodePool
    from profscope.formats.pprof import decode_pprof
    files = [f for f in pprof_files(data) if f.stat().st_size < 200_000][:12]
    raws = [f.read_bytes() for f in files] + [(data / "edge/bad_truncated_gzip.pb.gz").read_bytes()]
    expected = []
    for raw in raws:
        try:
            p = decode_pprof(raw)
            expected.append((p.n_samples, int(p.values.sum()), len(p.frames)))
        except MalformedProfile as e:
            expected.append(e.message)
    pool = DecodePool(2)
    wrong: list = []

    def run(t: int) -> None:
        for k in range(30):
            i = (t * 7 + k) % len(raws)
            try:
                p = pool.builtin(raws[i], "pprof")
                got = (p.n_samples, int(p.values.sum()), len(p.frames))
            except MalformedProfile as e:
                got = e.message
            if got != expected[i]:
                wrong.append((i, got))
    try:
        threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert pool.active and not wrong
    finally:
        pool.close()


def test_a_pickled_profile_rebuilds_its_columns_only_when_read(data):
    """A profile crossing from a decoding worker: its header fields and sample count are read
    without unpickling its sample and frame columns; reading one brings them all back, equal."""
    import pickle

    from profscope.formats.pprof import decode_pprof
    here = decode_pprof((data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    there = pickle.loads(pickle.dumps(here, protocol=pickle.HIGHEST_PROTOCOL))
    again = pickle.loads(pickle.dumps(there, protocol=pickle.HIGHEST_PROTOCOL))   # passed on unread
    for p in (there, again):
        assert "_packed" in p.__dict__ and "values" not in p.__dict__
        assert p.n_samples == here.n_samples and p.sample_types == here.sample_types
        assert p.period == here.period and p.label_sets == here.label_sets
        assert "_packed" in p.__dict__                                           # still not rebuilt
        assert np.array_equal(p.values, here.values) and "_packed" not in p.__dict__
        assert np.array_equal(p.stack_frames, here.stack_frames)
        assert np.array_equal(p.stack_offsets, here.stack_offsets)
        assert np.array_equal(p.sample_labels, here.sample_labels)
        assert _rows(p.frames) == _rows(here.frames)


def test_decode_pool_queues_calls_in_a_worker_and_answers_each_once(data):
    """Calls are written to a worker while it is still busy (its pipe is its queue): a single
    thread submits many without waiting, and every ``done`` is called once, with its own answer,
    from the pool's results thread, in the order the worker took them."""
    import threading

    from profscope.errors import MalformedProfile
    from profscope.formats.parallel import DecodePool
    from profscope.formats.pprof import decode_pprof
    from profscope.limits import DEFAULT_LIMITS
    raws = [f.read_bytes() for f in pprof_files(data) if f.stat().st_size < 200_000][:10]
    raws.append((data / "edge/bad_truncated_gzip.pb.gz").read_bytes())
    pool = DecodePool(1)
    got: list = []
    finished = threading.Semaphore(0)

    def done_for(i: int):
        def done(ok: bool, value) -> None:
            got.append((i, threading.current_thread().name, ok,
                        value.n_samples if ok else value.message))
            finished.release()
        return done
    try:
        for i, raw in enumerate(raws * 3):
            pool.submit(decode_pprof, (raw, DEFAULT_LIMITS), done_for(i))
        for _ in range(len(raws) * 3):
            assert finished.acquire(timeout=60)
        assert [g[0] for g in got] == list(range(len(raws) * 3))
        assert {g[1] for g in got} == {"profscope-decode-results"}
        for i, _, ok, v in got:
            raw = raws[i % len(raws)]
            if ok:
                assert v == decode_pprof(raw).n_samples
            else:
                with pytest.raises(MalformedProfile) as here:
                    decode_pprof(raw)
                assert v == here.value.message
        def broken(ok: bool, value) -> None:
            raise RuntimeError("a handler's bug")
        pool.submit(len, (b"abc",), broken)                  # logged; the results thread lives on
        pool.submit(len, (b"abcd",), lambda ok, v: got.append(v) or finished.release())
        assert finished.acquire(timeout=30) and got[-1] == 4
        assert pool.active
    finally:
        pool.close()


def test_decode_pool_runs_what_a_dead_worker_had_queued_here(data):
    """A worker killed with calls queued in its pipe: each of those calls is run in the server's
    process and answered once; later calls run in their callers' threads."""
    import os
    import signal
    import threading
    import time

    from profscope.formats.parallel import DecodePool
    before = _children(os.getpid())
    pool = DecodePool(1)
    (worker,) = _children(os.getpid()) - before
    answers: list = []
    finished = threading.Semaphore(0)

    def done(ok: bool, value) -> None:
        answers.append((ok, value))
        finished.release()
    try:
        for _ in range(6):
            pool.submit(time.sleep, (0.5,), done)           # 3 s of calls queued in one worker
        time.sleep(0.2)
        os.kill(worker, signal.SIGKILL)
        for _ in range(6):
            assert finished.acquire(timeout=30)
        time.sleep(0.2)
        assert answers == [(True, None)] * 6                # once each, none lost
        assert not pool.active
        here: list = []
        pool.submit(threading.get_ident, (), lambda ok, v: here.append(v))
        assert here == [threading.get_ident()]
    finally:
        pool.close()


def test_server_worker_and_decoders_die_with_a_killed_server(tmp_path):
    import os
    import signal
    import socket
    import time
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--data-dir",
                             str(tmp_path / "d"), "--no-otlp-grpc", "--decode-workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        workers: set[int] = set()
        while len(workers) < 3 and time.time() < deadline:   # granian's worker and its 2 decoders
            time.sleep(0.1)
            workers = {c for w in _children(proc.pid) for c in {w, *_children(w)}}
        assert len(workers) == 3
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        out, err = proc.communicate(timeout=30)      # would hang while a worker held the pipes
    deadline = time.time() + 10
    while any(os.path.exists(f"/proc/{w}") and "Z" not in open(f"/proc/{w}/stat").read().split()[2]
              for w in workers if os.path.exists(f"/proc/{w}/stat")) and time.time() < deadline:
        time.sleep(0.1)
    alive = [w for w in workers if os.path.exists(f"/proc/{w}/stat")
             and open(f"/proc/{w}/stat").read().split()[2] != "Z"]
    assert not alive


def test_ingest_all_that_fails_midway_stores_nothing_and_the_store_goes_on(tmp_path, data):
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.errors import BadInput
    from profscope.query.selector import Selection
    profiles = [decode(open(f, "rb").read()) for f in _files(data, 6)]
    s = Store(str(tmp_path))
    before = (len(s.dicts.frames), len(s.dicts.stacks))

    def chunks():
        yield [(profiles[0], {"service_name": "a"}), (profiles[1], {"service_name": "a"})]
        yield [(profiles[2], {"service_name": "a"})]
        raise BadInput("file 4: broken")
    with pytest.raises(BadInput):
        s.ingest_all(chunks())
    assert (len(s.dicts.frames), len(s.dicts.stacks)) == before
    assert s.db.con.execute("SELECT count(*) FROM profiles").fetchall()[0][0] == 0
    # the same store keeps working, with the ids of the rolled-back frames and stacks reused
    s.ingest_all([[(p, {"service_name": "b"}) for p in profiles[:3]]])
    s.ingest(profiles[3], {"service_name": "b"})
    n_frames = s.db.con.execute("SELECT count(*), max(id) FROM frames").fetchall()[0]
    n_stacks = s.db.con.execute("SELECT count(*), max(id) FROM stacks").fetchall()[0]
    assert n_frames[0] == n_frames[1] == len(s.dicts.frames)
    assert n_stacks[0] == n_stacks[1] == len(s.dicts.stacks)
    want = sum(profile_to_stackset(p, "samples").total for p in profiles[:4]
               if any(t.type == "samples" for t in p.sample_types))
    assert want > 0 and s.select(Selection.from_query('samples{service_name="b"}')).total == want
    s.close()


def test_close_waits_for_queued_ingests_and_refuses_later_ones(tmp_path, data):
    import threading

    from profscope.errors import StoreError
    p = decode((data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    s = Store(str(tmp_path))
    errors: list[BaseException] = []

    def push(i: int) -> None:
        try:
            s.ingest(p, {"service_name": f"svc{i}"})
        except BaseException as e:       # noqa: BLE001 - collected for the assertion
            errors.append(e)
    threads = [threading.Thread(target=push, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.close()
    assert not errors
    with pytest.raises(StoreError):
        s.ingest(p, {"service_name": "late"})
    s2 = Store(str(tmp_path))
    assert s2.db.con.execute("SELECT count(DISTINCT source_id) FROM profiles").fetchone()[0] == 8
    s2.close()
