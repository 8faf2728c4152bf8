"""Render a merged selection (:class:`StackSet`) as pprof, speedscope JSON or folded text."""
from __future__ import annotations

import json

import numpy as np

from ..analysis.stacks import frame_keys
from ..model import StackSet

EXPORT_FORMATS = ("pprof", "speedscope", "folded")


def to_folded(ss: StackSet, granularity: str = "functions") -> str:
    keys, names = frame_keys(ss.frames, granularity)
    out = []
    offs = ss.stack_offsets
    flat = keys[ss.stack_frames] if len(ss.stack_frames) else ss.stack_frames
    for i in np.flatnonzero(ss.values != 0).tolist():
        fr = flat[offs[i]:offs[i + 1]][::-1]
        if len(fr) == 0:
            continue
        out.append(";".join(names[k].replace(";", ":") for k in fr.tolist()) + f" {int(ss.values[i])}")
    return "\n".join(out) + ("\n" if out else "")


def to_speedscope(ss: StackSet, name: str = "profscope export") -> dict:
    """A speedscope file with one sampled profile; weights in the sample unit."""
    used = np.unique(ss.stack_frames) if len(ss.stack_frames) else np.zeros(0, np.int64)
    remap = {int(f): i for i, f in enumerate(used.tolist())}
    frames = []
    for f in used.tolist():
        fr = {"name": ss.frames.name[f] or (f"0x{int(ss.frames.address[f]):x}")}
        if ss.frames.file[f]:
            fr["file"] = ss.frames.file[f]
        if int(ss.frames.line[f]):
            fr["line"] = int(ss.frames.line[f])
        frames.append(fr)
    samples, weights = [], []
    offs = ss.stack_offsets
    for i in np.flatnonzero(ss.values != 0).tolist():
        st = ss.stack_frames[offs[i]:offs[i + 1]][::-1].tolist()
        if not st:
            continue
        samples.append([remap[f] for f in st])
        weights.append(int(ss.values[i]))
    unit = {"nanoseconds": "nanoseconds", "microseconds": "microseconds", "milliseconds": "milliseconds",
            "seconds": "seconds", "bytes": "bytes"}.get(ss.sample_type.unit, "none")
    return {"$schema": "https://www.speedscope.app/file-format-schema.json",
            "exporter": "profscope", "name": name, "activeProfileIndex": 0,
            "shared": {"frames": frames},
            "profiles": [{"type": "sampled", "name": name, "unit": unit, "startValue": 0,
                          "endValue": int(sum(weights)), "samples": samples, "weights": weights}]}


def export(ss: StackSet, fmt: str) -> tuple[bytes, str]:
    """Returns (body, content type)."""
    if fmt == "pprof":
        from .pprof_write import encode_stackset
        return encode_stackset(ss), "application/octet-stream"
    if fmt == "speedscope":
        return json.dumps(to_speedscope(ss)).encode(), "application/json"
    if fmt == "folded":
        return to_folded(ss).encode(), "text/plain; charset=utf-8"
    from ..errors import BadInput
    raise BadInput(f"export format {fmt!r} is not one of: {', '.join(EXPORT_FORMATS)}")
