"""OTLP traces: ``ExportTraceServiceRequest`` (protobuf or OTLP/JSON) into flat span columns.

No I/O here. JSON follows the OTLP encoding rules: ids are hex strings (protobuf's
``json_format`` would read them as base64 and silently produce wrong ids, so they are converted
first), enums may be numbers or names, int64 values may be strings. Attribute values become text
(strings as is, numbers and booleans in their JSON spelling, arrays and maps as JSON).
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..errors import BadInput
from ..traceids import MAX_U64, bytes_to_int, parse_span_label

PROFILE_ID_ATTR = "pyroscope.profile.id"
_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8,
              "parentSpanId": 8, "parent_span_id": 8}


@dataclass
class SpanBatch:
    """Spans as columns (one list entry per span)."""
    trace_hi: list[int] = field(default_factory=list)
    trace_lo: list[int] = field(default_factory=list)
    span_id: list[int] = field(default_factory=list)
    parent_span_id: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    start_ns: list[int] = field(default_factory=list)
    end_ns: list[int] = field(default_factory=list)
    status_code: list[int] = field(default_factory=list)
    status_message: list[str] = field(default_factory=list)
    profile_span_id: list[int] = field(default_factory=list)
    attributes: list[list[tuple[str, str]]] = field(default_factory=list)
    resource: list[list[tuple[str, str]]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.span_id)


def decode_traces(data: bytes, content_type: str = "application/x-protobuf") -> SpanBatch:
    """Decode an OTLP trace export request; ``content_type`` picks protobuf or JSON."""
    if "json" in content_type:
        req = _parse_json(data)
    else:
        req = ExportTraceServiceRequest()
        try:
            req.ParseFromString(data)
        except DecodeError as e:
            raise BadInput(f"OTLP traces: body is not an ExportTraceServiceRequest protobuf ({e})") from None
    return spans_from_request(req)


def spans_from_request(req: ExportTraceServiceRequest) -> SpanBatch:
    out = SpanBatch()
    for ri, rs in enumerate(req.resource_spans):
        resource = [(kv.key, any_value_text(kv.value)) for kv in rs.resource.attributes]
        service = dict(resource).get("service.name") or "unknown_service"
        for si, ss in enumerate(rs.scope_spans):
            for pi, sp in enumerate(ss.spans):
                where = f"resource_spans[{ri}].scope_spans[{si}].spans[{pi}]"
                if len(sp.trace_id) != 16 or not any(sp.trace_id):
                    raise BadInput(f"OTLP traces: {where}.trace_id must be 16 bytes, not all zero "
                                   f"(got {len(sp.trace_id)} bytes)")
                if len(sp.span_id) != 8 or not any(sp.span_id):
                    raise BadInput(f"OTLP traces: {where}.span_id must be 8 bytes, not all zero "
                                   f"(got {len(sp.span_id)} bytes)")
                if sp.parent_span_id and len(sp.parent_span_id) != 8:
                    raise BadInput(f"OTLP traces: {where}.parent_span_id must be empty or 8 bytes "
                                   f"(got {len(sp.parent_span_id)} bytes)")
                attrs = [(kv.key, any_value_text(kv.value)) for kv in sp.attributes]
                trace = bytes_to_int(sp.trace_id)
                out.trace_hi.append(trace >> 64)
                out.trace_lo.append(trace & MAX_U64)
                out.span_id.append(bytes_to_int(sp.span_id))
                out.parent_span_id.append(bytes_to_int(sp.parent_span_id))
                out.name.append(sp.name)
                out.service.append(service)
                out.kind.append(int(sp.kind))
                out.start_ns.append(int(sp.start_time_unix_nano))
                out.end_ns.append(max(int(sp.end_time_unix_nano), int(sp.start_time_unix_nano)))
                out.status_code.append(int(sp.status.code))
                out.status_message.append(sp.status.message)
                pid = dict(attrs).get(PROFILE_ID_ATTR)
                out.profile_span_id.append((parse_span_label(pid) or 0) if pid else 0)
                out.attributes.append(attrs)
                out.resource.append(resource)
    return out


def any_value_text(v: Any) -> str:
    """An OTLP ``AnyValue`` as text."""
    which = v.WhichOneof("value")
    if which is None:
        return ""
    if which == "string_value":
        return v.string_value
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which == "int_value":
        return str(v.int_value)
    if which == "double_value":
        return repr(v.double_value)
    if which == "bytes_value":
        return v.bytes_value.hex()
    return json.dumps(_any_json(v), separators=(",", ":"))


def _any_json(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_any_json(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_json(kv.value) for kv in v.kvlist_value.values}
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    return any_value_text(v)


def _parse_json(data: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"OTLP traces: body is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadInput("OTLP traces: JSON body must be an object with resourceSpans")
    _hex_ids_to_base64(doc, "$")
    req = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise BadInput(f"OTLP traces: JSON does not match ExportTraceServiceRequest ({e})") from None
    return req


def _hex_ids_to_base64(node: Any, path: str) -> None:
    """OTLP/JSON writes ids as hex; rewrite them in place as the base64 that json_format reads."""
    if isinstance(node, list):
        for i, x in enumerate(node):
            _hex_ids_to_base64(x, f"{path}[{i}]")
        return
    if not isinstance(node, dict):
        return
    for key, val in node.items():
        if key in _ID_FIELDS and isinstance(val, str):
            n = _ID_FIELDS[key]
            if val == "":
                continue
            try:
                raw = bytes.fromhex(val)
            except ValueError:
                raise BadInput(f"OTLP traces: {path}.{key} {val[:40]!r} is not hex "
                               f"(OTLP/JSON ids are {2 * n} hex digits)") from None
            if len(raw) != n:
                raise BadInput(f"OTLP traces: {path}.{key} has {len(val)} hex digits; expected {2 * n}")
            node[key] = base64.b64encode(raw).decode()
        else:
            _hex_ids_to_base64(val, f"{path}.{key}")
