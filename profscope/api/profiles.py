"""Native profile API: upload, flame graph, top table, export."""
from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from ..errors import BadInput, Overloaded
from ..query import engine
from .params import arg, int_arg, labels_from_args, selection, state, tenant, view
from .plugins_api import auto_run_on_ingest

bp = Blueprint("profiles", __name__, url_prefix="/api/v1")


def _body() -> bytes:
    """The profile bytes: multipart field ``profile`` (or the first file), else the raw body
    whatever its content type (``curl --data-binary`` says x-www-form-urlencoded)."""
    if request.mimetype == "multipart/form-data":
        if not request.files:
            raise BadInput("multipart upload without a file: send the profile in field 'profile'")
        f = request.files.get("profile") or next(iter(request.files.values()))
        return f.read()
    return request.get_data(cache=False, parse_form_data=False)


def _decode(st, data: bytes, fmt: str | None, rate: int | None, pm):
    """A built-in format in the server's decoding workers; a plugin's format (given, or sniffed
    when no built-in decoder takes the bytes) here, with the app's plugin manager."""
    from ..errors import MalformedProfile, UnsupportedFormat
    from ..formats import BUILTIN_DECODERS, decode
    if st.decoder.active and (fmt is None or fmt in BUILTIN_DECODERS):
        try:
            return st.decoder.builtin(data, fmt, st.limits, rate)
        except (UnsupportedFormat, MalformedProfile):
            if fmt is not None:
                raise
    return decode(data, fmt, st.limits, sample_rate=rate, plugins=pm)


@bp.post("/ingest")
def ingest():
    """Upload one profile in any supported format; labels as parameters."""
    from ..plugins import app_plugin_manager, transform_profile
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
        pm = app_plugin_manager()
        profile = _decode(st, data, fmt, rate, pm)
        if arg("name", default=None):
            labels["__name__"] = arg("name")
        profile = transform_profile(profile, labels, pm)
        result = st.store.ingest(profile, labels, t)
    finally:
        st.ingest_slots.release()
    body = result.to_json()
    if profile.warnings:
        body["warnings"] = profile.warnings
    body.update(auto_run_on_ingest(profile, result, labels))     # {"findings", "plugin_errors"}
    return jsonify(body), 201


@bp.get("/flamegraph")
def flamegraph():
    sel = selection()
    ss, tree = engine.flamegraph(state().store, sel, view())
    body = engine.describe(ss, sel)
    body["nodes"] = tree.n_nodes
    body["flamegraph"] = tree.to_json()
    return jsonify(body)


@bp.get("/top")
def top():
    sel = selection()
    v = view()
    limit = int_arg("limit", 100, 0, 1_000_000)
    table = engine.top(state().store, sel, v)
    body = table.to_json(limit)
    body["profile_type"] = sel.profile_type
    body["rows_total"] = len(table.names)
    return jsonify(body)


@bp.get("/export")
def export():
    from ..formats.exporters import exporter_for
    from ..plugins import app_plugin_manager
    exporter = exporter_for(arg("format", default="pprof"), app_plugin_manager())   # unknown: 400 with the choices
    sel = selection()
    ss = engine.stackset(state().store, sel, view())
    return Response(exporter.render(ss), content_type=exporter.content_type,
                    headers={"Content-Disposition": f'attachment; filename="profile.{exporter.extension}"'})
