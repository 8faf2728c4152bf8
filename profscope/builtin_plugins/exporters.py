"""The built-in output formats (pprof, speedscope JSON, folded stacks) as a plugin.

``profscope.formats.exporters.export`` uses the same table directly for these names."""
from __future__ import annotations

from ..formats.exporters import BUILTIN_EXPORTERS, Exporter
from ..hookspecs import hookimpl


@hookimpl
def profscope_exporters() -> dict[str, Exporter]:
    return dict(BUILTIN_EXPORTERS)
