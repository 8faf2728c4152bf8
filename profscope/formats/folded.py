"""Folded stacks (Brendan Gregg ``stackcollapse``, py-spy ``--format raw``).

One line per stack: frames root first separated by ``;``, a space, an integer count. py-spy
frames ``func (file.py:12)`` keep their file and line; py-spy's ``thread (TID)`` /
``thread (TID): NAME`` and ``process PID:"cmd"`` root frames become the labels ``thread_id``,
``thread_name``, ``pid`` and ``cmdline`` instead of frames (with ``--subprocesses`` the innermost
process wins; its quoted command line may hold ``;`` and newlines, which py-spy does not escape).
A thread that py-spy names in some stacks and not in others gets its name everywhere. Comment
lines (``#``, ``//``) are skipped; any other line that does not match is reported in
``Profile.warnings`` (and refused when nothing valid remains).
"""
from __future__ import annotations

import re

import numpy as np

from ..errors import BadInput
from ..model import FrameTable, Label, Profile, ValueType

_LINE = re.compile(r"^(.*\S)\s+(-?\d+)$")
_PYSPY_FRAME = re.compile(r"^(.*) \(([^()]*?):(\d+)\)$")
_THREAD = re.compile(r"^thread \((0x[0-9a-fA-F]+|\d+)\)(?::\s*(.*))?$")
_PROCESS = re.compile(r"^process (\d+)(?::(.*))?$")
# py-spy --subprocesses: `process PID:"command line"` at the root, the command line unescaped
# (it may contain `;` and newlines); it ends at the first `";` or `" COUNT` at a line end.
_PYSPY_PROCESS = re.compile(r'(?:^|(?<=;))process (\d+):"(.*?)"(?=;|[ \t]+-?\d+[ \t]*\r?$)',
                            re.MULTILINE | re.DOTALL)
_MAX_CMDLINE = 256


def _extract_processes(text: str) -> tuple[str, dict[str, str]]:
    """Replace py-spy's quoted ``process PID:"cmd"`` frames by ``process PID``; return the text
    and ``{pid: cmd}`` (whitespace collapsed, at most ``_MAX_CMDLINE`` characters)."""
    if 'process ' not in text:
        return text, {}
    cmds: dict[str, str] = {}

    def repl(m: re.Match) -> str:
        cmds[m.group(1)] = " ".join(m.group(2).split())[:_MAX_CMDLINE]
        return f"process {m.group(1)}"
    return _PYSPY_PROCESS.sub(repl, text), cmds


def looks_folded(text: str) -> bool:
    for line in text.splitlines()[:20]:
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        return bool(_LINE.match(line))
    return False


def decode_folded(data: bytes | str, sample_rate: int | None = None) -> Profile:
    """Decode folded stacks; with ``sample_rate`` (Hz) add ``cpu:nanoseconds`` = count x 1e9/rate."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text, cmds = _extract_processes(text)
    frame_index: dict[str, int] = {}
    rows: list[tuple[str, str, str, int, int, int, str]] = []
    flat: list[int] = []
    lens: list[int] = []
    counts: list[int] = []
    label_idx: list[int] = []
    label_sets: list[tuple[Label, ...]] = [()]
    label_index: dict[tuple, int] = {(): 0}
    warnings: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        m = _LINE.match(line)
        if not m:
            if len(warnings) < 20:
                warnings.append(f"line {lineno}: not 'frame;frame;... count': {line[:80]!r}")
            continue
        frames = m.group(1).split(";")
        labels: list[Label] = []
        pid = cmd = None
        while frames:
            t = _THREAD.match(frames[0])
            p = _PROCESS.match(frames[0]) if not t else None
            if t:
                labels.append(Label("thread_id", t.group(1)))
                if t.group(2):
                    labels.append(Label("thread_name", t.group(2).strip()))
            elif p:   # nested processes (--subprocesses): the innermost one owns the sample
                pid = p.group(1)
                cmd = cmds.get(pid) or (p.group(2) or "").strip().strip('"')
            else:
                break
            frames = frames[1:]
        if pid is not None:
            labels.append(Label("pid", pid))
            if cmd:
                labels.append(Label("cmdline", cmd))
        for fr in reversed(frames):   # leaf first
            fi = frame_index.get(fr)
            if fi is None:
                fi = frame_index[fr] = len(rows)
                pm = _PYSPY_FRAME.match(fr)
                if pm:
                    rows.append((pm.group(1), "", pm.group(2), int(pm.group(3)), 0, 0, ""))
                else:
                    rows.append((fr, "", "", 0, 0, 0, ""))
            flat.append(fi)
        lens.append(len(frames))
        counts.append(int(m.group(2)))
        key = tuple(sorted(labels))
        li = label_index.get(key)
        if li is None:
            li = label_index[key] = len(label_sets)
            label_sets.append(key)
        label_idx.append(li)
    if not counts:
        detail = f" ({warnings[0]})" if warnings else ""
        raise BadInput(f"folded input has no valid 'stack count' line{detail}")
    if len(warnings) == 20:
        warnings.append("further invalid lines not listed")
    label_sets, remap = _fill_thread_names(label_sets)
    offs = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    c = np.array(counts, np.int64)
    types = [ValueType("samples", "count")]
    cols = [c]
    period = 0
    period_type = None
    if sample_rate:
        period = int(round(1e9 / sample_rate))
        types.append(ValueType("cpu", "nanoseconds"))
        cols.append(c * period)
        period_type = ValueType("cpu", "nanoseconds")
    return Profile(types, np.stack(cols, axis=1), offs, np.array(flat, np.int32),
                   FrameTable.from_rows(rows), remap[np.array(label_idx, np.int32)], label_sets,
                   period_type=period_type, period=period, source_format="folded",
                   default_sample_type=types[-1].type, warnings=warnings)


def _fill_thread_names(label_sets: list[tuple[Label, ...]]) -> tuple[list[tuple[Label, ...]], np.ndarray]:
    """py-spy names a thread in some stacks only (e.g. before ``threading`` registered it):
    give every label set with a known (pid, thread_id) its thread_name. Returns the label sets
    (new ones appended) and an old-index -> new-index map. One pass over label sets, not samples."""
    remap = np.arange(len(label_sets), dtype=np.int32)

    def ident(ls: tuple[Label, ...]) -> tuple[str, str] | None:
        d = {lb.key: lb.str for lb in ls}
        return (d.get("pid", ""), d["thread_id"]) if "thread_id" in d else None
    names: dict[tuple[str, str], str] = {}
    for ls in label_sets:
        key = ident(ls)
        name = next((lb.str for lb in ls if lb.key == "thread_name"), None)
        if key is not None and name is not None:
            names.setdefault(key, name)
    if not names:
        return label_sets, remap
    out = list(label_sets)
    index = {ls: i for i, ls in enumerate(out)}
    for i, ls in enumerate(label_sets):
        key = ident(ls)
        if key in names and not any(lb.key == "thread_name" for lb in ls):
            full = tuple(sorted(ls + (Label("thread_name", names[key]),)))
            j = index.get(full)
            if j is None:
                j = index[full] = len(out)
                out.append(full)
            remap[i] = j
    return out, remap
