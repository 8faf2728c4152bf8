"""speedscope JSON (https://www.speedscope.app/file-format-schema.json): sampled and evented
profiles, py-spy's output included. Each speedscope profile becomes a ``thread_name`` label."""
from __future__ import annotations

import json
import re

import numpy as np

from ..errors import BadInput
from ..model import FrameTable, Label, Profile, ValueType

_TIME_UNITS = {"nanoseconds": 1, "microseconds": 1_000, "milliseconds": 1_000_000, "seconds": 1_000_000_000}


def looks_speedscope(obj: object) -> bool:
    return isinstance(obj, dict) and "profiles" in obj and "shared" in obj


def decode_speedscope(data: bytes | str | dict) -> Profile:
    try:
        doc = data if isinstance(data, dict) else json.loads(data)
        frames_in = doc["shared"]["frames"]
        profiles = doc["profiles"]
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(f"speedscope: not a speedscope file ({e.__class__.__name__}: {e})") from None
    rows = []
    for fr in frames_in:
        if not isinstance(fr, dict) or "name" not in fr:
            raise BadInput("speedscope: every shared frame needs a 'name'")
        name = str(fr["name"])
        file = str(fr.get("file") or "")
        line = int(fr.get("line") or 0)
        rows.append((name, "", file, line, 0, 0, ""))
    nfr = len(rows)
    units = {p.get("unit", "none") for p in profiles}
    if len(units) > 1:
        raise BadInput(f"speedscope: profiles use different units {sorted(units)}")
    unit = units.pop() if units else "none"
    scale = _TIME_UNITS.get(unit)
    stacks: list[list[int]] = []
    weights: list[float] = []
    label_idx: list[int] = []
    label_sets: list[tuple[Label, ...]] = [()]
    for pi, p in enumerate(profiles):
        name = str(p.get("name") or f"profile {pi}")
        m = re.match(r'^Thread (\d+)(?: "(.*)")?$', name)
        labs = (Label("thread_id", m.group(1)),) + ((Label("thread_name", m.group(2)),) if m.group(2) else ()) \
            if m else (Label("thread_name", name),)
        label_sets.append(tuple(sorted(labs)))
        li = len(label_sets) - 1
        if p.get("type") == "sampled":
            samples, ws = p.get("samples", []), p.get("weights", [])
            if len(samples) != len(ws):
                raise BadInput(f"speedscope: profile {pi} has {len(samples)} samples but {len(ws)} weights")
            for st, w in zip(samples, ws):
                stacks.append(st)
                weights.append(float(w))
                label_idx.append(li)
        elif p.get("type") == "evented":
            for st, w in _evented(p, nfr, pi):
                stacks.append(st)
                weights.append(w)
                label_idx.append(li)
        else:
            raise BadInput(f"speedscope: profile {pi} has unknown type {p.get('type')!r}")
    flat = [f for st in stacks for f in reversed(st)]
    if flat and (min(flat) < 0 or max(flat) >= nfr):
        raise BadInput(f"speedscope: a sample refers to a frame outside 0..{nfr - 1}")
    lens = np.array([len(s) for s in stacks], np.int64)
    offs = np.zeros(len(stacks) + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    w = np.array(weights, np.float64)
    if scale:
        types = [ValueType("samples", "count"), ValueType("cpu", "nanoseconds")]
        vals = np.stack([np.ones(len(w), np.int64), np.rint(w * scale).astype(np.int64)], axis=1)
    elif unit == "bytes":
        types = [ValueType("space", "bytes")]
        vals = np.rint(w).astype(np.int64).reshape(-1, 1)
    else:
        types = [ValueType("samples", "count")]
        vals = np.rint(w).astype(np.int64).reshape(-1, 1)
    return Profile(types, vals, offs, np.array(flat, np.int32), FrameTable.from_rows(rows),
                   np.array(label_idx, np.int32), label_sets, source_format="speedscope",
                   default_sample_type=types[-1].type)


def _evented(p: dict, nfr: int, pi: int):
    """Open/close events -> (root-first stack, duration) per interval with a non-empty stack."""
    stack: list[int] = []
    last = float(p.get("startValue", 0))
    for ev in p.get("events", []):
        at = float(ev["at"])
        if stack and at > last:
            yield list(stack), at - last
        last = at
        fr = int(ev["frame"])
        if ev["type"] == "O":
            stack.append(fr)
        elif ev["type"] == "C":
            if not stack or stack[-1] != fr:
                raise BadInput(f"speedscope: profile {pi} closes frame {fr} that is not on top of the stack")
            stack.pop()
        else:
            raise BadInput(f"speedscope: profile {pi} has event type {ev['type']!r}")
