"""Decoders: bytes in, canonical :class:`~profscope.model.Profile` out. No other I/O.

``decode(data, fmt=None)`` sniffs the format from the bytes unless one is given. Built-in
decoders are registered as plugins (see :mod:`profscope.plugins`); third-party ones join
through the ``profscope_decode`` hook.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from ..errors import BadInput, UnsupportedFormat
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Profile
from .compression import maybe_gunzip

FORMAT_NAMES = ("pprof", "folded", "speedscope")


def detect_format(raw: bytes) -> str:
    """Name of the format of already-gunzipped bytes."""
    head = raw[:4096].lstrip()
    if head[:1] in (b"{", b"["):
        try:
            obj = json.loads(raw)
        except ValueError:
            raise UnsupportedFormat("unsupported format: input starts like JSON but is not valid JSON") from None
        from .speedscope import looks_speedscope
        if looks_speedscope(obj):
            return "speedscope"
        if isinstance(obj, dict) and "nodes" in obj and "samples" in obj:
            raise UnsupportedFormat("unsupported format: Chrome .cpuprofile is not supported; "
                                    "convert it to speedscope JSON")
        raise UnsupportedFormat("unsupported format: JSON that is neither speedscope nor a profile")
    from .pprof import looks_like_legacy
    legacy = looks_like_legacy(raw)
    if legacy:
        raise UnsupportedFormat(f"unsupported format: {legacy}; only protobuf pprof is accepted "
                                "(convert it with `go tool pprof -proto`)")
    try:
        text = raw[:65536].decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        from .folded import looks_folded
        if looks_folded(text):
            return "folded"
    return "pprof"


def decode(data: bytes, fmt: str | None = None, limits: Limits = DEFAULT_LIMITS,
           sample_rate: int | None = None) -> Profile:
    """Decode ``data`` (gzip or raw) in format ``fmt`` (sniffed when None)."""
    if fmt is not None and fmt not in FORMAT_NAMES and fmt not in _extra_decoders():
        raise BadInput(f"format {fmt!r} is not one of: {', '.join(FORMAT_NAMES + tuple(_extra_decoders()))}")
    if len(data) > limits.max_body_bytes:
        from ..errors import LimitExceeded
        raise LimitExceeded(f"input is {len(data)} bytes; limit max_body_bytes={limits.max_body_bytes}")
    if fmt in (None, "pprof") and len(data) == 0:
        from ..errors import MalformedProfile
        raise MalformedProfile("parsing profile: empty input file")
    if fmt == "pprof":
        from .pprof import decode_pprof
        return decode_pprof(data, limits)
    raw = maybe_gunzip(data, limits)
    if fmt is None:
        fmt = detect_format(raw)
    if fmt == "pprof":
        from .pprof import decode_pprof
        return decode_pprof(raw, limits)
    if fmt == "folded":
        from .folded import decode_folded
        return decode_folded(raw, sample_rate)
    if fmt == "speedscope":
        from .speedscope import decode_speedscope
        return decode_speedscope(raw)
    return _extra_decoders()[fmt](raw)


_EXTRA: dict[str, Callable[[bytes], Profile]] = {}


def register_decoder(name: str, fn: Callable[[bytes], Profile]) -> None:
    """Add a decoder for format ``name`` (used by the plugin manager)."""
    _EXTRA[name] = fn


def _extra_decoders() -> dict[str, Callable[[bytes], Profile]]:
    return _EXTRA
