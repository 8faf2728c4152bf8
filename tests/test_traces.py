"""Trace-to-profile joins: links at ingest, OTLP spans, span/trace/query joins, exemplars,
per-span tables, approximations. Oracle: ``go tool pprof -tagfocus`` on the same files, or
values constructed in the test."""
from __future__ import annotations

import base64
import gzip
import json

import numpy as np
import pytest
from google.protobuf import json_format

from profscope.analysis.top import top_table
from profscope.formats import decode
from profscope.query.selector import Selection
from profscope.query.spanquery import SpanQuery
from profscope.query.trace_tables import exemplars, span_table
from profscope.query.traces import join, select_for_spans
from profscope.store import Store
from profscope.traceids import Link, link_from_labels, parse_span_label, parse_trace_label
from tests.pprof_oracle import have_go, pprof_top
from tests.trace_helpers import PERIOD, make_profile, span_request

SPAN_FILE = "pyroscope-agpl/pyro_go_span_id.cpu.pb.gz"
PID_FILE = "pyroscope-agpl/pyro_go_labels_profile_id.cpu.pb.gz"
needs_go = pytest.mark.skipif(not have_go(), reason="go tool pprof (Debian golang-go) is the oracle")
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


@pytest.fixture
def store(app):
    return app.extensions["profscope"].store


def _ingest_file(store: Store, data, rel: str, service: str):
    p = decode((data / rel).read_bytes())
    store.ingest(p, {"service_name": service})
    return p


def _ids_by_value(profile, key: str) -> list[str]:
    """Distinct values of a sample label, largest CPU first (from the decoded file)."""
    ti = [st.type for st in profile.sample_types].index("cpu")
    per: dict[str, int] = {}
    for i, ls in enumerate(profile.label_sets):
        v = next((lb.str for lb in ls if lb.key == key), None)
        if v is not None:
            per[v] = per.get(v, 0) + int(profile.values[profile.sample_labels == i, ti].sum())
    return sorted(per, key=lambda k: (-per[k], k))


def _top(ss) -> dict[str, tuple[int, int]]:
    t = top_table(ss)
    return {n: (int(f), int(c)) for n, f, c in zip(t.names, t.flat, t.cum, strict=True)}


def _oracle(path, tagfocus: str) -> dict[str, tuple[int, int]]:
    out = pprof_top(str(path), "cpu", "nanoseconds", [f"-tagfocus={tagfocus}"])
    return {r["name"]: (r["flat"], r["cum"]) for r in out["rows"]}


# ---------------------------------------------------------------- ids
def test_label_ids():
    assert parse_span_label("239") == 0x239                       # Pyroscope reads span_id as hex
    assert parse_span_label("c717c11b87121639") == 0xC717C11B87121639
    assert parse_span_label("0") is None and parse_span_label("xyz") is None
    assert parse_span_label("1" * 17) is None
    assert parse_span_label("1234", 10) == 1234
    assert parse_trace_label("0af7651916cd43dd8448eb211c80319c") == 0x0AF7651916CD43DD8448EB211C80319C
    assert link_from_labels({"foo": "bar"}) is None
    assert link_from_labels({"profile_id": "00000000000000ff"}) == Link(0xFF)
    lk = link_from_labels({"span id": "1234", "local root span id": "99", "trace endpoint": "GET /"})
    assert lk == Link(1234, 0, 0, 99)
    lk = link_from_labels({"trace_id": "0102030405060708090a0b0c0d0e0f10", "span_id": "a"})
    assert (lk.trace_hi, lk.trace_lo, lk.span_id) == (0x0102030405060708, 0x090A0B0C0D0E0F10, 10)


# ---------------------------------------------------------------- links at ingest
def test_links_written_at_ingest(store, data):
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    rows = store.db.con.execute("SELECT profile_id, count(*) FROM sample_links GROUP BY 1 ORDER BY 1").fetchall()
    # expected per sample type: label sets with profile_id used by a sample with a nonzero value
    has_id = np.array([any(lb.key == "profile_id" for lb in ls) for ls in p.label_sets])
    expect = [len(np.unique(p.sample_labels[(p.values[:, t] != 0) & has_id[p.sample_labels]]))
              for t in range(len(p.sample_types))]
    assert [r[1] for r in rows] == expect
    n_samples = store.db.con.execute("SELECT count(*) FROM samples").fetchall()[0][0]
    assert sum(expect) < n_samples                       # an index-sized table, not one row per sample


def test_backfill_links_of_old_stores(tmp_path, data):
    s = Store(str(tmp_path))
    _ingest_file(s, data, PID_FILE, "rideshare")
    before = sorted(s.db.con.execute("SELECT * FROM sample_links").fetchall())
    s.db.con.execute("DROP TABLE sample_links")
    s.db.con.execute("DROP TABLE spans")
    s.db.con.execute("DELETE FROM schema_migrations WHERE version = 2")
    s.close()
    s = Store(str(tmp_path))                              # migration 2 runs again, then backfills
    assert sorted(s.db.con.execute("SELECT * FROM sample_links").fetchall()) == before
    s.close()


# ---------------------------------------------------------------- span flame graph vs pprof -tagfocus
@needs_go
def test_span_id_label_equals_pprof_tagfocus(store, data):
    _ingest_file(store, data, SPAN_FILE, "go")
    ss = select_for_spans(store, Selection(CPU), span_ids=["239"])
    want = _oracle(data / SPAN_FILE, "span_id=^239$")
    assert want and _top(ss) == want
    assert ss.total == sum(f for f, _ in want.values())


@needs_go
def test_profile_id_alias_equals_pprof_tagfocus(store, data):
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    ids = _ids_by_value(p, "profile_id")
    for picked in ([ids[0]], [ids[1]], ids[2:5]):
        res = join(store, Selection(CPU), span_ids=picked)
        want = _oracle(data / PID_FILE, "profile_id=^(" + "|".join(picked) + ")$")
        assert want and _top(res.stackset) == want
        assert res.linked_pairs == len(picked) and not res.approximate
    # no profile type given: the CPU time type is chosen
    assert _top(select_for_spans(store, Selection(), span_ids=[ids[0]])) == _oracle(
        data / PID_FILE, f"profile_id=^{ids[0]}$")


@needs_go
def test_http_span_flamegraph_and_top_match_engine(client, store, data):
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    sid = _ids_by_value(p, "profile_id")[0]
    r = client.get(f"/api/v1/traces/top?span_id={sid}&limit=0")
    assert r.status_code == 200, r.json
    want = _oracle(data / PID_FILE, f"profile_id=^{sid}$")
    assert {row["name"]: (row["flat"], row["cum"]) for row in r.json["rows"]} == want
    assert r.json["join"]["span_ids"] == [sid] and r.json["join"]["approximate"] is False
    fg = client.get(f"/api/v1/traces/flamegraph?span_id={sid}").json
    assert fg["total"] == fg["flamegraph"]["total"] == sum(f for f, _ in want.values())
    # the call-path-index tree equals the tree built from the joined stacks
    from profscope.analysis.tree import build_tree
    tree = build_tree([select_for_spans(store, Selection(CPU), span_ids=[sid])], "functions", 8192)
    tree.self_check()
    assert fg["flamegraph"] == tree.to_json()
    focused = client.get(f"/api/v1/traces/flamegraph?span_id={sid}&focus=main.work").json
    assert focused["total"] == want["main.work"][1]


# ---------------------------------------------------------------- OTLP spans
def _post_spans(client, req, tenant=None, as_json=False, gz=False):
    headers = {"X-Scope-OrgID": tenant} if tenant else {}
    if as_json:
        body = json.dumps(_hex_json(req)).encode()
        ctype = "application/json"
    else:
        body, ctype = req.SerializeToString(), "application/x-protobuf"
    if gz:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return client.post("/v1/traces", data=body, content_type=ctype, headers=headers)


def _hex_json(req) -> dict:
    """OTLP/JSON as the spec writes it: ids in hex (json_format would give base64)."""
    doc = json_format.MessageToDict(req)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
    return doc


T1, T2 = 0x0AF7651916CD43DD8448EB211C80319C, 0x11112222333344445555666677778888


@pytest.mark.parametrize("as_json,gz", [(False, False), (True, False), (False, True)])
def test_otlp_spans_ingest(client, store, as_json, gz):
    req = span_request([
        {"trace": T1, "span": 0xA1, "name": "GET /checkout", "start": 100, "end": 900,
         "attrs": {"http.route": "/checkout", "pyroscope.profile.id": "00000000000000a1", "retries": 2}},
        {"trace": T1, "span": 0xA2, "parent": 0xA1, "name": "db", "start": 200, "end": 300, "status": 2},
    ], service="shop", resource={"host.name": "h1"})
    r = _post_spans(client, req, as_json=as_json, gz=gz)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert _post_spans(client, req, as_json=as_json, gz=gz).status_code == 200   # re-sent: not duplicated
    spans = client.get("/api/v1/traces/spans").json["spans"]
    assert [(s["span_id"], s["trace_id"], s["name"], s["service"], s["duration_ns"]) for s in spans] == [
        ("00000000000000a2", f"{T1:032x}", "db", "shop", 100),
        ("00000000000000a1", f"{T1:032x}", "GET /checkout", "shop", 800)]
    assert spans[1]["attributes"]["http.route"] == "/checkout" and spans[1]["attributes"]["retries"] == "2"
    assert spans[0]["parent_span_id"] == "00000000000000a1" and spans[0]["status_code"] == 2
    assert store.traces.find_spans("anonymous")["profile_span_id"].tolist() == [0, 0xA1]
    q = client.get("/api/v1/traces/spans?attr=host.name=h1&status=error").json["spans"]
    assert [s["name"] for s in q] == ["db"]


@pytest.mark.parametrize("body,ctype,status,needle", [
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":"0000000000000001"}]}]}]}',
     "application/json", 400, "traceId"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102","spanId":"0000000000000001"}]}]}]}',
     "application/json", 400, "32"),
    (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"0000000000000001"}]}]}]}',
     "application/json", 400, "trace_id"),
    (b"not json", "application/json", 400, "JSON"),
    (b"\xff\xff\xff", "application/x-protobuf", 400, "ExportTraceServiceRequest"),
    (b"{}", "text/plain", 415, "Content-Type"),
])
def test_otlp_spans_bad_input(client, store, body, ctype, status, needle):
    r = client.post("/v1/traces", data=body, content_type=ctype)
    assert r.status_code == status
    assert needle in r.json["error"]["message"]
    assert len(store.traces.find_spans("anonymous")["span_id"]) == 0     # nothing half-stored
    assert client.get("/healthz").status_code == 200


def test_otlp_spans_one_bad_span_rejects_request(client, store):
    req = span_request([{"trace": T1, "span": 1, "start": 0, "end": 1}, {"trace": T1, "span": 2, "start": 0, "end": 1}])
    req.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02"
    r = _post_spans(client, req)
    assert r.status_code == 400 and "spans[1].span_id" in r.json["error"]["message"]
    assert len(store.traces.find_spans("anonymous")["span_id"]) == 0


# ---------------------------------------------------------------- traces, span tables, local roots
@pytest.fixture
def linked(client, store, data):
    """The profile_id file plus spans: trace T1 = root (tagged id a) with a tagged child (id b)
    and an untagged grandchild; trace T2 = one span (tagged id c)."""
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    a, b, c = (int(x, 16) for x in _ids_by_value(p, "profile_id")[:3])
    t0 = p.time_nanos
    r = _post_spans(client, span_request([
        {"trace": T1, "span": 0x1001, "name": "GET /slow", "start": t0, "end": t0 + 2 * 10**9,
         "attrs": {"pyroscope.profile.id": f"{a:016x}", "http.route": "/slow"}},
        {"trace": T1, "span": b, "parent": 0x1001, "name": "slowFunction", "start": t0 + 10**8, "end": t0 + 10**9},
        {"trace": T1, "span": 0x1003, "parent": b, "name": "inner", "start": t0 + 2 * 10**8,
         "end": t0 + 3 * 10**8},
        {"trace": T2, "span": c, "name": "GET /fast", "start": t0, "end": t0 + 10**8,
         "attrs": {"http.route": "/fast"}},
    ], service="rideshare"))
    assert r.status_code == 200
    return p, a, b, c


def _hex(*ids):
    return "^(" + "|".join(f"{i:016x}" for i in ids) + ")$"


@needs_go
def test_trace_join_is_union_of_its_spans(client, store, data, linked):
    p, a, b, c = linked
    r = client.get(f"/api/v1/traces/top?trace_id={T1:032x}&limit=0").json
    assert {row["name"]: (row["flat"], row["cum"]) for row in r["rows"]} == _oracle(data / PID_FILE,
                                                                                    "profile_id=" + _hex(a, b))
    assert r["join"]["spans_matched"] == 3
    t2 = join(store, Selection(CPU), trace_ids=[f"{T2:032x}"])
    assert _top(t2.stackset) == _oracle(data / PID_FILE, "profile_id=" + _hex(c))


@needs_go
def test_span_descendants_and_exact(store, data, linked):
    p, a, b, c = linked
    root = join(store, Selection(CPU), span_ids=["1001"])        # tagged through pyroscope.profile.id
    assert _top(root.stackset) == _oracle(data / PID_FILE, "profile_id=" + _hex(a, b))
    exact = join(store, Selection(CPU), span_ids=["1001"], descendants=False)
    assert _top(exact.stackset) == _oracle(data / PID_FILE, "profile_id=" + _hex(a))
    assert not root.approximate and not exact.approximate


@needs_go
def test_untagged_child_span_is_approximated_by_local_root(store, data, linked):
    p, a, b, c = linked
    res = join(store, Selection(CPU), span_ids=["1003"], descendants=False)
    # 1003 has no samples; its nearest sampled ancestor is b (own id), whose profile overlaps
    assert res.approximate and res.notes
    assert _top(res.stackset) == _oracle(data / PID_FILE, "profile_id=" + _hex(b))
    strict = join(store, Selection(CPU), span_ids=["1003"], approximate=False)
    assert strict.stackset.total == 0 and not strict.approximate
    # outside every profile's window the approximation finds nothing
    store.traces.ingest_spans(__import__("profscope.formats.otlp_traces", fromlist=["x"]).spans_from_request(
        span_request([{"trace": T1, "span": 0x1004, "parent": 0x1001, "name": "late",
                       "start": p.time_nanos + 10**12, "end": p.time_nanos + 10**12 + 5}], "rideshare")))
    assert join(store, Selection(CPU), span_ids=["1004"]).stackset.total == 0


@needs_go
def test_span_query(client, store, data, linked):
    p, a, b, c = linked
    r = client.get("/api/v1/traces/top?service=rideshare&min_duration=1.5s&limit=0").json
    assert r["join"]["spans_matched"] == 1
    assert {x["name"]: (x["flat"], x["cum"]) for x in r["rows"]} == _oracle(data / PID_FILE,
                                                                            "profile_id=" + _hex(a, b))
    q = SpanQuery(service="rideshare", attributes=(("http.route", "/fast"),))
    assert _top(select_for_spans(store, Selection(CPU), span_query=q)) == _oracle(
        data / PID_FILE, "profile_id=" + _hex(c))
    q = SpanQuery(name="slowFunction", max_duration_ns=10**9)
    assert _top(select_for_spans(store, Selection(CPU), span_query=q, descendants=False)) == _oracle(
        data / PID_FILE, "profile_id=" + _hex(b))
    # span query and trace id together: samples must match both
    both = join(store, Selection(CPU), trace_ids=[f"{T2:032x}"], span_query=SpanQuery(name="GET /slow"))
    assert both.stackset.total == 0
    assert client.get("/api/v1/traces/top?service=nobody").json["total"] == 0


@needs_go
def test_per_span_table(client, store, data, linked):
    p, a, b, c = linked
    tab = client.get(f"/api/v1/traces/{T1:032x}/spans").json
    rows = {r["span_id"]: r for r in tab["spans"]}
    total = lambda *ids: sum(f for f, _ in _oracle(data / PID_FILE, "profile_id=" + _hex(*ids)).values())  # noqa: E731
    assert rows["0000000000001001"]["self"] == total(a)
    assert rows[f"{b:016x}"]["self"] == total(b) and rows[f"{b:016x}"]["total"] == total(b)
    assert rows["0000000000001003"]["self"] == 0
    assert rows["0000000000001001"]["total"] == total(a, b) == tab["total"]
    assert [r["depth"] for r in tab["spans"]] == [0, 1, 2] and tab["unit"] == "nanoseconds"
    assert client.get("/api/v1/traces/xyz/spans").status_code == 400


@needs_go
def test_exemplars_for_a_function(client, store, data):
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    r = client.get("/api/v1/traces/exemplars?function=main.slowFunction&limit=3").json
    assert len(r["spans"]) == 3
    values = [s["value"] for s in r["spans"]]
    assert values == sorted(values, reverse=True) and values[0] > 0
    for s in r["spans"]:
        o = _oracle(data / PID_FILE, f"profile_id=^{s['span_id']}$")
        assert s["value"] == o["main.slowFunction"][1]
        assert s["span_total"] == sum(f for f, _ in o.values())
    # the best span is the best of all ids (oracle: our decoder, validated against pprof)
    from profscope.analysis.stacks import Filters, TagFilter, profile_to_stackset
    best = max(_top(profile_to_stackset(p, "cpu", Filters(tags=(TagFilter("profile_id", f"^{i}$"),)))
                    ).get("main.slowFunction", (0, 0))[1] for i in _ids_by_value(p, "profile_id"))
    assert values[0] == best
    rx = client.get("/api/v1/traces/exemplars?frame=slowFunc&limit=3").json
    assert [s["value"] for s in rx["spans"]] == values
    assert client.get("/api/v1/traces/exemplars?function=a&frame=b").status_code == 400


# ---------------------------------------------------------------- other link sources
def test_datadog_labels_and_local_root(store):
    t0 = 1_700_000_000 * 10**9
    store.ingest(make_profile([
        (["main", "handler", "work"], 5, {"span id": "1234", "local root span id": "99", "trace endpoint": "GET /"}),
        (["main", "handler"], 3, {"span id": "99", "local root span id": "99", "trace endpoint": "GET /"}),
        (["main", "idle"], 7, {}),
    ], t0), {"service_name": "dd"})
    from profscope.formats.otlp_traces import spans_from_request
    store.traces.ingest_spans(spans_from_request(span_request([
        {"trace": T1, "span": 99, "name": "GET /", "start": t0, "end": t0 + 10**9},
        {"trace": T1, "span": 1234, "parent": 99, "name": "work", "start": t0, "end": t0 + 10**8}], "dd")))
    sel = Selection(CPU)
    assert select_for_spans(store, sel, span_ids=[f"{1234:x}"]).total == 5 * PERIOD
    assert select_for_spans(store, sel, span_ids=[f"{99:x}"], descendants=False).total == 3 * PERIOD
    assert select_for_spans(store, sel, span_ids=[f"{99:x}"]).total == 8 * PERIOD
    assert select_for_spans(store, sel, trace_ids=[f"{T1:x}"]).total == 8 * PERIOD
    rows = {r["span_id"]: r for r in span_table(store, sel, f"{T1:x}")["spans"]}
    assert rows[f"{99:016x}"]["self"] == 3 * PERIOD and rows[f"{99:016x}"]["total"] == 8 * PERIOD


def test_trace_id_labels_without_spans(store):
    """OTLP sample links arrive as trace_id/span_id sample labels: a trace joins without spans."""
    t0 = 1_700_000_000 * 10**9
    store.ingest(make_profile([
        (["a", "b"], 2, {"trace_id": f"{T1:032x}", "span_id": "00000000000000aa"}),
        (["a", "c"], 4, {"trace_id": f"{T1:032x}", "span_id": "00000000000000bb"}),
        (["a", "d"], 8, {"trace_id": f"{T2:032x}", "span_id": "00000000000000cc"}),
    ], t0), {"service_name": "otlp"})
    res = join(store, Selection(CPU), trace_ids=[f"{T1:032x}"])
    assert res.stackset.total == 6 * PERIOD and _top(res.stackset)["a"] == (0, 6 * PERIOD)
    tab = span_table(store, Selection(CPU), f"{T1:032x}")
    assert sorted((r["span_id"], r["self"], r["stored"]) for r in tab["spans"]) == [
        ("00000000000000aa", 2 * PERIOD, False), ("00000000000000bb", 4 * PERIOD, False)]
    ex = exemplars(store, Selection(CPU), function="d")
    assert [(s["span_id"], s["trace_id"], s["value"]) for s in ex["spans"]] == [
        ("00000000000000cc", f"{T2:032x}", 8 * PERIOD)]
    assert ex["traces"] == [{"trace_id": f"{T2:032x}", "value": 8 * PERIOD, "spans": 1}]


def test_unlinked_time_window_join(store):
    t0 = 1_700_000_000 * 10**9
    store.ingest(make_profile([
        (["serve", "slow"], 6, {"thread_id": "7"}),
        (["serve", "other"], 4, {"thread_id": "8"}),
        (["serve", "slow"], 1, {}),
    ], t0, 10**9), {"service_name": "py"})
    store.ingest(make_profile([(["serve", "later"], 9, {"thread_id": "7"})], t0 + 10**11, 10**9),
                 {"service_name": "py"})
    from profscope.formats.otlp_traces import spans_from_request
    store.traces.ingest_spans(spans_from_request(span_request([
        {"trace": T1, "span": 5, "name": "GET /slow", "start": t0 + 10**8, "end": t0 + 5 * 10**8,
         "attrs": {"thread.id": 7}}], "py")))
    sel = Selection(CPU)
    assert join(store, sel, span_ids=["5"]).stackset.total == 0
    res = join(store, sel, span_ids=["5"], unlinked=True)
    assert res.approximate and res.notes
    # thread 7's samples and the samples without a thread label, from the overlapping profile only
    assert _top(res.stackset) == {"serve": (0, 7 * PERIOD), "slow": (7 * PERIOD, 7 * PERIOD)}


def test_tenants_are_separate(client, store, data):
    p = _ingest_file(store, data, PID_FILE, "rideshare")
    a = _ids_by_value(p, "profile_id")[0]
    req = span_request([{"trace": T1, "span": int(a, 16), "name": "x", "start": 0, "end": 1}])
    assert _post_spans(client, req, tenant="other").status_code == 200
    assert client.get("/api/v1/traces/spans").json["spans"] == []
    assert len(client.get("/api/v1/traces/spans", headers={"X-Scope-OrgID": "other"}).json["spans"]) == 1
    # tenant "other" has the span but no profiles; anonymous has profiles but not the trace
    assert client.get(f"/api/v1/traces/top?trace_id={T1:x}", headers={"X-Scope-OrgID": "other"}).json["total"] == 0
    assert client.get(f"/api/v1/traces/top?trace_id={T1:x}").json["total"] == 0


# ---------------------------------------------------------------- API surface
@pytest.mark.parametrize("qs,needle", [
    ("", "span_id, trace_id"), ("span_id=xyz", "span_id"), ("trace_id=" + "f" * 33, "trace_id"),
    ("service=a&min_duration=fast", "min_duration"), ("service=a&attr=novalue", "key=value"),
    ("service=a&status=bad", "status"), ("span_id=1&descendants=maybe", "descendants"),
])
def test_join_bad_parameters(client, qs, needle):
    r = client.get("/api/v1/traces/flamegraph?" + qs)
    assert r.status_code == 400 and needle in r.json["error"]["message"]


def test_trace_routes_documented(app):
    from profscope.api.openapi import PATHS
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("traces."):
            path = rule.rule.replace("<trace_id>", "{trace_id}")
            assert path in PATHS, path


def test_grpc_trace_service(store):
    grpc = pytest.importorskip("grpc")
    from concurrent import futures

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    from profscope.wire.grpc_traces import trace_service_handler
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((trace_service_handler(lambda: store),))
    strict = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    strict.add_generic_rpc_handlers((trace_service_handler(lambda: store, multitenancy=True),))
    strict_port = strict.add_insecure_port("127.0.0.1:0")
    strict.start()
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = TraceServiceStub(ch)
            stub.Export(span_request([{"trace": T1, "span": 7, "name": "rpc", "start": 1, "end": 2}]), timeout=10)
            stub.Export(span_request([{"trace": T2, "span": 8, "name": "rpc2", "start": 1, "end": 2}]),
                        metadata=[("x-scope-orgid", "t2")], timeout=10)
            bad = span_request([{"trace": T1, "span": 9, "start": 1, "end": 2}])
            bad.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01"
            with pytest.raises(grpc.RpcError) as e:
                stub.Export(bad, timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "trace_id" in e.value.details()
        with grpc.insecure_channel(f"127.0.0.1:{strict_port}") as ch:
            with pytest.raises(grpc.RpcError) as e:
                TraceServiceStub(ch).Export(span_request([{"trace": T1, "span": 10, "start": 1, "end": 2}]), timeout=10)
            assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop(None)
        strict.stop(None)
    assert store.traces.find_spans("anonymous")["span_id"].tolist() == [7]
    assert store.traces.find_spans("t2")["span_id"].tolist() == [8]


@needs_go
def test_pyroscope_selectors_equal_native_api(client, store, data, linked):
    """SelectMergeStacktraces span_selector / trace_id_selector and SelectMergeSpanProfile run the
    same engine as /api/v1/traces: same totals and functions."""
    p, a, b, c = linked

    def connect(method: str, body: dict) -> dict:
        r = client.post(f"/querier.v1.QuerierService/{method}", json={"profileTypeID": CPU, "labelSelector": "{}",
                                                                       **body})
        assert r.status_code == 200, r.get_data(as_text=True)
        return r.json["flamegraph"]

    def native(qs: str) -> tuple[int, set[str]]:
        body = client.get(f"/api/v1/traces/top?{qs}&limit=0").json
        return body["total"], {row["name"] for row in body["rows"]}

    for method, body, qs in [
        ("SelectMergeSpanProfile", {"spanSelector": ["0000000000001001"]}, "span_id=0000000000001001"),
        ("SelectMergeSpanProfile", {"spanSelector": ["0000000000001003"]}, "span_id=0000000000001003"),
        ("SelectMergeStacktraces", {"spanSelector": [f"{b:016x}"]}, f"span_id={b:016x}"),
        ("SelectMergeStacktraces", {"traceIdSelector": [f"{T1:032x}"]}, f"trace_id={T1:032x}"),
        ("SelectMergeStacktraces", {"traceIdSelector": [f"{T2:032x}"], "spanSelector": [f"{c:016x}"]},
         f"trace_id={T2:032x}&span_id={c:016x}"),
    ]:
        fg = connect(method, body)
        total, names = native(qs)
        assert int(fg["total"]) == total > 0, (method, body)
        assert set(fg["names"]) - {"total"} == names
    assert int(connect("SelectMergeStacktraces", {"spanSelector": ["0000000000001001"]})["total"]) == sum(
        f for f, _ in _oracle(data / PID_FILE, "profile_id=" + _hex(a, b)).values())
    r = client.post("/querier.v1.QuerierService/SelectMergeStacktraces",
                    json={"profileTypeID": CPU, "labelSelector": "{}", "traceIdSelector": ["nothex"]})
    assert r.status_code == 400 and "trace_id" in r.json["message"]


def test_otlp_listener_serves_traces_too(app):
    """The one OTLP gRPC listener of `profscope serve` accepts spans as well as profiles."""
    grpc = pytest.importorskip("grpc")
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    from profscope.wire.grpc_server import start_grpc_server
    server, port = start_grpc_server(app, "127.0.0.1", 0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            TraceServiceStub(ch).Export(span_request([{"trace": T1, "span": 77, "name": "listener", "start": 1,
                                                       "end": 2}]), timeout=10)
    finally:
        server.stop(None)
    assert app.extensions["profscope"].store.traces.find_spans("anonymous")["span_id"].tolist() == [77]
