"""Grafana Pyroscope's query API (``querier.v1.QuerierService``, Connect unary), as Grafana's
Pyroscope data source and ``profilecli`` call it. Times in requests are milliseconds since epoch
(0 = unbounded); label selectors use PromQL matcher syntax; ``__profile_type__`` in a matcher
list selects the profile type.
"""
from __future__ import annotations

import re

import numpy as np
from flask import Blueprint

from ..analysis.stacks import keep_call_site
from ..analysis.tree import Tree, build_tree
from ..errors import BadInput
from ..formats.pprof_write import encode_stackset
from ..model import StackSet
from ..query.selector import Matcher, Selection, parse_matchers
from ..wire import flamebearer as fb
from ..wire.proto.google.v1 import profile_pb2
from ..wire.proto.querier.v1 import querier_pb2 as q
from ..wire.proto.types.v1 import types_pb2 as t
from ..wire.push import profile_uuid
from ..wire.pyroscope_tree import tree_bytes, truncate_stacks
from .connect_route import connect_method
from .params import state, tenant

bp = Blueprint("querier", __name__)
PREFIX = "/querier.v1.QuerierService/"
PROFILE_TYPE_LABEL = "__profile_type__"
NS_PER_MS = 1_000_000


def ms_range(start: int, end: int) -> tuple[int | None, int | None]:
    s = start * NS_PER_MS if start else None
    e = end * NS_PER_MS + (NS_PER_MS - 1) if end else None
    if s is not None and e is not None and s > e:
        raise BadInput(f"start ({start}) is after end ({end})")
    return s, e


def split_profile_type(matchers: list[Matcher]) -> tuple[str | None, list[Matcher]]:
    ptype = None
    rest = []
    for m in matchers:
        if m.name == PROFILE_TYPE_LABEL and m.op == "=":
            ptype = m.value
        else:
            rest.append(m)
    return ptype, rest


def matcher_groups(selectors: list[str]) -> list[tuple[str | None, list[Matcher]]]:
    """Each selector string is one alternative (OR); no selector means everything."""
    if not selectors:
        return [(None, [])]
    return [split_profile_type(parse_matchers(s)) for s in selectors]


def selection(profile_type: str, label_selector: str, start: int, end: int, req=None) -> Selection:
    """The selection of a request; ``req`` adds its ``stack_trace_selector`` and
    ``profile_id_selector`` when the message has them."""
    if not profile_type:
        raise BadInput("profile_typeID is required, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds")
    ptype, matchers = split_profile_type(parse_matchers(label_selector or "{}"))
    s, e = ms_range(start, end)
    return Selection(profile_type or ptype, tuple(matchers), s, e, tenant(),
                     call_site=call_site(req), profile_ids=profile_ids(req))


def call_site(req) -> tuple[str, ...]:
    """``stack_trace_selector.call_site`` names, root first. ``go_pgo`` is not supported: a
    request that asks for it is refused rather than answered with unreduced stacks."""
    if req is None or "stack_trace_selector" not in req.DESCRIPTOR.fields_by_name \
            or not req.HasField("stack_trace_selector"):
        return ()
    sts = req.stack_trace_selector
    if sts.HasField("go_pgo") and (sts.go_pgo.keep_locations or sts.go_pgo.aggregate_callees):
        raise BadInput("stack_trace_selector.go_pgo is not supported by profscope; use call_site")
    names = tuple(loc.name for loc in sts.call_site)
    if any(not n for n in names):
        raise BadInput("stack_trace_selector.call_site: every location needs a name")
    return names


_SOURCE_ID = re.compile(r"^[0-9a-f]+-[0-9a-f]{16}$")


def profile_ids(req) -> tuple[str, ...]:
    """``profile_id_selector``: store profile ids (decimal, ``profile_ids`` of an ingest answer),
    upload ``source_id`` values, or the UUID a push client sent as a sample's ``ID`` (kept as
    its ``source_id``; any case, dashes optional). Anything else is refused."""
    if req is None or "profile_id_selector" not in req.DESCRIPTOR.fields_by_name:
        return ()
    out = []
    for raw in req.profile_id_selector:
        v = raw.strip()
        if v.isdigit() or _SOURCE_ID.match(v):
            out.append(v)
        elif (uid := profile_uuid(v)) is not None:
            out.append(uid)
        else:
            raise BadInput(f"profile_id_selector entry {raw!r} is not a profile id: use the decimal id "
                           "(profile_ids of an ingest answer), a source_id or the UUID a push sent")
    return tuple(out)


def max_nodes(req) -> int:
    cfg = state().config
    n = req.max_nodes if req.HasField("max_nodes") else 0
    n = fb.resolve_max_nodes(n, cfg["max_nodes"])
    return min(n, cfg["max_nodes_cap"]) if n else cfg["max_nodes_cap"]


def flamegraph_message(fg: fb.FlameGraph) -> q.FlameGraph:
    msg = q.FlameGraph(names=fg.names, total=fg.total, max_self=fg.max_self)
    for lv in fg.levels:
        msg.levels.add(values=lv)
    return msg


def _check_format(fmt: int) -> None:
    if fmt not in (q.PROFILE_FORMAT_UNSPECIFIED, q.PROFILE_FORMAT_FLAMEGRAPH, q.PROFILE_FORMAT_TREE):
        raise BadInput(f"format {fmt} is not supported; use PROFILE_FORMAT_FLAMEGRAPH or PROFILE_FORMAT_TREE")


def _flamegraph_or_tree(tree: Tree, req, response_cls):
    """The response of SelectMergeStacktraces / SelectMergeSpanProfile in the requested format,
    from an unpruned function-name ``tree``."""
    if req.format == q.PROFILE_FORMAT_TREE:
        return response_cls(tree=tree_bytes(tree, max_nodes(req)))
    return response_cls(flamegraph=flamegraph_message(fb.flamegraph(tree, max_nodes(req))))


# ------------------------------------------------------------------------------------ metadata
@connect_method(bp, PREFIX + "ProfileTypes", q.ProfileTypesRequest)
def profile_types(req: q.ProfileTypesRequest):
    s, e = ms_range(req.start, req.end)
    out = q.ProfileTypesResponse()
    for pid in state().store.profile_types(tenant(), s, e):
        parts = (pid.split(":") + [""] * 5)[:5]
        out.profile_types.add(ID=pid, name=parts[0], sample_type=parts[1], sample_unit=parts[2],
                              period_type=parts[3], period_unit=parts[4])
    return out


def _series(matchers: list[str], start: int, end: int) -> list[dict]:
    s, e = ms_range(start, end)
    store = state().store
    seen: dict[tuple, dict] = {}
    for ptype, ms in matcher_groups(matchers):
        for row in store.series(tenant(), ms, ptype, s, e):
            labels = dict(row["labels"])
            parts = (row["profile_type"].split(":") + [""] * 5)[:5]
            labels.update({PROFILE_TYPE_LABEL: row["profile_type"], "__type__": parts[1], "__unit__": parts[2],
                           "__period_type__": parts[3], "__period_unit__": parts[4]})
            seen.setdefault(tuple(sorted(labels.items())), labels)
    return list(seen.values())


@connect_method(bp, PREFIX + "LabelNames", t.LabelNamesRequest)
def label_names(req: t.LabelNamesRequest):
    s, e = ms_range(req.start, req.end)
    names: set[str] = set()
    for ptype, ms in matcher_groups(list(req.matchers)):
        names.update(state().store.label_names(tenant(), ms, ptype, s, e))
    if names:
        names.add(PROFILE_TYPE_LABEL)
    return t.LabelNamesResponse(names=sorted(names))


@connect_method(bp, PREFIX + "LabelValues", t.LabelValuesRequest)
def label_values(req: t.LabelValuesRequest):
    if not req.name:
        raise BadInput("name is required: the label whose values to list")
    s, e = ms_range(req.start, req.end)
    values: set[str] = set()
    for ptype, ms in matcher_groups(list(req.matchers)):
        if req.name == PROFILE_TYPE_LABEL:
            values.update(x["profile_type"] for x in state().store.series(tenant(), ms, ptype, s, e))
        else:
            values.update(state().store.label_values(req.name, tenant(), ms, ptype, s, e))
    return t.LabelValuesResponse(names=sorted(values))


@connect_method(bp, PREFIX + "Series", q.SeriesRequest)
def series(req: q.SeriesRequest):
    out = q.SeriesResponse()
    keep = set(req.label_names)
    seen = set()
    for labels in _series(list(req.matchers), req.start, req.end):
        if keep:
            labels = {k: v for k, v in labels.items() if k in keep}
        key = tuple(sorted(labels.items()))
        if key in seen:
            continue
        seen.add(key)
        out.labels_set.add().labels.extend(t.LabelPair(name=k, value=v) for k, v in key)
    return out


# ------------------------------------------------------------------------------------ profiles
def _stackset(req) -> StackSet:
    return state().store.select(selection(req.profile_typeID, req.label_selector, req.start, req.end, req))


@connect_method(bp, PREFIX + "SelectMergeStacktraces", q.SelectMergeStacktracesRequest)
def select_merge_stacktraces(req: q.SelectMergeStacktracesRequest):
    _check_format(req.format)
    spans, traces = list(req.span_selector), list(req.trace_id_selector)
    if spans or traces:   # trace joins: the same engine as /api/v1/traces (query/traces.py)
        from ..query.traces import select_for_spans
        sel = selection(req.profile_typeID, req.label_selector, req.start, req.end, req)
        ss = select_for_spans(state().store, sel, span_ids=spans or None, trace_ids=traces or None)
        tree = build_tree([keep_call_site(ss, sel.call_site)], "functions")
    else:   # straight from the store's call-path index, like /api/v1/flamegraph
        sel = selection(req.profile_typeID, req.label_selector, req.start, req.end, req)
        _, tree = state().store.select_tree(sel, "functions", 0)
    return _flamegraph_or_tree(tree, req, q.SelectMergeStacktracesResponse)


@connect_method(bp, PREFIX + "SelectMergeProfile", q.SelectMergeProfileRequest)
def select_merge_profile(req: q.SelectMergeProfileRequest):
    ss = _stackset(req)
    if req.HasField("max_nodes") and req.max_nodes > 0:   # unset, 0 or negative: every node
        ss = truncate_stacks(ss, int(req.max_nodes))
    return encode_stackset(ss, compress=False), profile_pb2.Profile


@connect_method(bp, PREFIX + "SelectMergeSpanProfile", q.SelectMergeSpanProfileRequest)
def select_merge_span_profile(req: q.SelectMergeSpanProfileRequest):
    """The samples of the given spans: the same engine as /api/v1/traces (query/traces.py)."""
    from ..query.traces import select_for_spans
    _check_format(req.format)
    spans = [s for s in req.span_selector if s.strip()]
    if not spans:
        raise BadInput("span_selector must list at least one span id (16 hex digits)")
    sel = selection(req.profile_typeID, req.label_selector, req.start, req.end)
    return _flamegraph_or_tree(build_tree([select_for_spans(state().store, sel, span_ids=spans)], "functions"), req,
                               q.SelectMergeSpanProfileResponse)


@connect_method(bp, PREFIX + "Diff", q.DiffRequest)
def diff(req: q.DiffRequest):
    if not req.HasField("left") or not req.HasField("right"):
        raise BadInput("Diff needs both left and right SelectMergeStacktraces requests")
    d = fb.diff_from_stacksets(_stackset(req.left), _stackset(req.right), max_nodes(req.right))
    msg = q.FlameGraphDiff(names=d.names, total=d.total, max_self=d.max_self,
                           leftTicks=d.left_ticks, rightTicks=d.right_ticks)
    for lv in d.levels:
        msg.levels.add(values=lv)
    return q.DiffResponse(flamegraph=msg)


@connect_method(bp, PREFIX + "SelectSeries", q.SelectSeriesRequest)
def select_series(req: q.SelectSeriesRequest):
    sel = selection(req.profile_typeID, req.label_selector, req.start, req.end, req)
    if req.step <= 0:
        raise BadInput(f"step must be a positive number of seconds, got {req.step}")
    step_ns = max(1, int(req.step * 1e9))
    average = req.HasField("aggregation") and req.aggregation == t.TIME_SERIES_AGGREGATION_TYPE_AVERAGE
    rows = state().store.time_series(sel, step_ns, list(req.group_by), aggregation="avg" if average else "sum")
    if req.HasField("limit") and req.limit > 0 and len(rows) > req.limit:
        totals = np.array([sum(v for _, v in r["points"]) for r in rows])
        keep = sorted(np.argsort(-totals, kind="stable")[: req.limit].tolist())
        rows = [rows[i] for i in keep]
    out = q.SelectSeriesResponse()
    for r in rows:
        s = out.series.add()
        s.labels.extend(t.LabelPair(name=k, value=v) for k, v in sorted(r["labels"].items()))
        for t_ns, v in r["points"]:
            s.points.add(value=float(v), timestamp=int(t_ns // NS_PER_MS))
    return out


@connect_method(bp, PREFIX + "GetProfileStats", t.GetProfileStatsRequest)
def profile_stats(req: t.GetProfileStatsRequest):
    rng = state().store.time_bounds(tenant())
    if rng is None:
        return t.GetProfileStatsResponse(data_ingested=False)
    return t.GetProfileStatsResponse(data_ingested=True, oldest_profile_time=rng[0] // NS_PER_MS,
                                     newest_profile_time=rng[1] // NS_PER_MS)
