"""Trace-to-profile joins: the samples of a span, of a trace, or of every span a query matches.

The one entry point for every caller (native API, Pyroscope ``span_selector`` /
``trace_id_selector``, CLI) is :func:`join` (or :func:`select_for_spans` for just the stacks),
so all of them return the same numbers.

Semantics (documented in README "Trace joins"):

- A sample belongs to the span whose id its labels carry (``span_id``, ``profile_id``, Datadog
  ``span id``, an OTLP link) and to the trace of its ``trace_id`` label or link.
- **Span** (``span_ids`` or ``span_query``): with ``descendants`` (default) a span's samples
  include those of every span below it in the stored trace, and those whose Datadog
  ``local root span id`` is one of these spans; a span's ``pyroscope.profile.id`` attribute
  counts as one of its ids. Without ``descendants`` only the span's own samples count.
- Pyroscope SDKs tag only the local root span. A span with no samples of its own (nor below
  it) gets, with ``approximate`` (default), the samples of its nearest sampled ancestor in the
  profiles whose time window overlaps the span: a superset, marked ``approximate``.
- **Trace**: samples linked to the trace id, or to any stored span of the trace.
- With ``unlinked``, spans still without samples get the samples that carry no link at all,
  from profiles of the span's service overlapping its window, matching ``thread.id`` /
  ``process.pid`` against sample labels ``thread_id`` / ``pid`` where both sides have them:
  marked ``approximate``.
- Several of span ids, trace ids and a span query together: a sample must match each.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..analysis.stacks import apply_frame_filters
from ..analysis.tree import Tree, build_tree
from ..errors import BadInput
from ..model import StackSet, ValueType
from ..store.select import Matched, empty_stackset
from ..traceids import span_hex, span_id_arg, trace_hex, trace_id_arg
from .selector import Matcher, Selection
from .spanquery import SpanQuery
from .spantree import SpanForest, SpanKey

MAX_QUERY_SPANS = 100_000          # spans a span query may match; more is an error
_LS_BITS = 32


@dataclass
class JoinResult:
    stackset: StackSet
    profile_type: str
    spans_matched: int = 0
    linked_pairs: int = 0
    approximate: bool = False
    notes: list[str] = field(default_factory=list)
    asked: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**self.asked, "spans_matched": self.spans_matched, "linked_pairs": self.linked_pairs,
                "approximate": self.approximate, "notes": self.notes}


@dataclass
class _Side:
    """Pairs that one condition (span ids, span query, trace ids) selects."""
    keys: np.ndarray                       # int64 profile_id << 32 | labelset_id, unique
    durations: dict[int, int]              # profile id -> duration
    spans: int = 0
    approximate: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class JoinOptions:
    descendants: bool = True
    approximate: bool = True
    unlinked: bool = False


def resolve_type(store, sel: Selection) -> Selection:
    """A selection without a profile type takes the only type stored, else the CPU time type."""
    if sel.profile_type:
        return sel
    types = store.profile_types(sel.tenant, sel.start_ns, sel.end_ns)
    if len(types) <= 1:
        return sel
    cpu = [t for t in types if t.split(":")[1:3] == ["cpu", "nanoseconds"]]
    if len(cpu) == 1:
        return replace(sel, profile_type=cpu[0])
    raise BadInput(f"choose a profile type (query=<type>{{...}}); stored types: {', '.join(types)}")


def select_for_spans(store, sel: Selection, span_ids=None, trace_ids=None, span_query: SpanQuery | None = None,
                     **options) -> StackSet:
    """The merged stacks of the samples joined to spans/traces (see :func:`join`). This is the
    function Pyroscope's ``span_selector`` / ``trace_id_selector`` call."""
    return join(store, sel, span_ids, trace_ids, span_query, **options).stackset


def join(store, sel: Selection, span_ids=None, trace_ids=None, span_query: SpanQuery | None = None, *,
         descendants: bool = True, approximate: bool = True, unlinked: bool = False) -> JoinResult:
    """Samples of ``sel`` joined to span ids (hex strings or ints), trace ids, and/or a span query."""
    res, matched = _resolve(store, sel, span_ids, trace_ids, span_query, JoinOptions(descendants, approximate, unlinked))
    res.stackset = store.traces.stackset(matched)
    return res


def flamegraph(store, sel: Selection, view, span_ids=None, trace_ids=None, span_query: SpanQuery | None = None,
               **options) -> tuple[JoinResult, Tree]:
    """Flame graph of a join; ``view`` as in :mod:`profscope.query.engine` (the same tree code)."""
    res, matched = _resolve(store, sel, span_ids, trace_ids, span_query, JoinOptions(**options))
    if view.focus or view.ignore:     # frame filters need the stacks themselves
        res.stackset = apply_frame_filters(store.traces.stackset(matched), view.focus, view.ignore)
        return res, build_tree([res.stackset], view.granularity, view.max_nodes)
    res.stackset, tree = store.traces.tree(matched, view.granularity, view.max_nodes)
    return res, tree


def _resolve(store, sel: Selection, span_ids, trace_ids, span_query: SpanQuery | None,
             opts: JoinOptions) -> tuple[JoinResult, Matched]:
    if span_ids is None and trace_ids is None and span_query is None:
        raise BadInput("give span_id, trace_id or a span query (service, span_name, min_duration, ...)")
    sel = resolve_type(store, sel)
    tr = store.traces
    m = tr.match(sel)
    pids = m.profile_ids
    asked: dict = {}
    sides: list[_Side] = []
    if span_ids is not None:
        ids = [int(x) if isinstance(x, (int, np.integer)) else span_id_arg(x) for x in span_ids]
        asked["span_ids"] = [span_hex(i) for i in ids]
        spans = tr.find_spans(sel.tenant, span_ids=ids)
        sides.append(_span_side(store, sel, pids, ids, spans, opts))
    if span_query is not None:
        asked["span_query"] = span_query.to_json()
        spans = tr.find_spans(sel.tenant, query=span_query, limit=MAX_QUERY_SPANS + 1)
        if len(spans["span_id"]) > MAX_QUERY_SPANS:
            raise BadInput(f"span query matches more than {MAX_QUERY_SPANS} spans; narrow it "
                           "(time range, service, span_name, duration)")
        sides.append(_span_side(store, sel, pids, [], spans, opts))
    if trace_ids is not None:
        tids = [int(x) if isinstance(x, (int, np.integer)) else trace_id_arg(x) for x in trace_ids]
        asked["trace_ids"] = [trace_hex(t) for t in tids]
        sides.append(_trace_side(store, sel, pids, tids))
    keys = sides[0].keys
    for s in sides[1:]:
        keys = np.intersect1d(keys, s.keys)
    if m.pairs is not None:  # the selection's own sample-label matchers
        keys = np.intersect1d(keys, _keys(m.pairs[0], m.pairs[1]))
    durations: dict[int, int] = {}
    for s in sides:
        durations.update(s.durations)
    pid = keys >> _LS_BITS
    uniq = np.unique(pid)
    matched = Matched(uniq, (pid, (keys & ((1 << _LS_BITS) - 1)).astype(np.int32)), m.profile_type,
                      sum(durations.get(int(p), 0) for p in uniq.tolist()), m.period, m.period_type)
    notes = [n for s in sides for n in s.notes]
    res = JoinResult(empty_stackset(ValueType("", "")), m.profile_type, sum(s.spans for s in sides), len(keys),
                     any(s.approximate for s in sides), notes, asked)
    return res, matched


# ---------------------------------------------------------------------- sides
def _keys(pids: np.ndarray, labelsets: np.ndarray) -> np.ndarray:
    return np.unique((pids.astype(np.int64) << _LS_BITS) | labelsets.astype(np.int64))


def _durations(links: dict[str, np.ndarray]) -> dict[int, int]:
    return dict(zip(links["profile_id"].tolist(), links["duration_nanos"].tolist(), strict=True))


def _span_side(store, sel: Selection, pids: np.ndarray, want_ids: list[int], spans: dict[str, np.ndarray],
               opts: JoinOptions) -> _Side:
    tr = store.traces
    found = SpanForest(spans)
    requested: list[SpanKey] = list(found.keys)
    missing = sorted(set(want_ids) - {k[2] for k in requested})      # ids with no stored span
    forest = found
    if requested and (opts.descendants or opts.approximate or opts.unlinked):
        traces = sorted({((k[0] << 64) | k[1]) for k in requested})
        forest = SpanForest(tr.trace_spans(sel.tenant, traces))
    own: dict[SpanKey, set[int]] = {}
    for k in requested:
        sub = forest.descendants([k]) if opts.descendants else [k]
        own[k] = forest.profile_ids(sub)
    targets = set(missing).union(*own.values())
    roots = targets if opts.descendants else set()
    links = tr.links(pids, span_ids=sorted(targets), root_ids=sorted(roots))
    keys = [_keys(links["profile_id"], links["labelset_id"])]
    durations = _durations(links)
    covered = set(links["span_id"].tolist()) | set(links["root_span_id"].tolist())
    bare = [k for k in requested if not (own[k] & covered)]
    side = _Side(keys[0], durations, len(requested) + len(missing))
    if bare and opts.approximate:
        bare = _via_ancestors(tr, pids, forest, bare, side)
    if bare and opts.unlinked:
        _via_time_window(store, sel, forest, bare, side)
    return side


def _via_ancestors(tr, pids: np.ndarray, forest: SpanForest, bare: list[SpanKey], side: _Side) -> list[SpanKey]:
    """Give spans without samples their nearest sampled ancestor's samples within their window.
    Returns the spans still without samples."""
    chains = {k: forest.ancestors(k) for k in bare}
    anc_ids = sorted(set().union(*(forest.profile_ids(c) for c in chains.values())))
    if not anc_ids:
        return bare
    links = tr.links(pids, span_ids=anc_ids, root_ids=anc_ids)
    if not len(links["profile_id"]):
        return bare
    start = links["time_nanos"]
    end = start + np.maximum(links["duration_nanos"], 0)
    left, parts = [], []
    for k in bare:
        for a in chains[k]:
            ids = np.array(sorted(forest.profile_ids([a])), np.uint64)
            hit = np.isin(links["span_id"], ids) | np.isin(links["root_span_id"], ids)
            if not hit.any():
                continue
            s0, s1 = int(forest.value(k, "start_ns")), int(forest.value(k, "end_ns"))
            hit &= (start <= s1) & (end >= s0)
            parts.append(_keys(links["profile_id"][hit], links["labelset_id"][hit]))
            break
        else:
            left.append(k)
    n = len(bare) - len(left)
    if n:
        side.keys = np.unique(np.concatenate([side.keys, *parts]))
        side.durations.update(_durations(links))
        side.approximate = True
        side.notes.append(f"{n} span(s) carry no samples of their own (profilers that tag only the local root "
                          "span, e.g. pyroscope.profile.id); used the samples of the nearest sampled ancestor "
                          "in profiles overlapping each span's time window: approximate, includes the "
                          "ancestor's work outside the span")
    return left


def _via_time_window(store, sel: Selection, forest: SpanForest, bare: list[SpanKey], side: _Side) -> None:
    """Unlinked samples of the span's service in profiles overlapping the span's window."""
    tr = store.traces
    d = store.dicts
    attrs = tr.find_spans(sel.tenant, span_ids=[k[2] for k in bare], attributes=True)
    attr_of = {(h, lo, s): a for h, lo, s, a in zip(attrs["trace_hi"].tolist(), attrs["trace_lo"].tolist(),
                                                     attrs["span_id"].tolist(), attrs["attributes"], strict=True)}
    parts, n = [], 0
    for k in bare:
        svc = str(forest.value(k, "service"))
        m = tr.match(replace(sel, matchers=(*sel.matchers, Matcher("service_name", "=", svc))))
        pids = tr.overlapping(m.profile_ids, int(forest.value(k, "start_ns")), int(forest.value(k, "end_ns")))
        if not len(pids):
            continue
        if m.pairs is not None:
            keep = np.isin(m.pairs[0], pids)
            pp, ll = m.pairs[0][keep], m.pairs[1][keep]
        else:
            pp, ll = tr.pairs_of_profiles(pids)
        a = attr_of.get(k, {})
        want = {"thread_id": a.get("thread.id"), "pid": a.get("process.pid")}
        ok = np.array([_unlinked_ok(d, int(ls), want) for ls in ll.tolist()], bool) if len(ll) else np.zeros(0, bool)
        if ok.any():
            parts.append(_keys(pp[ok], ll[ok]))
            n += 1
    if n:
        side.keys = np.unique(np.concatenate([side.keys, *parts]))
        side.approximate = True
        side.notes.append(f"{n} span(s) have no linked samples; used unlinked samples of the span's service in "
                          "profiles overlapping its time window (matching thread_id / pid labels where both "
                          "sides carry them): approximate")


def _unlinked_ok(d, labelset_id: int, want: dict[str, str | None]) -> bool:
    from ..store.links import labelset_link
    if labelset_id and labelset_link(d, labelset_id) is not None:
        return False
    labels = d.labelset_labels.get(labelset_id, {})
    return all(v is None or k not in labels or labels[k] == v for k, v in want.items())


def _trace_side(store, sel: Selection, pids: np.ndarray, trace_ids: list[int]) -> _Side:
    tr = store.traces
    forest = SpanForest(tr.trace_spans(sel.tenant, trace_ids))
    ids = sorted(forest.profile_ids(forest.keys))
    links = tr.links(pids, span_ids=ids, root_ids=ids, trace_ids=trace_ids)
    return _Side(_keys(links["profile_id"], links["labelset_id"]), _durations(links), len(forest))
