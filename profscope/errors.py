"""One error shape for the whole service.

Every exception that reaches a user derives from :class:`ProfscopeError` and carries the HTTP
status and CLI exit code that fit it. The API turns it into ``{"error": {"kind", "message"}}``
with :func:`error_body`; the CLI prints the message and exits with ``exit_code``.
"""
from __future__ import annotations

from typing import Any


class ProfscopeError(Exception):
    status = 500
    kind = "internal"
    exit_code = 3

    def __init__(self, message: str, *, kind: str | None = None, status: int | None = None,
                 details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind
        if status is not None:
            self.status = status
        self.details = details or {}


class BadInput(ProfscopeError):
    """The bytes or parameters a user gave cannot be used (HTTP 400, exit 2)."""
    status = 400
    kind = "bad_input"
    exit_code = 2


class UnsupportedFormat(BadInput):
    kind = "unsupported_format"


class MalformedProfile(BadInput):
    kind = "malformed_profile"


class LimitExceeded(BadInput):
    """An explicit, documented limit was crossed (HTTP 413)."""
    status = 413
    kind = "limit_exceeded"


class NotFound(ProfscopeError):
    status = 404
    kind = "not_found"
    exit_code = 2


class Unauthorized(ProfscopeError):
    status = 401
    kind = "unauthenticated"
    exit_code = 2


class Forbidden(ProfscopeError):
    status = 403
    kind = "permission_denied"
    exit_code = 2


class Overloaded(ProfscopeError):
    status = 429
    kind = "resource_exhausted"
    exit_code = 3


class StoreError(ProfscopeError):
    """The store could not do its work (disk, lock, corruption): an operational error."""
    status = 503
    kind = "unavailable"
    exit_code = 3


class PluginError(ProfscopeError):
    """A plugin is broken: a misspelled hook at start-up, or an answer that breaks the hook's
    contract (HTTP 500, exit 3). The message names the plugin."""
    status = 500
    kind = "plugin_error"
    exit_code = 3


def error_body(err: ProfscopeError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": err.kind, "message": err.message}
    if err.details:
        body["details"] = err.details
    return {"error": body}
