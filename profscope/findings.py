"""Findings: what analyzers return, checked before anyone else sees it. No I/O here.

A finding is a JSON object ``{"severity", "title", "message", "function"?, "value"?, "share"?,
...}`` (see :class:`profscope.hookspecs.Finding`); Python and Wasm analyzers share the shape.
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import PluginError
from .hookspecs import SEVERITIES, Finding

if TYPE_CHECKING:
    from .analysis.tree import Tree

MAX_FINDINGS = 10_000            # per plugin and run, the same cap as for Wasm analyzers


def read_only(tree: Tree) -> Tree:
    """A view of ``tree`` whose arrays cannot be written: one analyzer cannot change what the
    next one sees."""
    views = {}
    for attr in ("name", "parent", "depth", "self_", "total"):
        v = getattr(tree, attr).view()
        v.flags.writeable = False
        views[attr] = v
    return replace(tree, **views)


def check_findings(answer: Any, plugin: str) -> list[Finding]:
    """Validate an analyzer's answer (None or a list of findings); numbers become JSON
    numbers, ``plugin`` is set. Raises :class:`PluginError` (kind ``bad_output``) naming the
    first problem."""
    def bad(msg: str) -> PluginError:
        return PluginError(msg, kind="bad_output")
    if answer is None:
        return []
    if not isinstance(answer, list):
        raise bad(f"returned {type(answer).__name__}, expected a list of findings")
    if len(answer) > MAX_FINDINGS:
        raise bad(f"returned {len(answer)} findings; at most {MAX_FINDINGS} are accepted")
    out: list[Finding] = []
    for i, f in enumerate(answer):
        if not isinstance(f, dict):
            raise bad(f"finding {i} is {type(f).__name__}, expected a dict")
        if f.get("severity") not in SEVERITIES:
            raise bad(f"finding {i}: severity {f.get('severity')!r} is not one of: {', '.join(SEVERITIES)}")
        for key in ("title", "message"):
            if not isinstance(f.get(key), str) or not f[key]:
                raise bad(f"finding {i}: {key} must be a non-empty string")
        if "function" in f and not isinstance(f["function"], str):
            raise bad(f"finding {i}: function must be a string")
        for key in ("value", "share"):
            if key in f and not (isinstance(f[key], numbers.Real) and math.isfinite(f[key])):
                raise bad(f"finding {i}: {key} must be a finite number, got {f[key]!r}")
        try:
            clean = json.loads(json.dumps(f, default=_json_scalar, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise bad(f"finding {i} is not JSON: {e}") from None
        clean["plugin"] = plugin
        out.append(clean)
    return out


def _json_scalar(o: Any) -> Any:
    if isinstance(o, numbers.Integral):
        return int(o)
    if isinstance(o, numbers.Real):
        return float(o)
    raise TypeError(f"{type(o).__name__} is not JSON serializable")
