"""OTLP profiles (v1.10) over HTTP and gRPC against a real server; older schema versions refused."""
from __future__ import annotations

import gzip
import json

import grpc
import pytest
import requests
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as pb
from wire_helpers import CPU, call_json, call_proto, expected_compact_stacks, pprof_stacks, server

from profscope.errors import MalformedProfile
from profscope.wire.otlp import EXPECTED_VERSION, convert_request, decode_export_request
from profscope.wire.proto.google.v1 import profile_pb2
from profscope.wire.proto.querier.v1 import querier_pb2 as q

AGPL = "pyroscope-agpl"
V110_BIN = "pyroscope_ebpf_v1.10_b3eb92a.pb.bin"
V110_JSON = "pyroscope_ebpf_v1.10_b3eb92a.pb.json"
OFFCPU = "off_cpu:off_cpu:nanoseconds::"


def post(srv, body: bytes, ctype: str, **headers):
    return requests.post(srv.url + "/v1development/profiles", data=body,
                         headers={"Content-Type": ctype, **headers}, timeout=60)


@pytest.fixture
def srv(tmp_path):
    with server(tmp_path) as s:
        yield s


@pytest.mark.parametrize("name,ctype", [("pyroscope_ebpf_v1.8_85b4c07.pb.bin", "application/x-protobuf"),
                                        ("pyroscope_ebpf_v1.8_85b4c07.pb.json", "application/json")])
def test_v18_payloads_are_refused_naming_the_expected_version(srv, data, name, ctype):
    r = post(srv, (data / AGPL / name).read_bytes(), ctype)
    assert r.status_code == 400
    text = r.json()["message"] if ctype == "application/json" else r.content.decode("utf-8", "replace")
    assert "v1.10.0" in text and "v1development" in text
    assert srv.store.profile_types() == []          # nothing half-stored


@pytest.mark.parametrize("name,ctype,gz", [(V110_BIN, "application/x-protobuf", False),
                                           (V110_JSON, "application/json", True)])
def test_v110_twins_reproduce_pyroscope_expected_output(srv, data, name, ctype, gz):
    body = (data / AGPL / name).read_bytes()
    headers = {"Content-Encoding": "gzip"} if gz else {}
    r = post(srv, gzip.compress(body) if gz else body, ctype, **headers)
    assert r.status_code == 200, r.content
    for ptype, expected in ((CPU, "pyroscope_expected_cpu.out.json"), (OFFCPU, "pyroscope_expected_offcpu.out.json")):
        status, prof = call_proto(srv, "SelectMergeProfile",
                                  q.SelectMergeProfileRequest(profile_typeID=ptype,
                                                              label_selector='{service_name="unknown_service"}'),
                                  profile_pb2.Profile)
        assert status == 200, prof
        got, msg = pprof_stacks(prof.SerializeToString())
        want = expected_compact_stacks(json.loads((data / AGPL / expected).read_text()))
        assert got == want
        st = msg.string_table
        assert (st[msg.sample_type[0].type], st[msg.sample_type[0].unit]) == tuple(ptype.split(":")[1:3])


def test_conv_twin_keeps_cpu_and_events(srv, data):
    body = (data / AGPL / "pyroscope_ebpf_v1.10conv_0ff7ffa.pb.bin").read_bytes()
    assert post(srv, body, "application/x-protobuf").status_code == 200
    req = pb.ExportProfilesServiceRequest()
    req.ParseFromString(body)
    # first principles: every samples/count sample is one 50 ms period; events are summed
    d = req.dictionary
    cpu = events = 0
    for rp in req.resource_profiles:
        for sp in rp.scope_profiles:
            for p in sp.profiles:
                n = sum(sum(s.values) if s.values else len(s.timestamps_unix_nano) for s in p.samples)
                if d.string_table[p.sample_type.type_strindex] == "samples":
                    cpu += n * p.period
                else:
                    events += n
    status, fg = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": "{}"})
    assert status == 200 and int(fg["flamegraph"]["total"]) == cpu == 500_000_000
    status, fg = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": "events:events:nanoseconds::",
                                                           "labelSelector": "{}"})
    assert status == 200 and int(fg["flamegraph"]["total"]) == events


def test_hex_link_ids_in_json_become_span_and_trace_labels(srv, data):
    body = (data / "otlp/spec_example2_link.otlp.json").read_bytes()
    assert post(srv, body, "application/json").status_code == 200
    status, vals = call_json(srv, "LabelValues", {"name": "span_id"})
    assert status == 200 and vals["names"] == ["ff01020304050607"]
    status, vals = call_json(srv, "LabelValues", {"name": "trace_id"})
    assert vals["names"] == ["1122aabbccddeeff0000000000000000"]
    # the linked sample (5 x 50 ms) is what a span profile of that span shows
    status, fg = call_json(srv, "SelectMergeSpanProfile", {"profileTypeID": CPU, "labelSelector": "{}",
                                                           "spanSelector": ["ff01020304050607"]})
    assert status == 200 and int(fg["flamegraph"]["total"]) == 5 * 50_000_000
    # resource attributes given as string-table indices resolve: service.name -> service_name
    status, vals = call_json(srv, "LabelValues", {"name": "service_name"})
    assert vals["names"] == ["my-service"]


def test_binary_and_json_twins_decode_to_the_same_profiles(data):
    bin_ = convert_request(decode_export_request((data / AGPL / V110_BIN).read_bytes()))
    js = convert_request(decode_export_request((data / AGPL / V110_JSON).read_bytes(), "application/json"))
    assert [s.labels for s in bin_] == [s.labels for s in js]
    assert [int(s.profile.values.sum()) for s in bin_] == [int(s.profile.values.sum()) for s in js]


def _request_with(mutate) -> bytes:
    req = pb.ExportProfilesServiceRequest()
    d = req.dictionary
    d.string_table.extend(["", "samples", "count", "cpu", "nanoseconds", "main", "work"])
    d.mapping_table.add()
    d.location_table.add()
    d.function_table.add()
    d.function_table.add(name_strindex=5)
    d.function_table.add(name_strindex=6)
    d.location_table.add().lines.add(function_index=1)
    d.location_table.add().lines.add(function_index=2)
    d.stack_table.add()
    d.stack_table.add(location_indices=[2, 1])
    d.attribute_table.add()
    d.link_table.add()
    p = req.resource_profiles.add().scope_profiles.add().profiles.add()
    p.sample_type.type_strindex, p.sample_type.unit_strindex = 1, 2
    p.period_type.type_strindex, p.period_type.unit_strindex = 3, 4
    p.period = 10_000_000
    p.samples.add(stack_index=1, timestamps_unix_nano=[1, 2, 3])     # timestamps only: 3 samples
    mutate(req)
    return req.SerializeToString()


def test_timestamps_only_samples_are_counted(srv):
    assert post(srv, _request_with(lambda r: None), "application/x-protobuf").status_code == 200
    status, fg = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": CPU, "labelSelector": "{}"})
    assert int(fg["flamegraph"]["total"]) == 3 * 10_000_000
    assert fg["flamegraph"]["names"] == ["total", "main", "work"]


@pytest.mark.parametrize("mutate,what", [
    (lambda r: setattr(r.resource_profiles[0].scope_profiles[0].profiles[0].samples[0], "stack_index", 99),
     "stack_index = 99"),
    (lambda r: r.dictionary.stack_table[1].location_indices.append(7), "location_indices[2] = 7"),
    (lambda r: setattr(r.dictionary.location_table[1].lines[0], "function_index", 5), "function_index = 5"),
    (lambda r: setattr(r.dictionary.function_table[1], "name_strindex", 70), "name_strindex = 70"),
    (lambda r: r.resource_profiles[0].scope_profiles[0].profiles[0].samples[0].attribute_indices.append(3),
     "attribute_indices[0] = 3"),
    (lambda r: setattr(r.resource_profiles[0].scope_profiles[0].profiles[0].samples[0], "link_index", 4),
     "link_index = 4"),
    (lambda r: setattr(r.dictionary.location_table[1], "mapping_index", 2), "mapping_index = 2"),
])
def test_every_dictionary_index_is_bounds_checked(srv, mutate, what):
    r = post(srv, _request_with(mutate), "application/x-protobuf")
    assert r.status_code == 400
    text = r.content.decode("utf-8", "replace")   # google.rpc.Status (protobuf)
    assert what in text and EXPECTED_VERSION in text
    assert srv.store.profile_types() == []


def test_unknown_fields_are_refused():
    body = _request_with(lambda r: None) + b"\xa8\x06\x01"     # field 101, varint: not in v1.10
    with pytest.raises(MalformedProfile, match="field number"):
        decode_export_request(body)


def test_content_type_and_garbage(srv):
    assert post(srv, b"{}", "text/plain").status_code == 415
    r = post(srv, b"\xff\xff\xff", "application/x-protobuf")
    assert r.status_code == 400
    r = post(srv, b"not json", "application/json")
    assert r.status_code == 400 and "message" in r.json()


def test_grpc_export(tmp_path, data):
    from profscope.wire.grpc_server import start_grpc_server
    with server(tmp_path, multitenancy=True) as srv:
        grpc_server, port = start_grpc_server(srv.app, "127.0.0.1", 0)
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                export = ch.unary_unary(
                    "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
                    request_serializer=lambda b: b, response_deserializer=pb.ExportProfilesServiceResponse.FromString)
                body = (data / AGPL / V110_BIN).read_bytes()
                with pytest.raises(grpc.RpcError) as e:      # multi-tenancy on: tenant required
                    export(body, timeout=30)
                assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
                export(body, metadata=[("x-scope-orgid", "team-a")], timeout=30)
                with pytest.raises(grpc.RpcError) as e:
                    export((data / AGPL / "pyroscope_ebpf_v1.8_85b4c07.pb.bin").read_bytes(),
                           metadata=[("x-scope-orgid", "team-a")], timeout=30)
                assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "v1.10.0" in e.value.details()
            status, fg = call_json(srv, "SelectMergeStacktraces",
                                   {"profileTypeID": CPU, "labelSelector": '{service_name="unknown_service"}'},
                                   headers={"X-Scope-OrgID": "team-a"})
            assert status == 200 and int(fg["flamegraph"]["total"]) == 500_000_000
        finally:
            grpc_server.stop(None)
