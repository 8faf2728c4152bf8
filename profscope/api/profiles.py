"""Native profile API: upload, flame graph, top table, export."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import BadInput, Overloaded
from ..query import engine
from .params import arg, granularity, int_arg, labels_from_args, selection, state, tenant

bp = Blueprint("profiles", __name__, url_prefix="/api/v1")


def _body() -> bytes:
    if request.files:
        f = request.files.get("profile") or next(iter(request.files.values()))
        return f.read()
    return request.get_data(cache=False)


@bp.post("/ingest")
def ingest():
    """Upload one profile in any supported format; labels as parameters."""
    from ..formats import decode
    st = state()
    fmt = arg("format", default=None)
    rate = int_arg("sample_rate", 0, 0, 10**6) or None
    labels = labels_from_args()
    t = tenant()
    data = _body()
    if not data:
        raise BadInput("request body is empty: send the profile bytes (or multipart field 'profile')")
    if not st.ingest_slots.acquire(blocking=False):
        raise Overloaded("too many ingest requests in flight; retry later")
    try:
        profile = decode(data, fmt, st.limits, sample_rate=rate)
        if arg("name", default=None):
            labels["__name__"] = arg("name")
        result = st.store.ingest(profile, labels, t)
    finally:
        st.ingest_slots.release()
    body = result.to_json()
    if profile.warnings:
        body["warnings"] = profile.warnings
    return jsonify(body), 201


def _view() -> engine.View:
    st = state()
    return engine.View(granularity(), arg("focus", default=None), arg("ignore", default=None),
                       int_arg("max_nodes", st.config["max_nodes"], 1, st.config["max_nodes_cap"]))


@bp.get("/flamegraph")
def flamegraph():
    sel = selection()
    ss, tree = engine.flamegraph(state().store, sel, _view())
    body = engine.describe(ss, sel)
    body["nodes"] = tree.n_nodes
    body["flamegraph"] = tree.to_json()
    return jsonify(body)


@bp.get("/top")
def top():
    sel = selection()
    view = _view()
    limit = int_arg("limit", 100, 0, 1_000_000)
    table = engine.top(state().store, sel, view)
    body = table.to_json(limit)
    body["profile_type"] = sel.profile_type
    body["rows_total"] = len(table.names)
    return jsonify(body)


@bp.get("/export")
def export():
    from ..formats.exporters import EXPORT_FORMATS, export as do_export
    fmt = arg("format", default="pprof")
    if fmt not in EXPORT_FORMATS:
        raise BadInput(f"format {fmt!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    sel = selection()
    ss = engine.stackset(state().store, sel, _view())
    body, ctype = do_export(ss, fmt)
    ext = {"pprof": "pb.gz", "speedscope": "speedscope.json", "folded": "txt"}[fmt]
    return Response(body, content_type=ctype,
                    headers={"Content-Disposition": f'attachment; filename="profile.{ext}"'})
