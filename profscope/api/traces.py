"""Trace joins over HTTP: OTLP span ingest (``POST /v1/traces``) and the native join API
under ``/api/v1/traces`` (flame graph and top for spans, traces and span queries; exemplars;
per-span table of a trace). Views are thin: the work is in :mod:`profscope.query.traces`."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import BadInput, Overloaded, ProfscopeError
from ..query import engine
from ..query import traces as joins
from ..query.selector import Selection, parse_query
from ..query.spanquery import SpanQuery, parse_attribute, parse_duration
from ..query.trace_tables import exemplars as do_exemplars
from ..query.trace_tables import span_table
from ..traceids import span_hex, trace_hex
from .params import arg, int_arg, state, tenant, time_range, view

bp = Blueprint("traces", __name__)

PROTO_TYPES = ("application/x-protobuf", "application/protobuf")


class UnsupportedMediaType(ProfscopeError):
    status = 415
    kind = "unsupported_media_type"
    exit_code = 2


# ---------------------------------------------------------------- OTLP ingest
@bp.post("/v1/traces")
def otlp_traces():
    """OTLP/HTTP trace export: protobuf or JSON ``ExportTraceServiceRequest``, optional gzip."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    from ..formats.compression import gunzip
    from ..formats.otlp_traces import decode_traces
    st = state()
    ctype = (request.content_type or "").split(";")[0].strip().lower()
    if ctype not in (*PROTO_TYPES, "application/json"):
        raise UnsupportedMediaType(f"Content-Type {ctype or '(none)'!r} is not supported for /v1/traces; "
                                   "use application/x-protobuf or application/json")
    t = tenant()
    data = request.get_data(cache=False)
    enc = (request.headers.get("Content-Encoding") or "").strip().lower()
    if enc == "gzip":
        data = gunzip(data, st.limits, "OTLP traces")
    elif enc not in ("", "identity"):
        raise BadInput(f"Content-Encoding {enc!r} is not supported; use gzip or none")
    if not st.ingest_slots.acquire(blocking=False):
        raise Overloaded("too many ingest requests in flight; retry later")
    try:
        batch = decode_traces(data, ctype)
        st.store.traces.ingest_spans(batch, t)
    finally:
        st.ingest_slots.release()
    if ctype == "application/json":
        return jsonify({})
    return Response(ExportTraceServiceResponse().SerializeToString(), content_type=ctype)


# ---------------------------------------------------------------- parameters
def _bool(name: str, default: bool) -> bool:
    raw = arg(name, default=None)
    if raw is None:
        return default
    v = raw.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"parameter {name}={raw!r} must be true or false")


def _selection() -> Selection:
    """Profile type and label matchers (no time filter: the join is by id)."""
    ptype, matchers = parse_query(arg("query", default=""))
    return Selection(arg("profile_type", "type", default=ptype), tuple(matchers), None, None, tenant())


def _span_query() -> SpanQuery | None:
    start, end = time_range()
    attrs = tuple(parse_attribute(a) for a in request.args.getlist("attr"))
    q = SpanQuery(arg("service", default=None), arg("span_name", default=None),
                  parse_duration(arg("min_duration", default=None), "min_duration"),
                  parse_duration(arg("max_duration", default=None), "max_duration"),
                  attrs, arg("status", default=None), start, end)
    return None if q.is_empty() else q


def _join_args() -> tuple[tuple, dict]:
    span_ids = request.args.getlist("span_id") or None
    trace_ids = request.args.getlist("trace_id") or None
    q = _span_query()
    if span_ids is None and trace_ids is None and q is None:
        raise BadInput("give span_id, trace_id, or a span query (service, span_name, min_duration, "
                       "max_duration, attr, status, from/until)")
    return (_selection(), span_ids, trace_ids, q), {
        "descendants": _bool("descendants", True), "approximate": _bool("approximate", True),
        "unlinked": _bool("unlinked", False)}


# ---------------------------------------------------------------- native API
@bp.get("/api/v1/traces/flamegraph")
def flamegraph():
    v = view()
    args, opts = _join_args()
    res, tree = joins.flamegraph(state().store, args[0], v, *args[1:], **opts)
    body = engine.describe(res.stackset, Selection(res.profile_type))
    body["nodes"] = tree.n_nodes
    body["join"] = res.to_json()
    body["flamegraph"] = tree.to_json()
    return jsonify(body)


@bp.get("/api/v1/traces/top")
def top():
    from ..analysis.stacks import apply_frame_filters
    from ..analysis.top import top_table
    v = view()
    limit = int_arg("limit", 100, 0, 1_000_000)
    args, opts = _join_args()
    res = joins.join(state().store, *args, **opts)
    table = top_table(apply_frame_filters(res.stackset, v.focus, v.ignore), v.granularity)
    body = table.to_json(limit)
    body["profile_type"] = res.profile_type
    body["rows_total"] = len(table.names)
    body["join"] = res.to_json()
    return jsonify(body)


@bp.get("/api/v1/traces/exemplars")
def exemplars():
    sel = _selection()
    start, end = time_range()
    sel = Selection(sel.profile_type, sel.matchers, start, end, sel.tenant)
    return jsonify(do_exemplars(state().store, sel, arg("function", default=None), arg("frame", default=None),
                                int_arg("limit", 10, 1, 10_000)))


@bp.get("/api/v1/traces/spans")
def spans():
    q = _span_query() or SpanQuery()
    limit = int_arg("limit", 100, 1, 10_000)
    cols = state().store.traces.find_spans(tenant(), query=q, limit=limit, attributes=True)
    out = []
    for i in range(len(cols["span_id"])):
        start, end = int(cols["start_ns"][i]), int(cols["end_ns"][i])
        parent = int(cols["parent_span_id"][i])
        out.append({"trace_id": trace_hex(int(cols["trace_hi"][i]), int(cols["trace_lo"][i])),
                    "span_id": span_hex(int(cols["span_id"][i])),
                    "parent_span_id": span_hex(parent) if parent else None,
                    "name": str(cols["name"][i]), "service": str(cols["service"][i]),
                    "start_ns": start, "duration_ns": end - start, "status_code": int(cols["status_code"][i]),
                    "attributes": cols["attributes"][i]})
    return jsonify({"spans": out})


@bp.get("/api/v1/traces/<trace_id>/spans")
def trace_spans(trace_id: str):
    return jsonify(span_table(state().store, _selection(), trace_id))
