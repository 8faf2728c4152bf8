"""Tag filters on stored selections (``tagfocus`` / ``tagignore`` of the native API) follow go tool
pprof's ``-tagfocus`` / ``-tagignore``: numeric ranges with units, key-less filters, regex lists.
Oracle: ``go tool pprof -top`` on the very file that was ingested into a real store."""
from __future__ import annotations

import numpy as np
import pytest

from profscope.formats import decode
from profscope.formats.pprof_write import encode_profile
from profscope.model import Label
from tests.pprof_oracle import have_go, pprof_top

pytestmark = pytest.mark.skipif(not have_go(), reason="go tool pprof is the oracle")

HEAP = "pprof/parca_alloc_objects.heap.pb.gz"   # numeric label "bytes" without a unit


def _top(client, query: str, **params) -> dict:
    r = client.get("/api/v1/top", query_string={"query": query, "limit": 0, **params})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def _ingest(client, data: bytes, service: str) -> None:
    r = client.post("/api/v1/ingest", query_string={"service": service}, data=data)
    assert r.status_code == 201, r.get_json()


def _same(mine: dict, oracle: dict) -> None:
    assert mine["rows"] == oracle["rows"]
    assert mine["total"] == oracle["total"]


@pytest.mark.parametrize("flt", ["bytes=1kb:", "bytes=:512b", "bytes=16b", "bytes=1kb:4kb", "bytes=2kb:1mb",
                                 "1kb:", "bytes=1024:", "bytes=1:2kb"])
def test_numeric_ranges_equal_pprof(client, data, flt):
    f = data / HEAP
    _ingest(client, f.read_bytes(), "heap")
    for st, unit in (("alloc_space", "bytes"), ("inuse_objects", "count")):
        q = f'{st}{{service_name="heap"}}'
        for param, flag in (("tagfocus", "-tagfocus"), ("tagignore", "-tagignore")):
            oracle = pprof_top(str(f), st, unit, [f"{flag}={flt}"])
            _same(_top(client, q, **{param: flt}), oracle)


def _labelled(data, tmp_path):
    """gp_sample.cpu with labels of every kind, assigned per sample: a numeric label with a time
    unit, one with a unit pprof infers (request -> bytes), string labels, and none."""
    p = decode((data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    sets = [()]
    for i in range(6):
        sets.append((Label("latency", num=(i + 1) * 700_000, unit="nanoseconds", is_num=True),
                     Label("request", num=512 << i, is_num=True),
                     Label("route", "/api/" + ("users" if i % 2 else "orders")),
                     Label("tier", "gold" if i < 3 else "free")))
    p.label_sets = sets
    p.sample_labels = (np.arange(p.n_samples) % len(sets)).astype(np.int32)
    path = tmp_path / "labelled.pb.gz"
    path.write_bytes(encode_profile(p))
    return path


@pytest.mark.parametrize("focus,ignore", [
    ("latency=1ms:", None), ("latency=:2ms", None), ("latency=1400us", None), ("latency=1ms:3ms", "route=orders"),
    ("request=1kb:8kb", None), ("request=2048", None), ("2kb:", None), ("1ms:", None),
    ("route=users,orders", "tier=gold"), ("route:/api/users", None), ("tier=^g", None), ("latency=700000", None),
    (None, "request=:1kb"), ("nolabel=x", None),
])
def test_units_keyless_and_regex_lists_equal_pprof(client, data, tmp_path, focus, ignore):
    path = _labelled(data, tmp_path)
    _ingest(client, path.read_bytes(), "lbl")
    flags, params = [], {}
    if focus:
        flags.append(f"-tagfocus={focus}")
        params["tagfocus"] = focus
    if ignore:
        flags.append(f"-tagignore={ignore}")
        params["tagignore"] = ignore
    oracle = pprof_top(str(path), "cpu", "nanoseconds", flags)
    mine = _top(client, 'cpu{service_name="lbl"}', **params)
    _same(mine, oracle)
    # the flame graph of the same selection holds the same values
    fg = client.get("/api/v1/flamegraph", query_string={"query": 'cpu{service_name="lbl"}', **params}).get_json()
    assert fg["flamegraph"]["total"] == sum(r["flat"] for r in oracle["rows"])
    assert fg["total"] == oracle["total"]


def test_label_matchers_and_tag_filters_combine(client, data, tmp_path):
    """A sample-label matcher narrows the selection (and its total); a tag filter then filters
    within it, keeping that total."""
    path = _labelled(data, tmp_path)
    _ingest(client, path.read_bytes(), "lbl")
    narrowed = _top(client, 'cpu{service_name="lbl", tier="gold"}')
    both = _top(client, 'cpu{service_name="lbl", tier="gold"}', tagfocus="latency=1ms:")
    only_tag = pprof_top(str(path), "cpu", "nanoseconds", ["-tagfocus=latency=1ms:", "-tagignore=tier=free"])
    assert both["total"] == narrowed["total"]
    assert both["rows"] == only_tag["rows"]


def test_bad_tag_filter_is_a_clear_400(client, data):
    _ingest(client, (data / HEAP).read_bytes(), "heap")
    r = client.get("/api/v1/top", query_string={"query": "alloc_space", "tagfocus": "bytes=(unclosed"})
    assert r.status_code == 400
    assert "bad regex" in r.get_json()["error"]["message"]
