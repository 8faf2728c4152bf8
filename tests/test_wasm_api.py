"""The Wasm plugin management API against a real server on 127.0.0.1: upload (raw and
multipart), list, get, settings, delete, runs on stored profiles (one selection and a diff),
auto-run on ingest, the analyze endpoint, the admin token, and hostile modules while ingest
traffic keeps flowing."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import importlib.util
import json
import threading
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
import requests
from conftest import LiveServer
from wasm_helpers import EXAMPLES, ROOT, example_bytes, manifest, pprof_stackset, wat_module

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.top import top_table
from profscope.analysis.tree import build_tree
from profscope.api import create_app
from profscope.formats import decode

TINY_FOLDED = b"main;parse;re.compile 3\nmain;work 1\n"
TINY_QUERY = 'samples{service_name="tiny"}'
T = 60


def client_session() -> requests.Session:
    """No keep-alive: an open idle connection would hold the server's shutdown for seconds."""
    s = requests.Session()
    s.headers["Connection"] = "close"
    return s


@pytest.fixture
def srv(live_server):
    live_server.http = client_session()
    yield live_server
    live_server.http.close()
    live_server.app.extensions["profscope"].extras["wasm"].close()


@contextmanager
def own_server(config: dict):
    """A server with its own configuration (the live_server fixture uses the defaults)."""
    srv = LiveServer(create_app(config))
    srv.http = client_session()
    try:
        yield srv
    finally:
        srv.http.close()
        srv.close()
        srv.app.extensions["profscope"].extras["wasm"].close()
        srv.store.close()


def upload(srv, data: bytes, *, headers=None, **params) -> requests.Response:
    return srv.http.post(srv.url + "/api/v1/plugins", data=data, params=params, timeout=T,
                         headers={"Content-Type": "application/wasm", **(headers or {})})


def ingest(srv, data: bytes, **params) -> dict:
    r = srv.http.post(srv.url + "/api/v1/ingest", data=data, params=params, timeout=T)
    assert r.status_code == 201, r.text
    return r.json()


def run(srv, name: str, body: dict) -> requests.Response:
    return srv.http.post(f"{srv.url}/api/v1/plugins/{name}/run", json=body, timeout=T)


def error_of(r: requests.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


def hostile(wat: str, name: str, **limits) -> bytes:
    return wat_module(wat, manifest(name, limits=limits))


def pack(wasm: bytes, man: dict) -> bytes:
    spec = importlib.util.spec_from_file_location("pack_manifest", ROOT / "wasm/tools/pack_manifest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.pack(wasm, man, replace=True)


# ---------------------------------------------------------------- management
def test_upload_raw_and_multipart_list_get_delete(srv):
    assert sorted(p.stem for p in (ROOT / "wasm/plugins").glob("*.wasm")) == sorted(EXAMPLES)
    for name in EXAMPLES:
        wasm = example_bytes(name)
        r = upload(srv, wasm)
        assert r.status_code == 201, r.text
        info = r.json()
        assert (info["name"], info["version"], info["abi"]) == (name, "1.0.0", 1)
        assert info["sha256"] == hashlib.sha256(wasm).hexdigest() and info["replaced"] is None
        assert srv.http.delete(f"{srv.url}/api/v1/plugins/{name}", timeout=T).json()["deleted"]["name"] == name
        r = srv.http.post(srv.url + "/api/v1/plugins", files={"module": (f"{name}.wasm", wasm)},
                          params={"on_ingest": "false", "on_diff": "true"}, timeout=T)
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == info["sha256"]
        assert (r.json()["on_ingest"], r.json()["on_diff"]) == (False, True)
    listing = srv.http.get(srv.url + "/api/v1/plugins", timeout=T).json()["plugins"]
    assert [p["name"] for p in listing] == sorted(EXAMPLES)
    got = srv.http.get(srv.url + "/api/v1/plugins/hotspots", timeout=T).json()
    assert got["limits"] == {"fuel": 200_000_000, "memory_mb": 64, "timeout_ms": 1000}
    assert got["config"]["threshold_pct"] == 5
    # settings: PATCH, only the given flags change
    r = srv.http.patch(srv.url + "/api/v1/plugins/hotspots/settings", json={"on_ingest": True}, timeout=T)
    assert r.status_code == 200 and (r.json()["on_ingest"], r.json()["on_diff"]) == (True, True)
    for bad in ({"on_ingest": "yes"}, {"sometimes": True}, ["on_ingest"]):
        r = srv.http.patch(srv.url + "/api/v1/plugins/hotspots/settings", json=bad, timeout=T)
        assert error_of(r, 400)["kind"] == "bad_input"
    # delete, then everything about it is 404
    assert srv.http.delete(srv.url + "/api/v1/plugins/hotspots", timeout=T).status_code == 200
    for method, path in (("get", ""), ("delete", ""), ("patch", "/settings"), ("post", "/run")):
        r = srv.http.request(method, f"{srv.url}/api/v1/plugins/hotspots{path}", json={"on_ingest": True}, timeout=T)
        err = error_of(r, 404)
        assert err["kind"] == "not_found" and "hotspots" in err["message"], (method, path)
    assert [p["name"] for p in srv.http.get(srv.url + "/api/v1/plugins", timeout=T).json()["plugins"]] == \
        ["regressions", "slowpatterns"]
    # nothing of a deleted module is left in the registry directory
    pdir = srv.app.extensions["profscope"].extras["wasm"].registry.dir
    assert not (pdir / f"{hashlib.sha256(example_bytes('hotspots')).hexdigest()}.wasm").exists()


UPLOAD_ERRORS = [
    ("garbage", lambda: b"not wasm at all", "bad_module", "magic"),
    ("no manifest", lambda: wat_module("infinite_loop.wat"), "bad_module", "manifest"),
    ("missing exports", lambda: wat_module("missing_exports.wat", manifest("missing")), "bad_module", "missing"),
    ("wasi import", lambda: wat_module("wasi_import.wat", manifest("wasi")), "forbidden_import", "wasi"),
    ("oversized", lambda: wat_module("infinite_loop.wat", manifest()) + b"\0" * (4 * 1024 * 1024),
     "bad_module", "max_module_bytes"),
]


def test_upload_errors_are_400_with_their_kind(srv):
    for label, make, kind, word in UPLOAD_ERRORS:
        err = error_of(upload(srv, make()), 400)
        assert err["kind"] == kind and word in err["message"].lower(), (label, err)
    assert error_of(upload(srv, b""), 400)["kind"] == "bad_input"
    r = srv.http.post(srv.url + "/api/v1/plugins", files={"wasm": ("x.wasm", example_bytes("hotspots"))}, timeout=T)
    assert "'module'" in error_of(r, 400)["message"]
    assert "on_ingest" in error_of(upload(srv, example_bytes("hotspots"), on_ingest="maybe"), 400)["message"]
    assert srv.http.get(srv.url + "/api/v1/plugins", timeout=T).json()["plugins"] == []
    assert list(srv.app.extensions["profscope"].extras["wasm"].registry.dir.glob("*.wasm")) == []


# ---------------------------------------------------------------- runs
def test_run_hotspots_on_a_stored_profile(srv, data):
    path = data / "pprof/gp_sample.cpu.pb.gz"
    ingest(srv, path.read_bytes(), service="api")
    upload(srv, example_bytes("hotspots")).raise_for_status()
    r = run(srv, "hotspots", {"query": 'cpu{service_name="api"}', "from": 0, "until": "now"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["plugin"], body["version"], body["diff"]) == ("hotspots", "1.0.0", False)
    assert body["fuel_used"] > 0 and body["wall_ms"] > 0
    # oracle: pprof-style flat values of the decoded file
    table = top_table(profile_to_stackset(decode(path.read_bytes()), "cpu"))
    flat = dict(zip(table.names, table.flat.tolist(), strict=True))
    want = {n: v for n, v in flat.items() if v / table.total * 100 >= 5}
    got = {f["function"]: f for f in body["findings"]}
    assert set(got) == set(want) and "runtime.mapiternext" in got
    hot = got["runtime.mapiternext"]
    assert hot["value"] == flat["runtime.mapiternext"]
    assert abs(hot["share"] - flat["runtime.mapiternext"] / table.total) < 5e-7
    assert hot["severity"] == "critical"          # above the manifest's critical_pct of 25
    # config overrides reach the guest
    r = run(srv, "hotspots", {"query": "cpu", "config": {"threshold_pct": 50}})
    assert [f["function"] for f in r.json()["findings"]] == ["runtime.mapiternext"]
    # bad requests
    for body, word in (({"query": "cpu{service_name=\"nobody\"}"}, "matches no stored profile"),
                       ({"query": "cpu", "from": "yesterday-ish"}, "from"),
                       ({"query": "cpu", "config": [1]}, "config"),
                       ({"query": "cpu", "max_nodes": 0}, "max_nodes"),
                       ({"query": "cpu", "base": {"query": "cpu"}}, "base"),
                       ({"base": {"query": "cpu"}}, "head")):
        assert word in error_of(run(srv, "hotspots", body), 400)["message"], body
    r = srv.http.post(srv.url + "/api/v1/plugins/hotspots/run", data="query=cpu", timeout=T)
    assert "JSON object" in error_of(r, 400)["message"]


def _regressions_oracle(tree, threshold):
    hs = tree.self_[:, 1] / tree.total[0, 1]
    bs = tree.self_[:, 0] / tree.total[0, 0]
    d = (hs - bs) * 100.0
    return [(tree.names[tree.name[i]], int(tree.self_[i, 1]), int(tree.self_[i, 0]))
            for i in range(1, tree.n_nodes) if d[i] >= threshold]


def test_run_regressions_on_a_diff(srv, data):
    for snap in ("t0", "t9"):
        ingest(srv, (data / f"pprof/parca_many_heap_{snap}.pb.gz").read_bytes(), service="heap", label=f"snap={snap}")
    upload(srv, example_bytes("regressions")).raise_for_status()
    body = {"base": {"query": 'inuse_space{snap="t0"}'}, "head": {"query": 'inuse_space{snap="t9"}'},
            "config": {"threshold_pct": 1, "max_findings": 10000}}
    r = run(srv, "regressions", body)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["diff"] is True
    tree = build_tree([pprof_stackset(data / "pprof/parca_many_heap_t0.pb.gz", "inuse_space"),
                       pprof_stackset(data / "pprof/parca_many_heap_t9.pb.gz", "inuse_space")])
    want = _regressions_oracle(tree, 1)
    assert want, "the oracle finds regressions between t0 and t9"
    assert [(f["function"], f["value"], f["base_value"]) for f in res["findings"]] == want
    # the same plugin on one side only: not a diff, nothing to compare
    assert run(srv, "regressions", {"query": 'inuse_space{snap="t9"}'}).json()["findings"] == []
    # different sample types cannot be compared
    bad = {**body, "base": {"query": 'alloc_objects{snap="t0"}'}}
    assert "cannot compare" in error_of(run(srv, "regressions", bad), 400)["message"]


# ---------------------------------------------------------------- hostile modules
HOSTILE_RUNS = [
    ("infinite_loop.wat", {"fuel": 10**12, "timeout_ms": 150}, "timeout"),
    ("infinite_loop.wat", {"fuel": 1_000_000}, "out_of_fuel"),
    ("start_loop.wat", {"fuel": 10**12, "timeout_ms": 150}, "timeout"),
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


class Traffic:
    """Ingest + flame graph requests in a loop on another thread; every status is kept."""

    def __init__(self, srv):
        self.srv, self.stop, self.statuses = srv, threading.Event(), []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        with requests.Session() as s:
            while not self.stop.is_set():
                r = s.post(self.srv.url + "/api/v1/ingest", data=TINY_FOLDED,
                           params={"format": "folded", "service": "bg"}, timeout=T)
                self.statuses.append(("ingest", r.status_code))
                r = s.get(self.srv.url + "/api/v1/flamegraph", params={"query": 'samples{service_name="bg"}'},
                          timeout=T)
                self.statuses.append(("flamegraph", r.status_code))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=T)


def test_hostile_modules_fail_alone_while_ingest_keeps_working(srv):
    ingest(srv, TINY_FOLDED, format="folded", service="tiny")
    upload(srv, example_bytes("hotspots")).raise_for_status()
    for i, (wat, limits, _) in enumerate(HOSTILE_RUNS):
        assert upload(srv, hostile(wat, f"h{i}", **limits)).status_code == 201
    with Traffic(srv) as traffic:
        for i, (wat, _, kind) in enumerate(HOSTILE_RUNS):
            t0 = time.perf_counter()
            err = error_of(run(srv, f"h{i}", {"query": TINY_QUERY}), 422)
            assert err["kind"] == kind, (wat, err)
            assert err["details"]["plugin"] == f"h{i}"
            if kind == "timeout":
                assert err["details"]["fuel_used"] is None and time.perf_counter() - t0 >= 0.1
            ok = run(srv, "hotspots", {"query": TINY_QUERY, "config": {"threshold_pct": 30}})
            assert [f["function"] for f in ok.json()["findings"]] == ["re.compile"], ok.text
        time.sleep(0.2)
    assert len(traffic.statuses) >= 4
    assert all(s == (201 if what == "ingest" else 200) for what, s in traffic.statuses), traffic.statuses
    # analyze: every plugin ran; the hostile ones are per-plugin errors, hotspots still reports
    r = srv.http.get(srv.url + "/api/v1/analyze", params={"query": TINY_QUERY}, timeout=T).json()
    assert [f["function"] for f in r["findings"] if f["plugin"] == "wasm:hotspots"] == ["re.compile", "work"]
    assert {e["plugin"]: e["kind"] for e in r["errors"]} == \
        {f"wasm:h{i}": kind for i, (_, _, kind) in enumerate(HOSTILE_RUNS)}


def test_concurrent_runs_and_ingest_traffic(srv, data):
    """8 concurrent plugin runs plus ingest traffic: no request fails and every run gives the
    same findings (the timing is benchmarks/bench_wasm.py --load)."""
    ingest(srv, (data / "pprof/parca_alloc_objects.heap.pb.gz").read_bytes(), service="heap")
    for name in ("hotspots", "slowpatterns"):
        upload(srv, example_bytes(name), on_ingest="false").raise_for_status()
    body = {"query": 'alloc_space{service_name="heap"}', "config": {"threshold_pct": 1}}
    first = {n: run(srv, n, body).json()["findings"] for n in ("hotspots", "slowpatterns")}
    assert first["hotspots"]
    pprof = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()

    def runner(i):
        name = ("hotspots", "slowpatterns")[i % 2]
        with requests.Session() as http:
            client = SimpleNamespace(url=srv.url, http=http)
            return [(r.status_code, r.json().get("findings") == first[name])
                    for r in (run(client, name, body) for _ in range(3))]

    def ingester(i):
        with requests.Session() as http:
            return [http.post(srv.url + "/api/v1/ingest", data=pprof, params={"service": f"load{i}"},
                              timeout=T).status_code for _ in range(5)]

    with cf.ThreadPoolExecutor(10) as ex:
        runs = [ex.submit(runner, i) for i in range(8)]
        ingests = [ex.submit(ingester, i) for i in range(2)]
        run_results = [x for f in runs for x in f.result()]
        ingest_results = [x for f in ingests for x in f.result()]
    assert run_results == [(200, True)] * 24
    assert ingest_results == [201] * 10


# ---------------------------------------------------------------- auto-run, analyze, start-up
def test_auto_run_on_ingest(srv, data):
    path = data / "pprof/gp_sample.cpu.pb.gz"
    assert ingest(srv, path.read_bytes())["findings"] == []          # no plugin: nothing runs
    upload(srv, example_bytes("hotspots")).raise_for_status()        # on_ingest from its manifest
    upload(srv, hostile("guest_error.wat", "crashy"), on_ingest="true").raise_for_status()
    upload(srv, example_bytes("regressions")).raise_for_status()     # on_diff only
    res = ingest(srv, path.read_bytes(), service="auto")
    assert len(res["profile_ids"]) == 2                               # stored whatever the plugins did
    profile = decode(path.read_bytes())
    ss = profile_to_stackset(profile, None)                           # the default sample type (cpu)
    table = top_table(ss)
    share = float(table.flat[table.names.index("runtime.mapiternext")]) / table.total
    hot = [f for f in res["findings"] if f["function"] == "runtime.mapiternext"]
    assert len(hot) == 1 and hot[0]["plugin"] == "hotspots" and abs(hot[0]["share"] - share) < 5e-7
    assert {f["plugin"] for f in res["findings"]} == {"hotspots"}
    assert [(e["plugin"], e["kind"]) for e in res["plugin_errors"]] == [("crashy", "trap")]
    assert "cannot handle this input" in res["plugin_errors"][0]["error"]
    # flags off: the plugins stop running after ingests
    for name in ("hotspots", "crashy"):
        srv.http.patch(f"{srv.url}/api/v1/plugins/{name}/settings", json={"on_ingest": False},
                       timeout=T).raise_for_status()
    res = ingest(srv, path.read_bytes(), service="auto")
    assert (res["findings"], res["plugin_errors"]) == ([], [])


def test_analyze_includes_wasm_plugins_and_follows_uploads(srv, data):
    ingest(srv, (data / "pprof/gp_sample.cpu.pb.gz").read_bytes(), service="api")

    def analyze():
        return srv.http.get(srv.url + "/api/v1/analyze", params={"query": "cpu"}, timeout=T).json()
    assert not [a for a in analyze()["analyzers"] if a.startswith("wasm:")]
    upload(srv, example_bytes("hotspots")).raise_for_status()
    res = analyze()
    assert "wasm:hotspots" in res["analyzers"]
    assert "runtime.mapiternext" in [f["function"] for f in res["findings"] if f["plugin"] == "wasm:hotspots"]
    # a new version replaces the registered adapter
    v2 = pack(example_bytes("hotspots"), {**json.loads((ROOT / "wasm/examples/hotspots/manifest.json").read_text()),
                                          "version": "2.0.0", "config": {"threshold_pct": 50}})
    r = upload(srv, v2)
    assert r.status_code == 201 and r.json()["replaced"] == "1.0.0"
    res = analyze()
    assert res["analyzers"].count("wasm:hotspots") == 1
    assert [f["function"] for f in res["findings"] if f["plugin"] == "wasm:hotspots"] == ["runtime.mapiternext"]
    pm = srv.app.extensions["profscope"].extras["plugins"]
    assert pm.get_plugin("wasm:hotspots").version == "2.0.0"
    # diff analysis through the same adapters
    res = srv.http.get(srv.url + "/api/v1/analyze", params={"query": "cpu", "base_query": "cpu"}, timeout=T).json()
    assert "wasm:hotspots" in res["analyzers"] and res["errors"] == []
    srv.http.delete(srv.url + "/api/v1/plugins/hotspots", timeout=T).raise_for_status()
    assert "wasm:hotspots" not in analyze()["analyzers"] and pm.get_plugin("wasm:hotspots") is None


def test_plugins_survive_a_restart(tmp_path, data):
    config = {"data_dir": str(tmp_path / "store")}
    with own_server(config) as first:
        upload(first, example_bytes("hotspots"), on_ingest="false").raise_for_status()
        ingest(first, (data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    assert list((tmp_path / "store/wasm-cache").glob("*.cwasm")), "compiled code is cached in <data_dir>/wasm-cache"
    with own_server(config) as second:
        wasm = second.app.extensions["profscope"].extras["wasm"]
        assert wasm.registry.host.stats["disk_hits"] >= 1 and wasm.registry.host.stats["compiled"] == 0
        got = second.http.get(second.url + "/api/v1/plugins/hotspots", timeout=T).json()
        assert got["on_ingest"] is False and "error" not in got
        res = second.http.get(second.url + "/api/v1/analyze", params={"query": "cpu"}, timeout=T).json()
        assert "wasm:hotspots" in res["analyzers"] and res["findings"]


def test_in_memory_app_keeps_plugins_in_a_temporary_directory():
    app = create_app({"data_dir": ":memory:"})
    wasm = app.extensions["profscope"].extras["wasm"]
    try:
        c = app.test_client()
        assert c.post("/api/v1/plugins", data=example_bytes("hotspots"),
                      content_type="application/wasm").status_code == 201
        d = wasm.registry.dir
        assert d.is_dir() and list(d.glob("*.wasm"))
    finally:
        wasm.close()
        app.extensions["profscope"].store.close()
    assert not d.exists()


# ---------------------------------------------------------------- admin token
def test_admin_token_guards_changes_only(tmp_path, data):
    good = {"Authorization": "Bearer s3cret"}
    with own_server({"data_dir": str(tmp_path / "s"), "admin_token": "s3cret"}) as srv:
        wasm = example_bytes("hotspots")
        assert error_of(upload(srv, wasm), 401)["kind"] == "unauthenticated"
        assert error_of(upload(srv, wasm, headers={"Authorization": "Basic s3cret"}), 401)["kind"] == "unauthenticated"
        assert error_of(upload(srv, wasm, headers={"Authorization": "Bearer nope"}), 403)["kind"] == "permission_denied"
        assert srv.http.get(srv.url + "/api/v1/plugins", timeout=T).json()["plugins"] == []
        assert upload(srv, wasm, headers=good).status_code == 201
        url = srv.url + "/api/v1/plugins/hotspots"
        assert srv.http.get(url, timeout=T).status_code == 200                     # reads stay open
        ingest(srv, (data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
        assert run(srv, "hotspots", {"query": "cpu"}).status_code == 200             # runs stay open
        for method, path in (("patch", "/settings"), ("delete", "")):
            for headers, status in (({}, 401), ({"Authorization": "Bearer wrong"}, 403)):
                r = srv.http.request(method, url + path, json={"on_ingest": False}, headers=headers, timeout=T)
                assert r.status_code == status, (method, r.text)
        r = srv.http.patch(url + "/settings", json={"on_ingest": False}, headers=good, timeout=T)
        assert r.status_code == 200 and r.json()["on_ingest"] is False
        assert srv.http.delete(url, headers=good, timeout=T).status_code == 200


def test_openapi_documents_the_plugin_routes(srv):
    doc = srv.http.get(srv.url + "/api/v1/openapi.json", timeout=T).json()
    paths = doc["paths"]
    assert set(paths["/api/v1/plugins"]) == {"get", "post"}
    assert set(paths["/api/v1/plugins/{name}"]) == {"get", "delete"}
    assert set(paths["/api/v1/plugins/{name}/settings"]) == {"patch"}
    run_doc = paths["/api/v1/plugins/{name}/run"]["post"]
    assert {"200", "400", "404", "422"} <= set(run_doc["responses"])
    schemas = doc["components"]["schemas"]
    assert {"WasmPlugin", "WasmRun", "WasmRunRequest"} <= set(schemas)
    ingest_props = paths["/api/v1/ingest"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    assert {"findings", "plugin_errors"} <= set(ingest_props["properties"])


def test_curl_style_bodies_are_not_parsed_as_forms(srv, data):
    """``curl --data-binary @file`` sends Content-Type application/x-www-form-urlencoded: the
    bytes are still the module / the profile."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert upload(srv, example_bytes("hotspots"), headers=form).status_code == 201
    r = srv.http.post(srv.url + "/api/v1/ingest", data=(data / "pprof/gp_sample.cpu.pb.gz").read_bytes(),
                      headers=form, timeout=T)
    assert r.status_code == 201, r.text
    assert "runtime.mapiternext" in [f["function"] for f in r.json()["findings"]]
