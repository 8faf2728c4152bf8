"""Check what a guest returned: UTF-8 JSON ``{"findings": [...]}`` or ``{"error": "..."}``.

Strings stay as the guest wrote them (the HTML renderer escapes them); numbers must be finite.
"""
from __future__ import annotations

import json
from typing import Any

SEVERITIES = ("info", "warning", "critical")
MAX_FINDINGS = 10_000
MAX_DEPTH = 32


class OutputError(ValueError):
    """The output breaks the schema; ``guest_error`` is set when the guest reported a failure."""

    def __init__(self, message: str, guest_error: bool = False):
        super().__init__(message)
        self.guest_error = guest_error


def _no_constants(name: str) -> Any:
    raise OutputError(f"non-finite number {name} in output")


def _depth(obj: Any, limit: int) -> None:
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            raise OutputError(f"output nests deeper than {limit} levels")
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)


def parse_output(raw: bytes) -> list[dict[str, Any]]:
    """Findings from the raw output bytes; raises :class:`OutputError` naming the problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise OutputError(f"output is not UTF-8 ({e})") from None
    try:
        obj = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise OutputError("output nests too deeply") from None
    except ValueError as e:
        if isinstance(e, OutputError):
            raise
        raise OutputError(f"output is not JSON ({e})") from None
    _depth(obj, MAX_DEPTH)
    if not isinstance(obj, dict):
        raise OutputError(f"output must be a JSON object, not {type(obj).__name__}")
    if "error" in obj:
        err = obj["error"]
        msg = err if isinstance(err, str) else json.dumps(err)[:1000]
        raise OutputError(f"plugin reported an error: {msg[:1000]}", guest_error=True)
    findings = obj.get("findings")
    if not isinstance(findings, list):
        raise OutputError("output must have a 'findings' list")
    if len(findings) > MAX_FINDINGS:
        raise OutputError(f"{len(findings)} findings; limit {MAX_FINDINGS}")
    for i, f in enumerate(findings):
        check_finding(i, f)
    return findings


def check_finding(i: int, f: Any) -> None:
    """One finding: severity/title/message required; function, value, share typed if present."""
    where = f"findings[{i}]"
    if not isinstance(f, dict):
        raise OutputError(f"{where} must be an object")
    sev = f.get("severity")
    if sev not in SEVERITIES:
        raise OutputError(f"{where}.severity {sev!r} is not one of {', '.join(SEVERITIES)}")
    for key in ("title", "message"):
        if not isinstance(f.get(key), str) or not f[key]:
            raise OutputError(f"{where}.{key} is required and must be a non-empty string")
    if "function" in f and not isinstance(f["function"], str):
        raise OutputError(f"{where}.function must be a string")
    for key in ("value", "share"):
        if key in f and (isinstance(f[key], bool) or not isinstance(f[key], int | float)):
            raise OutputError(f"{where}.{key} must be a number")
