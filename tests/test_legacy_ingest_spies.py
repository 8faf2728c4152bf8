"""Pyroscope's legacy ``/ingest`` details: function names of scripting-language spies (pyspy,
rbspy) and cumulative ``prev_profile`` uploads. Oracle: go tool pprof on a file whose function
names were rewritten here, straight in the protobuf, by Pyroscope's rule."""
from __future__ import annotations

import gzip
import io

import pytest

from profscope.wire.proto.google.v1 import profile_pb2
from tests.pprof_oracle import have_go, pprof_top

pytestmark = pytest.mark.skipif(not have_go(), reason="go tool pprof is the oracle")

CPU_FILE = "pprof/gp_sample.cpu.pb.gz"


def _pyroscope_names(raw: bytes) -> bytes:
    """The profile with every function named ``<file>:-1 - <name>`` (Pyroscope's rewrite)."""
    msg = profile_pb2.Profile()
    msg.ParseFromString(gzip.decompress(raw))
    st = msg.string_table
    for fn in msg.function:
        st.append(f"{st[fn.filename]}:-1 - {st[fn.name]}")
        fn.name = len(st) - 1
    return gzip.compress(msg.SerializeToString())


def _top(client, service: str) -> dict:
    r = client.get("/api/v1/top", query_string={"query": f'cpu{{service_name="{service}"}}', "limit": 0})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


@pytest.mark.parametrize("spy,rewritten", [("pyspy", True), ("rbspy", True), ("gospy", False)])
def test_scripting_spy_function_names_equal_pyroscope(client, data, tmp_path, spy, rewritten):
    raw = (data / CPU_FILE).read_bytes()
    expected_file = tmp_path / "expected.pb.gz"
    expected_file.write_bytes(_pyroscope_names(raw) if rewritten else raw)
    oracle = pprof_top(str(expected_file), "cpu", "nanoseconds")
    r = client.post("/ingest", query_string={"name": "app", "spyName": spy, "format": "pprof"}, data=raw)
    assert r.status_code == 200, r.get_data(as_text=True)
    mine = _top(client, "app")
    assert mine["rows"] == oracle["rows"] and mine["total"] == oracle["total"]
    assert all((":-1 - " in row["name"]) == rewritten for row in mine["rows"])


def test_prev_profile_is_refused_like_pyroscope(client, data):
    raw = (data / CPU_FILE).read_bytes()
    r = client.post("/ingest", query_string={"name": "app", "spyName": "gospy"},
                    data={"profile": (io.BytesIO(raw), "profile.pprof"),
                          "prev_profile": (io.BytesIO(raw), "profile.pprof")},
                    content_type="multipart/form-data")
    assert r.status_code == 422
    msg = r.get_json()["error"]["message"]
    assert "prev_profile" in msg and "pyroscope-go" in msg
    assert client.get("/api/v1/profile_types").get_json()["profile_types"] == []


def test_multipart_boundary_keeps_its_case(client, data):
    """Werkzeug's boundaries have capitals; the boundary is case-sensitive."""
    raw = (data / CPU_FILE).read_bytes()
    r = client.post("/ingest", query_string={"name": "app", "spyName": "gospy"},
                    data={"profile": (io.BytesIO(raw), "profile.pprof")}, content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    oracle = pprof_top(str(data / CPU_FILE), "cpu", "nanoseconds")
    assert _top(client, "app")["total"] == oracle["total"]


DOTNET_FILE = "pyroscope-agpl/pyro_dotnet_fnid0_uncompressed.pb"


def _pyroscope_dotnet_fix(raw: bytes) -> bytes:
    """The .NET agent's profile repaired by Pyroscope's rule, written here with the published
    classes: function ``i`` takes location ``i``'s id, ``-`` in sample type names becomes ``_``."""
    msg = profile_pb2.Profile()
    msg.ParseFromString(raw)
    assert len(msg.function) == len(msg.location) and not any(f.id for f in msg.function)
    for fn, loc in zip(msg.function, msg.location):
        fn.id = loc.id
    for vt in msg.sample_type:
        msg.string_table[vt.type] = msg.string_table[vt.type].replace("-", "_")
    return msg.SerializeToString()


def test_dotnet_uploads_are_repaired_like_pyroscope(client, data, tmp_path):
    """The .NET agent's pprof (every function id 0, sample types like ``alloc-size``) is refused
    as go tool pprof refuses it, unless it comes from ``dotnetspy``: then it is stored as
    Pyroscope repairs it, with every sample type's top table equal to go tool pprof's on the
    repaired file."""
    raw = (data / DOTNET_FILE).read_bytes()
    r = client.post("/ingest", query_string={"name": "plain", "spyName": "gospy", "format": "pprof"}, data=raw)
    assert r.status_code == 422 and "reserved ID=0" in r.get_json()["error"]["message"]
    r = client.post("/ingest", query_string={"name": "dotnet", "spyName": "dotnetspy", "format": "pprof"},
                    data=raw)
    assert r.status_code == 200, r.get_data(as_text=True)
    fixed = tmp_path / "fixed.pb"
    fixed.write_bytes(_pyroscope_dotnet_fix(raw))
    types = client.get("/api/v1/profile_types").get_json()["profile_types"]
    assert {t.split(":")[1] for t in types} == {"cpu", "exception", "alloc_samples", "alloc_size",
                                                "lock_count", "lock_time"}
    for st, unit in (("cpu", "nanoseconds"), ("alloc_size", "bytes"), ("lock_count", "count")):
        oracle = pprof_top(str(fixed), st, unit)
        r = client.get("/api/v1/top", query_string={"query": f'{st}{{service_name="dotnet"}}', "limit": 0})
        assert r.status_code == 200, r.get_json()
        mine = r.get_json()
        assert mine["total"] == oracle["total"] and mine["rows"] == oracle["rows"], st


def test_an_unknown_spy_with_dotnet_sample_type_config_is_repaired(client, data):
    """Pyroscope also repairs uploads of spy ``unknown`` whose sample_type_config names
    ``inuse-space`` (older .NET agents)."""
    raw = (data / DOTNET_FILE).read_bytes()
    config = b'{"inuse-space": {"units": "bytes"}, "cpu": {"units": "samples"}}'
    r = client.post("/ingest", query_string={"name": "old-dotnet", "spyName": "unknown"},
                    data={"profile": (io.BytesIO(raw), "profile.pprof"),
                          "sample_type_config": (io.BytesIO(config), "config.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 200, r.get_data(as_text=True)
    r = client.post("/ingest", query_string={"name": "other", "spyName": "unknown"},
                    data={"profile": (io.BytesIO(raw), "profile.pprof"),
                          "sample_type_config": (io.BytesIO(b'{"cpu": {"units": "samples"}}'), "config.json")},
                    content_type="multipart/form-data")
    assert r.status_code == 422
