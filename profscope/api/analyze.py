"""Analyzer findings of a selection, or of a comparison of two selections.

Every analyzer plugin (Python plugins and, through their adapter, Wasm plugins) runs on the
selection's flame graph tree; one analyzer failing is reported in ``errors`` and does not hide
the others' findings."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..analysis.tree import build_tree
from ..errors import BadInput
from ..model import StackSet
from ..plugins import analyzers, app_plugin_manager, run_analyzers, run_diff_analyzers
from ..query import engine
from ..query.selector import Selection, parse_query
from ..query.timeparse import parse_time
from .params import arg, selection, state, view

bp = Blueprint("analyze", __name__, url_prefix="/api/v1")


@bp.get("/analyze")
def analyze():
    """``query`` (+ ``from``/``until``) selects the profiles; with ``base_query`` the head
    selection is compared with that baseline and the diff analyzers run instead."""
    st, pm, v = state(), app_plugin_manager(), view()
    sel = selection()
    only = request.args.getlist("analyzer") or None
    head = engine.stackset(st.store, sel, v)
    meta = {**engine.describe(head, sel), "query": arg("query", default=""),
            "from": sel.start_ns, "until": sel.end_ns, "granularity": v.granularity}
    base_query = arg("base_query", default=None)
    if base_query is None:
        tree = build_tree([head], v.granularity, v.max_nodes)
        result = run_analyzers(tree, meta, pm, only=only)
    else:
        base_sel = _base_selection(base_query, sel)
        base = engine.stackset(st.store, base_sel, v)
        check_comparable(base, head)
        tree = build_tree([base, head], v.granularity, v.max_nodes)
        meta.update(base_query=base_query, base_from=base_sel.start_ns, base_until=base_sel.end_ns,
                    base_total=int(base.total), base_profiles=int(base.n_profiles))
        result = run_diff_analyzers(tree, meta, pm, only=only)
    return jsonify({**meta, "nodes": tree.n_nodes, "analyzers": analyzers(pm, diff=base_query is not None),
                    "findings": result["findings"], "errors": result["errors"]})


def check_comparable(base: StackSet, head: StackSet) -> None:
    """Both sides of a comparison must have the same sample type and unit (when both have data)."""
    if base.n_profiles and head.n_profiles and base.sample_type != head.sample_type:
        raise BadInput(f"cannot compare {base.sample_type.type}/{base.sample_type.unit} (base_query) with "
                       f"{head.sample_type.type}/{head.sample_type.unit} (query): pick the same profile type")


def _base_selection(base_query: str, head: Selection) -> Selection:
    """The baseline: ``base_query`` (its profile type defaults to the head's) over
    ``base_from``/``base_until`` (default: the head's range)."""
    ptype, matchers = parse_query(base_query)
    start = parse_time(arg("base_from", default=None), what="base_from")
    end = parse_time(arg("base_until", default=None), what="base_until")
    if start is not None and end is not None and start > end:
        raise BadInput("parameter base_from must not be after base_until")
    return Selection(ptype or head.profile_type, tuple(matchers),
                     head.start_ns if start is None else start, head.end_ns if end is None else end, head.tenant)
