"""Selection in, answer out: the glue between the store and the pure analysis functions.
Used by the HTTP API, the CLI and plugins alike."""
from __future__ import annotations

from dataclasses import dataclass

from ..analysis.stacks import apply_frame_filters
from ..analysis.top import TopTable, top_table
from ..analysis.tree import Tree, build_tree
from ..model import StackSet
from .selector import Selection


@dataclass(frozen=True)
class View:
    """How to look at a selection."""
    granularity: str = "functions"
    focus: str | None = None
    ignore: str | None = None
    max_nodes: int = 8192


def stackset(store, sel: Selection, view: View = View()) -> StackSet:
    ss = store.select(sel)
    return apply_frame_filters(ss, view.focus, view.ignore)


def flamegraph(store, sel: Selection, view: View = View()) -> tuple[StackSet, Tree]:
    if view.focus or view.ignore:   # frame filters need the stacks themselves
        ss = stackset(store, sel, view)
        return ss, build_tree([ss], view.granularity, view.max_nodes)
    return store.select_tree(sel, view.granularity, view.max_nodes)


def top(store, sel: Selection, view: View = View()) -> TopTable:
    return top_table(stackset(store, sel, view), view.granularity)


def describe(ss: StackSet, sel: Selection) -> dict:
    return {"profile_type": sel.profile_type, "sample_type": ss.sample_type.type,
            "unit": ss.sample_type.unit, "total": int(ss.total), "profiles": int(ss.n_profiles),
            "duration_nanos": int(ss.duration_nanos)}
