"""Bad input is refused with a message that names the problem, nothing is stored, and the server
keeps serving. Verdicts come from ../shared/data/edge/EXPECTED.txt (go tool pprof's)."""
from __future__ import annotations

import gzip
import re

import pytest
import requests

from profscope.errors import LimitExceeded, MalformedProfile, UnsupportedFormat
from profscope.formats import decode
from profscope.limits import Limits

# what our message must mention for each file go tool pprof rejects
EXPECTED_WORDS = {
    "bad_concatenated.pb": "concatenated",
    "bad_duplicate_location_id.pb.gz": "duplicate location id",
    "bad_empty_file.pb": "empty",
    "bad_line_missing_function.pb.gz": "nil function",
    "bad_location_id_0_ref.pb.gz": "nil location",
    "bad_missing_location_ref.pb.gz": "nil location",
    "bad_string_index_out_of_range.pb.gz": "out of range",
    "bad_string_table0_nonempty.pb.gz": "string_table[0]",
    "bad_truncated_gzip.pb.gz": "unexpected EOF",
    "bad_value_count_mismatch.pb.gz": "mismatch",
}


def rejected_by_pprof(data) -> list[str]:
    text = (data / "edge" / "EXPECTED.txt").read_text()
    return re.findall(r"^=== (\S+)\s+exit=1", text, re.M)


def test_expected_file_lists_every_bad_file(data):
    assert sorted(rejected_by_pprof(data)) == sorted(EXPECTED_WORDS)


@pytest.mark.parametrize("name", sorted(EXPECTED_WORDS))
def test_pprof_rejects_are_rejected_with_a_named_problem(data, name):
    with pytest.raises(MalformedProfile) as ei:
        decode((data / "edge" / name).read_bytes())
    assert EXPECTED_WORDS[name] in ei.value.message


def test_reserved_function_id_is_rejected_like_pprof(data):
    with pytest.raises(MalformedProfile, match="reserved ID=0"):
        decode((data / "pyroscope-agpl/pyro_dotnet_fnid0_uncompressed.pb").read_bytes())


@pytest.mark.parametrize("name", ["gp_legacy_cppbench.heap.txt", "gp_legacy_go.crc32.cpu.bin"])
def test_legacy_profiles_are_unsupported(data, name):
    with pytest.raises(UnsupportedFormat, match="unsupported format"):
        decode((data / "edge" / name).read_bytes())


def test_decompression_bomb_stops_at_the_limit():
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))
    with pytest.raises(LimitExceeded, match="max_decompressed_bytes=1048576"):
        decode(bomb, limits=Limits(max_decompressed_bytes=1024 * 1024))


def test_garbage_is_unsupported():
    with pytest.raises(UnsupportedFormat):
        decode(b"\xff\xfe\x00garbage" * 10)


@pytest.mark.parametrize("name", sorted(EXPECTED_WORDS) + ["gp_legacy_cppbench.heap.txt"])
def test_http_ingest_refuses_and_stores_nothing(live_server, data, name):
    body = (data / "edge" / name).read_bytes()
    r = requests.post(live_server.url + "/api/v1/ingest?service=edge", data=body, timeout=30)
    assert 400 <= r.status_code < 500
    err = r.json()["error"]
    assert err["kind"] in ("malformed_profile", "unsupported_format", "bad_input")
    assert err["message"]
    assert live_server.store.stats()["profiles"] == 0
    # and the server keeps serving
    ok = requests.post(live_server.url + "/api/v1/ingest?service=ok",
                       data=(data / "edge/ok_baseline.pb.gz").read_bytes(), timeout=30)
    assert ok.status_code == 201


def test_body_over_limit_gets_413(tmp_path):
    from profscope.api import create_app
    app = create_app({"data_dir": str(tmp_path), "limits": {"max_body_bytes": 1000}})
    r = app.test_client().post("/api/v1/ingest", data=b"x" * 5000)
    assert r.status_code == 413
    assert "max_body_bytes=1000" in r.json["error"]["message"]


def test_label_limits_refuse_without_storing(client, data):
    body = (data / "edge/ok_baseline.pb.gz").read_bytes()
    r = client.post("/api/v1/ingest?service=a&label=" + "k=" + "v" * 3000, data=body)
    assert r.status_code == 413 and "max_label_value_len" in r.json["error"]["message"]
    r = client.post("/api/v1/ingest?label=__secret=1", data=body)
    assert r.status_code == 400 and "reserved" in r.json["error"]["message"]
    assert client.get("/api/v1/stats").json["profiles"] == 0


def test_stack_depth_limit(tmp_path, data):
    from profscope.store import Store
    p = decode((data / "pprof/gp_large.cpu.pb.gz").read_bytes())
    s = Store(str(tmp_path), Limits(max_stack_depth=10))
    with pytest.raises(LimitExceeded, match="max_stack_depth=10"):
        s.ingest(p, {"service_name": "x"})
    assert s.stats()["profiles"] == 0 and s.stats()["stacks"] == 0
    s.close()
