"""The native HTTP API against a real server on 127.0.0.1."""
from __future__ import annotations

import concurrent.futures as cf
import gzip

import pytest
import requests

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.top import top_table
from profscope.formats import decode


def upload(srv, path, **params):
    r = requests.post(srv.url + "/api/v1/ingest", params=params, data=path.read_bytes(), timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def test_upload_query_top_flamegraph(live_server, data):
    f = data / "pprof/gp_sample.cpu.pb.gz"
    res = upload(live_server, f, service="api", label="env=prod")
    assert res["samples"] == 76 and len(res["profile_ids"]) == 2
    expected = top_table(profile_to_stackset(decode(f.read_bytes()), "cpu"))
    r = requests.get(live_server.url + "/api/v1/top", params={"query": 'cpu{service_name="api"}', "limit": 0}, timeout=30)
    assert r.status_code == 200
    assert r.json()["rows"] == expected.rows() and r.json()["total"] == expected.total
    fg = requests.get(live_server.url + "/api/v1/flamegraph",
                      params={"query": 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{env="prod"}'}, timeout=30).json()
    root = fg["flamegraph"]
    assert root["name"] == "total" and root["total"] == expected.total

    def walk(n):
        assert n["total"] == n["self"] + sum(c["total"] for c in n["children"])
        names = [c["name"] for c in n["children"]]
        assert names == sorted(names)
        for c in n["children"]:
            walk(c)
    walk(root)


def test_flamegraph_max_nodes_merges_into_other(live_server, data):
    upload(live_server, data / "pprof/gp_large.cpu.pb.gz", service="big")
    fg = requests.get(live_server.url + "/api/v1/flamegraph",
                      params={"query": "cpu", "max_nodes": 50}, timeout=60).json()
    assert fg["nodes"] <= 2 * 50

    def count(n):
        return 1 + sum(count(c) for c in n["children"])

    def has_other(n):
        return n["name"] == "other" or any(has_other(c) for c in n["children"])
    assert count(fg["flamegraph"]) == fg["nodes"] and has_other(fg["flamegraph"])
    assert fg["flamegraph"]["total"] == fg["total"]


def test_metadata_endpoints(live_server, data):
    upload(live_server, data / "pprof/parca_labels_api.cpu.pb.gz", service="lbl", label="team=core")
    types = requests.get(live_server.url + "/api/v1/profile_types", timeout=30).json()["profile_types"]
    assert "process_cpu:cpu:nanoseconds:cpu:nanoseconds" in types
    names = requests.get(live_server.url + "/api/v1/labels", timeout=30).json()["names"]
    assert {"service_name", "team", "api"} <= set(names)
    vals = requests.get(live_server.url + "/api/v1/labels/api/values", timeout=30).json()["values"]
    assert vals == ["query"]
    series = requests.get(live_server.url + "/api/v1/series", params={"query": '{team="core"}'}, timeout=30).json()
    assert all(s["labels"]["team"] == "core" for s in series["series"]) and series["series"]
    profs = requests.get(live_server.url + "/api/v1/profiles", params={"query": "cpu"}, timeout=30).json()["profiles"]
    assert len(profs) == 1 and profs[0]["labels"]["service_name"] == "lbl"


@pytest.mark.parametrize("fmt", ["pprof", "speedscope", "folded"])
def test_export_formats_reimport(live_server, data, fmt):
    f = data / "pprof/parca_fib_bigint.cpu.pb.gz"
    upload(live_server, f, service="fib")
    r = requests.get(live_server.url + "/api/v1/export", params={"query": "cpu", "format": fmt}, timeout=30)
    assert r.status_code == 200
    back = decode(r.content)
    st = "samples" if fmt == "folded" else "cpu"
    assert profile_to_stackset(back, st).total == profile_to_stackset(decode(f.read_bytes()), "cpu").total


def test_error_shape_for_every_kind_of_bad_request(live_server):
    cases = [("get", "/api/v1/top?query=cpu{bad", 400), ("get", "/api/v1/top?granularity=x", 400),
             ("get", "/api/v1/top?from=yesterday-ish", 400), ("get", "/api/v1/flamegraph?max_nodes=-1", 400),
             ("post", "/api/v1/ingest", 400), ("get", "/api/v1/export?format=svg", 400), ("get", "/nope", 404)]
    for method, path, code in cases:
        r = getattr(requests, method)(live_server.url + path, timeout=30)
        assert r.status_code == code, path
        body = r.json()
        assert set(body) == {"error"} and body["error"]["kind"] and body["error"]["message"], path


def test_gzip_and_multipart_upload(live_server, data):
    raw = (data / "other_formats/pyspy_raw_collapsed.txt").read_bytes()
    r = requests.post(live_server.url + "/api/v1/ingest", params={"service": "py", "sample_rate": 50},
                      data=gzip.compress(raw), timeout=30)
    assert r.status_code == 201 and "process_cpu:cpu:nanoseconds::" not in r.json()["profile_types"]
    r = requests.post(live_server.url + "/api/v1/ingest", params={"service": "mp"},
                      files={"profile": ("p.pb.gz", (data / "pprof/gp_sample.cpu.pb.gz").read_bytes())}, timeout=30)
    assert r.status_code == 201


def test_concurrent_ingest_and_query(live_server, data):
    body = (data / "pprof/parca_fib_bigint.cpu.pb.gz").read_bytes()
    one = profile_to_stackset(decode(body), "cpu").total

    def push(i):
        return requests.post(live_server.url + "/api/v1/ingest", params={"service": "conc", "label": f"i={i}"},
                             data=body, timeout=60).status_code

    def query(_):
        return requests.get(live_server.url + "/api/v1/top", params={"query": 'cpu{service_name="conc"}'},
                            timeout=60).status_code
    with cf.ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(push, i) for i in range(40)] + [ex.submit(query, i) for i in range(20)]
        codes = [f.result() for f in futs]
    assert codes[:40] == [201] * 40 and codes[40:] == [200] * 20
    total = requests.get(live_server.url + "/api/v1/top", params={"query": 'cpu{service_name="conc"}'}, timeout=30).json()["total"]
    assert total == 40 * one


def test_openapi_documents_every_route(app):
    from profscope.api.openapi import document
    doc = document()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            routes.add(rule.rule.replace("<", "{").replace(">", "}").replace("{path:", "{"))
    missing = {r for r in routes if r not in doc["paths"]}
    assert not missing, f"undocumented routes: {missing}"
    assert doc["openapi"].startswith("3.")


def test_multitenancy_isolation(tmp_path, data):
    from conftest import LiveServer

    from profscope.api import create_app
    app = create_app({"data_dir": str(tmp_path), "multitenancy": True})
    srv = LiveServer(app)
    try:
        body = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()
        r = requests.post(srv.url + "/api/v1/ingest", data=body, timeout=30)
        assert r.status_code == 401
        r = requests.post(srv.url + "/api/v1/ingest", data=body, headers={"X-Scope-OrgID": "team-a"}, timeout=30)
        assert r.status_code == 201
        b = requests.get(srv.url + "/api/v1/top", params={"query": "cpu"}, headers={"X-Scope-OrgID": "team-b"}, timeout=30)
        assert b.json()["total"] == 0 and b.json()["rows"] == []
        a = requests.get(srv.url + "/api/v1/top", params={"query": "cpu"}, headers={"X-Scope-OrgID": "team-a"}, timeout=30)
        assert a.json()["total"] > 0
    finally:
        srv.close()
        app.extensions["profscope"].store.close()


def test_form_urlencoded_body_is_taken_as_raw_bytes(live_server, data):
    """curl --data-binary and urllib send application/x-www-form-urlencoded: still the raw profile."""
    body = (data / "pprof/gp_large.cpu.pb.gz").read_bytes()
    r = requests.post(live_server.url + "/api/v1/ingest", params={"service": "curl"}, data=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
    assert r.status_code == 201, r.text
