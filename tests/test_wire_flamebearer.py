"""Pyroscope's flame graph ``levels`` encoding: the worked example of the spec notes, and the
vectorized encoder against a direct transcription of Pyroscope's stack-based walk."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.tree import build_tree
from profscope.formats.folded import decode_folded
from profscope.wire.flamebearer import flamegraph, flamegraph_diff, resolve_max_nodes


def flamegraph_from_stackset(ss, max_nodes=None):
    """A stack set's function-name flame graph, as the server builds one from a tree."""
    return flamegraph(build_tree([ss], "functions"), resolve_max_nodes(max_nodes))


def stackset(lines: dict[str, int]):
    text = "\n".join(f"{k} {v}" for k, v in lines.items()).encode()
    return profile_to_stackset(decode_folded(text), "samples")


# ------------------------------------------------------------------ reference (one node at a time)
class Node:
    def __init__(self, name):
        self.name, self.self, self.total, self.children = name, 0, 0, {}


def ref_tree(stacks: dict[str, int]) -> Node:
    root = Node("total")
    for path, v in stacks.items():
        node = root
        node.total += v
        for fr in path.split(";"):
            node = node.children.setdefault(fr, Node(fr))
            node.total += v
        node.self += v
    return root


def ref_flamegraph(root: Node, max_nodes: int):
    """Pyroscope's NewFlameGraph, written out literally: pop a node, record it, push its
    children left to right (so the rightmost is visited next), fold small ones into ``other``."""
    all_totals = []
    todo = list(root.children.values())
    while todo:
        n = todo.pop()
        all_totals.append(n.total)
        todo.extend(n.children.values())
    min_val = 0
    if max_nodes > 0 and len(all_totals) > max_nodes:
        min_val = sorted(all_totals)[-max_nodes]
    names, index, levels, max_self = [], {}, [], 0
    stack = [(0, 0, root)]
    while stack:
        x, level, n = stack.pop()
        max_self = max(max_self, n.self)
        if n.name not in index:
            index[n.name] = len(names)
            names.append(n.name)
        while len(levels) <= level:
            levels.append([])
        levels[level].append((x, n.total, n.self, index[n.name]))
        x += n.self
        other = 0
        for name in sorted(n.children):
            c = n.children[name]
            if c.total >= min_val and c.name != "other":
                stack.append((x, level + 1, c))
                x += c.total
            else:
                other += c.total
        if other:
            o = Node("other")
            o.self = o.total = other
            stack.append((x, level + 1, o))
    out = []
    for lv in levels:
        lv.sort()
        flat, prev_end = [], 0
        for x, tot, slf, i in lv:
            flat += [x - prev_end, tot, slf, i]
            prev_end = x + tot
        out.append(flat)
    return names, out, root.total, max_self


def decode_levels(names, levels, width=4):
    """Levels back to {path: self}, by x-interval containment."""
    bars = []
    for d, lv in enumerate(levels):
        end = 0
        for j in range(0, len(lv), width):
            x = end + lv[j]
            bars.append((d, x, lv[j + 1], lv[j + 2], names[lv[j + width - 1]]))
            end = x + lv[j + 1]
    out = {}
    for d, x, _tot, slf, name in bars:
        if d == 0 or not slf:
            continue
        path = [name]
        for dd in range(d - 1, 0, -1):
            parent = [b for b in bars if b[0] == dd and b[1] <= x < b[1] + b[2]]
            path.append(parent[0][4])
        key = ";".join(reversed(path))
        out[key] = out.get(key, 0) + slf
    return out


# ------------------------------------------------------------------ tests
def test_worked_example_of_the_spec():
    fg = flamegraph_from_stackset(stackset({"a;b": 3, "a;c": 2, "d": 5}))
    assert fg.names == ["total", "d", "a", "c", "b"]
    assert fg.levels == [[0, 10, 0, 0], [0, 5, 0, 2, 0, 5, 5, 1], [0, 3, 3, 4, 0, 2, 2, 3]]
    assert fg.total == 10 and fg.max_self == 5


def test_max_nodes_folds_into_other_after_the_kept_children():
    ss = stackset({"a;b": 3, "a;c": 2, "d": 5})
    fg = flamegraph_from_stackset(ss, 3)            # keeps a, d, b; c becomes "other" after b
    assert fg.names == ["total", "d", "a", "other", "b"]
    assert fg.levels[2] == [0, 3, 3, 4, 0, 2, 2, 3]
    fg2 = flamegraph_from_stackset(ss, 2)           # keeps a, d; a's children fold
    assert fg2.levels == [[0, 10, 0, 0], [0, 5, 0, 2, 0, 5, 5, 1], [0, 5, 5, 3]]
    assert fg2.names[3] == "other"


stacks_strategy = st.dictionaries(
    st.lists(st.sampled_from(["a", "b", "c", "d", "other", "total", "e"]), min_size=1, max_size=5).map(";".join),
    st.integers(1, 50), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(stacks_strategy, st.sampled_from([-1, 1, 2, 3, 5, 8, 1000]))
def test_matches_pyroscope_walk(stacks, max_nodes):
    fg = flamegraph(build_tree([stackset(stacks)], "functions"), max_nodes if max_nodes > 0 else 0)
    names, levels, total, max_self = ref_flamegraph(ref_tree(stacks), max_nodes)
    assert (fg.names, fg.levels, fg.total, fg.max_self) == (names, levels, total, max_self)
    if max_nodes < 0 and not any("other" in k.split(";") for k in stacks):
        # unpruned (and no real frame called "other", which Pyroscope folds): levels decode
        # back to the input stacks
        expect: dict[str, int] = {}
        for k, v in stacks.items():
            expect[k] = expect.get(k, 0) + v
        assert decode_levels(fg.names, fg.levels) == expect


@settings(max_examples=80, deadline=None)
@given(stacks_strategy, stacks_strategy, st.sampled_from([0, 2, 4, 1000]))
def test_diff_sides_match_single_graphs(left, right, max_nodes):
    tree = build_tree([stackset(left), stackset(right)], "functions")
    d = flamegraph_diff(tree, max_nodes)
    assert d.left_ticks == sum(left.values()) and d.right_ticks == sum(right.values())
    assert d.total == d.left_ticks + d.right_ticks
    for lv in d.levels:
        assert len(lv) % 7 == 0
    if max_nodes == 0:
        # each side, read back from the 7-int bars, is that side's own stacks
        left_levels = [[v for j in range(0, len(lv), 7) for v in (lv[j], lv[j + 1], lv[j + 2], lv[j + 6])]
                       for lv in d.levels]
        right_levels = [[v for j in range(0, len(lv), 7) for v in (lv[j + 3], lv[j + 4], lv[j + 5], lv[j + 6])]
                        for lv in d.levels]
        for side, levels in ((left, left_levels), (right, right_levels)):
            expect: dict[str, int] = {}
            for k, v in side.items():
                expect[k] = expect.get(k, 0) + v
            assert decode_levels(d.names, levels) == expect


def test_diff_layout_example():
    left = stackset({"a;b": 3, "a;c": 2, "d": 5})
    right = stackset({"a;b": 1, "a;e": 2, "f": 5})
    d = flamegraph_diff(build_tree([left, right], "functions"), 0)
    assert d.names == ["total", "f", "d", "a", "e", "c", "b"]
    assert d.levels[0] == [0, 10, 0, 0, 8, 0, 0]
    # a: left 5 / right 3; d: left only; f: right only (offsets delta-encoded per side)
    assert d.levels[1] == [0, 5, 0, 0, 3, 0, 3, 0, 5, 5, 0, 0, 0, 2, 0, 0, 0, 0, 5, 5, 1]
    assert d.max_self == 5


def test_empty_selection_is_a_bare_root():
    empty = stackset({"a": 1}).subset(np.zeros(1, bool))
    fg = flamegraph_from_stackset(empty)
    assert fg.names == ["total"] and fg.levels == [[0, 0, 0, 0]] and fg.total == 0
