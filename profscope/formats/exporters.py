"""Render a merged selection (:class:`StackSet`) as pprof, speedscope JSON or folded text, or in a
format a plugin adds through the ``profscope_exporters`` hook."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis.stacks import frame_keys
from ..model import StackSet

if TYPE_CHECKING:
    from pluggy import PluginManager

EXPORT_FORMATS = ("pprof", "speedscope", "folded")   # built in; plugins may add more


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


@dataclass(frozen=True)
class Exporter:
    """An output format: ``render(stackset) -> bytes`` plus how to serve and name the result.
    Plugins return these from the ``profscope_exporters`` hook."""
    render: Callable[[StackSet], bytes]
    content_type: str
    extension: str              # file name extension without the dot, e.g. "pb.gz"


def _pprof(ss: StackSet) -> bytes:
    from .pprof_write import encode_stackset
    return encode_stackset(ss)


# The built-in exporters, offered by the built-in exporters plugin through the
# ``profscope_exporters`` hook; ``export`` uses the table directly for these names.
BUILTIN_EXPORTERS: dict[str, Exporter] = {
    "pprof": Exporter(_pprof, "application/octet-stream", "pb.gz"),
    "speedscope": Exporter(lambda ss: json.dumps(to_speedscope(ss)).encode(), "application/json",
                           "speedscope.json"),
    "folded": Exporter(lambda ss: to_folded(ss).encode(), "text/plain; charset=utf-8", "txt"),
}


def exporter_for(fmt: str, plugins: PluginManager | None = None) -> Exporter:
    """The exporter of ``fmt``: built in, else from plugins (``plugins`` or the default manager)."""
    if fmt in BUILTIN_EXPORTERS:
        return BUILTIN_EXPORTERS[fmt]
    from ..plugins import exporter_for as plugin_exporter
    return plugin_exporter(fmt, plugins)


def export(ss: StackSet, fmt: str, plugins: PluginManager | None = None) -> tuple[bytes, str]:
    """Returns (body, content type)."""
    exporter = exporter_for(fmt, plugins)
    return exporter.render(ss), exporter.content_type
