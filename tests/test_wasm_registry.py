"""The plugin registry (persisted in a real directory) and the analyzer adapter."""
from __future__ import annotations

import hashlib
import json

import pytest
from wasm_helpers import EXAMPLES, TINY, example_bytes, manifest, wat_module

from profscope.errors import NotFound
from profscope.wasm import HostPolicy, PluginFailed, PluginRegistry, PluginRejected, WasmAnalyzer, WasmHost


@pytest.fixture(scope="module")
def host():
    h = WasmHost(HostPolicy(max_fuel=10**12, tick_ms=5))
    yield h
    h.close()


@pytest.fixture
def registry(tmp_path, host):
    return PluginRegistry(tmp_path / "plugins", host)


def test_upload_list_get_run_delete(registry, tmp_path):
    infos = [registry.upload(example_bytes(n)) for n in EXAMPLES]
    for info, name in zip(infos, EXAMPLES, strict=True):
        assert {k: info[k] for k in ("name", "version", "abi")} == {"name": name, "version": "1.0.0", "abi": 1}
        assert info["sha256"] == hashlib.sha256(example_bytes(name)).hexdigest()
        assert info["replaced"] is None
        assert (tmp_path / "plugins" / f"{info['sha256']}.wasm").read_bytes() == example_bytes(name)
    assert [p["name"] for p in registry.list()] == sorted(EXAMPLES)
    hs = registry.get("hotspots")
    assert hs["on_ingest"] is True and hs["on_diff"] is False           # defaults from the manifest
    assert hs["limits"] == {"fuel": 200_000_000, "memory_mb": 64, "timeout_ms": 1000}
    out = registry.run("hotspots", TINY, {"config": {"threshold_pct": 30}})
    assert set(out) >= {"plugin", "version", "findings", "fuel_used", "wall_ms"}
    assert out["plugin"] == "hotspots" and out["findings"][0]["function"] == "re.compile"
    assert registry.auto_run("on_ingest") == ["hotspots", "slowpatterns"]
    assert registry.auto_run("on_diff") == ["regressions"]
    removed = registry.delete("hotspots")
    assert removed["name"] == "hotspots"
    assert not (tmp_path / "plugins" / f"{removed['sha256']}.wasm").exists()
    with pytest.raises(NotFound, match="no plugin named 'hotspots'; installed: regressions, slowpatterns"):
        registry.get("hotspots")
    with pytest.raises(NotFound):
        registry.run("hotspots", TINY)
    with pytest.raises(NotFound):
        registry.delete("hotspots")


def test_index_persists_across_instances(registry, tmp_path, host):
    registry.upload(example_bytes("regressions"), on_ingest=True)
    registry.set_auto_run("regressions", on_diff=False)
    index = json.loads((tmp_path / "plugins" / "index.json").read_text())
    assert index["version"] == 1 and index["plugins"][0]["name"] == "regressions"
    again = PluginRegistry(tmp_path / "plugins", host)
    got = again.get("regressions")
    assert (got["on_ingest"], got["on_diff"]) == (True, False) and "error" not in got
    assert again.run("regressions", TINY)["findings"] == []


def test_same_name_replaces_and_removes_the_old_file(registry, tmp_path):
    v1 = registry.upload(wat_module("alloc_fails.wat", manifest("same", description="one")))
    v2 = registry.upload(wat_module("unaligned_alloc.wat", {**manifest("same"), "version": "2.0.0"}))
    assert v2["replaced"] == "1.0.0" and v2["version"] == "2.0.0"
    assert [p["name"] for p in registry.list()] == ["same"]
    assert not (tmp_path / "plugins" / f"{v1['sha256']}.wasm").exists()
    with pytest.raises(PluginFailed) as ei:                 # the new module is the one that runs
        registry.run("same", TINY)
    assert ei.value.kind == "bad_output"
    # identical bytes again: nothing replaced, flags kept unless given
    registry.set_auto_run("same", on_ingest=True)
    again = registry.upload(wat_module("unaligned_alloc.wat", {**manifest("same"), "version": "2.0.0"}))
    assert again["replaced"] is None and again["on_ingest"] is True


def test_rejected_upload_leaves_nothing(registry, tmp_path):
    with pytest.raises(PluginRejected) as ei:
        registry.upload(wat_module("wasi_import.wat", manifest("wasi")))
    assert ei.value.kind == "forbidden_import"
    assert registry.list() == [] and list((tmp_path / "plugins").iterdir()) == []


def test_tampered_module_file_is_not_loaded(registry, tmp_path, host):
    info = registry.upload(example_bytes("hotspots"))
    (tmp_path / "plugins" / f"{info['sha256']}.wasm").write_bytes(example_bytes("regressions"))
    again = PluginRegistry(tmp_path / "plugins", host)
    assert "sha256" in again.get("hotspots")["error"]
    assert again.auto_run("on_ingest") == []
    with pytest.raises(NotFound, match="could not be loaded"):
        again.run("hotspots", TINY)


def test_run_many_isolates_failures(registry):
    registry.upload(example_bytes("hotspots"))
    registry.upload(wat_module("deep_recursion.wat", manifest("recurse")))
    out = registry.run_many(["recurse", "hotspots", "missing"], TINY, {"config": {"threshold_pct": 30}})
    assert out[0] == {"plugin": "recurse", "error": {"kind": "stack_overflow", "message": out[0]["error"]["message"]}}
    assert out[1]["findings"][0]["function"] == "re.compile"
    assert out[2]["error"]["kind"] == "not_found"


def test_adapter_looks_like_an_analyzer(registry, host):
    registry.upload(example_bytes("slowpatterns"))
    analyzer = registry.analyzer("slowpatterns")
    assert isinstance(analyzer, WasmAnalyzer)
    assert (analyzer.name, analyzer.version) == ("slowpatterns", "1.0.0")
    assert "AssemblyScript" in analyzer.description
    from wasm_helpers import folded_tree
    findings = analyzer.analyze(folded_tree("main;re.compile 9\nmain;x 1\n"))
    assert [f["category"] for f in findings] == ["regex_compile"]
    assert analyzer.last_result.fuel_used > 0
    with pytest.raises(PluginFailed):
        WasmAnalyzer(host, host.load_module(wat_module("out_of_bounds.wat", manifest("oob")))).analyze(TINY)


def test_bad_event_name(registry):
    from profscope.errors import BadInput
    with pytest.raises(BadInput, match="on_ingest, on_diff"):
        registry.auto_run("on_push")


def test_adapters_take_part_in_the_analyzer_hooks(registry):
    from profscope import plugins as pl
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.analysis.tree import build_tree
    from profscope.formats import decode
    for name in EXAMPLES:
        registry.upload(example_bytes(name))
    registry.upload(wat_module("deep_recursion.wat", manifest("recurse")))
    pm = pl.get_plugin_manager({"plugins_config": {"wasm:hotspots": {"threshold_pct": 30}}},
                               entry_points=False)
    for plugin_name, adapter in registry.analyzers().items():
        assert pl.register(pm, adapter, plugin_name) == plugin_name
    out = pl.run_analyzers(TINY, {"sample_type": "samples"}, pm,
                           only=["wasm:hotspots", "wasm:slowpatterns", "wasm:recurse"])
    by_plugin = {f["plugin"]: f for f in out["findings"]}
    assert by_plugin["wasm:hotspots"]["function"] == "re.compile"      # plugins_config reached it
    assert by_plugin["wasm:slowpatterns"]["category"] == "regex_compile"
    assert [(e["plugin"], e["kind"]) for e in out["errors"]] == [("wasm:recurse", "stack_overflow")]
    sets = [profile_to_stackset(decode(t.encode(), "folded"))
            for t in ("main;a 50\nmain;b 50\n", "main;a 20\nmain;b 80\n")]
    diff = pl.run_diff_analyzers(build_tree(sets), {}, pm, only=["wasm:regressions"])
    assert [f["function"] for f in diff["findings"]] == ["b"] and diff["errors"] == []
