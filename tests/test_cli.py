"""The CLI through click's runner and as real processes; exit codes 0/2/3."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from profscope.cli import cli


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "profscope.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_top_text_and_json(runner, data):
    f = str(data / "pprof/gp_sample.cpu.pb.gz")
    res = runner.invoke(cli, ["top", f, "--limit", "3"])
    assert res.exit_code == 0 and "runtime.mapiternext" in res.output
    res = runner.invoke(cli, ["top", f, "--json", "--limit", "0", "--sample-type", "samples"])
    body = json.loads(res.output)
    assert list(body) == ["sample_type", "unit", "total", "rows"]
    assert body["sample_type"] == "samples" and body["unit"] == "count"
    assert all(list(r) == ["name", "flat", "cum"] for r in body["rows"])


def test_bad_input_exits_2_without_traceback(data):
    out = run("top", str(data / "edge/bad_truncated_gzip.pb.gz"))
    assert out.returncode == 2 and "unexpected EOF" in out.stderr and "Traceback" not in out.stderr
    out = run("top", str(data / "pprof/gp_sample.cpu.pb.gz"), "--sample-type", "nope")
    assert out.returncode == 2 and "available: samples, cpu" in out.stderr
    out = run("top", "/does/not/exist.pb.gz")
    assert out.returncode == 2 and "cannot read" in out.stderr
    out = run("top", "--granularity", "bogus", "x")
    assert out.returncode == 2


def test_ingest_then_export_local_store(tmp_path, data, runner):
    d = str(tmp_path / "store")
    res = runner.invoke(cli, ["ingest", "--data-dir", d, "--service", "api", "--label", "env=ci",
                              str(data / "pprof/parca_fib_bigint.cpu.pb.gz")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "x.folded"
    res = runner.invoke(cli, ["export", "--data-dir", d, "--query", 'cpu{env="ci"}', "--format", "folded", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text().strip()
    res = runner.invoke(cli, ["export", "--data-dir", d, "--query", 'cpu{env="nope"}'])
    assert res.exit_code != 0


def test_ingest_and_export_through_a_server(live_server, data, tmp_path):
    out = run("ingest", "--server", live_server.url, "--service", "remote", str(data / "pprof/gp_sample.cpu.pb.gz"))
    assert out.returncode == 0, out.stderr
    dest = tmp_path / "exp.pb.gz"
    out = run("export", "--server", live_server.url, "--query", 'cpu{service_name="remote"}', "-o", str(dest))
    assert out.returncode == 0, out.stderr
    from profscope.formats import decode
    assert decode(dest.read_bytes()).n_samples > 0
    out = run("ingest", "--server", live_server.url, str(data / "edge/bad_empty_file.pb"))
    assert out.returncode == 2 and "empty" in out.stderr


def test_unreachable_server_is_operational_error(data):
    out = run("ingest", "--server", "http://127.0.0.1:9", str(data / "pprof/gp_sample.cpu.pb.gz"))
    assert out.returncode == 3 and "cannot reach" in out.stderr


def test_serve_starts_and_answers(tmp_path):
    import socket
    import time
    import urllib.request
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port),
                             "--data-dir", str(tmp_path / "d")], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    assert json.loads(r.read()) == {"status": "ok"}
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start: " + proc.stderr.read())
        assert (tmp_path / "d" / "profscope.duckdb").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
