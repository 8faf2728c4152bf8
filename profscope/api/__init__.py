"""The HTTP API: ``create_app(config) -> Flask``.

State lives in ``app.extensions["profscope"]`` (a :class:`State`), never in module globals. One
blueprint per resource; every error leaves through :func:`profscope.errors.error_body`.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from ..config import Config, load_config
from ..errors import ProfscopeError, error_body
from ..formats.parallel import DecodePool

# "module:blueprint attribute", registered in this order
BLUEPRINTS = [
    "profscope.api.profiles:bp",
    "profscope.api.meta:bp",
    "profscope.api.analyze:bp",
    "profscope.api.web:bp",
    "profscope.api.pyroscope:bp",
    "profscope.api.querier:bp",
    "profscope.api.otlp:bp",
    "profscope.api.traces:bp",
    "profscope.api.plugins_api:bp",
    "profscope.api.diff:bp",
]


@dataclass
class State:
    config: Config
    store: Any
    ingest_slots: threading.BoundedSemaphore
    extras: dict[str, Any] = field(default_factory=dict)
    decoder: DecodePool = field(default_factory=lambda: DecodePool(0))   # `serve` gives it workers

    @property
    def limits(self):
        return self.config.limits


def create_app(config: dict[str, Any] | Config | None = None, decoder: DecodePool | None = None) -> Flask:
    """The Flask app over a store opened from ``config``. ``decoder``: worker processes for
    decoding uploads (created by ``profscope serve`` before anything else starts)."""
    from ..store import Store
    cfg = config if isinstance(config, Config) else load_config(config)
    app = Flask("profscope")
    app.config["MAX_CONTENT_LENGTH"] = cfg.limits.max_body_bytes
    app.json.sort_keys = False
    store = Store(cfg["data_dir"], cfg.limits, memory_limit=cfg["duckdb_memory_limit"] or None,
                  threads=cfg["duckdb_threads"] or None, write_linger_ms=float(cfg["write_linger_ms"]))
    app.extensions["profscope"] = State(cfg, store, threading.BoundedSemaphore(cfg["max_concurrent_ingest"]),
                                        decoder=decoder or DecodePool(0))
    for spec in BLUEPRINTS:
        mod, attr = spec.split(":")
        app.register_blueprint(getattr(importlib.import_module(mod), attr))
    _register_errors(app)
    from ..plugins import register_routes
    from ..wasm.service import WasmPlugins
    from .plugins_api import APP_KEY as WASM_KEY
    state = app.extensions["profscope"]
    try:
        pm = register_routes(app)   # the app's plugin manager, and the plugins' routes
        # Wasm plugins: <data_dir>/plugins, registered in pm as wasm:<name>
        state.extras[WASM_KEY] = WasmPlugins.open(cfg["data_dir"], pm)
    except BaseException:      # e.g. a misspelled hook: do not leave the store open
        store.close()
        raise
    return app


def _register_errors(app: Flask) -> None:
    @app.errorhandler(ProfscopeError)
    def _profscope_error(e: ProfscopeError):
        return jsonify(error_body(e)), e.status

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        kind = {404: "not_found", 405: "method_not_allowed", 413: "limit_exceeded",
                415: "unsupported_media_type"}.get(e.code or 500, "http_error")
        message = e.description or e.name
        if e.code == 413:
            message = (f"request body is larger than max_body_bytes="
                       f"{app.extensions['profscope'].limits.max_body_bytes}")
        return jsonify({"error": {"kind": kind, "message": message}}), e.code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        app.logger.exception("unhandled error")
        return jsonify({"error": {"kind": "internal", "message": f"internal error: {e.__class__.__name__}"}}), 500
