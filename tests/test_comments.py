"""pprof ``comment`` strings: stored per profile, listed by the native API, written back (without
repeats, in order) into the pprof export of a selection. Oracle: ``go tool pprof -comments``."""
from __future__ import annotations

import subprocess

import pytest
import requests

from profscope.formats import decode
from profscope.formats.pprof_write import encode_profile
from profscope.store import Store
from tests.pprof_oracle import have_go

pytestmark = pytest.mark.skipif(not have_go(), reason="go tool pprof is the oracle")

WITH_COMMENT = "edge/ok_doc_url_comment.pb.gz"                      # "a comment"
ASYNC = "pyroscope-agpl/pyro_java_async_profiler.cpu.pb.gz"         # "async-profiler"


def pprof_comments(path) -> list[str]:
    out = subprocess.run(["go", "tool", "pprof", "-comments", str(path)], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"})
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def upload(srv, data: bytes, **params) -> dict:
    r = requests.post(srv.url + "/api/v1/ingest", params=params, data=data, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def test_comments_listed_and_exported_deduplicated(live_server, data, tmp_path):
    files = [data / WITH_COMMENT, data / ASYNC]
    originals = [pprof_comments(f) for f in files]
    assert all(originals), "the oracle files carry comments"
    # a third profile, built with our own encoder: a repeat of the first file's comment between
    # two new ones, and one repeated within the file
    p = decode((data / WITH_COMMENT).read_bytes())
    p.comments = ["built here", originals[0][0], "built here", "last"]
    built = tmp_path / "built.pb.gz"
    built.write_bytes(encode_profile(p))
    assert decode(built.read_bytes()).comments == p.comments
    assert pprof_comments(built) == list(dict.fromkeys(p.comments))   # pprof itself shows no repeats
    for i, f in enumerate(files + [built]):
        upload(live_server, f.read_bytes(), service=f"svc{i}")

    listed = requests.get(live_server.url + "/api/v1/profiles", params={"query": "cpu"}, timeout=30).json()
    by_id = {r["id"]: r["comments"] for r in listed["profiles"]}
    assert [by_id[i] for i in sorted(by_id)] == originals + [p.comments]

    r = requests.get(live_server.url + "/api/v1/export", params={"query": "cpu", "format": "pprof"}, timeout=30)
    assert r.status_code == 200
    out = tmp_path / "export.pb.gz"
    out.write_bytes(r.content)
    want = list(dict.fromkeys(c for cs in originals + [p.comments] for c in cs))
    assert decode(r.content).comments == want          # the file itself, not only pprof's view of it
    assert pprof_comments(out) == want
    raw = subprocess.run(["go", "tool", "pprof", "-raw", str(out)], capture_output=True, text=True, timeout=60)
    assert [ln[len("Comment: "):] for ln in raw.stdout.splitlines() if ln.startswith("Comment: ")] == want

    # a selection of one profile carries only its own comments
    one = requests.get(live_server.url + "/api/v1/export",
                       params={"query": 'cpu{service_name="svc2"}', "format": "pprof"}, timeout=30)
    single = tmp_path / "one.pb.gz"
    single.write_bytes(one.content)
    assert decode(one.content).comments == pprof_comments(single) == list(dict.fromkeys(p.comments))


def test_store_opened_before_migration_004_keeps_working(tmp_path, data):
    d = str(tmp_path / "store")
    s = Store(d)
    s.ingest(decode((data / WITH_COMMENT).read_bytes()), {"service_name": "old"})
    # make it look like a store written before migration 004
    s.db.con.execute("ALTER TABLE profiles DROP COLUMN comments")
    s.db.con.execute("DELETE FROM schema_migrations WHERE version = 4")
    s.close()
    s = Store(d)
    try:
        assert 4 in s.db.applied
        from profscope.query.selector import Selection
        assert [r["comments"] for r in s.list_profiles(Selection.from_query("cpu"))] == [[]]
        assert s.select(Selection.from_query("cpu")).comments == []
        s.ingest(decode((data / WITH_COMMENT).read_bytes()), {"service_name": "new"})
        assert s.select(Selection.from_query('cpu{service_name="new"}')).comments == pprof_comments(data / WITH_COMMENT)
    finally:
        s.close()
