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
