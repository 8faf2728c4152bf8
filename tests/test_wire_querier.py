"""querier.v1 over Connect (protobuf and JSON), decoded with the classes generated from the
published .proto files, against a real server."""
from __future__ import annotations

import pytest
import requests
from wire_helpers import CPU, call_json, call_proto, pprof_stacks, server

from profscope.analysis.stacks import profile_to_stackset
from profscope.formats import decode
from profscope.wire.proto.google.v1 import profile_pb2
from profscope.wire.proto.querier.v1 import querier_pb2 as q
from profscope.wire.proto.types.v1 import types_pb2 as t

T0 = 1_700_000_000          # seconds; profiles below are placed at T0 + k * 10 s


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with server(tmp_path_factory.mktemp("querier")) as s:
        for k, (app, env, body) in enumerate([
            ("api", "prod", b"main;handle;db 30\nmain;handle;json 10\nmain;gc 5\n"),
            ("api", "dev", b"main;handle;db 10\n"),
            ("worker", "prod", b"main;loop;crunch 50\n"),
            ("api", "prod", b"main;handle;db 20\n"),
        ]):
            r = requests.post(s.url + "/ingest", data=body, params={
                "name": f"{app}.cpu{{env={env}}}", "from": str(T0 + 10 * k), "until": str(T0 + 10 * k + 10)})
            assert r.status_code == 200, r.text
        yield s


MS = 1000
START, END = T0 * MS, (T0 + 100) * MS
P = 10**7     # 100 Hz


def test_profile_types_labels_series(srv):
    status, pt = call_proto(srv, "ProfileTypes", q.ProfileTypesRequest(start=START, end=END), q.ProfileTypesResponse)
    assert status == 200
    assert [(x.ID, x.name, x.sample_type, x.sample_unit, x.period_type, x.period_unit) for x in pt.profile_types] == \
        [(CPU, "process_cpu", "cpu", "nanoseconds", "cpu", "nanoseconds")]
    status, names = call_proto(srv, "LabelNames", t.LabelNamesRequest(start=START, end=END), t.LabelNamesResponse)
    assert {"service_name", "env", "__name__", "pyroscope_spy"} <= set(names.names)
    sel = f'{{__profile_type__="{CPU}", env="prod"}}'
    status, vals = call_proto(srv, "LabelValues", t.LabelValuesRequest(name="service_name", matchers=[sel],
                                                                       start=START, end=END), t.LabelValuesResponse)
    assert list(vals.names) == ["api", "worker"]
    status, vals = call_proto(srv, "LabelValues", t.LabelValuesRequest(name="__profile_type__", start=START, end=END),
                              t.LabelValuesResponse)
    assert list(vals.names) == [CPU]
    status, ser = call_proto(srv, "Series", q.SeriesRequest(matchers=['{service_name="api"}'],
                                                            label_names=["service_name", "env", "__profile_type__"],
                                                            start=START, end=END), q.SeriesResponse)
    got = sorted(tuple((lp.name, lp.value) for lp in ls.labels) for ls in ser.labels_set)
    assert got == [(("__profile_type__", CPU), ("env", "dev"), ("service_name", "api")),
                   (("__profile_type__", CPU), ("env", "prod"), ("service_name", "api"))]
    # outside the time range: nothing
    status, pt = call_json(srv, "ProfileTypes", {"start": str((T0 + 1000) * MS), "end": str((T0 + 2000) * MS)})
    assert status == 200 and pt == {}


def test_select_merge_stacktraces_proto_and_json(srv):
    req = q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="api", env="prod"}',
                                          start=START, end=END)
    status, resp = call_proto(srv, "SelectMergeStacktraces", req, q.SelectMergeStacktracesResponse)
    fg = resp.flamegraph
    names = list(fg.names)
    # api/prod: main;handle;db 30+20, main;handle;json 10, main;gc 5 (x 10 ms)
    assert fg.total == 65 * P and fg.max_self == 50 * P
    # levels decode: root, main, then gc/handle (sorted by name), then db/json under handle
    assert fg.names[0] == "total" and list(fg.levels[0].values) == [0, 65 * P, 0, 0]
    assert list(fg.levels[1].values) == [0, 65 * P, 0, names.index("main")]
    assert list(fg.levels[2].values) == [0, 5 * P, 5 * P, names.index("gc"), 0, 60 * P, 0, names.index("handle")]
    assert list(fg.levels[3].values) == [5 * P, 50 * P, 50 * P, names.index("db"),
                                         0, 10 * P, 10 * P, names.index("json")]
    assert list(fg.names) == ["total", "main", "handle", "json", "db", "gc"]
    status, js = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector":
                                                           '{service_name="api", env="prod"}', "start": str(START),
                                                           "end": str(END), "maxNodes": "3"})
    assert status == 200
    f = js["flamegraph"]      # keeps main, handle, db; gc and json become "other"
    assert f["total"] == str(65 * P) and f["maxSelf"] == str(50 * P)
    assert f["names"] == ["total", "main", "other", "handle", "db"]
    assert [lv["values"] for lv in f["levels"]][2] == ["0", str(60 * P), "0", "3", "0", str(5 * P), str(5 * P), "2"]
    assert all(isinstance(v, str) for lv in f["levels"] for v in lv["values"])


def test_select_merge_profile_is_a_pprof(srv):
    req = q.SelectMergeProfileRequest(profile_typeID=CPU, label_selector='{service_name="worker"}', start=START, end=END)
    status, prof = call_proto(srv, "SelectMergeProfile", req, profile_pb2.Profile)
    assert status == 200
    stacks, msg = pprof_stacks(prof.SerializeToString())
    assert stacks == {("crunch", "loop", "main"): 50 * P}
    assert msg.string_table[msg.period_type.type] == "cpu" and msg.period == P
    # JSON output of the same message
    status, js = call_json(srv, "SelectMergeProfile", {"profileTypeID": CPU, "labelSelector": '{service_name="worker"}'})
    assert status == 200 and js["sample"][0]["value"] == [str(50 * P)]


def test_select_series_step_group_by_and_average(srv):
    req = q.SelectSeriesRequest(profile_typeID=CPU, label_selector='{service_name="api"}', start=START, end=END,
                                step=20.0, group_by=["env"])
    status, resp = call_proto(srv, "SelectSeries", req, q.SelectSeriesResponse)
    assert status == 200
    series = {tuple((lp.name, lp.value) for lp in s.labels): [(p.timestamp, p.value) for p in s.points]
              for s in resp.series}
    # profiles at T0 (prod 45), T0+10 (dev 10), T0+30 (prod 20); 20 s buckets start at multiples of 20 s
    assert T0 % 20 == 0
    assert series[(("env", "prod"),)] == [(T0 * MS, 45 * P), ((T0 + 20) * MS, 20 * P)]
    assert series[(("env", "dev"),)] == [(T0 * MS, 10 * P)]
    req = q.SelectSeriesRequest(profile_typeID=CPU, label_selector="{}", start=START, end=END, step=1000.0,
                                aggregation=t.TIME_SERIES_AGGREGATION_TYPE_AVERAGE)
    status, resp = call_proto(srv, "SelectSeries", req, q.SelectSeriesResponse)
    (only,) = resp.series
    assert [p.value for p in only.points] == [(45 + 10 + 50 + 20) * P / 4]
    status, err = call_json(srv, "SelectSeries", {"profileTypeID": CPU, "labelSelector": "{}", "step": 0})
    assert status == 400 and err["code"] == "invalid_argument"


def test_diff_and_span_profile(srv):
    left = q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="api", env="dev"}',
                                           start=START, end=END)
    right = q.SelectMergeStacktracesRequest(profile_typeID=CPU, label_selector='{service_name="worker"}',
                                            start=START, end=END)
    status, resp = call_proto(srv, "Diff", q.DiffRequest(left=left, right=right), q.DiffResponse)
    d = resp.flamegraph
    assert (d.leftTicks, d.rightTicks, d.total) == (10 * P, 50 * P, 60 * P)
    assert all(len(lv.values) % 7 == 0 for lv in d.levels)
    assert list(d.levels[0].values) == [0, 10 * P, 0, 0, 50 * P, 0, 0]
    status, err = call_json(srv, "SelectMergeSpanProfile", {"profileTypeID": CPU, "labelSelector": "{}",
                                                            "spanSelector": ["zz"]})
    assert status == 400


def test_span_profile_selects_span_labels(tmp_path, data):
    f = data / "pyroscope-agpl/pyro_go_span_id.cpu.pb.gz"
    with server(tmp_path) as s:
        assert requests.post(s.url + "/ingest", params={"name": "spans", "format": "pprof"},
                             data=f.read_bytes()).status_code == 200
        prof = decode(f.read_bytes())
        span = next(lb.str for ls in prof.label_sets for lb in ls if lb.key == "span_id")
        from profscope.analysis.stacks import Filters, TagFilter
        want = profile_to_stackset(prof, "cpu", Filters(tags=(TagFilter("span_id", f"^{span}$"),))).values.sum()
        status, fg = call_json(s, "SelectMergeSpanProfile", {"profileTypeID": CPU, "labelSelector":
                                                             '{service_name="spans"}', "spanSelector": [span]})
        assert status == 200 and int(fg["flamegraph"]["total"]) == want > 0


@pytest.mark.parametrize("method,body,status,code", [
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": "{service_name="}, 400, "invalid_argument"),
    ("SelectMergeStacktraces", {"labelSelector": "{}"}, 400, "invalid_argument"),
    ("SelectMergeStacktraces", {"profileTypeID": CPU, "start": "10", "end": "5"}, 400, "invalid_argument"),
    ("LabelValues", {}, 400, "invalid_argument"),
])
def test_query_errors(srv, method, body, status, code):
    st, err = call_json(srv, method, body)
    assert st == status and err["code"] == code and err["message"]


def test_unknown_method_and_content_type(srv):
    r = requests.post(srv.url + "/querier.v1.QuerierService/ProfileTypes", data=b"{}",
                      headers={"Content-Type": "text/xml"})
    assert r.status_code == 415 and r.json()["code"]
    r = requests.post(srv.url + "/querier.v1.QuerierService/NoSuchMethod", data=b"{}",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 404


def test_flame_graph_json_equals_message_to_dict():
    """Responses with a flame graph are written to JSON by a faster path; it writes exactly what
    protobuf's MessageToDict writes (field names, int64 as strings, empty fields left out)."""
    import json

    from google.protobuf import json_format

    from profscope.wire.connect import message_json, render_response
    full = q.SelectMergeStacktracesResponse(tree=b"\x00\x01tree")
    fg = full.flamegraph
    fg.names.extend(["total", "main", "ünïcode \"q\""])
    fg.total, fg.max_self = 2**62, 7
    fg.levels.add().values.extend([0, 2**62, 0, 0])
    fg.levels.add()                                              # a level without values
    fg.levels.add().values.extend([-5, 3, 0, 2])
    diff = q.DiffResponse()
    diff.flamegraph.names.extend(["total"])
    diff.flamegraph.levels.add().values.extend([0, 4, 0, 0, 1, 0, 0])
    diff.flamegraph.leftTicks, diff.flamegraph.rightTicks = 4, 1
    cases = [full, diff, q.SelectMergeStacktracesResponse(tree=b"t"), q.SelectMergeStacktracesResponse(),
             q.SelectMergeStacktracesResponse(flamegraph=q.FlameGraph()),
             q.SelectMergeStacktracesResponse(flamegraph=q.FlameGraph(total=3))]
    for msg in cases:
        expected = json_format.MessageToDict(msg, preserving_proto_field_name=False)
        assert message_json(msg) == expected
        body, ctype = render_response(msg, "application/json")
        assert ctype == "application/json" and json.loads(body) == expected
        assert list(message_json(msg)) == list(expected)                # the same key order too
        parsed = type(msg)()
        json_format.Parse(body, parsed)
        assert parsed == msg
