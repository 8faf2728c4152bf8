"""``profscope serve --self-profile``: profscope profiles itself with the pyroscope-io SDK.

The SDK samples this process (py-spy's sampler, in-process, on a native thread) and pushes to
``server_url`` every ``upload_interval`` seconds over Pyroscope's Connect push API, so the
server's own hot paths show up in its own store under ``service_name="profscope"``. Off by
default; the measured overhead is in benchmarks/RESULTS.md ("Self-profiling overhead").
"""
from __future__ import annotations

import os
import socket
import threading

from ..errors import ProfscopeError

SERVICE_NAME = "profscope"

_lock = threading.Lock()
_running = False


class SelfProfileError(ProfscopeError):
    status = 500
    kind = "self_profile_failed"
    exit_code = 3


def self_profile_tags(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Series labels of profscope's own profile: hostname and pid, then ``extra``."""
    return {"hostname": socket.gethostname(), "pid": str(os.getpid()), **(extra or {})}


def start_self_profiling(server_url: str, tags: dict[str, str] | None = None, *,
                         sample_rate: int = 100, upload_interval: int = 10, tenant: str = "") -> None:
    """Start the pyroscope-io agent in this process, pushing to ``server_url`` (e.g. the
    server's own ``http://127.0.0.1:4040``, also when it listens on 0.0.0.0) as application
    ``profscope`` with ``tags``; ``tenant`` is sent as ``X-Scope-OrgID`` (multitenancy).
    Raises :class:`SelfProfileError` when the SDK is missing or refuses to start; a second
    call while running is refused too (the SDK holds one agent per process)."""
    global _running
    try:
        import pyroscope
    except ImportError:
        raise SelfProfileError("--self-profile needs the pyroscope-io package: pip install pyroscope-io") from None
    with _lock:
        if _running:
            raise SelfProfileError("self-profiling is already running in this process")
        ok = pyroscope.configure(
            application_name=SERVICE_NAME,
            server_address=server_url.rstrip("/"),
            tags=self_profile_tags(tags),
            sample_rate=sample_rate,
            upload_interval=upload_interval,
            oncpu=True,            # CPU time, not wall time: idle waiting threads are not hot paths
            gil_only=True,         # the thread running Python code is the one that costs
            report_thread_name=True,
            tenant_id=tenant,
            enable_logging=False,
        )
        if ok is False:
            raise SelfProfileError("the pyroscope-io agent did not start")
        _running = True


def stop_self_profiling() -> bool:
    """Flush and stop the agent; ``False`` when it was not running."""
    global _running
    with _lock:
        if not _running:
            return False
        import pyroscope
        pyroscope.shutdown()
        _running = False
        return True


def is_self_profiling() -> bool:
    return _running
