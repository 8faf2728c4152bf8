"""Configuration: defaults, then a JSON file (``PROFSCOPE_CONFIG``), then ``PROFSCOPE_*``
environment variables, then the mapping given to :func:`profscope.api.create_app`."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

from .limits import Limits

DEFAULTS: dict[str, Any] = {
    "data_dir": "./profscope-data",
    "host": "127.0.0.1",
    "port": 4040,
    "threads": 48,                # request threads running the app (granian blocking threads)
    "max_nodes": 8192,            # default flame graph size; larger requests are capped at max_nodes_cap
    "max_nodes_cap": 100_000,
    "multitenancy": False,        # when on, X-Scope-OrgID is required
    "duckdb_memory_limit": "",    # e.g. "1GB"; empty = DuckDB's default
    "duckdb_threads": 0,          # 0 = DuckDB's default (all cores)
    "max_concurrent_ingest": 64,  # requests waiting to ingest beyond this get 429
    "write_linger_ms": 5,         # under concurrent ingest, the writer waits this long for more per transaction
    "decode_workers": -1,         # `profscope serve`: processes decoding uploads; -1 = one per core (up to 4) on 2+ cores, 0 = none
    "admin_token": "",            # when set, Wasm plugin upload/delete/settings need "Authorization: Bearer <token>"
    "otlp_grpc_port": 4317,
    "otlp_grpc": True,            # `profscope serve` also listens for OTLP profiles over gRPC
    "self_profile_upload_interval": 10,  # seconds between pushes of `serve --self-profile`
    "plugins_allowlist": "",      # comma-separated entry-point plugin names to load; empty = all installed
    "plugins_config": {},         # {plugin name: {setting: value}}; env PROFSCOPE_PLUGINS_CONFIG is JSON
}


@dataclass
class Config:
    values: dict[str, Any]
    limits: Limits

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def to_json(self) -> dict:
        return {**self.values, "limits": asdict(self.limits)}


def _coerce(raw: str, like: Any, name: str = "value") -> Any:
    if isinstance(like, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, dict):
        try:
            value = json.loads(raw)
        except ValueError as e:
            from .errors import BadInput
            raise BadInput(f"{name} must be a JSON object, got {raw[:60]!r}: {e}") from None
        if not isinstance(value, dict):
            from .errors import BadInput
            raise BadInput(f"{name} must be a JSON object, got {raw[:60]!r}")
        return value
    return raw


def load_config(overrides: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    values = dict(DEFAULTS)
    limit_values: dict[str, int] = {}
    path = env.get("PROFSCOPE_CONFIG")
    if path:
        with open(path) as fh:
            from_file = json.load(fh)
        limit_values.update(from_file.pop("limits", {}))
        values.update(from_file)
    for key, default in DEFAULTS.items():
        raw = env.get("PROFSCOPE_" + key.upper())
        if raw is not None and raw != "":
            values[key] = _coerce(raw, default, "PROFSCOPE_" + key.upper())
    limit_names = {f.name for f in fields(Limits)}
    for f in limit_names:
        raw = env.get("PROFSCOPE_" + f.upper())
        if raw:
            limit_values[f] = int(raw)
    for k, v in (overrides or {}).items():
        if k == "limits" and isinstance(v, dict):
            limit_values.update(v)
        elif k in limit_names:
            limit_values[k] = int(v)
        elif v is not None:
            values[k] = v
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        from .errors import BadInput
        raise BadInput(f"unknown configuration keys: {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    return Config(values, Limits(**limit_values))
