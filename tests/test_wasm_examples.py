"""The example analyzers (C, WAT, AssemblyScript) on real profiles from ../shared, checked
against oracles computed here from the same trees; the committed binaries, their sums, the
manifest packer, the C header and the worked example of wasm/ABI.md."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import wasmtime
from wasm_helpers import EXAMPLES, PLUGINS, ROOT, TINY, example_bytes, folded_tree, pprof_stackset

from profscope.analysis.top import flat_cum
from profscope.analysis.tree import build_tree
from profscope.wasm import HostPolicy, PluginRejected, WasmHost, encode_psf1
from profscope.wasm.binary import read_shape

REAL = ["pprof/parca_labels_api.cpu.pb.gz", "pprof/parca_fgprof.wall.pb.gz",
        "pprof/parca_alloc_objects.heap.pb.gz", "pyroscope-agpl/pyro_ruby.cpu.pb.gz",
        "pyroscope-agpl/pyro_jfr_kafka.cpu.pb.gz", "pyroscope-agpl/pyro_python.cpu.pb.gz"]


@pytest.fixture(scope="module")
def host():
    h = WasmHost(HostPolicy(max_concurrency=2))
    yield h
    h.close()


@pytest.fixture(scope="module")
def plugins(host):
    return {name: host.load_module(example_bytes(name)) for name in EXAMPLES}


def _pack_tool():
    spec = importlib.util.spec_from_file_location("pack_manifest", ROOT / "wasm/tools/pack_manifest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- committed artefacts
def test_committed_sha256sums_match_the_files():
    lines = (PLUGINS / "SHA256SUMS").read_text().split("\n")
    sums = dict(reversed(line.split()) for line in lines if line.strip())
    assert sorted(sums) == sorted(f"{n}.wasm" for n in EXAMPLES)
    for fname, digest in sums.items():
        assert hashlib.sha256((PLUGINS / fname).read_bytes()).hexdigest() == digest, fname


@pytest.mark.parametrize("name", EXAMPLES)
def test_packed_manifest_is_the_source_manifest(name):
    shape = read_shape(example_bytes(name))
    packed = json.loads(shape.custom_sections("profscope.manifest")[0])
    source = json.loads((ROOT / "wasm/examples" / name / "manifest.json").read_text())
    assert packed == source and packed["name"] == name


def test_abi_md_worked_example_is_what_the_encoder_writes(host, plugins):
    doc = (ROOT / "wasm/ABI.md").read_text()
    block = doc.split("<!-- psf1-example-begin")[1].split("<!-- psf1-example-end")[0]
    dump = block.split("```")[1].strip()
    meta = {"profile_type": None, "sample_type": "samples", "unit": "count", "query": None,
            "from": None, "until": None, "config": {"threshold_pct": 30}}
    buf = encode_psf1(TINY, meta)
    mine = "\n".join(f"{i:04x}  " + " ".join(f"{b:02x}" for b in buf[i:i + 16])
                     for i in range(0, len(buf), 16))
    assert dump == mine
    assert f"buffer is {len(buf)} bytes" in doc
    out = re.search(r'```json\n(\{"findings":\[\{"severity":"critical".*)\n```', doc).group(1)
    run = host.run(plugins["hotspots"], TINY, {"sample_type": "samples", "unit": "count",
                                                "config": {"threshold_pct": 30}})
    assert run.findings == json.loads(out)["findings"]


# ---------------------------------------------------------------- the packer
def test_pack_manifest_round_trip_and_rules(host):
    tool = _pack_tool()
    core = bytes(wasmtime.wat2wasm((ROOT / "tests/wasm_hostile/alloc_fails.wat").read_text()))
    man = {"name": "packed", "version": "0.1.0", "abi": 1, "config": {"a": 1}}
    packed = tool.pack(core, man)
    assert host.load_module(packed).manifest.config == {"a": 1}
    with pytest.raises(tool.PackError, match="already has"):
        tool.pack(packed, man)
    again = tool.pack(packed, {**man, "version": "0.2.0"}, replace=True)
    assert len(read_shape(again).custom_sections("profscope.manifest")) == 1
    assert host.load_module(again).version == "0.2.0"
    for bad in ({"name": "x", "version": "1"}, {"name": "X", "version": "1", "abi": 1},
                {"name": "x", "version": "1", "abi": 1, "limits": {"fuel": 0}}):
        with pytest.raises(tool.PackError):
            tool.pack(core, bad)
    with pytest.raises(tool.PackError, match="not a core"):
        tool.pack(b"(module)", man)


def test_pack_manifest_cli(tmp_path, host):
    core = tmp_path / "m.wasm"
    core.write_bytes(bytes(wasmtime.wat2wasm((ROOT / "tests/wasm_hostile/alloc_fails.wat").read_text())))
    (tmp_path / "ok.json").write_text('{"name": "cli", "version": "1.0.0", "abi": 1}')
    (tmp_path / "bad.json").write_text('{"name": "cli", "version": "1.0.0", "abi": 7}')
    tool = ROOT / "wasm/tools/pack_manifest.py"
    ok = subprocess.run([sys.executable, tool, core, tmp_path / "ok.json", "-o", tmp_path / "out.wasm"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert host.load_module((tmp_path / "out.wasm").read_bytes()).name == "cli"
    bad = subprocess.run([sys.executable, tool, core, tmp_path / "bad.json", "-o", tmp_path / "x.wasm"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "abi must be 1" in bad.stderr


# ---------------------------------------------------------------- sources build as committed
@pytest.mark.skipif(not (shutil.which("clang") and shutil.which("wasm-ld")), reason="clang/lld missing")
def test_c_header_and_hotspots_source_build(tmp_path, host, plugins, data):
    out = tmp_path / "hotspots.core.wasm"
    subprocess.run(["clang", "--target=wasm32", "-O2", "-ffreestanding", "-nostdlib", "-mbulk-memory",
                    "-Wall", "-Wextra", "-Werror", "-Wl,--no-entry", "-Wl,--strip-all",
                    "-I", ROOT / "wasm/include", ROOT / "wasm/examples/hotspots/hotspots.c", "-o", out],
                   check=True)
    man = json.loads((ROOT / "wasm/examples/hotspots/manifest.json").read_text())
    rebuilt = host.load_module(_pack_tool().pack(out.read_bytes(), {**man, "name": "hotspots-rebuilt"}))
    tree = build_tree([pprof_stackset(data / REAL[0])])
    meta = {"config": {"threshold_pct": 1}}
    assert host.run(rebuilt, tree, meta).findings == host.run(plugins["hotspots"], tree, meta).findings


def test_wat_source_builds(host, plugins, data):
    core = bytes(wasmtime.wat2wasm((ROOT / "wasm/examples/regressions/regressions.wat").read_text()))
    man = json.loads((ROOT / "wasm/examples/regressions/manifest.json").read_text())
    rebuilt = host.load_module(_pack_tool().pack(core, {**man, "name": "regressions-rebuilt"}))
    diff = _diff_tree(data, "inuse_space")
    meta = {"config": {"threshold_pct": 0.5}}
    assert host.run(rebuilt, diff, meta).findings == host.run(plugins["regressions"], diff, meta).findings


# ---------------------------------------------------------------- hotspots (C)
def _hotspots_oracle(ss, tree, threshold):
    """From go-pprof-style flat values (top.flat_cum), not from the tree the plugin saw."""
    names, flat, _ = flat_cum(ss)
    total = int(tree.total[0, 0])
    return {n: int(f) for n, f in zip(names, flat, strict=True)
            if f > 0 and float(f) / float(total) * 100.0 >= threshold}


@pytest.mark.parametrize("path", REAL)
@pytest.mark.parametrize("threshold", [0.5, 5])
def test_hotspots_matches_flat_oracle(host, plugins, data, path, threshold):
    ss = pprof_stackset(data / path)
    tree = build_tree([ss])
    tree.self_check()
    r = host.run(plugins["hotspots"], tree, {"sample_type": ss.sample_type.type,
                                             "config": {"threshold_pct": threshold, "max_findings": 1000}})
    want = _hotspots_oracle(ss, tree, threshold)
    got = {f["function"]: f["value"] for f in r.findings}
    assert got == want
    values = [f["value"] for f in r.findings]
    assert values == sorted(values, reverse=True)
    total = int(tree.total[0, 0])
    for f in r.findings:
        assert abs(f["share"] - f["value"] / total) <= 5e-7
        assert f["severity"] == ("critical" if f["value"] / total * 100 >= 25 else "warning")
        assert f["message"].startswith(f["function"] + " holds ")
        assert f["message"].endswith(f"of self {ss.sample_type.type or 'value'}")


def test_hotspots_on_a_425k_node_tree(host, plugins, data):
    ss = pprof_stackset(data / "pprof/gp_large.cpu.pb.gz")
    tree = build_tree([ss])
    assert tree.n_nodes > 400_000
    r = host.run(plugins["hotspots"], tree, {"config": {"threshold_pct": 1, "max_findings": 1000}})
    assert {f["function"]: f["value"] for f in r.findings} == _hotspots_oracle(ss, tree, 1)


def test_hotspots_max_findings_and_escaping(host, plugins):
    tree = folded_tree('a"quote 5\nb\\slash 4\nc\tc 3\nd 2\ne 1\n')
    r = host.run(plugins["hotspots"], tree, {"config": {"threshold_pct": 0, "max_findings": 3}})
    assert [f["function"] for f in r.findings] == ['a"quote', "b\\slash", "c\tc"]


# ---------------------------------------------------------------- regressions (WAT)
def _diff_tree(data, sample_type):
    return build_tree([pprof_stackset(data / "pprof/parca_many_heap_t0.pb.gz", sample_type),
                       pprof_stackset(data / "pprof/parca_many_heap_t9.pb.gz", sample_type)])


def _regressions_oracle(tree, threshold):
    hs = tree.self_[:, 1] / tree.total[0, 1] if tree.total[0, 1] > 0 else np.zeros(tree.n_nodes)
    bs = tree.self_[:, 0] / tree.total[0, 0] if tree.total[0, 0] > 0 else np.zeros(tree.n_nodes)
    d = (hs - bs) * 100.0
    idx = [i for i in range(1, tree.n_nodes) if d[i] >= threshold]
    return [(tree.names[tree.name[i]], int(tree.self_[i, 1]), int(tree.self_[i, 0]), hs[i], bs[i], d[i])
            for i in idx]


@pytest.mark.parametrize("sample_type", ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"])
@pytest.mark.parametrize("threshold", [0.1, 1, 5])
def test_regressions_matches_numpy_oracle(host, plugins, data, sample_type, threshold):
    tree = _diff_tree(data, sample_type)
    tree.self_check()
    r = host.run(plugins["regressions"], tree, {"config": {"threshold_pct": threshold, "max_findings": 10000}})
    want = _regressions_oracle(tree, threshold)
    assert len(r.findings) == len(want)
    for f, (name, v, bv, hs, bs, d) in zip(r.findings, want, strict=True):
        assert (f["function"], f["value"], f["base_value"]) == (name, v, bv)
        assert abs(f["share"] - hs) <= 5e-7 and abs(f["base_share"] - bs) <= 5e-7
        assert abs(f["delta_pct"] - d) <= 5e-4
        assert f["severity"] == ("critical" if d >= 10 else "warning")


def test_regressions_first_principles(host, plugins):
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.formats import decode
    sets = [profile_to_stackset(decode(t.encode(), "folded"))
            for t in ("main;a 50\nmain;b 50\n", "main;a 20\nmain;b 80\n")]
    r = host.run(plugins["regressions"], build_tree(sets), {"config": {"threshold_pct": 10}})
    assert len(r.findings) == 1
    f = r.findings[0]
    assert (f["function"], f["value"], f["base_value"], f["share"], f["base_share"]) == ("b", 80, 50, 0.8, 0.5)
    assert f["severity"] == "critical" and f["delta_pct"] == 30.0
    assert f["message"] == "b: self share rose from 50.0% to 80.0%"
    # a plain (non-diff) tree has nothing to compare
    assert host.run(plugins["regressions"], TINY).findings == []
    # max_findings caps in pre-order
    capped = host.run(plugins["regressions"], build_tree(sets), {"config": {"threshold_pct": -100,
                                                                            "max_findings": 2}})
    assert [x["function"] for x in capped.findings] == ["main", "a"]


# ---------------------------------------------------------------- slowpatterns (AssemblyScript)
def test_slowpatterns_first_principles(host, plugins):
    tree = folded_tree("main;handler;re.compile;sre_parse.parse 30\n"
                       "main;handler;re.compile;re.compile 10\n"            # nested: counted once
                       "main;handler;json.loads;json.decoder.JSONDecoder.decode 20\n"
                       "main;handler;more.compile 5\n"                      # not at a word start
                       "main;work 35\n")
    r = host.run(plugins["slowpatterns"], tree)
    got = {f["category"]: f for f in r.findings}
    assert set(got) == {"regex_compile", "json_decode"}
    assert got["regex_compile"]["value"] == 40 and got["regex_compile"]["share"] == 0.4
    assert got["regex_compile"]["function"] == "re.compile"
    assert got["regex_compile"]["severity"] == "critical"
    assert got["json_decode"]["value"] == 20 and got["json_decode"]["function"] == "json.loads"
    assert got["json_decode"]["title"] == "slow pattern: JSON parsing"
    assert "20.0% of the profile" in got["json_decode"]["message"]
    assert r.logs == [{"level": "debug", "message": "slowpatterns: categories scanned"}]
    high = host.run(plugins["slowpatterns"], tree, {"config": {"threshold_pct": 30}})
    assert [f["category"] for f in high.findings] == ["regex_compile"]


REFLECTION = ("reflect.Value.Call", "reflect.Value.MethodByName", "reflect/Method.invoke",
              "reflect.Method.invoke")


def _category_oracle(tree, fragments):
    """Total of matching nodes without a matching ancestor; fragments at word starts."""
    pat = re.compile(r"(?:^|(?<=[^A-Za-z0-9_]))(?:" + "|".join(map(re.escape, fragments)) + ")")
    match = np.array([bool(pat.search(n)) for n in tree.names])[tree.name]
    under = np.zeros(tree.n_nodes, bool)
    total = 0
    for i in range(1, tree.n_nodes):
        p = tree.parent[i]
        under[i] = under[p] or (match[p] and p != 0)
        if match[i] and not under[i]:
            total += int(tree.total[i, 0])
    return total


def test_slowpatterns_reflection_on_a_real_java_profile(host, plugins, data):
    tree = build_tree([pprof_stackset(data / "pyroscope-agpl/pyro_jfr_kafka.cpu.pb.gz")])
    want = _category_oracle(tree, REFLECTION)
    assert want > 0
    r = host.run(plugins["slowpatterns"], tree, {"config": {"threshold_pct": 0}})
    got = {f["category"]: f for f in r.findings}
    assert got["reflection"]["value"] == want
    assert abs(got["reflection"]["share"] - want / int(tree.total[0, 0])) <= 5e-7


@pytest.mark.parametrize("path", REAL + ["pyroscope-agpl/pyro_go_nondense_ids.heap.pb.gz"])
def test_every_example_on_real_profiles(host, plugins, data, path):
    tree = build_tree([pprof_stackset(data / path)])
    for name, info in plugins.items():
        r = host.run(info, tree, {"config": {"threshold_pct": 0.1}})
        assert r.fuel_used > 0 and r.wall_ms > 0, name
        for f in r.findings:
            assert f["severity"] in ("info", "warning", "critical")
            assert 0 <= f["share"] <= 1 and f["value"] > 0
            assert f["function"] in tree.names


def test_examples_refuse_to_load_under_a_tiny_memory_policy():
    h = WasmHost(HostPolicy(max_module_bytes=4096))
    try:
        with pytest.raises(PluginRejected, match="max_module_bytes=4096"):
            h.load_module(example_bytes("hotspots"))
    finally:
        h.close()


def test_abi_md_documents_every_policy_field():
    from dataclasses import fields
    doc = (ROOT / "wasm/ABI.md").read_text()
    missing = [f.name for f in fields(HostPolicy) if f"`{f.name}`" not in doc]
    assert missing == []
