"""Grafana Pyroscope's HTTP API on profscope: agents push here and Grafana reads here unchanged.

Ingest: ``POST /push.v1.PusherService/Push`` (Connect), ``POST /ingest`` and
``/pyroscope/ingest`` (legacy query-parameter API). Read: ``GET /pyroscope/render``,
``/pyroscope/render-diff``, ``/pyroscope/label-values``, ``/pyroscope/labels``.
"""
from __future__ import annotations

import math
import time

from flask import Blueprint, jsonify, request

from ..errors import BadInput, Overloaded
from ..query.selector import Matcher, Selection, parse_query
from ..query.timeparse import parse_time
from ..wire import flamebearer as fb
from ..wire.legacy_ingest import parse_params, stage_ingest
from ..wire.proto.push.v1 import push_pb2
from ..wire.push import stage_push
from .connect_route import RawRequest, connect_method
from .params import arg, int_arg, state, tenant

bp = Blueprint("pyroscope", __name__)


def _slot():
    """Bound the requests decoding at once (beyond ``max_concurrent_ingest``: 429)."""
    st = state()
    if not st.ingest_slots.acquire(blocking=False):
        raise Overloaded(f"more than max_concurrent_ingest={st.config['max_concurrent_ingest']} "
                         "ingest requests in flight; retry later")
    return st.ingest_slots


def _stage_in_worker(fn, args: tuple) -> None:
    """``fn(*args)`` (a request decoded, checked and merged: a list of staged profiles) runs in a
    decoding worker, which hands the result straight to the store's writer; this thread sleeps
    until it is committed (or raises what went wrong). The writer knows the request is coming,
    so it can wait for it and write it with the others in one transaction."""
    st = state()
    slot = _slot()
    try:
        pending = st.store.pending_ingest()
        try:
            st.decoder.submit(fn, args, pending.deliver, hashes=True)
        except BaseException as e:        # never handed over: the writer must not wait for it
            pending.deliver(False, e)
            raise
        pending.result()
    finally:
        slot.release()


@connect_method(bp, "/push.v1.PusherService/Push", None)
def push(req: RawRequest):
    """Parsed, decoded, checked and merged in a decoding worker (:func:`stage_push`); this
    process only gives ids and writes."""
    _stage_in_worker(stage_push, (req.body, req.content_type, req.content_encoding, state().limits, tenant(),
                                  time.time_ns()))
    return push_pb2.PushResponse()


@bp.post("/ingest")
@bp.post("/pyroscope/ingest")
def legacy_ingest():
    """Any format, decoded, checked and merged in a decoding worker (:func:`stage_ingest`)."""
    t = tenant()
    params = parse_params(request.args)
    _stage_in_worker(stage_ingest, (params, request.get_data(cache=False), request.content_type, state().limits, t))
    return ("", 200)


# ------------------------------------------------------------------------------------ read
def render_selection(query: str | None, start_ns: int | None, end_ns: int | None) -> Selection:
    ptype, matchers = parse_query(query)
    if not ptype:
        raise BadInput(f"query {query!r} must start with a profile type such as "
                       "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"app\"}")
    return Selection(ptype, tuple(matchers), start_ns, end_ns, tenant())


def _range(from_key: str, until_key: str) -> tuple[int, int]:
    now = time.time_ns()
    start = parse_time(arg(from_key, default="now-1h"), now, what=from_key)
    end = parse_time(arg(until_key, default="now"), now, what=until_key)
    if start is None or end is None or start > end:
        raise BadInput(f"{from_key} must not be after {until_key}")
    return start, end


def _max_nodes() -> int:
    cfg = state().config
    key = "maxNodes" if arg("maxNodes", default=None) is not None else "max-nodes"
    n = fb.resolve_max_nodes(int_arg(key, 0, -1, cfg["max_nodes_cap"]), cfg["max_nodes"])
    return n or cfg["max_nodes_cap"]


def metadata(profile_type: str, fmt: str) -> dict:
    parts = (profile_type.split(":") + [""] * 5)[:5]
    sample_type, unit = parts[1], parts[2]
    if sample_type in ("inuse_objects", "alloc_objects", "goroutine", "samples"):
        unit = "objects"
    elif sample_type == "cpu":
        unit = "samples"
    return {"format": fmt, "units": unit, "name": sample_type, "sampleRate": 100, "spyName": ""}


def timeline(sel: Selection, start_ns: int, end_ns: int) -> dict:
    """Sum of values per step over [start, end] (Pyroscope's flamebearer ``timeline``)."""
    span_s = max(1, (end_ns - start_ns) // 10**9)
    step_s = max(10, int(math.ceil(span_s / 1000 / 10.0)) * 10)
    start_s = start_ns // 10**9 // step_s * step_s
    n = int((end_ns // 10**9 - start_s) // step_s) + 1
    samples = [0] * n
    for s in state().store.time_series(sel, step_s * 10**9, []):
        for t_ns, v in s["points"]:
            i = int(t_ns // 10**9 - start_s) // step_s
            if 0 <= i < n:
                samples[i] += int(v)
    return {"startTime": int(start_s), "samples": samples, "durationDelta": step_s}


@bp.get("/pyroscope/render")
def render():
    start, end = _range("from", "until")
    sel = render_selection(arg("query", default=""), start, end)
    _, tree = state().store.select_tree(sel, "functions", 0)      # from the call-path index
    fg = fb.flamegraph(tree, _max_nodes())
    body = {"version": 1, "flamebearer": fg.to_flamebearer(), "metadata": metadata(sel.profile_type or "", "single"),
            "timeline": timeline(sel, start, end)}
    return jsonify(body)


@bp.get("/pyroscope/render-diff")
def render_diff():
    ls, le = _range("leftFrom", "leftUntil")
    rs, re_ = _range("rightFrom", "rightUntil")
    left = render_selection(arg("leftQuery", default=""), ls, le)
    right = render_selection(arg("rightQuery", default=""), rs, re_)
    store = state().store
    diff = fb.diff_from_stacksets(store.select(left), store.select(right), _max_nodes())
    body = {"version": 1, "flamebearer": diff.to_flamebearer(),
            "metadata": metadata(left.profile_type or "", "double"),
            "leftTicks": diff.left_ticks, "rightTicks": diff.right_ticks,
            "timeline": timeline(right, rs, re_)}
    return jsonify(body)


def _label_filter() -> tuple[str | None, list[Matcher], int, int]:
    start, end = _range("from", "until")
    ptype, matchers = parse_query(arg("query", "match[]", default=""))
    return ptype, matchers, start, end


@bp.get("/pyroscope/label-values")
def label_values():
    name = arg("label", "name", default=None)
    if not name:
        raise BadInput("parameter label is required, e.g. /pyroscope/label-values?label=service_name")
    ptype, matchers, start, end = _label_filter()
    return jsonify(state().store.label_values(name, tenant(), matchers, ptype, start, end))


@bp.get("/pyroscope/labels")
def label_names():
    ptype, matchers, start, end = _label_filter()
    return jsonify(state().store.label_names(tenant(), matchers, ptype, start, end))
