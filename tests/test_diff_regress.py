"""Evidence for the CI gate with real profiles of two versions of a real program.

``tests/fixtures/regress/main.go`` is a small CPU-bound Go benchmark; with ``-slow`` its
``main.countPrimes`` does about 60% more work (the deliberate regression). Built with
``go build`` and profiled with ``runtime/pprof``:

- the gate (``profscope diff base/ head/``, a real process) exits 1 and names main.countPrimes;
- two sets of runs of the same version pass in at least 19 of 20 comparisons;
- with one profile per side the report says that only thresholds decided.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pprof_oracle import have_go

from profscope.analysis.diff import diff
from profscope.analysis.stacks import profile_to_stackset
from profscope.formats import decode

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not have_go(), reason="needs the Go toolchain (apt-get install golang-go)")]

FIXTURE = Path(__file__).parent / "fixtures" / "regress"
N_POOL = 12      # runs of the base version: the null comparisons split them 6 against 6
N_HEAD = 8       # runs of the regressed version
SCALE = 200      # about 1.3 s of CPU per run, ~330 samples at 250 Hz


def _go_env(tmp: Path) -> dict:
    env = dict(os.environ)
    if not env.get("GOCACHE") and not env.get("HOME") and not env.get("XDG_CACHE_HOME"):
        env["GOCACHE"] = str(tmp / "gocache")
    env.setdefault("GOFLAGS", "-mod=mod")
    return env


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, list[Path]]:
    tmp = tmp_path_factory.mktemp("regress")
    src = tmp / "src"
    shutil.copytree(FIXTURE, src)
    exe = tmp / "regress"
    env = _go_env(tmp)
    subprocess.run(["go", "build", "-o", str(exe), "."], cwd=src, env=env, check=True, timeout=300,
                   capture_output=True)
    jobs = [("base", i, []) for i in range(N_POOL)] + [("head", i, ["-slow"]) for i in range(N_HEAD)]
    for side in ("base", "head"):
        (tmp / side).mkdir()

    def run(job):
        side, i, extra = job
        out = tmp / side / f"{i:02d}.pb.gz"
        subprocess.run([str(exe), "-o", str(out), "-scale", str(SCALE), *extra], check=True, timeout=120,
                       capture_output=True)
        return out
    with ThreadPoolExecutor(max_workers=2) as pool:
        paths = list(pool.map(run, jobs))
    return {"base": paths[:N_POOL], "head": paths[N_POOL:], "dir": tmp}


def _load(paths):
    return [profile_to_stackset(decode(p.read_bytes()), "cpu") for p in paths]


def test_gate_fails_naming_the_regressed_function(runs):
    tmp = runs["dir"]
    base_dir = tmp / "base8"
    base_dir.mkdir(exist_ok=True)
    for p in runs["base"][:N_HEAD]:
        shutil.copy(p, base_dir / p.name)
    out = subprocess.run([sys.executable, "-m", "profscope.cli", "diff", str(base_dir), str(tmp / "head"),
                          "--format", "json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["method"] == "mann-whitney" and report["base"]["profiles"] == N_HEAD
    names = [r["name"] for r in report["regressions"]]
    assert names and names[0] == "main.countPrimes", names
    assert "main.hashBytes" not in names and "main.matMul" not in names
    top = report["regressions"][0]
    assert top["q_value"] <= 0.01 and top["delta_pct"] >= 10
    md = subprocess.run([sys.executable, "-m", "profscope.cli", "diff", str(base_dir), str(tmp / "head"),
                         "--format", "markdown"], capture_output=True, text=True, timeout=120)
    assert md.returncode == 1 and "`main.countPrimes`" in md.stdout.split("**Improvements**")[0]


def test_same_version_passes_at_least_19_of_20(runs):
    pool = _load(runs["base"])
    rng = np.random.default_rng(20240601)
    half = N_POOL // 2
    passed = 0
    flagged = []
    for _ in range(20):
        order = rng.permutation(N_POOL)
        res = diff([pool[i] for i in order[:half]], [pool[i] for i in order[half:]])
        assert res.method == "mann-whitney"
        if res.regressed:
            flagged.append([res.names[i] for i in res.regressions])
        else:
            passed += 1
    assert passed >= 19, f"false regressions: {flagged}"
    # and the same split sizes do catch the real regression
    head = _load(runs["head"])
    res = diff(pool[:half], head[:half])
    assert [res.names[i] for i in res.regressions][:1] == ["main.countPrimes"]


def test_one_profile_per_side_uses_thresholds_and_says_so(runs):
    base, head = runs["base"][0], runs["head"][0]
    out = subprocess.run([sys.executable, "-m", "profscope.cli", "diff", str(base), str(head),
                          "--format", "markdown"], capture_output=True, text=True, timeout=120)
    assert "noise cannot be estimated" in out.stdout and "thresholds only" in out.stdout
    assert "q-value <=" not in out.stdout       # no significance claimed
    res = diff(_load([base]), _load([head]))
    assert res.method == "threshold"
    assert "main.countPrimes" in [res.names[i] for i in res.regressions]
