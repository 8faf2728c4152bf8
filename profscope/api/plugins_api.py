"""Wasm plugin management: upload, list, get, delete, auto-run settings, and runs.

Upload, delete and settings need the admin role when ``admin_token`` is configured
(:func:`~profscope.api.params.require_admin`); listing and running stay open. Upload errors
are HTTP 400 with kind ``bad_module`` or ``forbidden_import``, failed runs HTTP 422 with the
run's kind (``timeout``, ``out_of_fuel``, ``memory_limit``, ``stack_overflow``, ``trap``,
``bad_output``). The contract plugins implement is ``wasm/ABI.md``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, jsonify, request

from ..analysis.stacks import GRANULARITIES
from ..errors import BadInput
from ..query import engine
from ..query.engine import View
from ..wasm.service import PM_PREFIX, WasmPlugins
from .params import json_selection, require_admin, state

if TYPE_CHECKING:
    from ..model import Profile
    from ..store import IngestResult

bp = Blueprint("plugins_api", __name__, url_prefix="/api/v1/plugins")

APP_KEY = "wasm"                 # app.extensions["profscope"].extras[APP_KEY]
FLAGS = ("on_ingest", "on_diff")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def wasm_plugins() -> WasmPlugins:
    return state().extras[APP_KEY]


def auto_run_on_ingest(profile: Profile, result: IngestResult, labels: dict[str, str]) -> dict[str, list]:
    """Findings of the ``on_ingest`` Wasm plugins on a profile an API request just stored:
    ``{"findings": [...], "plugin_errors": [...]}`` (both empty when no plugin has
    ``on_ingest``). Never raises: the profile is stored whatever the plugins do. Every API
    ingest path calls this after a successful store."""
    st = state()
    return st.extras[APP_KEY].analyze_ingested(profile, result, labels, st.config["max_nodes"])


def _flag(raw: Any, name: str) -> bool | None:
    """A boolean from a query parameter (``true``/``false``/``1``/``0``) or JSON (true/false)."""
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in _TRUE + _FALSE:
        return raw.lower() in _TRUE
    raise BadInput(f"{name} must be true or false, got {raw!r}")


def _module_bytes() -> bytes:
    if request.mimetype == "multipart/form-data":
        f = request.files.get("module")
        if f is None:
            raise BadInput("multipart upload needs the module in a field named 'module'")
        data = f.read()
    else:
        data = request.get_data(cache=False)
    if not data:
        raise BadInput("request body is empty: send the .wasm bytes (Content-Type: application/wasm) "
                       "or a multipart field 'module'")
    return data


@bp.post("")
def upload():
    """Install a module (raw ``application/wasm`` body or multipart field ``module``);
    ``?on_ingest=true`` / ``?on_diff=true`` override the manifest's auto-run defaults."""
    require_admin()
    flags = {k: _flag(request.args.get(k), k) for k in FLAGS}
    info = wasm_plugins().upload(_module_bytes(), **flags)
    return jsonify(info), 201


@bp.get("")
def list_plugins():
    return jsonify({"plugins": wasm_plugins().registry.list()})


@bp.get("/<name>")
def get_plugin(name: str):
    return jsonify(wasm_plugins().registry.get(name))


@bp.delete("/<name>")
def delete_plugin(name: str):
    require_admin()
    return jsonify({"deleted": wasm_plugins().delete(name)})


@bp.patch("/<name>/settings")
def settings(name: str):
    """JSON ``{"on_ingest": bool, "on_diff": bool}`` (either may be left out)."""
    require_admin()
    body = _json_body()
    unknown = set(body) - set(FLAGS)
    if unknown:
        raise BadInput(f"unknown settings {', '.join(sorted(unknown))}; known: {', '.join(FLAGS)}")
    for k in FLAGS:
        if k in body and not isinstance(body[k], bool):
            raise BadInput(f"{k} must be true or false, got {body[k]!r}")
    return jsonify(wasm_plugins().set_auto_run(name, **{k: body.get(k) for k in FLAGS}))


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def _view(body: dict[str, Any]) -> View:
    cfg = state().config
    g = body.get("granularity", "functions")
    if g not in GRANULARITIES:
        raise BadInput(f"granularity {g!r} is not one of: {', '.join(GRANULARITIES)}")
    n = body.get("max_nodes", cfg["max_nodes"])
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= cfg["max_nodes_cap"]:
        raise BadInput(f"max_nodes must be an integer between 1 and {cfg['max_nodes_cap']}, got {n!r}")
    return View(g, None, None, n)


def _no_profiles(what: str, spec: dict[str, Any]) -> BadInput:
    return BadInput(f"{what} {spec.get('query', '')!r} matches no stored profile")


@bp.post("/<name>/run")
def run(name: str):
    """Run one plugin on a stored selection (``{"query", "from", "until"}``) or on the union
    tree of two (``{"base": {...}, "head": {...}}``); optional ``config`` (overrides of the
    manifest's config), ``granularity``, ``max_nodes``."""
    wp = wasm_plugins()
    wp.registry.get(name)                        # 404 before any store work
    body = _json_body()
    st, v = state(), _view(body)
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise BadInput("config must be a JSON object")
    is_diff = "base" in body or "head" in body
    if is_diff and ("base" not in body or "head" not in body or "query" in body):
        raise BadInput('a diff run needs both "base" and "head" (and no top-level "query")')
    if not is_diff:
        sel = json_selection(body)
        head, tree = engine.flamegraph(st.store, sel, v)
        if not head.n_profiles:
            raise _no_profiles("query", body)
        meta = {**engine.describe(head, sel), "query": body.get("query", ""),
                "from": sel.start_ns, "until": sel.end_ns}
    else:
        head_sel = json_selection(body["head"], "head")
        base_sel = json_selection(body["base"], "base", head_sel.profile_type)
        base, head, tree = engine.diff_tree(st.store, base_sel, head_sel, v, names=("base", "head"))
        for what, side, spec in (("base", base, body["base"]), ("head", head, body["head"])):
            if not side.n_profiles:
                raise _no_profiles(what, spec)
        meta = {**engine.describe(head, head_sel), "query": body["head"].get("query", ""),
                "from": head_sel.start_ns, "until": head_sel.end_ns,
                "base_query": body["base"].get("query", ""), "base_from": base_sel.start_ns,
                "base_until": base_sel.end_ns, "base_total": int(base.total),
                "base_profiles": int(base.n_profiles)}
    own = (st.config.get("plugins_config") or {}).get(PM_PREFIX + name, {})
    meta.update(granularity=v.granularity, diff=is_diff, config={**own, **config})
    result = wp.registry.run(name, tree, meta)
    return jsonify({**result, "nodes": tree.n_nodes, "diff": is_diff})
