"""Diff engine, significance tests, the ``profscope diff`` command and ``POST /api/v1/diff``."""
from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profscope.analysis.diff import DiffOptions, Side, diff
from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.stats import benjamini_hochberg, mann_whitney
from profscope.analysis.top import flat_cum
from profscope.cli import main
from profscope.errors import BadInput
from profscope.formats import decode
from profscope.model import FrameTable, StackSet, ValueType
from profscope.query.selector import Selection
from profscope.store import Store

CPU_FILES = ["pprof/gp_sample.cpu.pb.gz", "pprof/parca_fib_bigint.cpu.pb.gz",
             "pprof/parca_labels_api.cpu.pb.gz", "pprof/dd_cpu_labels_user.pb.gz",
             "pprof/speedscope_simple_nomappings.pb.gz", "pprof/parca_stripped_unsymbolized.cpu.pb.gz"]


def load(data, name, st="cpu"):
    return profile_to_stackset(decode((data / name).read_bytes()), st)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``profscope`` in-process, through the same main() the console script runs."""
    with pytest.raises(SystemExit) as e:
        main(list(args))
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


# ---------------------------------------------------------------- statistics
def _brute_force_p(x, y) -> float:
    """One-sided P(U_head >= observed) over every split of the pooled values (first principles)."""
    z = list(x) + list(y)

    def u(head_idx):
        hs = [z[i] for i in head_idx]
        bs = [z[i] for i in range(len(z)) if i not in head_idx]
        return sum((a > b) + 0.5 * (a == b) for a in hs for b in bs)
    obs = u(tuple(range(len(x), len(z))))
    splits = list(itertools.combinations(range(len(z)), len(y)))
    return sum(u(s) >= obs - 1e-9 for s in splits) / len(splits)


def test_mann_whitney_exact_equals_enumeration():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 4, size=(6, 5)).astype(float)       # many ties
    head = rng.integers(0, 5, size=(6, 4)).astype(float)
    p = mann_whitney(base, head, "greater")
    assert p == pytest.approx([_brute_force_p(b, h) for b, h in zip(base, head, strict=False)])
    p_less = mann_whitney(base, head, "less")
    assert p_less == pytest.approx([_brute_force_p(-b, -h) for b, h in zip(base, head, strict=False)])


def test_mann_whitney_normal_approximation_is_close_to_exact(monkeypatch):
    import profscope.analysis.stats as stats
    rng = np.random.default_rng(3)
    base = rng.normal(size=(20, 8))
    head = rng.normal(size=(20, 8)) + np.linspace(0, 2, 20)[:, None]
    exact = mann_whitney(base, head)
    monkeypatch.setattr(stats, "EXACT_MAX_SPLITS", 0)
    approx = mann_whitney(base, head)
    assert np.abs(exact - approx).max() < 0.01


def test_benjamini_hochberg_definition():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=30) ** 3
    m = len(p)
    rank = {i: r + 1 for r, i in enumerate(np.argsort(p, kind="stable"))}
    naive = [min(1.0, min(p[j] * m / rank[j] for j in range(m) if p[j] >= p[i])) for i in range(m)]
    assert benjamini_hochberg(p) == pytest.approx(naive)


# ---------------------------------------------------------------- engine algebra
def _synthetic(stacks: list[list[int]], values: list[int], names: list[str], st=("cpu", "nanoseconds"),
               duration=0) -> StackSet:
    offs = np.concatenate([[0], np.cumsum([len(s) for s in stacks])]).astype(np.int64)
    flat = np.array([f for s in stacks for f in s], np.int32)
    vals = np.array(values, np.int64)
    return StackSet(offs, flat, vals, FrameTable.from_names(names), ValueType(*st), int(np.abs(vals).sum()),
                    1, duration)


stack_sets = st.lists(st.tuples(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.integers(-50, 1000)),
                      min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(stack_sets, stack_sets)
def test_diff_algebra(a, b):
    names = [f"f{i}" for i in range(6)]
    sa = _synthetic([s for s, _ in a], [v for _, v in a], names)
    sb = _synthetic([s for s, _ in b], [v for _, v in b], names)
    ab = diff([sa], [sb], normalize="none")
    ba = diff([sb], [sa], normalize="none")
    aa = diff([sa], [sa], normalize="none")
    assert not aa.flat[:, 1].__sub__(aa.flat[:, 0]).any() and not aa.regressions.size
    # swapping sides swaps the columns
    idx = {n: i for i, n in enumerate(ba.names)}
    perm = [idx[n] for n in ab.names]
    assert np.array_equal(ab.flat, ba.flat[perm][:, ::-1]) and np.array_equal(ab.cum, ba.cum[perm][:, ::-1])
    # each column is that side's own flat/cum
    for col, ss in ((0, sa), (1, sb)):
        nm, fl, cu = flat_cum(ss)
        own = {n: (int(f), int(c)) for n, f, c in zip(nm, fl, cu, strict=False)}
        for i, n in enumerate(ab.names):
            assert (int(ab.flat[i, col]), int(ab.cum[i, col])) == own.get(n, (0, 0))
    t = ab.tree()
    t.self_check()
    assert t.total[0].tolist() == [int(sa.values.sum()), int(sb.values.sum())]


def test_normalizations(data):
    a, b = load(data, CPU_FILES[0]), load(data, CPU_FILES[1])
    a.duration_nanos, b.duration_nanos = 2 * 10**9, 5 * 10**9
    raw = diff([a], [b], "none")
    share = diff([a], [b], "total")
    rate = diff([a], [b], "duration")
    np.testing.assert_allclose(share.metric_values(), raw.flat / [a.total, b.total])
    np.testing.assert_allclose(rate.metric_values(), raw.flat / [2.0, 5.0])
    assert raw.metric_values().dtype == np.int64
    a.duration_nanos = 0
    with pytest.raises(BadInput, match="normalize=duration needs the duration"):
        diff([a], [b], "duration")


def test_different_sample_types_are_refused(data):
    cpu = load(data, CPU_FILES[0], "cpu")
    samples = load(data, CPU_FILES[0], "samples")
    with pytest.raises(BadInput, match="different sample types: base cpu:nanoseconds, head samples:count"):
        diff([cpu], [samples])


@pytest.mark.parametrize("metric", ["flat", "cum"])
def test_per_profile_values_match_each_profile(data, metric):
    """The noise test sees, for every profile, exactly that profile's own flat/cum."""
    from profscope.analysis import diff as diff_mod
    sets = [load(data, f) for f in CPU_FILES]
    side = Side.from_stacksets(sets)
    res = diff(side, side, "none", options=DiffOptions(metric=metric, min_share_pct=0.0))
    fam = np.arange(len(res.names))
    # rebuild the engine's stack ids for this side the way diff() does (both sides are equal here)
    names, _, _, _, offsets = diff_mod._union_stacks([side, side], "functions")
    assert names == res.names
    _, leaf = diff_mod._flat(res.stack_offsets, res.stack_keys, res.stack_values, len(names))
    mat = diff_mod._per_profile(side, offsets[0], fam, leaf, res.stack_offsets, res.stack_keys, len(names),
                                metric, "none")
    for p, ss in enumerate(sets):
        nm, fl, cu = flat_cum(ss)
        own = dict(zip(nm, (fl if metric == "flat" else cu).tolist(), strict=False))
        got = {n: int(mat[i, p]) for i, n in enumerate(res.names) if mat[i, p]}
        assert got == {n: v for n, v in own.items() if v}


def test_identical_profiles_in_many_runs_do_not_regress(data):
    sets = [load(data, f) for f in CPU_FILES]
    res = diff(sets, sets)
    assert res.method == "mann-whitney" and not res.regressed and not len(res.improvements)


def test_threshold_fallback_says_so(data):
    res = diff([load(data, CPU_FILES[0])], [load(data, CPU_FILES[1])])
    assert res.method == "threshold" and "noise cannot be estimated" in res.method_note
    assert res.regressed        # two unrelated programs: new functions everywhere
    assert all(r["p_value"] is None for r in res.to_json()["regressions"])


# ---------------------------------------------------------------- CLI
@pytest.fixture
def two_dirs(tmp_path, data):
    base, head = tmp_path / "base", tmp_path / "head"
    base.mkdir()
    head.mkdir()
    for i, f in enumerate(CPU_FILES):
        shutil.copy(data / f, base / f"{i}.pb.gz")
        shutil.copy(data / f, head / f"{i}.pb.gz")
    return base, head


def test_cli_json_schema(capsys, two_dirs, data):
    base, head = two_dirs
    code, out, _ = run_cli(capsys, "diff", str(base), str(head / "*.pb.gz"), "--format", "json")
    assert code == 0
    body = json.loads(out)
    for key in ("sample_type", "unit", "normalize", "base", "head", "regressions", "improvements"):
        assert key in body
    assert body["sample_type"] == "cpu" and body["unit"] == "nanoseconds" and body["normalize"] == "total"
    assert body["base"]["profiles"] == body["head"]["profiles"] == len(CPU_FILES)
    assert body["base"]["total"] == body["head"]["total"] == sum(load(data, f).total for f in CPU_FILES)
    assert body["regressions"] == [] and body["method"] == "mann-whitney"
    for row in body["functions"]:
        assert {"name", "base", "head", "delta", "delta_pct", "p_value"} <= set(row)


def test_cli_regression_exit_code_and_markdown(capsys, data, tmp_path):
    base = str(data / "pprof/parca_many_heap_t0.pb.gz")
    head = str(data / "pprof/parca_many_heap_t9.pb.gz")
    code, out, _ = run_cli(capsys, "diff", base, head, "--sample-type", "inuse_space", "--format", "markdown")
    assert code == 1
    assert out.startswith("### profscope diff: :x: ")
    assert "| function | base | head | change | q-value |" in out
    assert "`github.com/dgraph-io/badger/v3/skl.newArena`" in out
    assert "noise cannot be estimated" in out
    code, out, _ = run_cli(capsys, "diff", base, head, "--sample-type", "inuse_space", "--format", "json",
                           "--normalize", "none", "-o", str(tmp_path / "r.json"))
    body = json.loads((tmp_path / "r.json").read_text())
    top = body["regressions"][0]
    assert code == 1 and top["name"] == "github.com/dgraph-io/badger/v3/skl.newArena"
    assert (top["base"], top["head"], top["delta"], top["delta_pct"]) == (0, 87244800, 87244800, None)
    code, out, _ = run_cli(capsys, "diff", base, base, "--sample-type", "inuse_space")
    assert code == 0 and out.startswith("OK: no regression")


def test_cli_bad_input_exits_2(capsys, data, tmp_path):
    cpu = str(data / CPU_FILES[0])
    heap = str(data / "pprof/parca_many_heap_t0.pb.gz")
    code, _, err = run_cli(capsys, "diff", cpu, heap)
    assert code == 2 and "different sample types" in err and "cpu:nanoseconds" in err
    code, _, err = run_cli(capsys, "diff", cpu, str(tmp_path / "missing.pb.gz"))
    assert code == 2 and "no such file or directory" in err
    code, _, err = run_cli(capsys, "diff", cpu, str(tmp_path / "*.pb.gz"))
    assert code == 2 and "matches no file" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "diff", cpu, str(tmp_path / "empty"))
    assert code == 2 and "holds no profile files" in err
    code, _, err = run_cli(capsys, "diff", cpu)
    assert code == 2 and "expected BASE and HEAD" in err
    code, _, err = run_cli(capsys, "diff", cpu, cpu, "--alpha", "2")
    assert code == 2 and "alpha=2.0 must be between" in err
    code, _, err = run_cli(capsys, "diff", cpu, str(data / "edge/bad_truncated_gzip.pb.gz"))
    assert code == 2 and "bad_truncated_gzip.pb.gz" in err
    heap9 = str(data / "pprof/parca_many_heap_t9.pb.gz")
    code, _, err = run_cli(capsys, "diff", heap, heap9, "--normalize", "duration")
    assert code == 2 and "needs the duration" in err


# ---------------------------------------------------------------- store and HTTP
def _fill(store: Store, data):
    for i, f in enumerate(CPU_FILES):
        p = decode((data / f).read_bytes())
        store.ingest(p, {"service_name": "api", "version": "1.4.0", "run": str(i)})
        store.ingest(p, {"service_name": "api", "version": "1.5.0", "run": str(i)})


def test_select_per_profile_matches_select(tmp_path, data):
    store = Store(str(tmp_path / "s"))
    try:
        _fill(store, data)
        for q in ('cpu{version="1.4.0"}', 'cpu{user="alice"}', 'cpu{api="query"}'):
            sel = Selection.from_query(q)
            (per,), merged = store.select_per_profile(sel), store.select(sel)
            assert per.stacks.total == merged.total and len(per.profile_ids) == merged.n_profiles
            a, b = flat_cum(per.stacks), flat_cum(merged)
            assert dict(zip(a[0], a[1].tolist(), strict=False)) == dict(zip(b[0], b[1].tolist(), strict=False))
            # every stack in one group: each profile's sum of values
            every = per.profile_sums(np.arange(per.stacks.n_stacks), np.zeros(per.stacks.n_stacks, int), 1)
            assert every.sum() == per.stacks.values.sum() and every.shape == (1, len(per.profile_ids))
        per, other = store.select_per_profile(Selection.from_query('cpu{version="1.4.0"}'),
                                              Selection.from_query('cpu{version="1.5.0"}'))
        assert per.stacks.frames is other.stacks.frames and per.stacks.total == other.stacks.total
        want = sorted(load(data, f).total for f in CPU_FILES)
        assert sorted(per.profile_totals.tolist()) == want
        assert sorted(per.profile_sums(np.arange(per.stacks.n_stacks), np.zeros(per.stacks.n_stacks, int),
                                       1)[0].tolist()) == want        # CPU values are all positive
        # the noise test sees the same per-profile values from the store as from the files
        for metric in ("flat", "cum"):
            opts = DiffOptions(metric=metric, min_share_pct=0.5, alpha=0.2)
            stored = diff(Side.from_selection(per), Side.from_selection(other), options=opts)
            files = [load(data, f) for f in CPU_FILES]
            direct = diff(files, files, options=opts)
            got = {n: (p, q) for n, p, q in zip(stored.names, stored.p_greater, stored.p_less, strict=True)
                   if not np.isnan(p)}
            want_p = {n: (p, q) for n, p, q in zip(direct.names, direct.p_greater, direct.p_less, strict=True)
                      if not np.isnan(p)}
            assert got.keys() == want_p.keys() and len(got) > 3
            for n, pq in want_p.items():
                assert got[n] == pytest.approx(pq), n
    finally:
        store.close()


def test_cli_stored_selections_and_files(capsys, tmp_path, data):
    d = str(tmp_path / "s")
    store = Store(d)
    _fill(store, data)
    store.close()
    code, out, _ = run_cli(capsys, "diff", "--data-dir", d, "--base-query", 'cpu{version="1.4.0"}',
                           "--head-query", 'cpu{version="1.5.0"}', "--format", "json")
    body = json.loads(out)
    assert code == 0 and body["base"]["profiles"] == body["head"]["profiles"] == len(CPU_FILES)
    assert body["method"] == "mann-whitney" and body["regressions"] == []
    # a stored selection against files: the same profiles, so nothing changes
    files = [str(data / f) for f in CPU_FILES]
    code, out, _ = run_cli(capsys, "diff", "--data-dir", d, "--base-query", 'cpu{version="1.4.0",run="0"}',
                           files[0], "--format", "json", "--normalize", "none")
    body = json.loads(out)
    assert code == 0 and all(f["delta"] == 0 for f in body["functions"])
    code, _, err = run_cli(capsys, "diff", "--data-dir", d, "--base-query", 'cpu{version="9"}', files[0])
    assert code == 2 and "matches no stored profile" in err


def test_http_diff_endpoint_and_cli_server(capsys, live_server, data):
    _fill(live_server.store, data)
    import urllib.request
    body = {"base": {"query": 'cpu{version="1.4.0"}'}, "head": {"query": 'cpu{version="1.5.0"}', "from": "0"},
            "max_nodes": 50, "limit": 5, "normalize": "none"}
    req = urllib.request.Request(live_server.url + "/api/v1/diff", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        out = json.loads(r.read())
    fg = out["flamegraph"]
    assert fg["name"] == "total" and fg["base"]["total"] == fg["head"]["total"] == out["base"]["total"]
    assert len(out["functions"]) == 5 and out["regressions"] == [] and out["method"] == "mann-whitney"
    # bad input: 400 with the one error shape, and the server keeps serving
    bad = dict(body, head={"query": 'cpu{version="1.5.0"'})
    req = urllib.request.Request(live_server.url + "/api/v1/diff", json.dumps(bad).encode(),
                                 {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    err = json.loads(e.value.read())
    assert e.value.code == 400 and err["error"]["kind"] == "bad_input" and "label selector" in err["error"]["message"]
    code, out, _ = run_cli(capsys, "diff", "--server", live_server.url, "--base-query", 'cpu{version="1.4.0"}',
                           "--head-query", 'cpu{version="1.5.0"}', "--format", "markdown")
    assert code == 0 and out.startswith("### profscope diff: :white_check_mark: no regression")
    code, _, err = run_cli(capsys, "diff", "--server", live_server.url, "--base-query", 'cpu{version="1.4.0"}',
                           "--head-query", 'samples{version="1.5.0"}')
    assert code == 2 and "different sample types" in err


def test_cli_server_unreachable_exits_3(capsys):
    code, _, err = run_cli(capsys, "diff", "--server", "http://127.0.0.1:9", "--base-query", "cpu{}",
                           "--head-query", "cpu{}")
    assert code == 3 and "cannot reach" in err


def test_openapi_documents_diff(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    assert "/api/v1/diff" in doc["paths"] and "DiffReport" in doc["components"]["schemas"]


def test_top_stacks_merge_frames_of_the_same_function():
    # frames 0 and 1 are the same function on two lines: their stacks are one stack by function
    frames = FrameTable.from_names(["main", "work", "work", "other"], lines=[1, 10, 20, 5])
    base = StackSet(np.array([0, 2, 4]), np.array([1, 0, 3, 0], np.int32), np.array([10, 10]), frames,
                    ValueType("cpu", "nanoseconds"), 20)
    head = StackSet(np.array([0, 2, 4]), np.array([1, 0, 2, 0], np.int32), np.array([30, 10]), frames,
                    ValueType("cpu", "nanoseconds"), 40)
    res = diff([base], [head], "none")
    stacks = {s["stack"]: (s["base"], s["head"]) for s in res.to_json(stacks=10)["stacks"]}
    assert stacks == {"main;work": (10, 40), "main;other": (10, 0)}
    t = res.tree()
    t.self_check()
    assert sorted(t.names[t.name[i]] for i in range(t.n_nodes)) == ["main", "other", "total", "work"]


def test_on_diff_wasm_plugins_join_the_report(tmp_path, data):
    """A Wasm plugin flagged on_diff in the store's registry runs inside `profscope diff` and its
    findings go into the json and markdown reports."""
    import json as _json

    from click.testing import CliRunner

    from profscope.cli import cli
    from profscope.wasm.registry import PluginRegistry
    root = Path(__file__).resolve().parent.parent
    reg = PluginRegistry(tmp_path / "plugins")
    reg.upload((root / "wasm/plugins/regressions.wasm").read_bytes(), on_diff=True)
    t0, t9 = str(data / "pprof/parca_many_heap_t0.pb.gz"), str(data / "pprof/parca_many_heap_t9.pb.gz")
    runner = CliRunner()
    res = runner.invoke(cli, ["diff", t0, t9, "--sample-type", "alloc_space", "--format", "json",
                              "--data-dir", str(tmp_path)])
    report = _json.loads(res.output)
    assert res.exit_code in (0, 1), res.output
    assert report["plugin_findings"], report.get("plugin_errors")
    assert {f["plugin"] for f in report["plugin_findings"]} == {"wasm:regressions"}
    md = runner.invoke(cli, ["diff", t0, t9, "--sample-type", "alloc_space", "--format", "markdown",
                             "--data-dir", str(tmp_path)]).output
    assert "Plugin findings" in md and "wasm:regressions" in md
    reg.set_auto_run("regressions", on_diff=False)
    res = runner.invoke(cli, ["diff", t0, t9, "--sample-type", "alloc_space", "--format", "json",
                              "--data-dir", str(tmp_path)])
    assert "plugin_findings" not in _json.loads(res.output)
