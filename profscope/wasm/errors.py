"""Errors of the Wasm analyzer host.

Every failure is a :class:`PluginError` with a ``kind`` from :data:`RUN_KINDS` or
:data:`UPLOAD_KINDS`. Upload problems (the bytes a user gave are not an acceptable plugin) are
:class:`PluginRejected` (HTTP 400, exit 2); a run that fails is :class:`PluginFailed` (HTTP 422,
exit 3). Both are :class:`~profscope.errors.ProfscopeError`, so the API and CLI render them the
usual way.
"""
from __future__ import annotations

from typing import Any

from ..errors import ProfscopeError

RUN_KINDS = ("timeout", "out_of_fuel", "memory_limit", "stack_overflow", "trap", "bad_output")
UPLOAD_KINDS = ("bad_module", "forbidden_import")


class PluginError(ProfscopeError):
    """A Wasm plugin could not be loaded or run; ``kind`` says why."""
    status = 422
    kind = "trap"
    exit_code = 3


class PluginRejected(PluginError):
    """The uploaded bytes are not an acceptable plugin (HTTP 400)."""
    status = 400
    kind = "bad_module"
    exit_code = 2

    def __init__(self, message: str, *, kind: str = "bad_module",
                 details: dict[str, Any] | None = None):
        assert kind in UPLOAD_KINDS, kind
        super().__init__(message, kind=kind, details=details)


class PluginFailed(PluginError):
    """A run of a loaded plugin failed (HTTP 422). ``details`` carries the plugin name,
    version, ``fuel_used`` (None when unknown), ``wall_ms`` and the plugin's log lines."""
    status = 422
    exit_code = 3

    def __init__(self, message: str, *, kind: str, details: dict[str, Any] | None = None):
        assert kind in RUN_KINDS, kind
        super().__init__(message, kind=kind, details=details)
