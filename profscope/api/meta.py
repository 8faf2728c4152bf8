"""What is stored: profile types, label names and values, series, profiles; health; OpenAPI."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..query.selector import parse_query
from .params import arg, int_arg, selection, state, tenant, time_range

bp = Blueprint("meta", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/api/v1/openapi.json")
def openapi():
    from .openapi import document
    return jsonify(document())


@bp.get("/api/v1/profile_types")
def profile_types():
    start, end = time_range()
    return jsonify({"profile_types": state().store.profile_types(tenant(), start, end)})


def _matchers():
    ptype, matchers = parse_query(arg("query", default=""))
    return arg("profile_type", default=ptype), matchers


@bp.get("/api/v1/labels")
def label_names():
    start, end = time_range()
    ptype, matchers = _matchers()
    return jsonify({"names": state().store.label_names(tenant(), matchers, ptype, start, end)})


@bp.get("/api/v1/labels/<name>/values")
def label_values(name: str):
    start, end = time_range()
    ptype, matchers = _matchers()
    return jsonify({"name": name, "values": state().store.label_values(name, tenant(), matchers, ptype, start, end)})


@bp.get("/api/v1/series")
def series():
    start, end = time_range()
    ptype, matchers = _matchers()
    return jsonify({"series": state().store.series(tenant(), matchers, ptype, start, end)})


@bp.get("/api/v1/profiles")
def profiles():
    sel = selection()
    return jsonify({"profiles": state().store.list_profiles(sel, int_arg("limit", 100, 1, 10_000))})


@bp.get("/api/v1/stats")
def stats():
    return jsonify(state().store.stats())
