"""Pyroscope ingest: the real pyroscope-io SDK pushing to a real server, Connect push details,
the legacy /ingest API, error codes and tenancy."""
from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests
from wire_helpers import CPU, call_json, call_proto, server

from profscope.wire.proto.google.v1 import profile_pb2
from profscope.wire.proto.push.v1 import push_pb2
from profscope.wire.proto.querier.v1 import querier_pb2 as q

SDK_APP = textwrap.dedent("""
    import sys, time
    import pyroscope
    pyroscope.configure(application_name="sdk.test.app", server_address=sys.argv[1], sample_rate=100,
                        tags={"region": "eu-north", "build": "42"}, upload_interval=1)

    def hot_function_for_profscope(n):
        x = 0
        for i in range(n):
            x += i * i % 7
        return x

    t = time.time()
    while time.time() - t < float(sys.argv[2]):
        hot_function_for_profscope(50_000)
    pyroscope.shutdown()
""")


class Recorder:
    """WSGI middleware keeping a copy of every push body, to check totals independently."""

    def __init__(self, app):
        self.app, self.bodies, self.lock = app, [], threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/push.v1.PusherService/Push":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            with self.lock:
                self.bodies.append((environ.get("HTTP_CONTENT_ENCODING"), body))
            environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


def test_pyroscope_io_sdk_pushes_and_grafana_reads(tmp_path):
    with server(tmp_path) as srv:
        rec = Recorder(srv.app.wsgi_app)
        srv.app.wsgi_app = rec
        script = tmp_path / "app.py"
        script.write_text(SDK_APP)
        t0 = time.time()
        out = subprocess.run([sys.executable, str(script), srv.url, "3"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert rec.bodies, "the SDK pushed nothing"
        # independent reading of what the SDK sent, with the published protobuf classes
        period = None
        values_total = count_total = 0
        for enc, body in rec.bodies:
            assert enc == "gzip"
            req = push_pb2.PushRequest()
            req.ParseFromString(gzip.decompress(body))
            for series in req.series:
                labels = {lp.name: lp.value for lp in series.labels}
                assert labels["__name__"] == "process_cpu" and labels["service_name"] == "sdk.test.app"
                for s in series.samples:
                    p = profile_pb2.Profile()
                    p.ParseFromString(gzip.decompress(s.raw_profile) if s.raw_profile[:2] == b"\x1f\x8b"
                                      else s.raw_profile)
                    st = p.string_table
                    assert (st[p.sample_type[0].type], st[p.sample_type[0].unit]) == ("cpu", "nanoseconds")
                    period = p.period
                    for smp in p.sample:
                        assert smp.value[0] % p.period == 0         # value = count x period
                        values_total += smp.value[0]
                        count_total += smp.value[0] // p.period
        assert period == 10**9 // 100
        assert 100 <= count_total <= 3 * 100 * 1.5     # ~3 s at 100 Hz of one busy thread
        start_ms, end_ms = int(t0 * 1000) - 60_000, int(time.time() * 1000) + 60_000
        sel = '{service_name="sdk.test.app", region="eu-north", build="42"}'
        status, resp = call_proto(srv, "SelectMergeStacktraces",
                                  q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector=sel,
                                                                  start=start_ms, end=end_ms),
                                  q.SelectMergeStacktracesResponse)
        assert status == 200, resp
        fg = resp.flamegraph
        assert fg.total == values_total == count_total * period
        assert "hot_function_for_profscope" in fg.names
        # the same through the legacy render endpoint Grafana's older panels use
        r = requests.get(srv.url + "/pyroscope/render", params={"query": CPU + sel, "from": "now-1h",
                                                                "until": "now+1m"}, timeout=30)
        assert r.status_code == 200 and r.json()["flamebearer"]["numTicks"] == values_total
        assert sum(r.json()["timeline"]["samples"]) == values_total
        # the tags became labels; another service sees nothing
        status, vals = call_json(srv, "LabelValues", {"name": "region", "start": start_ms, "end": end_ms})
        assert vals["names"] == ["eu-north"]
        status, other = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": CPU,
                                  "labelSelector": '{service_name="other"}', "start": start_ms, "end": end_ms})
        assert int(other["flamegraph"].get("total", 0)) == 0


def _push_body(labels: dict[str, str], raw: bytes) -> bytes:
    req = push_pb2.PushRequest()
    s = req.series.add()
    for k, v in labels.items():
        s.labels.add(name=k, value=v)
    s.samples.add(raw_profile=raw, ID="")
    return req.SerializeToString()


def _folded_pprof(data) -> bytes:
    return (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()


@pytest.fixture(params=[0, 2], ids=["inline", "workers"])
def srv(tmp_path, request):
    """Every push test runs twice: decoded in the request thread, and in decoding workers."""
    with server(tmp_path, decode_workers=request.param) as s:
        yield s


def test_push_json_and_raw_profile_variants(srv, data):
    raw_gz = _folded_pprof(data)
    raw = gzip.decompress(raw_gz)
    labels = {"__name__": "process_cpu", "service_name": "variants"}
    url = srv.url + "/push.v1.PusherService/Push"
    r1 = requests.post(url, data=_push_body(labels, raw_gz), headers={"Content-Type": "application/proto"})
    r2 = requests.post(url, data=gzip.compress(_push_body(labels, raw)),
                       headers={"Content-Type": "application/proto", "Content-Encoding": "gzip"})
    import base64
    js = {"series": [{"labels": [{"name": k, "value": v} for k, v in labels.items()],
                      "samples": [{"rawProfile": base64.b64encode(raw).decode(), "ID": "x"}]}]}
    r3 = requests.post(url, data=json.dumps(js), headers={"Content-Type": "application/json"})
    assert [r.status_code for r in (r1, r2, r3)] == [200, 200, 200]
    assert r3.json() == {}
    status, fg = call_json(srv, "SelectMergeStacktraces", {"profile_typeID": CPU,
                                                           "label_selector": '{service_name="variants"}'})
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.formats import decode
    one = profile_to_stackset(decode(raw_gz), "cpu").total
    assert int(fg["flamegraph"]["total"]) == 3 * one     # snake_case keys accepted, int64 as strings
    assert isinstance(fg["flamegraph"]["total"], str)


@pytest.mark.parametrize("body,ctype,status,code", [
    (b"\xff\xff", "application/proto", 400, "invalid_argument"),
    (b"{", "application/json", 400, "invalid_argument"),
    (b"", "text/plain", 415, "invalid_argument"),
])
def test_push_errors_have_connect_shape(srv, body, ctype, status, code):
    r = requests.post(srv.url + "/push.v1.PusherService/Push", data=body, headers={"Content-Type": ctype})
    assert r.status_code == status and r.json()["code"] == code and r.json()["message"]


def test_push_validation(srv, data):
    url = srv.url + "/push.v1.PusherService/Push"
    h = {"Content-Type": "application/proto"}
    r = requests.post(url, data=_push_body({"service_name": "x"}, _folded_pprof(data)), headers=h)
    assert r.status_code == 400 and "__name__" in r.json()["message"]
    r = requests.post(url, data=_push_body({"__name__": "process_cpu", "service_name": "x"}, b"garbage"), headers=h)
    assert r.status_code == 400 and "raw_profile" in r.json()["message"]
    many = {"__name__": "process_cpu", "service_name": "x", **{f"l{i}": "v" for i in range(80)}}
    r = requests.post(url, data=_push_body(many, _folded_pprof(data)), headers=h)
    assert r.status_code == 413 and "max_label_names" in r.json()["message"]
    assert srv.store.profile_types() == []


def test_body_limit_and_overload(tmp_path, data):
    with server(tmp_path, limits={"max_body_bytes": 1000}) as srv:
        r = requests.post(srv.url + "/push.v1.PusherService/Push", data=b"\0" * 5000,
                          headers={"Content-Type": "application/proto"})
        assert r.status_code == 413 and r.json()["code"]
        r = requests.post(srv.url + "/ingest?name=a.cpu", data=b"a;b 1\n" * 1000)
        assert r.status_code == 413
    with server(tmp_path / "2", max_concurrent_ingest=0) as srv:
        body = _push_body({"__name__": "process_cpu", "service_name": "x"}, _folded_pprof(data))
        r = requests.post(srv.url + "/push.v1.PusherService/Push", data=body, headers={"Content-Type": "application/proto"})
        assert r.status_code == 429 and r.json()["code"] == "resource_exhausted"
        r = requests.post(srv.url + "/ingest?name=a.cpu", data=b"a;b 1\n")
        assert r.status_code == 429


def test_tenants_are_isolated(tmp_path, data):
    with server(tmp_path, multitenancy=True) as srv:
        body = _push_body({"__name__": "process_cpu", "service_name": "secret"}, _folded_pprof(data))
        url = srv.url + "/push.v1.PusherService/Push"
        r = requests.post(url, data=body, headers={"Content-Type": "application/proto"})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
        r = requests.post(url, data=body, headers={"Content-Type": "application/proto", "X-Scope-OrgID": "bad/id"})
        assert r.status_code == 400
        r = requests.post(url, data=body, headers={"Content-Type": "application/proto", "X-Scope-OrgID": "team-a"})
        assert r.status_code == 200
        sel = {"profileTypeID": CPU, "labelSelector": '{service_name="secret"}'}
        status, a = call_json(srv, "SelectMergeStacktraces", sel, headers={"X-Scope-OrgID": "team-a"})
        assert int(a["flamegraph"]["total"]) > 0
        status, b = call_json(srv, "SelectMergeStacktraces", sel, headers={"X-Scope-OrgID": "team-b"})
        assert status == 200 and int(b["flamegraph"].get("total", 0)) == 0
        for method, req in [("LabelValues", {"name": "service_name"}), ("ProfileTypes", {}), ("Series", {})]:
            status, out = call_json(srv, method, req, headers={"X-Scope-OrgID": "team-b"})
            assert status == 200 and "secret" not in json.dumps(out) and CPU not in json.dumps(out)
        status, out = call_json(srv, "LabelValues", {"name": "service_name"})
        assert status == 401
        r = requests.get(srv.url + "/pyroscope/label-values", params={"label": "service_name"},
                         headers={"X-Scope-OrgID": "team-b"})
        assert r.json() == []


# ------------------------------------------------------------------ legacy /ingest
def _render_total(srv, query: str) -> int:
    r = requests.get(srv.url + "/pyroscope/render", params={"query": query, "from": "0", "until": "now+1h"})
    assert r.status_code == 200, r.text
    return r.json()["flamebearer"]["numTicks"]


def test_legacy_ingest_text_formats(srv):
    r = requests.post(srv.url + "/ingest", params={"name": "legacy.app.cpu{env=prod,__hidden=x}", "from": "1700000000",
                                                  "until": "1700000010", "sampleRate": "100", "spyName": "gospy"},
                      data=b"foo;bar 100\nfoo;baz 200\n")
    assert r.status_code == 200, r.text
    # 300 samples at 100 Hz = 3 s of CPU
    assert _render_total(srv, CPU + '{service_name="legacy.app",env="prod",pyroscope_spy="gospy"}') == 3 * 10**9
    r = requests.post(srv.url + "/pyroscope/ingest", params={"name": "lines.app.cpu", "format": "lines",
                                                            "sampleRate": "50"}, data=b"a;b\na;b\na;c\n")
    assert r.status_code == 200
    assert _render_total(srv, CPU + '{service_name="lines.app"}') == 3 * 20_000_000
    r = requests.post(srv.url + "/ingest", params={"name": "mem.app.inuse_space"}, data=b"alloc;big 4096\n")
    assert r.status_code == 200
    assert _render_total(srv, 'memory:inuse_space:bytes::{service_name="mem.app"}') == 4096
    vals = requests.get(srv.url + "/pyroscope/label-values", params={"label": "service_name", "from": "0"}).json()
    assert vals == ["legacy.app", "lines.app", "mem.app"]
    names = requests.get(srv.url + "/pyroscope/labels", params={"from": "0"}).json()
    assert "env" in names and "__hidden" not in names


def test_legacy_ingest_pprof_and_multipart(srv, data):
    heap = (data / "pyroscope-agpl/pyro_go.heap.pb.gz").read_bytes()
    r = requests.post(srv.url + "/ingest", params={"name": "goapp{env=x}", "format": "pprof"}, data=heap)
    assert r.status_code == 200, r.text
    cfg = {"alloc_space": {"units": "bytes", "display-name": "alloc_space_renamed"}}
    r = requests.post(srv.url + "/ingest", params={"name": "goapp2", "spyName": "gospy"},
                      files={"profile": ("profile.pprof", heap),
                             "sample_type_config": ("sample_type_config.json", json.dumps(cfg))})
    assert r.status_code == 200, r.text
    types = call_json(srv, "ProfileTypes", {})[1]["profileTypes"]
    ids = {t["ID"] for t in types}
    assert {"memory:alloc_space:bytes:space:bytes", "memory:alloc_space_renamed:bytes:space:bytes"} <= ids
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.formats import decode
    want = profile_to_stackset(decode(heap), "inuse_space").total
    assert _render_total(srv, 'memory:inuse_space:bytes:space:bytes{service_name="goapp2"}') == want


def test_legacy_ingest_speedscope(srv, data):
    body = (data / "other_formats/pyspy.speedscope.json").read_bytes()
    r = requests.post(srv.url + "/ingest", params={"name": "ss.app.cpu", "format": "speedscope"}, data=body)
    assert r.status_code == 200, r.text
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.formats import decode
    assert _render_total(srv, CPU + '{service_name="ss.app"}') == profile_to_stackset(decode(body), "cpu").total


@pytest.mark.parametrize("params,body,status", [
    ({"name": "a.cpu{env"}, b"a 1", 400),
    ({"name": "a.nosuchtype"}, b"a 1", 400),
    ({}, b"a 1", 400),
    ({"name": "a.cpu", "sampleRate": "fast"}, b"a 1", 400),
    ({"name": "a.cpu", "format": "jfr"}, b"x", 415),
    ({"name": "a.cpu", "format": "trie"}, b"x", 415),
    ({"name": "a", "format": "pprof"}, b"not a profile", 422),
    ({"name": "a.cpu"}, b"no count on this line\n", 422),
])
def test_legacy_ingest_errors(srv, params, body, status):
    r = requests.post(srv.url + "/ingest", params=params, data=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]
    assert srv.store.profile_types() == []


def test_render_diff(srv):
    for name, body in (("left.app.cpu", b"a;b 3\na;c 2\nd 5\n"), ("right.app.cpu", b"a;b 1\na;e 2\nf 5\n")):
        assert requests.post(srv.url + "/ingest", params={"name": name, "from": "now-10s"}, data=body).status_code == 200
    r = requests.get(srv.url + "/pyroscope/render-diff", params={
        "leftQuery": CPU + '{service_name="left.app"}', "leftFrom": "now-1h", "leftUntil": "now+1m",
        "rightQuery": CPU + '{service_name="right.app"}', "rightFrom": "now-1h", "rightUntil": "now+1m"})
    assert r.status_code == 200, r.text
    doc = r.json()
    period = 10**7
    assert doc["metadata"]["format"] == "double"
    assert doc["leftTicks"] == 10 * period and doc["rightTicks"] == 8 * period
    fbd = doc["flamebearer"]
    assert fbd["names"] == ["total", "f", "d", "a", "e", "c", "b"]
    assert fbd["levels"][0] == [0, 10 * period, 0, 0, 8 * period, 0, 0]


def test_pushed_profile_uuid_selects_the_profile(srv, data):
    """A sample's ID (a UUID, as Alloy and the SDKs send) is kept: Pyroscope's
    profile_id_selector finds that profile by it, in any case and with or without dashes."""
    raw = _folded_pprof(data)
    url = srv.url + "/push.v1.PusherService/Push"
    h = {"Content-Type": "application/proto"}
    labels = {"__name__": "process_cpu", "service_name": "uuids"}
    ids = ["7C9E6679-7425-40DE-944B-E07FC1F90AE7", "0f8fad5bd9cb469fa16570867728950e", "not-a-uuid"]
    for pid in ids:
        req = push_pb2.PushRequest()
        s = req.series.add()
        for k, v in labels.items():
            s.labels.add(name=k, value=v)
        s.samples.add(raw_profile=raw, ID=pid)
        assert requests.post(url, data=req.SerializeToString(), headers=h, timeout=30).status_code == 200
    from profscope.analysis.stacks import profile_to_stackset
    from profscope.formats import decode
    one = profile_to_stackset(decode(raw), "cpu").total

    def total(selector) -> int:
        status, resp = call_proto(srv, "SelectMergeStacktraces",
                                  q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="uuids"}',
                                                                  profile_id_selector=selector, start=0,
                                                                  end=int(time.time() * 1000) + 60_000),
                                  q.SelectMergeStacktracesResponse)
        assert status == 200, resp
        return resp.flamegraph.total

    assert total([]) == 3 * one
    assert total(["7c9e6679-7425-40de-944b-e07fc1f90ae7"]) == one
    assert total(["7c9e6679742540de944be07fc1f90ae7"]) == one
    assert total(["0F8FAD5B-D9CB-469F-A165-70867728950E", "7c9e6679-7425-40de-944b-e07fc1f90ae7"]) == 2 * one
    assert total(["11111111-2222-3333-4444-555555555555"]) == 0     # never pushed
    status, err = call_proto(srv, "SelectMergeStacktraces",
                             q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="uuids"}',
                                                             profile_id_selector=["not-a-uuid"]),
                             q.SelectMergeStacktracesResponse)
    assert status == 400 and "UUID" in err["message"]
