"""The diff engine agrees with ``go tool pprof -diff_base`` and ``-base`` (the oracle)."""
from __future__ import annotations

import numpy as np
import pytest

from profscope.analysis.diff import diff
from profscope.analysis.stacks import profile_to_stackset
from profscope.formats import decode
from tests.pprof_oracle import have_go, pprof_top

pytestmark = pytest.mark.skipif(not have_go(), reason="go tool pprof is the oracle (apt-get install golang-go)")

TYPES = ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]


def _load(path, st):
    with open(path, "rb") as f:
        return profile_to_stackset(decode(f.read()), st)


@pytest.fixture(scope="module")
def heap_pair(data):
    return str(data / "pprof" / "parca_many_heap_t0.pb.gz"), str(data / "pprof" / "parca_many_heap_t9.pb.gz")


@pytest.mark.parametrize("mode", ["-diff_base", "-base"])
@pytest.mark.parametrize("st", TYPES)
def test_matches_pprof(heap_pair, st, mode):
    t0, t9 = heap_pair
    # -unit=B prints exact integers for every type (counts get a B suffix the helper strips)
    oracle = pprof_top(t9, st, "bytes", extra=[f"{mode}={t0}"])
    res = diff([_load(t0, st)], [_load(t9, st)], normalize="none")
    ours = {n: (int(res.flat[i, 1] - res.flat[i, 0]), int(res.cum[i, 1] - res.cum[i, 0]))
            for i, n in enumerate(res.names)}
    assert oracle["rows"], "pprof printed no rows"
    for row in oracle["rows"]:
        assert ours.get(row["name"], (0, 0)) == (row["flat"], row["cum"]), row["name"]
    printed = {r["name"] for r in oracle["rows"]}
    extra = [n for n, v in ours.items() if v != (0, 0) and n not in printed]
    assert not extra, f"non-zero changes pprof does not show: {extra[:5]}"
    if mode == "-diff_base":
        # pprof's percentages are against the base total
        assert res.base.total == oracle["total"]
        j = res.to_json(limit=0)
        by_name = {f["name"]: f for f in j["functions"]}
        for row in oracle["rows"][:5]:
            f = by_name[row["name"]]
            assert f["delta_of_base_total_pct"] == pytest.approx(100.0 * row["flat"] / oracle["total"])


def test_diff_of_itself_is_zero(heap_pair):
    t0, _ = heap_pair
    ss = _load(t0, "alloc_space")
    res = diff([ss], [ss], normalize="none")
    assert not (res.flat[:, 1] - res.flat[:, 0]).any() and not (res.cum[:, 1] - res.cum[:, 0]).any()
    assert len(res.regressions) == 0 and len(res.improvements) == 0
    t = res.tree()
    t.self_check()
    assert np.array_equal(t.total[:, 0], t.total[:, 1])
