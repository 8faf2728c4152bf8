"""profscope: continuous-profiling analysis on DuckDB (pprof, OTLP, folded, speedscope)."""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "create_app", "decode", "Store", "Profile", "StackSet", "ProfscopeError", "hookimpl"]


def __getattr__(name: str):
    # lazy re-exports keep `profscope top` free of Flask/DuckDB imports
    if name == "create_app":
        from .api import create_app
        return create_app
    if name == "decode":
        from .formats import decode
        return decode
    if name == "Store":
        from .store import Store
        return Store
    if name in ("Profile", "StackSet"):
        from . import model
        return getattr(model, name)
    if name == "ProfscopeError":
        from .errors import ProfscopeError
        return ProfscopeError
    if name == "hookimpl":
        from .hookspecs import hookimpl
        return hookimpl
    raise AttributeError(name)
