"""Tenants: ``X-Scope-OrgID`` (HTTP header or gRPC metadata ``x-scope-orgid``), as Pyroscope has it."""
from __future__ import annotations

from .errors import BadInput, Unauthorized

TENANT_HEADER = "X-Scope-OrgID"
DEFAULT_TENANT = "anonymous"
_ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!-_.*'()")


def resolve_tenant(value: str | None, multitenancy: bool, where: str = TENANT_HEADER) -> str:
    """The tenant a request acts for: ``value`` checked, or ``anonymous`` when absent and
    multi-tenancy is off (refused when it is on)."""
    if not value:
        if multitenancy:
            raise Unauthorized(f"multi-tenancy is on: the {where} {'header' if where == TENANT_HEADER else 'metadata'}"
                               " is required")
        return DEFAULT_TENANT
    if len(value) > 150 or not set(value) <= _ALLOWED:
        raise BadInput(f"{where} {value[:40]!r} is invalid: up to 150 chars of [A-Za-z0-9!-_.*'()]")
    return value


def grpc_tenant(context, multitenancy: bool) -> str:
    """The tenant of a gRPC call (metadata keys are lower case)."""
    md = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
    return resolve_tenant(md.get("x-scope-orgid", ""), multitenancy, "x-scope-orgid")
