"""Request parameters shared by the views: selections, times, tenants, filters."""
from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, request

from ..analysis.stacks import GRANULARITIES, TagFilter
from ..errors import BadInput, Forbidden, Unauthorized
from ..query.selector import Selection, parse_query
from ..query.timeparse import parse_time
from ..tenancy import TENANT_HEADER, resolve_tenant  # noqa: F401 (TENANT_HEADER re-exported)


def state():
    return current_app.extensions["profscope"]


def tenant() -> str:
    return resolve_tenant(request.headers.get(TENANT_HEADER, ""), state().config["multitenancy"])

def arg(name: str, *alts: str, default: str | None = None) -> str | None:
    for n in (name, *alts):
        v = request.args.get(n)
        if v is not None and v != "":
            return v
    return default


def int_arg(name: str, default: int, lo: int = 0, hi: int | None = None) -> int:
    raw = arg(name, default=None)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise BadInput(f"parameter {name}={raw!r} must be an integer") from None
    if v < lo or (hi is not None and v > hi):
        raise BadInput(f"parameter {name}={v} must be between {lo} and {hi if hi is not None else 'inf'}")
    return v


def time_range() -> tuple[int | None, int | None]:
    start = parse_time(arg("from", "start"), what="from")
    end = parse_time(arg("until", "end"), what="until")
    if start is not None and end is not None and start > end:
        raise BadInput("parameter from must not be after until")
    return start, end


def selection(query_param: str = "query") -> Selection:
    """``query=<type>{matchers}``, ``from``/``until``, ``tagfocus``/``tagignore`` (pprof rules)."""
    ptype, matchers = parse_query(arg(query_param, default=""))
    ptype = arg("profile_type", "type", default=ptype)
    tags = tuple([TagFilter.parse(t) for t in request.args.getlist("tagfocus")]
                 + [TagFilter.parse(t, negate=True) for t in request.args.getlist("tagignore")])
    start, end = time_range()
    return Selection(ptype, tuple(matchers), start, end, tenant(), tags=tags)


def json_selection(spec: Any, what: str = "", default_type: str | None = None) -> Selection:
    """A selection from a JSON object ``{"query": "type{matchers}", "from": ..., "until": ...}``
    (times in any form :func:`parse_time` accepts); ``what`` (e.g. ``base``) names it in errors."""
    if not isinstance(spec, dict) or not isinstance(spec.get("query", ""), str):
        raise BadInput(f'{what or "body"} must be an object like {{"query": "cpu{{service_name=\\"api\\"}}", '
                       '"from": "now-1h", "until": "now"}')
    prefix = f"{what}." if what else ""
    ptype, matchers = parse_query(spec.get("query", ""))
    start = parse_time(spec.get("from"), what=f"{prefix}from")
    end = parse_time(spec.get("until"), what=f"{prefix}until")
    if start is not None and end is not None and start > end:
        raise BadInput(f"{prefix}from must not be after {prefix}until")
    return Selection(ptype or default_type, tuple(matchers), start, end, tenant())


def require_admin() -> None:
    """The admin role: when ``admin_token`` is configured, the request needs
    ``Authorization: Bearer <admin_token>`` (401 without credentials, 403 with wrong ones)."""
    token = state().config["admin_token"]
    if not token:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Unauthorized("this operation needs the admin role: send 'Authorization: Bearer <admin_token>'")
    if not hmac.compare_digest(given.strip().encode(), str(token).encode()):
        raise Forbidden("the bearer token is not the admin token")


def view():
    """How to look at a selection: granularity, focus/ignore regexes, max_nodes (capped)."""
    from ..query.engine import View
    st = state()
    return View(granularity(), arg("focus", default=None), arg("ignore", default=None),
                int_arg("max_nodes", st.config["max_nodes"], 1, st.config["max_nodes_cap"]))


def granularity() -> str:
    g = arg("granularity", default="functions")
    if g not in GRANULARITIES:
        raise BadInput(f"granularity {g!r} is not one of: {', '.join(GRANULARITIES)}")
    return g


def labels_from_args() -> dict[str, str]:
    """``label=k=v`` (repeatable), ``labels={k="v",...}``, ``service=`` / ``service_name=``."""
    out: dict[str, str] = {}
    raw = arg("labels", default=None)
    if raw:
        from ..query.selector import parse_matchers
        for m in parse_matchers(raw if raw.startswith("{") else "{" + raw + "}"):
            if m.op != "=":
                raise BadInput(f"labels: only k=\"v\" pairs are allowed, got {m}")
            out[m.name] = m.value
    for item in request.args.getlist("label"):
        if "=" not in item:
            raise BadInput(f"label {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    service = arg("service", "service_name", default=None)
    if service:
        out["service_name"] = service
    return out
