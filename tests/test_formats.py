"""Folded stacks and speedscope JSON decode into the same canonical model; the format is sniffed."""
from __future__ import annotations

import gzip
import json

import pytest

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.top import top_table
from profscope.errors import BadInput
from profscope.formats import decode, detect_format
from profscope.formats.exporters import to_folded, to_speedscope


def _folded_expectation(text: str) -> tuple[int, dict[str, int]]:
    """Independent reading of a folded file: total count and leaf counts."""
    total, leaf = 0, {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "//")) or " " not in line:
            continue
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        name = stack.split(";")[-1].split(" (")[0]
        leaf[name] = leaf.get(name, 0) + int(n)
    return total, leaf


@pytest.mark.parametrize("name", ["collapsed_recursion.txt", "collapsed_simple_with_invalids.txt",
                                  "pyspy_raw_collapsed.txt", "pyspy_raw_threads_idle_gil.txt"])
def test_folded_totals_and_flat(data, name):
    raw = (data / "other_formats" / name).read_bytes()
    assert detect_format(raw) == "folded"
    p = decode(raw)
    total, leaf = _folded_expectation(raw.decode())
    t = top_table(profile_to_stackset(p))
    assert t.total == total
    assert {r["name"]: r["flat"] for r in t.rows() if r["flat"]} == leaf


def test_folded_reports_invalid_lines(data):
    p = decode((data / "other_formats/collapsed_simple_with_invalids.txt").read_bytes())
    assert any("invalid line" in w for w in p.warnings)


def test_pyspy_thread_roots_become_labels(data):
    p = decode((data / "other_formats/pyspy_raw_threads_idle_gil.txt").read_bytes())
    keys = {lb.key for ls in p.label_sets for lb in ls}
    assert {"thread_id", "thread_name"} <= keys
    assert not any(n.startswith("thread (") for n in p.frames.name)
    i = p.frames.name.index("fib")
    assert p.frames.file[i] == "work.py" and p.frames.line[i] == 2


def test_folded_with_sample_rate_has_cpu_nanoseconds():
    p = decode(b"a;b 3\na;c 2\nd 5\n", "folded", sample_rate=100)
    ss = profile_to_stackset(p, "cpu")
    assert ss.sample_type.unit == "nanoseconds" and ss.total == 10 * 10_000_000


def test_folded_with_no_valid_line_is_refused():
    with pytest.raises(BadInput, match="no valid"):
        decode(b"just words\nmore words\n", "folded")


def test_speedscope_sampled_pyspy(data):
    doc = json.loads((data / "other_formats/pyspy.speedscope.json").read_text())
    p = decode((data / "other_formats/pyspy.speedscope.json").read_bytes())
    ss = profile_to_stackset(p, "cpu")
    expected = sum(round(w * 1e9) for prof in doc["profiles"] for w in prof["weights"])
    assert ss.total == expected
    n = sum(len(prof["samples"]) for prof in doc["profiles"])
    assert profile_to_stackset(p, "samples").total == n


def test_speedscope_two_sampled(data):
    raw = (data / "other_formats/speedscope_two_sampled.speedscope.json").read_bytes()
    doc = json.loads(raw)
    p = decode(raw)
    assert {ls[0].str for ls in p.label_sets[1:]} == {prof["name"] for prof in doc["profiles"]}
    assert profile_to_stackset(p, "cpu").total == sum(round(w * 1e9) for prof in doc["profiles"] for w in prof["weights"])


def test_speedscope_evented(data):
    raw = (data / "other_formats/speedscope_evented_simple.speedscope.json").read_bytes()
    doc = json.loads(raw)
    prof = doc["profiles"][0]
    p = decode(raw)
    ss = profile_to_stackset(p)
    # every instant between the first open and the last close is on some stack
    events = prof["events"]
    assert ss.total == events[-1]["at"] - events[0]["at"]
    assert top_table(ss).rows()[0]["cum"] == ss.total


def test_gzipped_folded_is_sniffed():
    assert decode(gzip.compress(b"x;y 2\n")).source_format == "folded"


def test_chrome_cpuprofile_is_refused_clearly(data):
    with pytest.raises(BadInput, match="cpuprofile"):
        decode((data / "other_formats/chrome_simple.cpuprofile").read_bytes())


def test_exports_round_trip(data):
    p = decode((data / "pprof/gp_sample.cpu.pb.gz").read_bytes())
    ss = profile_to_stackset(p, "cpu")
    again = decode(to_folded(ss).encode(), "folded")
    assert top_table(profile_to_stackset(again, "samples")).rows() == top_table(ss).rows()
    sp = decode(json.dumps(to_speedscope(ss)).encode())
    assert profile_to_stackset(sp, "cpu").total == ss.total
