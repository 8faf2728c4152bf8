"""Folded stacks (Brendan Gregg ``stackcollapse``, py-spy ``--format raw``).

One line per stack: frames root first separated by ``;``, a space, an integer count. py-spy
frames ``func (file.py:12)`` keep their file and line; py-spy's ``thread (TID)`` /
``thread (TID): NAME`` and ``process PID:"cmd"`` root frames become the labels ``thread_id``,
``thread_name`` and ``pid`` instead of frames. Comment lines (``#``, ``//``) are skipped; any
other line that does not match is reported in ``Profile.warnings`` (and refused when nothing
valid remains).
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


def looks_folded(text: str) -> bool:
    for line in text.splitlines()[:20]:
        line = line.strip()
        if not line or line.startswith(("#", "//")):
            continue
        return bool(_LINE.match(line))
    return False


def decode_folded(data: bytes | str, sample_rate: int | None = None) -> Profile:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
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
        while frames:
            t = _THREAD.match(frames[0])
            p = _PROCESS.match(frames[0]) if not t else None
            if t:
                labels.append(Label("thread_id", t.group(1)))
                if t.group(2):
                    labels.append(Label("thread_name", t.group(2).strip()))
            elif p:
                labels.append(Label("pid", p.group(1)))
            else:
                break
            frames = frames[1:]
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
                   FrameTable.from_rows(rows), np.array(label_idx, np.int32), label_sets,
                   period_type=period_type, period=period, source_format="folded",
                   default_sample_type=types[-1].type, warnings=warnings)
