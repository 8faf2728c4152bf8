"""Chrome / V8 ``.cpuprofile`` JSON: a call tree (``nodes`` with ``id``, ``callFrame``,
``children``), the node hit by each sample (``samples``) and the microseconds between samples
(``timeDeltas``; the first is counted from ``startTime``).

Two sample types come out: ``samples/count`` and ``cpu/nanoseconds``, where a sample lasts until
the next one (the last one until ``endTime``). Loops run over tree nodes, never over samples.
"""
from __future__ import annotations

import json

import numpy as np

from profscope.errors import LimitExceeded, MalformedProfile
from profscope.model import FrameTable, Profile, ValueType


def looks_cpuprofile(data: bytes) -> bool:
    head = data[:4096].lstrip()
    return head[:1] == b"{" and b'"nodes"' in head and b'"callFrame"' in head


def decode_cpuprofile(data: bytes, options) -> Profile:
    try:
        doc = json.loads(data)
        nodes = doc["nodes"]
        samples = np.asarray(doc.get("samples", []), dtype=np.int64)
        deltas = np.asarray(doc.get("timeDeltas", []), dtype=np.int64)
        start, end = int(doc["startTime"]), int(doc["endTime"])
    except (ValueError, KeyError, TypeError) as e:
        raise MalformedProfile(f"cpuprofile: not a Chrome .cpuprofile ({e.__class__.__name__}: {e})") from None
    if len(deltas) != len(samples):
        raise MalformedProfile(f"cpuprofile: {len(samples)} samples but {len(deltas)} timeDeltas")
    if len(samples) > options.limits.max_samples:
        raise LimitExceeded(f"cpuprofile: {len(samples)} samples; limit max_samples={options.limits.max_samples}")
    index: dict[int, int] = {}
    parent_of: dict[int, int] = {}
    frame_of: dict[tuple[str, str, int], int] = {}     # V8 nodes are call sites: share their frames
    node_frame: list[int] = []
    for i, n in enumerate(nodes):
        index[n["id"]] = i
        for c in n.get("children", ()):
            parent_of[c] = n["id"]
        cf = n.get("callFrame", {})
        key = (cf.get("functionName") or "(anonymous)", cf.get("url", ""), int(cf.get("lineNumber", -1)) + 1)
        node_frame.append(frame_of.setdefault(key, len(frame_of)))
    names, files, lines = (list(col) for col in zip(*frame_of, strict=True)) if frame_of else ([], [], [])
    root = frame_of.get(("(root)", "", 0))
    try:
        hit, per_sample = np.unique(samples, return_inverse=True)
        hit_nodes = [index[s] for s in hit.tolist()]
    except KeyError as e:
        raise MalformedProfile(f"cpuprofile: a sample names node {e.args[0]}, which is not in nodes") from None
    # the stack of each node that has samples, leaf first, without V8's "(root)"
    depth_cap = options.limits.max_stack_depth
    flat: list[int] = []
    lens = np.zeros(len(hit), np.int64)
    for k, i in enumerate(hit_nodes):
        nid: int | None = nodes[i]["id"]
        start_len = len(flat)
        while nid is not None:
            f = node_frame[index[nid]]
            if f != root:
                flat.append(f)
            if len(flat) - start_len > depth_cap:
                raise LimitExceeded(f"cpuprofile: a stack is deeper than max_stack_depth={depth_cap}")
            nid = parent_of.get(nid)
        lens[k] = len(flat) - start_len
    offsets = np.zeros(len(hit) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    # each sample lasts until the next one; the last until endTime (negative gaps count as 0)
    times = start + np.cumsum(deltas)
    dur = np.diff(np.append(times, end)).clip(min=0) * 1000
    counts = np.bincount(per_sample, minlength=len(hit))
    nanos = np.bincount(per_sample, weights=dur, minlength=len(hit)).astype(np.int64)
    return Profile(
        sample_types=[ValueType("samples", "count"), ValueType("cpu", "nanoseconds")],
        values=np.stack([counts, nanos], axis=1).astype(np.int64),
        stack_offsets=offsets,
        stack_frames=np.asarray(flat, np.int32),
        frames=FrameTable.from_names(names, files, lines),
        sample_labels=np.zeros(len(hit), np.int32),
        period_type=ValueType("cpu", "nanoseconds"),
        time_nanos=start * 1000, duration_nanos=max(end - start, 0) * 1000,
        default_sample_type="cpu", source_format="cpuprofile")
