"""Selection in, answer out: the glue between the store and the pure analysis functions.
Used by the HTTP API, the CLI and plugins alike."""
from __future__ import annotations

from dataclasses import dataclass

from ..analysis.stacks import apply_frame_filters
from ..analysis.top import TopTable, top_from_tree, top_table
from ..analysis.tree import Tree, build_tree
from ..errors import BadInput
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


def check_comparable(base: StackSet, head: StackSet, base_name: str = "base_query",
                     head_name: str = "query") -> None:
    """Both sides of a comparison must have the same sample type and unit (when both have data)."""
    if base.n_profiles and head.n_profiles and base.sample_type != head.sample_type:
        raise BadInput(f"cannot compare {base.sample_type.type}/{base.sample_type.unit} ({base_name}) with "
                       f"{head.sample_type.type}/{head.sample_type.unit} ({head_name}): pick the same profile type")


def diff_tree(store, base_sel: Selection, head_sel: Selection, view: View = View(), *,
              names: tuple[str, str] = ("base_query", "query")) -> tuple[StackSet, StackSet, Tree]:
    """(base, head, union tree with columns [base, head]) of two selections of the same
    sample type; ``names`` name the two selections in the error when they differ."""
    head = stackset(store, head_sel, view)
    base = stackset(store, base_sel, view)
    check_comparable(base, head, *names)
    return base, head, build_tree([base, head], view.granularity, view.max_nodes)


def top(store, sel: Selection, view: View = View()) -> TopTable:
    if view.focus or view.ignore:   # frame filters need the stacks themselves
        return top_table(stackset(store, sel, view), view.granularity)
    # from the unpruned call-path tree: work per node instead of per stack frame
    info, tree = store.select_tree(sel, view.granularity, 0)
    return top_from_tree(tree, info.sample_type.type, info.sample_type.unit, info.total)


def describe(ss: StackSet, sel: Selection) -> dict:
    return {"profile_type": sel.profile_type, "sample_type": ss.sample_type.type,
            "unit": ss.sample_type.unit, "total": int(ss.total), "profiles": int(ss.n_profiles),
            "duration_nanos": int(ss.duration_nanos)}
