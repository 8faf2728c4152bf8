"""The built-in input formats (pprof, folded stacks, speedscope JSON) as a plugin.

``profscope.formats.decode`` uses the same table directly for these names, so decoding a
built-in format never loads plugins; this plugin makes them visible next to third-party formats
(and keeps their names: the first plugin to claim a name keeps it)."""
from __future__ import annotations

from ..formats import BUILTIN_DECODERS, Decoder
from ..hookspecs import hookimpl


@hookimpl
def profscope_decoders() -> dict[str, Decoder]:
    return dict(BUILTIN_DECODERS)
