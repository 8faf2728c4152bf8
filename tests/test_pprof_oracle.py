"""profscope's numbers are exactly go tool pprof's: every pprof file in ../shared, every sample type,
through the real CLI (`profscope top --json --limit 0`)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import DATA, pprof_files
from pprof_oracle import have_go, pprof_top

from profscope.cli import cli
from profscope.formats import decode

pytestmark = pytest.mark.skipif(not have_go(), reason="go tool pprof (Debian golang-go) is not installed")


def _cases():
    if not DATA.is_dir():
        return []
    cases = []
    for f in pprof_files(DATA):
        p = decode(f.read_bytes())
        for st in p.sample_types:
            cases.append(pytest.param(f, st.type, st.unit, id=f"{f.name}:{st.type or 'empty'}"))
    return cases


@pytest.mark.parametrize("path,sample_type,unit", _cases())
def test_top_equals_go_tool_pprof(runner, path, sample_type, unit):
    oracle = pprof_top(str(path), sample_type or None, unit)
    args = ["top", str(path), "--limit", "0", "--json"]
    if sample_type:
        args += ["--sample-type", sample_type]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    mine = json.loads(res.output)
    assert mine["total"] == oracle["total"]
    assert mine["sample_type"] == sample_type and mine["unit"] == unit
    if any("\n" in r["name"] for r in mine["rows"]):
        # a frame name with a newline splits pprof's text rows: compare the numbers only
        assert sorted((r["flat"], r["cum"]) for r in mine["rows"]) == \
            sorted((r["flat"], r["cum"]) for r in oracle["rows"] if r["name"])
    else:
        assert mine["rows"] == oracle["rows"]


def test_merged_files_equal_pprof_merge(runner, data):
    t0, t9 = data / "pprof/parca_many_heap_t0.pb.gz", data / "pprof/parca_many_heap_t9.pb.gz"
    for st in ("alloc_space", "inuse_objects"):
        res = runner.invoke(cli, ["top", str(t0), str(t9), "--sample-type", st, "--limit", "0", "--json"])
        mine = json.loads(res.output)
        oracle = pprof_top(f"{t0}", st, "bytes" if st.endswith("space") else "count", extra=[str(t9)])
        assert mine["total"] == oracle["total"] and mine["rows"] == oracle["rows"]


@pytest.mark.parametrize("granularity,flag", [("files", "-files"), ("lines", "-lines")])
def test_granularity_equals_pprof(runner, data, granularity, flag):
    f = data / "pprof/gp_sample.cpu.pb.gz"
    oracle = pprof_top(str(f), "cpu", "nanoseconds", extra=[flag])
    res = runner.invoke(cli, ["top", str(f), "--granularity", granularity, "--limit", "0", "--json"])
    mine = json.loads(res.output)
    assert mine["rows"] == oracle["rows"] and mine["total"] == oracle["total"]


@pytest.mark.parametrize("opt,flag,value", [("--focus", "-focus", "mapassign"), ("--ignore", "-ignore", "mapassign"),
                                            ("--tagfocus", "-tagfocus", "api=query")])
def test_filters_equal_pprof(runner, data, opt, flag, value):
    f = data / ("pprof/parca_labels_api.cpu.pb.gz" if opt == "--tagfocus" else "pprof/gp_sample.cpu.pb.gz")
    oracle = pprof_top(str(f), "cpu", "nanoseconds", extra=[f"{flag}={value}"])
    res = runner.invoke(cli, ["top", str(f), opt, value, "--limit", "0", "--json"])
    mine = json.loads(res.output)
    assert mine["rows"] == oracle["rows"]
    assert mine["total"] == oracle["total"]


def test_top_as_a_real_process(data):
    f = data / "pprof/gp_large.cpu.pb.gz"
    out = subprocess.run([sys.executable, "-m", "profscope.cli", "top", str(f), "--json", "--limit", "3"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["rows"]
    assert rows == pprof_top(str(f), "cpu", "nanoseconds")["rows"][:3]
