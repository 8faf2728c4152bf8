"""End to end: a real Python service (tests/fixtures/traced_app.py) traced with the
OpenTelemetry SDK and profiled with pyroscope-io + pyroscope-otel, both sending to a real
profscope server. Slow requests' span profiles must show the slow function; fast ones not."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
APP = Path(__file__).resolve().parent / "fixtures" / "traced_app.py"
N_SLOW, N_FAST = 3, 4


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _has_push_endpoint(base: str) -> bool:
    req = urllib.request.Request(f"{base}/push.v1.PusherService/Push", data=b"", method="POST",
                                 headers={"Content-Type": "application/proto"})
    try:
        urllib.request.urlopen(req, timeout=10).close()
    except urllib.error.HTTPError as e:
        return e.code != 404
    return True


@pytest.fixture
def server(live_server):
    pytest.importorskip("opentelemetry.sdk", reason="test extra: opentelemetry-sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http",
                        reason="test extra: opentelemetry-exporter-otlp-proto-http")
    pytest.importorskip("pyroscope.otel", reason="test extra: pyroscope-otel")
    return live_server.url


def test_slow_requests_show_slow_function(server, tmp_path):
    if not _has_push_endpoint(server):
        pytest.skip("the Pyroscope push endpoint /push.v1.PusherService/Push is not in this build "
                    "(it comes with the Pyroscope wire API, branch wire)")
    port_file = tmp_path / "port"
    proc = subprocess.Popen([sys.executable, str(APP), server, str(port_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env={**os.environ, "OTEL_SDK_DISABLED": "false"})
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert proc.poll() is None, proc.stdout.read().decode(errors="replace")
            assert time.time() < deadline, "traced app did not start"
            time.sleep(0.1)
        app = f"http://127.0.0.1:{port_file.read_text()}"
        slow = [_get(f"{app}/slow") for _ in range(N_SLOW)]
        fast = [_get(f"{app}/fast") for _ in range(N_FAST)]
        _get(f"{app}/shutdown")
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, out.decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # spans (root + "work" per request) and profiles arrive (ingest may be queued server-side)
    deadline = time.time() + 30
    while True:
        spans = _get(f"{server}/api/v1/traces/spans?service=traced-app&limit=1000")["spans"]
        last = _get(f"{server}/api/v1/traces/top?span_id={slow[-1]['span_id']}")["total"]
        if (len(spans) >= 2 * (N_SLOW + N_FAST) and last > 0) or time.time() > deadline:
            break
        time.sleep(0.2)
    assert len(spans) == 2 * (N_SLOW + N_FAST)
    roots = {s["span_id"]: s for s in spans if s["parent_span_id"] is None}
    assert {r["span_id"] for r in slow + fast} == set(roots)
    assert all(roots[r["span_id"]]["attributes"]["pyroscope.profile.id"] == r["span_id"] for r in slow + fast)

    def top(qs: str) -> dict:
        body = _get(f"{server}/api/v1/traces/top?{qs}&limit=0")
        return {row["name"]: row["cum"] for row in body["rows"]} | {"__total": body["total"],
                                                                    "__approx": body["join"]["approximate"]}

    for r in slow:
        t = top(f"span_id={r['span_id']}")
        assert t.get("slow_function", 0) >= 0.5 * t["__total"] > 0, t
        assert "fast_function" not in t and not t["__approx"]
    fast_total = 0
    for r in fast:
        t = top(f"span_id={r['span_id']}")
        assert "slow_function" not in t, t
        fast_total += t.get("fast_function", 0)
    assert fast_total > 0                                  # fast requests were sampled, just not in slow code
    # a trace is the same as its root span here (only the root is tagged)
    assert top(f"trace_id={slow[0]['trace_id']}")["__total"] == top(f"span_id={slow[0]['span_id']}")["__total"]
    # span query: requests slower than 400 ms vs faster than 300 ms
    slow_q = top("service=traced-app&span_name=GET%20/slow&min_duration=400ms")
    assert slow_q["slow_function"] > 0 and "fast_function" not in slow_q
    fast_q = top("service=traced-app&attr=http.route=/fast&max_duration=300ms")
    assert "slow_function" not in fast_q and fast_q["fast_function"] > 0
    # the untagged child span "work" of a slow request: approximated by its local root
    work = next(s for s in spans if s["name"] == "work" and s["parent_span_id"] == slow[0]["span_id"])
    t = top(f"span_id={work['span_id']}")
    assert t["__approx"] and t.get("slow_function", 0) > 0
    # reverse direction: the spans that spent most in slow_function are slow requests
    ex = _get(f"{server}/api/v1/traces/exemplars?function=slow_function&limit=10")
    assert {s["span_id"] for s in ex["spans"]} <= {r["span_id"] for r in slow} and ex["spans"]
    assert all(s["name"] == "GET /slow" for s in ex["spans"])
    # per-span table of a slow trace: the root holds the samples, the child is counted inside it
    tab = _get(f"{server}/api/v1/traces/{slow[0]['trace_id']}/spans")
    assert [r["name"] for r in tab["spans"]] == ["GET /slow", "work"]
    assert tab["spans"][0]["total"] == tab["total"] > 0 and tab["notes"]
