"""``profscope serve`` as it runs in production: granian's main process and worker, on loopback."""
from __future__ import annotations

import gzip
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from conftest import ROOT, serve_process
from wire_helpers import CPU

from profscope.wire.proto.push.v1 import push_pb2


def _push(url: str, service: str, raw: bytes) -> requests.Response:
    req = push_pb2.PushRequest()
    s = req.series.add()
    for k, v in (("__name__", "process_cpu"), ("service_name", service)):
        s.labels.add(name=k, value=v)
    s.samples.add(raw_profile=raw)
    return requests.post(url + "/push.v1.PusherService/Push", data=gzip.compress(req.SerializeToString()),
                         headers={"Content-Type": "application/proto", "Content-Encoding": "gzip"}, timeout=30)


def _flamegraph(url: str, service: str) -> dict:
    """Grafana's flame graph query (SelectMergeStacktraces, JSON) for ``service``, all time."""
    r = requests.post(url + "/querier.v1.QuerierService/SelectMergeStacktraces",
                      json={"profileTypeID": CPU, "labelSelector": f'{{service_name="{service}"}}',
                            "start": "0", "end": str(int(time.time() * 1000) + 3_600_000)}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["flamegraph"]


@pytest.mark.slow
def test_sdk_pushes_to_the_server_process(tmp_path):
    """The pyroscope-io SDK pushing to a real ``profscope serve``: its function is in the flame
    graph, with totals that are whole periods (count x 10 ms)."""
    from test_wire_push import SDK_APP
    script = tmp_path / "app.py"
    script.write_text(SDK_APP)
    with serve_process(tmp_path / "d") as url:
        out = subprocess.run([sys.executable, str(script), url, "3"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        fg = _flamegraph(url, "sdk.test.app")
        total = int(fg["total"])
        assert "hot_function_for_profscope" in fg["names"]
        assert total > 0 and total % (10**9 // 100) == 0


def test_chunked_bodies_are_read_and_limited(tmp_path, data):
    """granian hands a chunked body to the app whole; over ``max_body_bytes`` it is refused with
    the app's JSON 413, and nothing is stored."""
    raw = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()
    with serve_process(tmp_path / "d", env={"PROFSCOPE_MAX_BODY_BYTES": str(len(raw) + 10)}) as url:
        sized = requests.post(url + "/api/v1/ingest?service=sized", data=raw, timeout=30)
        chunked = requests.post(url + "/api/v1/ingest?service=chunked", data=iter([raw[:1000], raw[1000:]]),
                                timeout=30)
        assert sized.status_code == chunked.status_code == 201, chunked.text
        assert chunked.json()["samples"] == sized.json()["samples"] > 0
        r = requests.post(url + "/ingest?name=legacy&format=pprof", data=iter([raw[:500], raw[500:]]), timeout=30)
        assert r.status_code == 200, r.text
        too_big = raw + b"\0" * 11
        for path in ("/api/v1/ingest?service=big", "/ingest?name=big&format=pprof"):
            r = requests.post(url + path, data=iter([too_big[:1000], too_big[1000:]]), timeout=30)
            assert r.status_code == 413 and "max_body_bytes" in r.json()["error"]["message"], r.text
        r = requests.post(url + "/push.v1.PusherService/Push", data=iter([too_big]),
                          headers={"Content-Type": "application/proto"}, timeout=30)
        assert r.status_code == 413 and "max_body_bytes" in r.json()["message"], r.text
        values = requests.get(url + "/api/v1/labels/service_name/values", timeout=30).json()["values"]
        assert sorted(values) == ["chunked", "legacy", "sized"]


def test_sigterm_stops_in_order_and_keeps_what_was_acknowledged(tmp_path, data):
    """SIGTERM to the main process: the worker closes the store and everything exits with 0; the
    acknowledged pushes are all in the file afterwards."""
    raw = (data / "pprof/gp_sample.cpu.pb.gz").read_bytes()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--no-otlp-grpc",
                             "--data-dir", str(tmp_path / "d")], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
                time.sleep(0.1)
        for i in range(5):
            assert _push(url, f"svc{i % 2}", raw).status_code == 200
        assert int(_flamegraph(url, "svc0").get("total", 0)) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        err = proc.stderr.read().decode()
        proc.stderr.close()
    assert code == 0, err
    import duckdb
    con = duckdb.connect(str(tmp_path / "d" / "profscope.duckdb"), read_only=True)   # the lock is released
    try:
        assert con.execute("SELECT count(DISTINCT source_id) FROM profiles").fetchall()[0][0] == 5
    finally:
        con.close()


def test_a_port_in_use_is_refused_with_a_message(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--no-otlp-grpc",
                              "--data-dir", str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr and "in use" in out.stderr
    assert "Traceback" not in out.stderr and "backtrace" not in out.stderr


def test_a_locked_store_ends_the_server_with_its_reason(tmp_path):
    import duckdb
    (tmp_path / "d").mkdir()
    holder = duckdb.connect(str(tmp_path / "d" / "profscope.duckdb"))
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--no-otlp-grpc",
                              "--data-dir", str(tmp_path / "d")], cwd=ROOT, capture_output=True, text=True,
                             timeout=60)
    finally:
        holder.close()
    assert out.returncode != 0
    assert "error: cannot open the store in" in out.stderr and "lock" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr

