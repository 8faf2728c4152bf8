"""Run ``go tool pprof -top`` and parse its exact integer output (the oracle for numbers)."""
from __future__ import annotations

import re
import shutil
import subprocess

_ROW = re.compile(r"^\s*(\S+)\s+(\S+)%\s+(\S+)%\s+(\S+)\s+(\S+)%\s+(.*)$")
_TOTAL = re.compile(r"of (\S+) total")
UNIT_FLAG = {"nanoseconds": "ns", "microseconds": "us", "milliseconds": "ms", "bytes": "B"}


def have_go() -> bool:
    return shutil.which("go") is not None


def _num(tok: str, suffix: str) -> int:
    if suffix and tok.endswith(suffix):
        tok = tok[: -len(suffix)]
    return int(tok)


def pprof_top(path: str, sample_type: str | None, unit: str, extra: list[str] | None = None) -> dict:
    flag = UNIT_FLAG.get(unit, "")
    cmd = ["go", "tool", "pprof", "-symbolize=none", "-top", "-nodefraction=0", "-nodecount=100000"]
    if flag:
        cmd.append(f"-unit={flag}")
    if sample_type is not None:
        cmd.append(f"-sample_index={sample_type}")
    cmd += (extra or []) + [path]
    out = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=120,
                         env={"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp", "GOFLAGS": "-mod=mod",
                              "PPROF_TMPDIR": "/tmp"})
    if out.returncode != 0:
        raise RuntimeError(f"go tool pprof failed: {out.stderr.strip()}")
    total = None
    rows = []
    in_rows = False
    for line in out.stdout.splitlines():
        m = _TOTAL.search(line)
        if m and total is None and line.startswith("Showing nodes"):
            total = _num(m.group(1), flag)
        if line.strip().startswith("flat  flat%"):
            in_rows = True
            continue
        if in_rows:
            r = _ROW.match(line)
            if not r:
                continue
            name = re.sub(r" \((partial-)?inline\)$", "", r.group(6))
            rows.append({"name": name, "flat": _num(r.group(1), flag), "cum": _num(r.group(4), flag)})
    if total is None:
        total = 0
    return {"total": total, "rows": rows, "stdout": out.stdout}
