"""Helpers for the trace-join tests: synthetic labelled profiles and OTLP span requests."""
from __future__ import annotations

import numpy as np
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from profscope.model import FrameTable, Label, Profile, ValueType

PERIOD = 10_000_000


def make_profile(samples: list[tuple[list[str], int, dict[str, str]]], time_nanos: int,
                 duration_nanos: int = 10**10) -> Profile:
    """A CPU profile from (root-first function names, sample count, string labels) triples."""
    names: list[str] = []
    index: dict[str, int] = {}
    offs, flat, vals, lab = [0], [], [], []
    label_sets: list[tuple[Label, ...]] = [()]
    ls_index: dict[tuple, int] = {(): 0}
    for stack, count, labels in samples:
        for fn in reversed(stack):                       # stored leaf first
            if fn not in index:
                index[fn] = len(names)
                names.append(fn)
            flat.append(index[fn])
        offs.append(len(flat))
        vals.append([count, count * PERIOD])
        ls = tuple(Label(k, v) for k, v in sorted(labels.items()))
        if ls not in ls_index:
            ls_index[ls] = len(label_sets)
            label_sets.append(ls)
        lab.append(ls_index[ls])
    return Profile([ValueType("samples", "count"), ValueType("cpu", "nanoseconds")],
                   np.array(vals, np.int64).reshape(-1, 2), np.array(offs, np.int64), np.array(flat, np.int32),
                   FrameTable.from_names(names), np.array(lab, np.int32), label_sets,
                   ValueType("cpu", "nanoseconds"), PERIOD, time_nanos, duration_nanos)


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def span_request(spans: list[dict], service: str = "checkout", resource: dict | None = None
                 ) -> ExportTraceServiceRequest:
    """``spans``: dicts with trace (int), span (int), parent (int, 0 = root), name, start, end (ns),
    attrs (dict), status (int)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(_kv("service.name", service))
    for k, v in (resource or {}).items():
        rs.resource.attributes.append(_kv(k, v))
    ss = rs.scope_spans.add()
    for s in spans:
        sp = ss.spans.add()
        sp.trace_id = s["trace"].to_bytes(16, "big")
        sp.span_id = s["span"].to_bytes(8, "big")
        if s.get("parent"):
            sp.parent_span_id = s["parent"].to_bytes(8, "big")
        sp.name = s.get("name", "op")
        sp.kind = s.get("kind", 2)
        sp.start_time_unix_nano = s["start"]
        sp.end_time_unix_nano = s["end"]
        sp.status.code = s.get("status", 0)
        for k, v in (s.get("attrs") or {}).items():
            sp.attributes.append(_kv(k, v))
    return req
