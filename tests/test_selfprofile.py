"""Self-profiling: the real pyroscope-io SDK, started by profscope, pushing into a real server."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from profscope.capture import selfprofile

ROOT = Path(__file__).resolve().parent.parent

# A process that profiles itself for ~2.5 s with one dominant function, then flushes.
SELF_PROFILED = textwrap.dedent("""\
    import sys, time
    from profscope.capture.selfprofile import (is_self_profiling, start_self_profiling,
                                               stop_self_profiling)


    def selfprofile_hot():
        s = 0
        for i in range(20000):
            s += i * i
        return s


    print("pid", __import__("os").getpid(), flush=True)
    start_self_profiling(sys.argv[1], {"test": "selfprofile"}, upload_interval=1)
    assert is_self_profiling()
    try:
        start_self_profiling(sys.argv[1])
    except Exception as e:
        print("second start refused:", e, flush=True)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        selfprofile_hot()
    assert stop_self_profiling() is True
    assert stop_self_profiling() is False
    """)


@pytest.fixture
def server(tmp_path):
    from conftest import serve_process
    with serve_process(tmp_path / "data") as url:
        yield url


def _push_supported(url: str) -> bool:
    req = urllib.request.Request(url + "/push.v1.PusherService/Push", data=b"", method="POST",
                                 headers={"Content-Type": "application/proto"})
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code != 404
    return True


def _top(url: str, query: str) -> dict:
    q = urllib.parse.urlencode({"query": query})
    try:
        return json.loads(urllib.request.urlopen(f"{url}/api/v1/top?{q}", timeout=30).read())
    except urllib.error.HTTPError:
        return {"rows": []}


def test_self_profile_lands_in_the_store(server, tmp_path):
    if not _push_supported(server):
        pytest.skip("this build's server has no Pyroscope push endpoint (/push.v1.PusherService/Push)")
    script = tmp_path / "selfprof.py"
    script.write_text(SELF_PROFILED)
    r = subprocess.run([sys.executable, str(script), server], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr
    assert "second start refused: self-profiling is already running" in r.stdout
    query = 'cpu{service_name="profscope", test="selfprofile"}'
    deadline = time.monotonic() + 20
    body = _top(server, query)
    while not body.get("rows") and time.monotonic() < deadline:
        time.sleep(0.5)
        body = _top(server, query)
    assert body["rows"], f"no self-profile stored under {query}"
    assert body["rows"][0]["name"] == "selfprofile_hot"
    q = urllib.parse.urlencode({"query": 'cpu{service_name="profscope"}'})
    pids = json.loads(urllib.request.urlopen(f"{server}/api/v1/labels/pid/values?{q}", timeout=30).read())
    assert r.stdout.split()[1] in pids["values"]   # the profiled process's own pid tag


def test_tags_and_stop_without_start():
    tags = selfprofile.self_profile_tags({"region": "eu"})
    assert tags["pid"] == str(os.getpid()) and tags["hostname"] == socket.gethostname()
    assert tags["region"] == "eu"
    assert selfprofile.stop_self_profiling() is False
    assert selfprofile.SERVICE_NAME == "profscope"


def test_serve_self_profile_flag(tmp_path, data):
    """`profscope serve --self-profile`: the server's own hot paths show up in its own store."""
    from conftest import serve_process
    with serve_process(tmp_path / "d", env={"PROFSCOPE_SELF_PROFILE_UPLOAD_INTERVAL": "1"},
                       extra=("--self-profile",)) as url:
        body = (data / "pprof/gp_large.cpu.pb.gz").read_bytes()
        found = {"rows": []}
        deadline = time.monotonic() + 40
        while not found["rows"] and time.monotonic() < deadline:
            # give the server work to sample, then look for its own profile
            urllib.request.urlopen(urllib.request.Request(url + "/api/v1/ingest?service=load", data=body,
                                                          method="POST"), timeout=30).read()
            found = _top(url, 'cpu{service_name="profscope"}')
        assert found["rows"], "the server's own profile never arrived"
        names = {r["name"] for r in found["rows"]}
        assert names & {"decode_pprof", "prepare", "_stage", "ingest", "decode"}, sorted(names)[:20]
