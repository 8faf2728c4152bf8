"""The Wasm host: PSF1 encoding, upload validation, sandbox limits, error kinds, logs,
concurrency, the compiled-code cache and the wasmtime-py behaviours it designs around."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st
from wasm_helpers import TINY, example_bytes, folded_tree, manifest, wat_module

from profscope.analysis.tree import Tree
from profscope.errors import BadInput, Overloaded
from profscope.wasm import (
    HostPolicy,
    PluginFailed,
    PluginRejected,
    WasmHost,
    decode_psf1,
    encode_psf1,
    plan_psf1,
)
from profscope.wasm.engine import LogSink, log_host, log_sink

POLICY = HostPolicy(max_fuel=10**13, tick_ms=5, max_concurrency=4, max_module_bytes=256 * 1024)


@pytest.fixture(scope="module")
def host():
    h = WasmHost(POLICY)
    yield h
    h.close()


@pytest.fixture(scope="module")
def hotspots(host):
    return host.load_module(example_bytes("hotspots"))


def check_healthy(host, hotspots):
    """A well-behaved plugin works (used after every hostile run)."""
    r = host.run(hotspots, TINY, {"config": {"threshold_pct": 30}})
    assert [f["function"] for f in r.findings] == ["re.compile"]
    assert r.fuel_used > 0


# ---------------------------------------------------------------- PSF1
def test_psf1_layout_follows_the_spec():
    meta = {"sample_type": "samples", "config": {"k": 1}}
    buf = encode_psf1(TINY, meta)
    assert buf[:4] == b"PSF1"
    hdr = np.frombuffer(buf, "<u4", 15, 4)
    version, flags, n, m = hdr[:4]
    assert (version, flags, n, m) == (1, 0, TINY.n_nodes, len(TINY.names))
    offs = hdr[4:13]
    assert (offs % 8 == 0).all() and offs[0] == 64
    assert hdr[14] == len(buf)
    parent = np.frombuffer(buf, "<u4", n, hdr[4])
    assert parent[0] == 0xFFFFFFFF and (parent[1:] == TINY.parent[1:]).all()
    assert (np.frombuffer(buf, "<i8", n, hdr[6]) == TINY.self_[:, 0]).all()
    assert (np.frombuffer(buf, "<i8", n, hdr[7]) == TINY.total[:, 0]).all()
    assert not np.frombuffer(buf, "<i8", n, hdr[8]).any()
    stroff = np.frombuffer(buf, "<u4", m + 1, hdr[10])
    data = buf[hdr[11]:hdr[11] + stroff[-1]]
    assert [data[stroff[i]:stroff[i + 1]].decode() for i in range(m)] == TINY.names
    assert buf[hdr[12]:hdr[12] + hdr[13]] == b'{"sample_type":"samples","config":{"k":1}}'


def test_psf1_diff_puts_head_in_self_and_base_in_base_columns():
    base = folded_tree("a;b 2\na;c 2\n")
    head = folded_tree("a;b 1\na;d 5\n")
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.analysis.tree import build_tree
    from profscope.formats import decode
    sets = [profile_to_stackset(decode(t.encode(), "folded")) for t in ("a;b 2\na;c 2\n", "a;b 1\na;d 5\n")]
    diff = build_tree(sets)
    p = decode_psf1(encode_psf1(diff, {}))
    assert p.diff
    assert (p.self_ == diff.self_[:, 1]).all() and (p.base_self == diff.self_[:, 0]).all()
    assert (p.total == diff.total[:, 1]).all() and (p.base_total == diff.total[:, 0]).all()
    assert p.total[0] == head.total[0, 0] == 6 and p.base_total[0] == base.total[0, 0] == 4


def test_psf1_refuses_three_columns():
    t = Tree(["total"], np.zeros(1, np.int32), np.array([-1], np.int32), np.zeros(1, np.int32),
             np.zeros((1, 3), np.int64), np.zeros((1, 3), np.int64))
    with pytest.raises(BadInput, match="1 or 2 value columns"):
        encode_psf1(t, {})


def test_psf1_write_into_zeroes_padding_of_a_dirty_buffer():
    plan = plan_psf1(TINY, {"x": 1})
    dirty = np.full(plan.total_len, 0xAA, np.uint8)
    plan.write_into(dirty)
    assert dirty.tobytes() == encode_psf1(TINY, {"x": 1})
    assert 0xAA not in dirty.tobytes()


def test_psf1_non_ascii_and_lone_surrogate_names():
    names = ["total", "café", "日本", "bad\udcff"]
    t = Tree(names, np.arange(4, dtype=np.int32), np.array([-1, 0, 1, 2], np.int32),
             np.arange(4, dtype=np.int32), np.ones((4, 1), np.int64), np.arange(4, 0, -1).reshape(4, 1))
    p = decode_psf1(encode_psf1(t, {}))
    assert p.names[:3] == names[:3] and p.names[3] == "bad?"


@st.composite
def trees(draw):
    n = draw(st.integers(1, 60))
    k = draw(st.sampled_from([1, 2]))
    names = ["total"] + draw(st.lists(st.text(min_size=0, max_size=12), min_size=0, max_size=20))
    parent = [-1] + [draw(st.integers(0, i - 1)) for i in range(1, n)]
    name = [0] + [draw(st.integers(0, len(names) - 1)) for _ in range(1, n)]
    vals = st.integers(-(2**62), 2**62)
    selfv = np.array([[draw(vals) for _ in range(k)] for _ in range(n)], np.int64).reshape(n, k)
    total = np.array([[draw(vals) for _ in range(k)] for _ in range(n)], np.int64).reshape(n, k)
    depth = np.zeros(n, np.int32)
    return Tree(names, np.array(name, np.int32), np.array(parent, np.int32), depth, selfv, total)


@settings(max_examples=60, deadline=None)
@given(trees(), st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4))
def test_psf1_round_trip(tree, meta):
    buf = encode_psf1(tree, meta)
    p = decode_psf1(buf)
    assert p.header["total_len"] == len(buf)
    head = 1 if tree.self_.shape[1] == 2 else 0
    assert p.diff == (head == 1)
    assert (p.parent.astype(np.int64) == np.where(tree.parent < 0, 0xFFFFFFFF, tree.parent.astype(np.int64))).all()
    assert (p.name == tree.name).all()
    assert (p.self_ == tree.self_[:, head]).all() and (p.total == tree.total[:, head]).all()
    if head:
        assert (p.base_self == tree.self_[:, 0]).all() and (p.base_total == tree.total[:, 0]).all()
    else:
        assert not p.base_self.any() and not p.base_total.any()
    assert p.names == [s.encode("utf-8", "replace").decode() for s in tree.names]
    assert p.meta == meta


# ---------------------------------------------------------------- upload validation
def test_examples_load_with_their_manifest(host):
    for name in ("hotspots", "regressions", "slowpatterns"):
        data = example_bytes(name)
        info = host.load_module(data)
        d = info.to_dict()
        assert (d["name"], d["abi"], d["sha256"]) == (name, 1, hashlib.sha256(data).hexdigest())
        assert d["version"] == "1.0.0" and d["size"] == len(data)


@pytest.mark.parametrize("data, match", [
    (b"", "magic"),
    (os.urandom(512), "magic"),
    (b"(module)", "magic"),                                   # WAT text is never compiled
    (b"\x7fELF\x02\x01\x01" + b"\0" * 64, "precompiled"),
    (b"\0asm\x0d\x00\x01\x00", "component"),
    (b"\0asm\x02\x00\x00\x00", "version"),
    (b"\0asm\x01\x00\x00\x00\x01\xff\xff", "runs past|LEB"),
])
def test_garbage_is_bad_module(host, hotspots, data, match):
    with pytest.raises(PluginRejected, match=match) as ei:
        host.load_module(data)
    assert ei.value.kind == "bad_module" and ei.value.status == 400
    check_healthy(host, hotspots)


def test_precompiled_artifact_is_refused(host, hotspots):
    module = wasmtime.Module(wasmtime.Engine(), example_bytes("hotspots"))
    with pytest.raises(PluginRejected, match="precompiled") as ei:
        host.load_module(bytes(module.serialize()))
    assert ei.value.kind == "bad_module"
    check_healthy(host, hotspots)


def test_oversized_module_is_refused(host, hotspots):
    big = wat_module("infinite_loop.wat", manifest())
    from profscope.wasm.binary import add_custom_section
    big = add_custom_section(big, "padding", b"\0" * POLICY.max_module_bytes)
    with pytest.raises(PluginRejected, match="max_module_bytes=262144") as ei:
        host.load_module(big)
    assert ei.value.kind == "bad_module"
    check_healthy(host, hotspots)


def test_missing_manifest(host, hotspots):
    with pytest.raises(PluginRejected, match="profscope.manifest") as ei:
        host.load_module(wat_module("infinite_loop.wat"))
    assert ei.value.kind == "bad_module"
    check_healthy(host, hotspots)


def test_missing_exports_are_named(host, hotspots):
    with pytest.raises(PluginRejected, match="profscope_abi_v1, psp_alloc") as ei:
        host.load_module(wat_module("missing_exports.wat", manifest()))
    assert ei.value.kind == "bad_module"
    assert ei.value.details["missing"] == ["profscope_abi_v1", "psp_alloc"]
    check_healthy(host, hotspots)


def test_wasi_import_is_forbidden_with_the_list(host, hotspots):
    with pytest.raises(PluginRejected) as ei:
        host.load_module(wat_module("wasi_import.wat", manifest()))
    assert ei.value.kind == "forbidden_import" and ei.value.status == 400
    assert ei.value.details["forbidden"] == ["wasi_snapshot_preview1.fd_write (func)", "env.clock (func)"]
    check_healthy(host, hotspots)


ABI_TAIL = """(func (export "profscope_abi_v1"))
  (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0))"""


@pytest.mark.parametrize("wat, kind, match", [
    ('(module (import "profscope" "log" (func (param i32))) (memory (export "memory") 1) ' + ABI_TAIL + ")",
     "forbidden_import", r"profscope\.log \(func\)"),
    ('(module (import "env" "memory" (memory 1)) (export "memory" (memory 0)) ' + ABI_TAIL + ")",
     "forbidden_import", r"env\.memory \(memory\)"),
    ('(module (memory (export "memory") 1) (memory 1) ' + ABI_TAIL + ")", "bad_module", "2 memories"),
    ('(module ' + ABI_TAIL + ")", "bad_module", "0 memories"),
    ('(module (memory (export "memory") 1) (table 1 funcref) (table 1 funcref) ' + ABI_TAIL + ")",
     "bad_module", "2 tables"),
    ('(module (memory (export "memory") 2000) ' + ABI_TAIL + ")", "bad_module", "memory limit of 64 MiB"),
    ('(module (memory (export "memory") 1) (table 200000 funcref) ' + ABI_TAIL + ")",
     "bad_module", "max_table_elements"),
    ('(module (memory (export "memory") 1) (func (export "profscope_abi_v1")) '
     '(func (export "psp_alloc") (param i32) (result i64) (i64.const 0)) '
     '(func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0)))',
     "bad_module", "export 'psp_alloc' has type"),
    ('(module (memory (export "memory") 1) (func (export "profscope_abi_v1")) '
     '(func (export "psp_alloc") (param i32) (result i32) (i32.const 0)) '
     '(func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 0)) '
     '(func (result v128) (v128.const i64x2 0 0)))', "bad_module", "not a valid WebAssembly"),
])
def test_module_shape_checks(host, wat, kind, match):
    with pytest.raises(PluginRejected, match=match) as ei:
        host.load_module(wat_module(wat, manifest()))
    assert ei.value.kind == kind


@pytest.mark.parametrize("man, match", [
    ({"version": "1", "abi": 1}, "'name' is required"),
    ({"name": "Bad Name", "version": "1", "abi": 1}, "must match"),
    ({"name": "ok", "version": "", "abi": 1}, "version"),
    ({"name": "ok", "version": "1", "abi": 2}, "abi 2 is not supported"),
    ({"name": "ok", "version": "1", "abi": True}, "abi True"),
    ({"name": "ok", "version": "1", "abi": 1, "input": "json"}, "input"),
    ({"name": "ok", "version": "1", "abi": 1, "limits": {"fuel": -1}}, "limits.fuel"),
    ({"name": "ok", "version": "1", "abi": 1, "limits": {"cpu": 1}}, "limits.cpu is unknown"),
    ({"name": "ok", "version": "1", "abi": 1, "config": []}, "config"),
    ({"name": "ok", "version": "1", "abi": 1, "auto_run": {"on_ingest": "yes"}}, "auto_run"),
    ([1, 2], "JSON object"),
])
def test_manifest_rules(host, man, match):
    with pytest.raises(PluginRejected, match=match) as ei:
        host.load_module(wat_module("infinite_loop.wat", man))
    assert ei.value.kind == "bad_module"


def test_manifest_not_json_and_duplicated(host):
    from profscope.wasm.binary import add_custom_section
    base = wat_module("infinite_loop.wat")
    with pytest.raises(PluginRejected, match="not UTF-8 JSON"):
        host.load_module(add_custom_section(base, "profscope.manifest", b"{nope"))
    twice = add_custom_section(wat_module("infinite_loop.wat", manifest()), "profscope.manifest", b"{}")
    with pytest.raises(PluginRejected, match="exactly one"):
        host.load_module(twice)


# ---------------------------------------------------------------- hostile runs
HOSTILE_RUNS = [
    ("infinite_loop.wat", {"fuel": 10**12, "timeout_ms": 100}, "timeout"),
    ("infinite_loop.wat", {"fuel": 1_000_000}, "out_of_fuel"),
    ("start_loop.wat", {"fuel": 10**12, "timeout_ms": 100}, "timeout"),
    ("start_loop.wat", {"fuel": 1_000_000}, "out_of_fuel"),
    ("memory_bomb.wat", {"memory_mb": 8}, "memory_limit"),
    ("deep_recursion.wat", {}, "stack_overflow"),
    ("out_of_bounds.wat", {}, "trap"),
    ("guest_error.wat", {}, "trap"),
    ("bogus_output_pointer.wat", {}, "bad_output"),
    ("invalid_json.wat", {}, "bad_output"),
    ("bad_schema.wat", {}, "bad_output"),
    ("alloc_fails.wat", {}, "memory_limit"),
    ("unaligned_alloc.wat", {}, "bad_output"),
]


@pytest.mark.parametrize("wat, limits, kind", HOSTILE_RUNS, ids=[f"{w}-{k}" for w, _, k in HOSTILE_RUNS])
def test_hostile_run_fails_with_its_kind(host, hotspots, wat, limits, kind):
    info = host.load_module(wat_module(wat, manifest(wat.split(".")[0].replace("_", "-"), limits=limits)))
    t0 = time.perf_counter()
    with pytest.raises(PluginFailed) as ei:
        host.run(info, TINY)
    err = ei.value
    assert err.kind == kind, err.message
    assert err.status == 422
    assert err.details["plugin"] == info.name and err.details["wall_ms"] >= 0
    if kind == "timeout":
        assert err.details["fuel_used"] is None           # not accounted after an epoch interrupt
        assert time.perf_counter() - t0 >= 0.1
    if kind == "out_of_fuel":
        assert err.details["fuel_used"] == limits["fuel"]
    check_healthy(host, hotspots)


def test_guest_error_message_is_passed_on(host):
    info = host.load_module(wat_module("guest_error.wat", manifest("guest-error")))
    with pytest.raises(PluginFailed, match="cannot handle this input"):
        host.run(info, TINY)


def test_output_over_one_mib_is_bad_output(host):
    wat = """(module (memory (export "memory") 40)
      (func (export "profscope_abi_v1"))
      (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "psp_analyze") (param i32 i32) (result i64)
        (i64.or (i64.shl (i64.const 2097152) (i64.const 32)) (i64.const 65536))))"""
    info = host.load_module(wat_module(wat, manifest("big-output")))
    with pytest.raises(PluginFailed, match="exceeds the limit of 1048576 bytes") as ei:
        host.run(info, TINY)
    assert ei.value.kind == "bad_output"


def test_pointer_with_zero_length_is_bad_output(host):
    wat = """(module (memory (export "memory") 1)
      (func (export "profscope_abi_v1"))
      (func (export "psp_alloc") (param i32) (result i32) (i32.const 1024))
      (func (export "psp_analyze") (param i32 i32) (result i64) (i64.const 64)))"""
    info = host.load_module(wat_module(wat, manifest("zero-length")))
    with pytest.raises(PluginFailed, match="length 0") as ei:
        host.run(info, TINY)
    assert ei.value.kind == "bad_output"


def test_zero_means_no_findings(host):
    info = host.load_module(wat_module('(module (memory (export "memory") 1) ' + ABI_TAIL + ")",
                                       manifest("quiet")))
    r = host.run(info, TINY)
    assert r.findings == [] and r.fuel_used >= 0


def test_limits_are_capped_by_policy():
    h = WasmHost(HostPolicy(max_fuel=1000, max_memory_mb=16, max_timeout_ms=50))
    try:
        info = h.load_module(wat_module("infinite_loop.wat", manifest(
            limits={"fuel": 10**12, "memory_mb": 1024, "timeout_ms": 60000})))
        assert h.limits_for(info) == {"fuel": 1000, "memory_mb": 16, "timeout_ms": 50}
        with pytest.raises(PluginFailed) as ei:
            h.run(info, TINY)
        assert ei.value.kind == "out_of_fuel" and ei.value.details["fuel_used"] == 1000
    finally:
        h.close()


# ---------------------------------------------------------------- logs
def test_log_import_limits(host, hotspots):
    info = host.load_module(wat_module("log_spam.wat", manifest("log-spam")))
    r = host.run(info, TINY)
    assert r.findings == []
    assert len(r.logs) == 100 and r.logs_dropped == 1003 - 100
    first, second, third = r.logs[:3]
    assert first["level"] == "warn"
    assert first["message"] == "A" * 4096 + " [truncated 6144 bytes]"
    assert second["message"].startswith("[log call out of bounds")
    assert third == {"level": "info", "message": "line[31mred"}
    assert all(x == {"level": "debug", "message": "line[31mred"} for x in r.logs[3:])
    for line in r.logs:
        assert not re.search(r"[\x00-\x1f\x7f-\x9f]", line["message"])
    assert wasmtime._func.LAST_EXCEPTION is None
    check_healthy(host, hotspots)


def test_log_host_never_raises():
    sink = LogSink()
    with log_sink(sink):
        assert log_host(object(), 1, 0, 10) is None        # a broken caller: swallowed
        assert log_host(None, "x", None, None) is None
    assert sink.lines == []
    assert log_host(object(), 1, 0, 10) is None            # no run on this thread


# ---------------------------------------------------------------- wasmtime-py behaviours
def test_trap_is_not_a_wasmtime_error_and_the_host_catches_both(host, hotspots):
    assert not issubclass(wasmtime.Trap, wasmtime.WasmtimeError)
    info = host.load_module(wat_module("out_of_bounds.wat", manifest("oob")))
    with pytest.raises(PluginFailed, match="out of bounds") as ei:
        host.run(info, TINY)
    assert ei.value.kind == "trap"


def test_store_without_deadline_traps_at_once_but_host_stores_have_one(host, hotspots):
    engine = host._state().engine
    module = wasmtime.Module(engine, wasmtime.wat2wasm('(module (func (export "f") (result i32) (i32.const 7)))'))
    store = wasmtime.Store(engine)
    store.set_fuel(1000)
    with pytest.raises(wasmtime.Trap) as ei:
        wasmtime.Instance(store, module, []).exports(store)["f"](store)
    assert ei.value.trap_code == wasmtime.TrapCode.INTERRUPT
    check_healthy(host, hotspots)                            # the host sets a deadline first


def test_fuel_is_not_accounted_after_an_epoch_interrupt(host):
    engine = host._state().engine
    module = wasmtime.Module(engine, wasmtime.wat2wasm('(module (func (export "f") (loop $l (br $l))))'))
    store = wasmtime.Store(engine)
    store.set_fuel(10**12)
    store.set_epoch_deadline(1)
    timer = threading.Timer(0.05, engine.increment_epoch)
    timer.start()
    with pytest.raises(wasmtime.Trap) as ei:
        wasmtime.Instance(store, module, []).exports(store)["f"](store)
    timer.join()
    assert ei.value.trap_code == wasmtime.TrapCode.INTERRUPT
    assert store.get_fuel() == 10**12                         # the loop ran, yet nothing was charged


def test_host_function_exception_surfaces_outside_the_trap(host):
    """Why profscope.log must never raise: wasmtime-py re-raises the Python exception from a
    module global instead of a Trap (and on whichever thread leaves Wasm next)."""
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(
        '(module (import "h" "f" (func $f)) (func (export "g") (call $f)))'))

    def boom():
        raise KeyError("from the host function")
    func = wasmtime.Func(store, wasmtime.FuncType([], []), boom)
    with pytest.raises(KeyError, match="from the host function"):
        wasmtime.Instance(store, module, [func]).exports(store)["g"](store)
    assert wasmtime._func.LAST_EXCEPTION is None


def _child_run(host, info, queue):
    try:
        r = host.run(info, TINY, {"config": {"threshold_pct": 30}})
        queue.put(("ok", os.getpid(), r.findings, host._state().pid))
    except BaseException as e:          # report anything to the parent
        queue.put(("error", repr(e)))


def test_engine_is_rebuilt_after_fork(host, hotspots):
    parent = host.run(hotspots, TINY, {"config": {"threshold_pct": 30}}).findings
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_run, args=(host, hotspots, queue))
    proc.start()
    result = queue.get(timeout=60)
    proc.join(timeout=60)
    assert result[0] == "ok", result
    _, child_pid, findings, state_pid = result
    assert findings == parent and state_pid == child_pid != os.getpid()
    assert host._state().pid == os.getpid()                 # the parent's engine is untouched


# ---------------------------------------------------------------- concurrency and cache
def test_concurrent_runs_are_isolated(host, hotspots):
    from wasm_helpers import example_bytes as eb
    slow = host.load_module(eb("slowpatterns"))
    loop = host.load_module(wat_module("infinite_loop.wat", manifest("loop", limits={"fuel": 10**12,
                                                                                      "timeout_ms": 150})))
    tree = folded_tree("main;handler;re.compile 30\nmain;handler;json.loads 20\nmain;work 50\n")
    want_hot = host.run(hotspots, tree).findings
    want_slow = host.run(slow, tree).findings

    def job(i):
        if i % 4 == 3:
            try:
                host.run(loop, tree)
            except PluginFailed as e:
                return e.kind
            return "no error"
        plugin, want = (hotspots, want_hot) if i % 2 else (slow, want_slow)
        return host.run(plugin, tree).findings == want
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(job, range(16)))
    assert results.count("timeout") == 4
    assert all(r is True for i, r in enumerate(results) if i % 4 != 3)


def test_semaphore_bounds_concurrency_and_overload():
    h = WasmHost(HostPolicy(max_fuel=10**13, tick_ms=5, max_concurrency=1, queue_timeout_s=0.05))
    try:
        loop = h.load_module(wat_module("infinite_loop.wat", manifest(limits={"fuel": 10**12,
                                                                               "timeout_ms": 400})))
        errors = []
        t = threading.Thread(target=lambda: errors.append(pytest.raises(PluginFailed, h.run, loop, TINY)))
        t.start()
        time.sleep(0.15)
        with pytest.raises(Overloaded) as ei:
            h.run(loop, TINY)
        assert ei.value.status == 429
        t.join()
        assert errors[0].value.kind == "timeout"
    finally:
        h.close()


def test_compiled_code_cache_in_memory_and_on_disk(tmp_path):
    data = example_bytes("regressions")
    pol = HostPolicy(cache_dir=str(tmp_path / "cache"))
    h1 = WasmHost(pol)
    info = h1.load_module(data)
    assert h1.stats == {"compiled": 1, "memory_hits": 0, "disk_hits": 0}
    h1.load_module(data)
    h1.run(info, TINY)
    assert h1.stats == {"compiled": 1, "memory_hits": 2, "disk_hits": 0}
    key = h1.cache_key(info.sha256)
    assert (tmp_path / "cache" / f"{key}.cwasm").is_file()
    h1.close()
    h2 = WasmHost(pol)
    assert h2.cache_key(info.sha256) == key
    h2.run(h2.load_module(data), TINY)
    assert h2.stats == {"compiled": 0, "memory_hits": 1, "disk_hits": 1}
    h2.close()
    # other engine settings -> other key; a corrupt cache file is dropped and recompiled
    h3 = WasmHost(HostPolicy(cache_dir=str(tmp_path / "cache"), max_wasm_stack=256 * 1024))
    assert h3.cache_key(info.sha256) != key
    (tmp_path / "cache" / f"{h3.cache_key(info.sha256)}.cwasm").write_bytes(b"not code")
    h3.load_module(data)
    assert h3.stats["compiled"] == 1 and h3.stats["disk_hits"] == 0
    h3.close()


def test_rejected_modules_are_not_cached(tmp_path):
    h = WasmHost(HostPolicy(cache_dir=str(tmp_path)))
    with pytest.raises(PluginRejected):
        h.load_module(wat_module("wasi_import.wat", manifest()))
    assert list(tmp_path.iterdir()) == [] and h._state().modules == {}
    h.close()


# ---------------------------------------------------------------- metadata and results
def test_metadata_keys_and_config_merge(host, hotspots):
    meta = host.metadata(hotspots, {"sample_type": "cpu", "tenant": "a", "config": {"threshold_pct": 1}})
    assert set(meta) >= {"profile_type", "sample_type", "unit", "query", "from", "until", "config"}
    assert meta["config"] == {"threshold_pct": 1, "critical_pct": 25, "max_findings": 20}
    assert meta["tenant"] == "a" and meta["unit"] is None
    with pytest.raises(BadInput):
        host.metadata(hotspots, {"config": [1]})


def test_fuel_is_deterministic_and_result_shape(host, hotspots):
    a = host.run(hotspots, TINY).to_dict()
    b = host.run(hotspots, TINY).to_dict()
    assert a["fuel_used"] == b["fuel_used"] > 0
    assert set(a) >= {"plugin", "version", "findings", "fuel_used", "wall_ms"}
    assert a["plugin"] == "hotspots" and a["wall_ms"] > 0


def test_env_policy():
    pol = HostPolicy.from_env({"PROFSCOPE_WASM_MAX_FUEL": "77", "PROFSCOPE_WASM_QUEUE_TIMEOUT_S": "1.5",
                               "PROFSCOPE_WASM_PARALLEL_COMPILATION": "true",
                               "PROFSCOPE_WASM_CACHE_DIR": "/x"})
    assert (pol.max_fuel, pol.queue_timeout_s, pol.parallel_compilation, pol.cache_dir) == (77, 1.5, True, "/x")


def test_two_hosts_in_one_process(host, hotspots):
    """wasmtime panics (aborting the process) if a FuncType built for one engine is used with
    another; each host builds its own, so several hosts can live side by side."""
    other = WasmHost(HostPolicy(tick_ms=7))
    try:
        info = other.load_module(example_bytes("hotspots"))
        assert other.run(info, TINY).findings == host.run(hotspots, TINY).findings
    finally:
        other.close()
    check_healthy(host, hotspots)


def test_close_stops_the_ticker():
    h = WasmHost()
    h.run(h.load_module(example_bytes("hotspots")), TINY)
    ticker = h._state().ticker
    assert ticker.alive
    h.close()
    assert not ticker.alive
