"""Plugins: every hook exercised through a real plugin manager, the example plugin package
(registered directly and discovered through a real ``*.dist-info`` entry point), per-plugin
error isolation, the allowlist, start-up checks, and the HTTP/CLI surfaces that use plugins.

Expected numbers come from the inputs themselves (folded counts written here, sums over the
Chrome profile's own arrays), never from profscope's output.
"""
from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from profscope import hookimpl, plugins
from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.tree import build_tree
from profscope.api import create_app
from profscope.cli import COMMANDS, cli
from profscope.errors import BadInput, MalformedProfile, PluginError, UnsupportedFormat
from profscope.formats import BUILTIN_DECODERS, FORMAT_NAMES, DecodeOptions, decode
from profscope.formats.compression import maybe_gunzip
from profscope.formats.exporters import BUILTIN_EXPORTERS, EXPORT_FORMATS, Exporter, export

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "plugins" / "profscope-example"
HOT = b"main;handler;re.compile 30\nmain;handler;work 70\n"          # re.compile: 30 of 100
HOT_BASE = b"main;handler;re.compile 10\nmain;handler;work 90\n"     # re.compile: 10 of 100


# ---------------------------------------------------------------------------- fixtures

@pytest.fixture
def example(monkeypatch):
    """The example plugin module, importable from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    import profscope_example
    return profscope_example


@pytest.fixture
def installed_example(tmp_path, monkeypatch, example):
    """The example plugin installed for importlib.metadata: a ``*.dist-info`` folder with the
    entry points declared in the plugin's own pyproject.toml, on sys.path."""
    meta = tomllib.loads((EXAMPLE_DIR / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site"
    info = site / f"profscope_example-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    eps = meta["entry-points"]["profscope"]
    (info / "entry_points.txt").write_text("[profscope]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    plugins.default_plugin_manager.cache_clear()
    yield site
    plugins.default_plugin_manager.cache_clear()


@pytest.fixture
def app(tmp_path, installed_example):
    """An app whose plugin manager found the example plugin through its entry point (this
    replaces conftest's ``app`` in this module)."""
    app = create_app({"data_dir": str(tmp_path / "data")})
    yield app
    app.extensions["profscope"].store.close()


@pytest.fixture
def chrome(data) -> bytes:
    return (data / "other_formats" / "chrome_simple.cpuprofile").read_bytes()


def manager(*extra, config=None, **named):
    cfg = {"data_dir": ":memory:", **(config or {})}
    return plugins.get_plugin_manager(cfg, entry_points=False, plugins={**{f"p{i}": p for i, p in enumerate(extra)},
                                                                        **named})


def tree_of(folded: bytes):
    return build_tree([profile_to_stackset(decode(folded, "folded"))])


META = {"profile_type": None, "sample_type": "samples", "unit": "count", "query": "", "config": {}}


class Recorder:
    """A plugin that records what it receives."""
    def __init__(self):
        self.configured = []
        self.metas = []

    @hookimpl
    def profscope_configure(self, config):
        self.configured.append(config)

    @hookimpl
    def profscope_analyze(self, tree, meta):
        self.metas.append(meta)
        return [{"severity": "info", "title": "root", "message": f"{tree.n_nodes} nodes",
                 "value": np.int64(tree.total[0, 0])}]


class Boom:
    @hookimpl
    def profscope_analyze(self, tree, meta):
        raise RuntimeError("analyzer exploded")

    @hookimpl
    def profscope_analyze_diff(self, tree, meta):
        raise RuntimeError("diff analyzer exploded")

    @hookimpl
    def profscope_sniff(self, data):
        raise RuntimeError("sniffer exploded")

    @hookimpl
    def profscope_transform_profile(self, profile, labels):
        labels["half"] = "done"
        raise RuntimeError("transform exploded")


# ---------------------------------------------------------------------------- manager

def test_hookspecs_are_documented_and_flagged():
    pm = manager()
    for name in plugins.HOOK_NAMES:
        spec = getattr(pm.hook, name).spec
        assert spec is not None and (spec.function.__doc__ or "").strip(), name
    assert pm.hook.profscope_sniff.spec.opts["firstresult"]
    assert pm.hook.profscope_configure.spec.opts["historic"]
    assert not pm.hook.profscope_analyze.spec.opts["firstresult"]


def test_builtins_are_registered_as_plugins():
    pm = manager()
    listing = {p["name"]: p for p in plugins.describe(pm)}
    assert set(plugins.DEFAULT_PLUGINS) <= set(listing)
    assert all(listing[n]["source"] == "built-in" for n in plugins.DEFAULT_PLUGINS)
    assert "profscope_decoders" in listing["profscope.builtin_plugins.formats"]["hooks"]
    assert "profscope_exporters" in listing["profscope.builtin_plugins.exporters"]["hooks"]
    assert plugins.decoders(pm) == BUILTIN_DECODERS and tuple(BUILTIN_DECODERS) == FORMAT_NAMES
    assert plugins.exporters(pm) == BUILTIN_EXPORTERS and tuple(BUILTIN_EXPORTERS) == EXPORT_FORMATS
    assert pm.load_errors == []


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_every_registered_exporter_round_trips_through_its_decoder(fmt):
    """Export through the exporter plugin, decode through the decoder plugin of the same name:
    the totals per function are those of the folded input."""
    pm = manager()
    ss = profile_to_stackset(decode(HOT, "folded"))
    ex = plugins.exporters(pm)[fmt]
    body = ex.render(ss)
    assert isinstance(body, bytes) and ex.content_type and ex.extension
    back = plugins.decoders(pm)[fmt](maybe_gunzip(body), DecodeOptions())
    values = profile_to_stackset(back).values
    assert sorted(values.tolist()) == [30, 70]


def test_check_pending_catches_a_misspelled_hook():
    class Typo:
        @hookimpl
        def profscope_analyse(self, tree, meta):
            return []
    with pytest.raises(PluginError) as e:
        manager(typo=Typo())
    assert "profscope_analyse" in e.value.message and "profscope_analyze" in e.value.message
    assert "'typo'" in e.value.message


def test_a_misspelled_hook_is_refused_at_run_time_registration_too():
    class Typo:
        @hookimpl
        def profscope_analyse(self, tree, meta):
            return []
    pm = manager()
    typo = Typo()
    with pytest.raises(PluginError, match="profscope_analyse"):
        plugins.register(pm, typo, "late-typo")
    assert not pm.is_registered(typo)
    plugins.check(pm)                                  # the manager is still usable


TYPO_PLUGIN = """
from profscope import hookimpl


@hookimpl
def profscope_analyse(tree, meta):
    return []
"""


def test_an_installed_plugin_with_a_misspelled_hook_stops_start_up(tmp_path, installed_example, capsys):
    (installed_example / "typo_plugin_for_test.py").write_text(TYPO_PLUGIN)
    info = next(installed_example.glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[profscope]\nexample = profscope_example\ntypo = typo_plugin_for_test\n")
    with pytest.raises(PluginError, match="'typo'.*profscope_analyse"):
        create_app({"data_dir": str(tmp_path / "d")})
    from profscope.cli import main
    with pytest.raises(SystemExit) as e:
        main(["plugins"])
    assert e.value.code == 3
    assert "profscope: error: plugin 'typo'" in capsys.readouterr().err


def test_a_hook_without_hookimpl_or_with_wrong_arguments_fails_start_up():
    class Forgot:
        def profscope_analyze(self, tree, meta):
            return []

    class WrongArgs:
        @hookimpl
        def profscope_analyze(self, tree, metadata):
            return []

    class Wrapper:
        @hookimpl(wrapper=True)
        def profscope_analyze(self, tree, meta):
            return (yield)
    with pytest.raises(PluginError, match="missing @hookimpl"):
        manager(forgot=Forgot())
    with pytest.raises(PluginError, match="metadata"):
        manager(wrong=WrongArgs())
    with pytest.raises(PluginError, match="wrapper"):
        manager(wrapper=Wrapper())


def test_configure_is_historic_and_a_failing_configure_disables_only_that_plugin(example):
    early, late = Recorder(), Recorder()
    pm = manager(early=early, config={"plugins_config": {"example": {"min_share": 5}}}, example=example)
    assert len(early.configured) == 1 and early.configured[0] is pm.config
    assert plugins.register(pm, late, "late") == "late"            # registered after start-up
    assert late.configured == [pm.config]
    assert not pm.has_plugin("example")                             # its settings are invalid
    (err,) = [e for e in pm.load_errors if e["plugin"] == "example"]
    assert "configure failed" in err["error"] and "min_share=5" in err["error"]
    assert plugins.analyzers(pm) == ["late", "early"]


def test_duplicate_plugin_names_are_reported_not_fatal():
    pm = manager(a=Recorder())
    assert plugins.register(pm, Recorder(), "a") is None
    assert pm.load_errors[-1]["kind"] == "duplicate"


# ---------------------------------------------------------------------------- analyzers

def test_a_raising_analyzer_does_not_erase_the_others_findings():
    rec = Recorder()
    pm = manager(good=rec, boom=Boom())
    out = plugins.run_analyzers(tree_of(HOT), META, pm)
    assert [f["plugin"] for f in out["findings"]] == ["good"]
    assert out["findings"][0]["value"] == 100 and type(out["findings"][0]["value"]) is int
    assert out["errors"] == [{"plugin": "boom", "kind": "exception", "error": "RuntimeError: analyzer exploded"}]
    diff_tree = build_tree([profile_to_stackset(decode(x, "folded")) for x in (HOT_BASE, HOT)])
    out = plugins.run_diff_analyzers(diff_tree, META, pm)
    assert out["errors"][0]["plugin"] == "boom" and out["findings"] == []


def test_bad_analyzer_output_is_reported_per_plugin():
    class Bad:
        @hookimpl
        def profscope_analyze(self, tree, meta):
            return [{"severity": "fatal", "title": "t", "message": "m"}]

    class Scribbler:
        @hookimpl(tryfirst=True)
        def profscope_analyze(self, tree, meta):
            tree.total[0, 0] = -1          # the tree is read-only: this raises

    rec = Recorder()
    out = plugins.run_analyzers(tree_of(HOT), META, manager(bad=Bad(), scribbler=Scribbler(), good=rec))
    kinds = {e["plugin"]: e["kind"] for e in out["errors"]}
    assert kinds == {"bad": "bad_output", "scribbler": "exception"}
    assert "severity 'fatal'" in [e for e in out["errors"] if e["plugin"] == "bad"][0]["error"]
    assert out["findings"][0]["value"] == 100                   # what the good one saw is intact


def test_each_analyzer_gets_its_own_settings_and_only_filters():
    a, b = Recorder(), Recorder()
    pm = manager(a=a, b=b, config={"plugins_config": {"a": {"k": 1}}})
    out = plugins.run_analyzers(tree_of(HOT), META, pm, only=["a"])
    assert [f["plugin"] for f in out["findings"]] == ["a"] and b.metas == []
    assert a.metas[0]["config"] == {"k": 1} and a.metas[0]["diff"] is False
    plugins.run_analyzers(tree_of(HOT), META, pm, only=["b"])
    assert b.metas[0]["config"] == {}
    with pytest.raises(BadInput, match="available: b, a"):
        plugins.run_analyzers(tree_of(HOT), META, pm, only=["zzz"])


def test_example_analyzer_flags_hot_library_calls(example):
    pm = manager(example=example)
    out = plugins.run_analyzers(tree_of(HOT + b"main;re.compile;re.compile 5\n"), META, pm)
    (f,) = out["findings"]
    assert f["function"] == "re.compile" and f["value"] == 35          # recursion counted once
    assert f["share"] == pytest.approx(35 / 105) and f["severity"] == "critical"
    quiet = manager(example=example, config={"plugins_config": {"example": {"min_share": 0.5}}})
    assert plugins.run_analyzers(tree_of(HOT), META, quiet)["findings"] == []


def test_example_diff_analyzer_flags_growth(example):
    pm = manager(example=example)
    tree = build_tree([profile_to_stackset(decode(x, "folded")) for x in (HOT_BASE, HOT)])
    tree.self_check()
    (f,) = plugins.run_diff_analyzers(tree, META, pm)["findings"]
    assert f["function"] == "re.compile" and f["value"] == 20
    assert f["base_share"] == pytest.approx(0.1) and f["share"] == pytest.approx(0.3)
    with pytest.raises(BadInput, match="two value columns"):
        plugins.run_diff_analyzers(tree_of(HOT), META, pm)


# ---------------------------------------------------------------------------- formats

def test_plugin_decoder_is_used_by_decode(example, chrome):
    pm = manager(example=example)
    doc = json.loads(chrome)
    with pytest.raises(UnsupportedFormat):               # no plugin: the built-in answer stands
        decode(chrome, plugins=manager())
    for fmt in (None, "cpuprofile"):
        p = decode(chrome, fmt, plugins=pm)
        assert p.source_format == "cpuprofile"
        assert int(p.values[:, 0].sum()) == len(doc["samples"])
        # a sample lasts until the next one: the sum is end - first sample time (microseconds)
        assert int(p.values[:, 1].sum()) == (doc["endTime"] - doc["startTime"] - doc["timeDeltas"][0]) * 1000
        ss = profile_to_stackset(p, "samples")
        leaf = Counter(doc["nodes"][[n["id"] for n in doc["nodes"]].index(s)]["callFrame"]["functionName"]
                       for s in doc["samples"])
        names = [ss.frames.name[int(ss.stack_frames[ss.stack_offsets[i]])] for i in range(ss.n_stacks)]
        got = Counter()
        for n, v in zip(names, ss.values.tolist(), strict=True):
            got[n] += v
        assert got == Counter({("(anonymous)" if k == "" else k): v for k, v in leaf.items()})
    with pytest.raises(BadInput, match="cpuprofile"):
        decode(chrome, "nope", plugins=pm)


def test_plugin_decoder_failures_name_the_plugin():
    class Broken:
        @hookimpl
        def profscope_decoders(self):
            return {"crash": lambda data, options: 1 / 0, "wrongtype": lambda data, options: "x",
                    "pprof": lambda data, options: None}
    pm = manager(broken=Broken())
    with pytest.raises(MalformedProfile, match=r"'crash' \(plugin broken\).*ZeroDivisionError"):
        decode(b"x", "crash", plugins=pm)
    with pytest.raises(PluginError, match="not a Profile"):
        decode(b"x", "wrongtype", plugins=pm)
    assert plugins.decoders(pm)["pprof"] is BUILTIN_DECODERS["pprof"]      # built-in names are kept
    assert any(e["kind"] == "duplicate" and "'pprof'" in e["error"] for e in pm.load_errors)


def test_sniffers_are_isolated(example, chrome):
    class Liar:
        @hookimpl
        def profscope_sniff(self, data):
            return "no-such-format"
    pm = manager(example=example, boom=Boom(), liar=Liar())
    assert plugins.sniff(chrome, pm) == "cpuprofile"
    assert decode(chrome, plugins=pm).source_format == "cpuprofile"
    assert plugins.sniff(b"\x00\x01", pm) is None


def test_plugin_exporter_is_used_by_export():
    class Names:
        @hookimpl
        def profscope_exporters(self):
            return {"names": Exporter(lambda ss: "\n".join(sorted(set(ss.frames.name))).encode(), "text/plain", "txt"),
                    "broken": Exporter(lambda ss: "not bytes", "text/plain", "txt")}
    pm = manager(names=Names())
    ss = profile_to_stackset(decode(HOT, "folded"))
    body, ctype = export(ss, "names", pm)
    assert body.decode().split("\n") == ["handler", "main", "re.compile", "work"] and ctype == "text/plain"
    with pytest.raises(PluginError, match="not bytes"):
        export(ss, "broken", pm)
    with pytest.raises(BadInput, match="names"):
        export(ss, "nope", pm)


# ---------------------------------------------------------------------------- ingest transforms

def test_transforms_run_in_turn_and_a_failing_one_is_skipped(example):
    class Upper:
        @hookimpl
        def profscope_transform_profile(self, profile, labels):
            from dataclasses import replace
            frames = replace(profile.frames, name=[n.upper() for n in profile.frames.name])
            return replace(profile, frames=frames)
    class NumberLabel:
        @hookimpl
        def profscope_transform_profile(self, labels):
            labels["n"] = 1
    pm = manager(upper=Upper(), boom=Boom(), example=example, number=NumberLabel())
    labels = {"app": "shop"}
    p = plugins.transform_profile(decode(HOT, "folded"), labels, pm)
    assert labels == {"service_name": "shop"}                 # example's alias; boom's and number's undone
    assert "RE.COMPILE" in p.frames.name
    assert any("plugin boom" in w and "transform exploded" in w for w in p.warnings)
    assert any("plugin number" in w and "non-string labels ['n']" in w for w in p.warnings)


# ---------------------------------------------------------------------------- entry points

def test_entry_point_discovery(installed_example):
    pm = plugins.get_plugin_manager({"data_dir": ":memory:"})
    (info,) = [p for p in plugins.describe(pm) if p["name"] == "example"]
    assert info["source"] == "entry point" and info["dist"] == "profscope-example" and info["version"] == "0.1.0"
    assert "cpuprofile" in plugins.decoders(pm) and plugins.analyzers(pm) == ["example"]


@pytest.mark.parametrize("allow,loaded", [("", True), ("example", True), ("profscope_example", True),
                                          ("other", False), (" other , EXAMPLE ", True)])
def test_allowlist(installed_example, allow, loaded):
    pm = plugins.get_plugin_manager({"data_dir": ":memory:", "plugins_allowlist": allow})
    assert pm.has_plugin("example") is loaded
    assert all(pm.has_plugin(n) for n in plugins.DEFAULT_PLUGINS)      # built-ins are always on
    missing = [e["plugin"] for e in pm.load_errors if e["kind"] == "not_installed"]
    assert missing == (["other"] if "other" in allow else [])


def test_allowlist_from_the_environment(installed_example, monkeypatch):
    monkeypatch.setenv("PROFSCOPE_PLUGINS_ALLOWLIST", "someone-else")
    assert not plugins.default_plugin_manager().has_plugin("example")
    plugins.default_plugin_manager.cache_clear()
    monkeypatch.setenv("PROFSCOPE_PLUGINS_ALLOWLIST", "example")
    assert plugins.default_plugin_manager().has_plugin("example")


def test_a_plugin_that_cannot_be_imported_is_reported(installed_example):
    info = next(installed_example.glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[profscope]\nexample = profscope_example\nghost = no_such_module_xyz\n")
    pm = plugins.get_plugin_manager({"data_dir": ":memory:"})
    assert pm.has_plugin("example") and not pm.has_plugin("ghost")
    (err,) = pm.load_errors
    assert err["plugin"] == "ghost" and err["kind"] == "load_error" and "no_such_module_xyz" in err["error"]


# ---------------------------------------------------------------------------- HTTP

@pytest.mark.slow
def test_http_ingest_with_a_plugin_format_on_a_real_server(tmp_path, installed_example, chrome):
    """``profscope serve`` in its own process finds the example plugin through its entry point:
    upload a Chrome profile (format sniffed by the plugin), read its flame graph back, call the
    plugin's route."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port),
                             "--data-dir", str(tmp_path / "data")], env=_env_with_example(installed_example),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {proc.stderr.read().decode()[-2000:]}") from None
                time.sleep(0.1)
        req = urllib.request.Request(base + "/api/v1/ingest?service=web", data=chrome, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 201
            assert sorted(json.load(r)["profile_types"]) == ["process_cpu:cpu:nanoseconds:cpu:nanoseconds",
                                                             "process_cpu:samples:count:cpu:nanoseconds"]
        query = urllib.parse.quote('samples{service_name="web"}')     # raw '"' is not a valid URI
        with urllib.request.urlopen(base + f"/api/v1/flamegraph?query={query}", timeout=30) as r:
            assert json.load(r)["total"] == len(json.loads(chrome)["samples"])
        with urllib.request.urlopen(base + "/api/v1/example/hello", timeout=30) as r:
            assert json.load(r) == {"message": "hello from profscope-example", "analyzers": ["example"]}
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stderr.close()


def test_http_ingest_with_explicit_plugin_format_and_transform(client, chrome):
    r = client.post("/api/v1/ingest?format=cpuprofile&label=app=shop", data=chrome)
    assert r.status_code == 201, r.json
    assert client.get("/api/v1/labels/service_name/values").json["values"] == ["shop"]
    r = client.post("/api/v1/ingest?format=nope", data=chrome)
    assert r.status_code == 400 and "cpuprofile" in r.json["error"]["message"]


def test_http_ingest_reports_a_failing_transform(app, client):
    plugins.register(plugins.app_plugin_manager(app), Boom(), "boom")
    r = client.post("/api/v1/ingest?service=s", data=HOT)
    assert r.status_code == 201
    assert any("plugin boom" in w for w in r.json["warnings"])
    assert client.get("/api/v1/labels").json["names"].count("half") == 0


def test_http_analyze(app, client):
    assert client.post("/api/v1/ingest?service=a&label=v=1", data=HOT_BASE).status_code == 201
    assert client.post("/api/v1/ingest?service=a&label=v=2", data=HOT).status_code == 201
    plugins.register(plugins.app_plugin_manager(app), Boom(), "boom")
    r = client.get('/api/v1/analyze?query=samples{service_name="a",v="2"}')
    assert r.status_code == 200, r.json
    assert r.json["total"] == 100 and r.json["analyzers"] == ["boom", "example"]
    (f,) = r.json["findings"]
    assert f["plugin"] == "example" and f["function"] == "re.compile" and f["value"] == 30
    assert r.json["errors"] == [{"plugin": "boom", "kind": "exception", "error": "RuntimeError: analyzer exploded"}]
    r = client.get('/api/v1/analyze?query=samples{service_name="a",v="2"}&base_query={v="1"}&analyzer=example')
    assert r.status_code == 200 and r.json["errors"] == [] and r.json["base_total"] == 100
    (f,) = r.json["findings"]
    assert f["value"] == 20 and f["base_share"] == pytest.approx(0.1)
    assert client.post("/api/v1/ingest?service=b&sample_rate=100", data=HOT).status_code == 201
    r = client.get('/api/v1/analyze?query=samples{service_name="a"}&base_query=cpu{service_name="b"}')
    assert r.status_code == 400 and "cannot compare cpu/nanoseconds" in r.json["error"]["message"]
    r = client.get('/api/v1/analyze?query=samples{service_name="a"}&analyzer=nope')
    assert r.status_code == 400 and "available: boom, example" in r.json["error"]["message"]


THIRD_PARTY = """
from profscope import hookimpl
from profscope.formats.exporters import Exporter


class Names:
    @hookimpl
    def profscope_exporters(self):
        return {"names": Exporter(lambda ss: ",".join(sorted(set(ss.frames.name))).encode(), "text/csv", "csv")}


class BadRoutes:
    @hookimpl
    def profscope_register_routes(self, app):
        raise RuntimeError("no routes today")


names, bad = Names(), BadRoutes()
"""


def test_http_export_with_a_plugin_exporter(tmp_path, installed_example, request):
    """Two more installed plugins (entry points into a module of their own): an exporter, and
    one whose route registration fails without taking the app or the other routes down."""
    (installed_example / "third_party_for_test.py").write_text(THIRD_PARTY)
    info = next(installed_example.glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[profscope]\nexample = profscope_example\n"
                                           "names = third_party_for_test:names\nbad = third_party_for_test:bad\n")
    app = create_app({"data_dir": str(tmp_path / "d")})
    request.addfinalizer(app.extensions["profscope"].store.close)
    pm = plugins.app_plugin_manager(app)
    assert [e["plugin"] for e in pm.load_errors] == ["bad"] and "no routes today" in pm.load_errors[0]["error"]
    c = app.test_client()
    assert c.post("/api/v1/ingest?service=x", data=HOT).status_code == 201
    r = c.get("/api/v1/export?query=samples&format=names")
    assert r.status_code == 200 and r.data == b"handler,main,re.compile,work"
    assert r.headers["Content-Type"] == "text/csv" and r.headers["Content-Disposition"].endswith('profile.csv"')
    r = c.get("/api/v1/export?query=samples&format=nope")
    assert r.status_code == 400 and "names" in r.json["error"]["message"]
    assert c.get("/api/v1/example/hello").status_code == 200            # other plugins' routes are there


# ---------------------------------------------------------------------------- CLI

def test_plugin_cli_command_runs_through_clirunner(installed_example):
    runner = CliRunner()
    r = runner.invoke(cli, ["example-patterns", "--json"])
    assert r.exit_code == 0, r.output
    from profscope_example.hotpath import DEFAULT_PATTERNS
    assert json.loads(r.output) == list(DEFAULT_PATTERNS)
    r = runner.invoke(cli, ["--help"])
    assert "example-patterns" in r.output and "analyze" in r.output


def test_plugin_cli_command_cannot_take_a_builtin_name(example):
    import click

    class Clash:
        @hookimpl
        def profscope_cli_commands(self):
            return [click.Command("top"), click.Command("fresh")]
    pm = manager(clash=Clash())
    assert list(plugins.cli_commands(pm)) == ["fresh"]
    assert "already provided by a built-in command" in pm.load_errors[0]["error"]
    assert set(COMMANDS).isdisjoint(plugins.cli_commands(manager(example=example)))


def test_cli_analyze_and_plugins(tmp_path, installed_example, data, capsys):
    head, base = tmp_path / "head.txt", tmp_path / "base.txt"
    head.write_bytes(HOT)
    base.write_bytes(HOT_BASE)
    runner = CliRunner()
    r = runner.invoke(cli, ["analyze", str(head), "--json"])
    assert r.exit_code == 0, r.output
    (f,) = json.loads(r.output)["findings"]
    assert f["function"] == "re.compile" and f["value"] == 30
    r = runner.invoke(cli, ["analyze", str(head), "--base", str(base), "--fail-on", "warning"])
    assert r.exit_code == 1 and "went from 10.0% to 30.0%" in r.output
    from profscope.cli import main
    with pytest.raises(SystemExit) as e:             # main() turns errors into exit codes
        main(["analyze", str(data / "other_formats" / "chrome_simple.cpuprofile"), "--base", str(base)])
    assert e.value.code == 2 and "cannot compare samples/count (--base) with cpu/nanoseconds" in capsys.readouterr().err
    r = runner.invoke(cli, ["analyze", str(base), "--fail-on", "critical"])
    assert r.exit_code == 0 and "re.compile" in r.output
    r = runner.invoke(cli, ["plugins", "--json"])
    listing = json.loads(r.output)
    assert {"example", *plugins.DEFAULT_PLUGINS} <= {p["name"] for p in listing["plugins"]}


def test_cli_ingest_and_export_use_plugins(tmp_path, installed_example, data):
    chrome = data / "other_formats" / "chrome_simple.cpuprofile"
    store = tmp_path / "store"
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(chrome), "--data-dir", str(store), "--label", "app=shop"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "x.txt"
    r = runner.invoke(cli, ["export", "--query", 'samples{service_name="shop"}', "--data-dir", str(store),
                           "--format", "folded", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert sum(int(line.rsplit(" ", 1)[1]) for line in out.read_text().splitlines()) == \
        len(json.loads(chrome.read_bytes())["samples"])


def _env_with_example(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(EXAMPLE_DIR), str(ROOT), env.get("PYTHONPATH", "")])
    return env


@pytest.mark.slow
def test_cli_analyze_in_a_real_subprocess(tmp_path, installed_example):
    head = tmp_path / "head.txt"
    head.write_bytes(HOT)
    r = subprocess.run([sys.executable, "-m", "profscope.cli", "analyze", str(head), "--fail-on", "critical"],
                       capture_output=True, text=True, env=_env_with_example(installed_example), timeout=120)
    assert r.returncode == 1, r.stderr
    assert "critical example: expensive library call in the hot path [re.compile]" in r.stdout
    r = subprocess.run([sys.executable, "-m", "profscope.cli", "plugins"], capture_output=True, text=True,
                       env=_env_with_example(installed_example), timeout=120)
    assert r.returncode == 0 and "example 0.1.0 (entry point)" in r.stdout


@pytest.mark.slow
def test_profscope_top_does_not_load_plugin_machinery(data, installed_example):
    """Decoding a built-in format never imports pluggy or the plugins (python -X importtime)."""
    f = data / "pprof" / "gp_sample.cpu.pb.gz"
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "profscope.cli", "top", str(f)],
                       capture_output=True, text=True, env=_env_with_example(installed_example), timeout=120)
    assert r.returncode == 0, r.stderr
    imported = {line.rsplit("|", 1)[1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    assert "numpy" in imported
    assert not {"pluggy", "profscope.plugins", "profscope.hookspecs", "importlib.metadata", "flask"} & imported
