"""Native diff endpoint: two stored selections in, a diff flame graph, top table and regressions out.

``POST /api/v1/diff`` with a JSON body::

    {"base": {"query": "cpu{service_name=\\"api\\", version=\\"1.4.0\\"}", "from": "now-1h", "until": "now"},
     "head": {"query": "cpu{service_name=\\"api\\", version=\\"1.5.0\\"}"},
     "normalize": "total", "granularity": "functions", "max_nodes": 8192,
     "threshold": 10, "min_share": 1, "min_delta": 0.1, "alpha": 0.01, "metric": "flat"}

The answer is the report of :meth:`~profscope.analysis.diff.DiffResult.to_json` plus
``flamegraph`` (the union tree, both sides' values per node).
"""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from ..analysis.diff import DiffOptions, Side
from ..analysis.diff import diff as run_diff
from ..analysis.stacks import GRANULARITIES
from ..errors import BadInput
from ..query.selector import Selection, parse_query
from ..query.timeparse import parse_time
from .params import state, tenant

bp = Blueprint("diff", __name__, url_prefix="/api/v1")

_DEFAULTS = DiffOptions()
_NUMBERS = {"threshold": "threshold_pct", "min_share": "min_share_pct", "min_delta": "min_delta_pct",
            "alpha": "alpha"}


def _body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput('request body must be a JSON object like {"base": {"query": ...}, "head": {"query": ...}}')
    return body


def _int(body: dict, name: str, default: int, lo: int, hi: int) -> int:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadInput(f"{name} must be an integer between {lo} and {hi}, got {v!r}")
    return v


def side_selection(body: dict, side: str, sample_type: str | None, tenant_id: str) -> Selection:
    spec = body.get(side)
    if not isinstance(spec, dict) or not isinstance(spec.get("query", ""), str):
        raise BadInput(f'{side} must be an object like {{"query": "cpu{{service_name=\\"api\\"}}", '
                       '"from": "now-1h", "until": "now"}')
    ptype, matchers = parse_query(spec.get("query", ""))
    start = parse_time(spec.get("from"), what=f"{side}.from")
    end = parse_time(spec.get("until"), what=f"{side}.until")
    if start is not None and end is not None and start > end:
        raise BadInput(f"{side}.from must not be after {side}.until")
    return Selection(ptype or sample_type, tuple(matchers), start, end, tenant_id)


@bp.post("/diff")
def diff():
    """Diff two stored selections; the report says whether head regressed against base."""
    body = _body()
    st = state()
    sample_type = body.get("sample_type")
    if sample_type is not None and not isinstance(sample_type, str):
        raise BadInput(f"sample_type must be a string, got {sample_type!r}")
    normalize = body.get("normalize", "total")
    granularity = body.get("granularity", "functions")
    if granularity not in GRANULARITIES:
        raise BadInput(f"granularity {granularity!r} is not one of: {', '.join(GRANULARITIES)}")
    kwargs = {field: body[key] for key, field in _NUMBERS.items() if body.get(key) is not None}
    opts = DiffOptions(metric=body.get("metric", _DEFAULTS.metric), **kwargs)
    max_nodes = _int(body, "max_nodes", st.config["max_nodes"], 1, st.config["max_nodes_cap"])
    limit = _int(body, "limit", 100, 0, 1_000_000)
    n_stacks = _int(body, "stacks", 20, 0, 10_000)
    t = tenant()
    sels = [side_selection(body, name, sample_type, t) for name in ("base", "head")]
    sides = []
    for name, per in zip(("base", "head"), st.store.select_per_profile(*sels), strict=False):
        if not len(per.profile_ids):
            raise BadInput(f"{name} selection {body[name].get('query', '')!r} matches no stored profile")
        sides.append(Side.from_selection(per))
    res = run_diff(sides[0], sides[1], normalize, granularity, opts)
    out = res.to_json(limit, n_stacks)
    if body.get("flamegraph", True):
        out["flamegraph"] = res.tree_json(max_nodes)
    return jsonify(out)
