"""Parent/child relations of spans (pure; spans come as the column dicts of ``store.traces``)."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SpanKey = tuple[int, int, int]  # (trace_hi, trace_lo, span_id)


class SpanForest:
    """The spans of some traces, indexed by (trace, span id)."""

    def __init__(self, spans: dict[str, np.ndarray]):
        self.spans = spans
        hi = spans["trace_hi"].tolist()
        lo = spans["trace_lo"].tolist()
        sid = spans["span_id"].tolist()
        par = spans["parent_span_id"].tolist()
        self.keys: list[SpanKey] = list(zip(hi, lo, sid, strict=True))
        self.row: dict[SpanKey, int] = {k: i for i, k in enumerate(self.keys)}
        self.children: dict[SpanKey, list[SpanKey]] = {}
        self.parent: dict[SpanKey, SpanKey | None] = {}
        for k, p in zip(self.keys, par, strict=True):
            pk = (k[0], k[1], p) if p else None
            self.parent[k] = pk
            if pk is not None:
                self.children.setdefault(pk, []).append(k)

    def __len__(self) -> int:
        return len(self.keys)

    def descendants(self, roots: Iterable[SpanKey]) -> list[SpanKey]:
        """``roots`` and everything below them (each once)."""
        seen: set[SpanKey] = set()
        out: list[SpanKey] = []
        stack = list(roots)
        while stack:
            k = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            out.append(k)
            stack.extend(self.children.get(k, ()))
        return out

    def ancestors(self, key: SpanKey) -> list[SpanKey]:
        """Parent, grandparent, ... of ``key`` among the stored spans (nearest first)."""
        out: list[SpanKey] = []
        seen = {key}
        p = self.parent.get(key)
        while p is not None and p in self.row and p not in seen:
            out.append(p)
            seen.add(p)
            p = self.parent.get(p)
        return out

    def value(self, key: SpanKey, column: str):
        return self.spans[column][self.row[key]]

    def profile_ids(self, keys: Iterable[SpanKey]) -> set[int]:
        """The ids a span's samples may carry: its own id and its pyroscope.profile.id."""
        out: set[int] = set()
        col = self.spans["profile_span_id"]
        for k in keys:
            out.add(k[2])
            if k in self.row:
                p = int(col[self.row[k]])
                if p:
                    out.add(p)
        return out

    def preorder(self) -> list[tuple[SpanKey, int]]:
        """(span, depth) in tree order, roots and siblings by start time; orphans (parent not
        stored) are treated as roots."""
        start = self.spans["start_ns"]
        order = lambda ks: sorted(ks, key=lambda k: (int(start[self.row[k]]), k[2]))  # noqa: E731
        roots = [k for k in self.keys if self.parent[k] is None or self.parent[k] not in self.row]
        out: list[tuple[SpanKey, int]] = []
        stack = [(k, 0) for k in reversed(order(roots))]
        seen: set[SpanKey] = set()
        while stack:
            k, d = stack.pop()
            if k in seen:
                continue
            seen.add(k)
            out.append((k, d))
            stack.extend((c, d + 1) for c in reversed(order(self.children.get(k, []))))
        return out
