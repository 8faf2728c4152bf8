"""Decoders: bytes in, canonical :class:`~profscope.model.Profile` out. No other I/O.

``decode(data, fmt=None)`` sniffs the format from the bytes unless one is given. The built-in
decoders are offered as a plugin too (see :mod:`profscope.plugins`); third-party formats join
through the ``profscope_decoders`` and ``profscope_sniff`` hooks.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BadInput, MalformedProfile, UnsupportedFormat
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Profile
from .compression import maybe_gunzip

if TYPE_CHECKING:
    from pluggy import PluginManager

FORMAT_NAMES = ("pprof", "folded", "speedscope")


@dataclass(frozen=True)
class DecodeOptions:
    """What a decoder is told besides the bytes."""
    limits: Limits = DEFAULT_LIMITS
    sample_rate: int | None = None    # Hz, for formats that carry counts only (folded)


# decoder(gunzipped bytes, options) -> Profile; plugins return these from profscope_decoders
Decoder = Callable[[bytes, DecodeOptions], Profile]


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


def _pprof(data: bytes, options: DecodeOptions) -> Profile:
    from .pprof import decode_pprof
    return decode_pprof(data, options.limits)


def _folded(data: bytes, options: DecodeOptions) -> Profile:
    from .folded import decode_folded
    return decode_folded(data, options.sample_rate)


def _speedscope(data: bytes, options: DecodeOptions) -> Profile:
    from .speedscope import decode_speedscope
    return decode_speedscope(data)


# The built-in decoders. The built-in formats plugin (profscope.builtin_plugins.formats) offers
# exactly this table through the ``profscope_decoders`` hook; ``decode`` uses it directly so
# that decoding a built-in format never imports the plugin machinery.
BUILTIN_DECODERS: dict[str, Decoder] = {"pprof": _pprof, "folded": _folded, "speedscope": _speedscope}


def decode(data: bytes, fmt: str | None = None, limits: Limits = DEFAULT_LIMITS,
           sample_rate: int | None = None, plugins: PluginManager | None = None) -> Profile:
    """Decode ``data`` (gzip or raw) in format ``fmt`` (sniffed when None).

    Formats contributed by plugins are looked up in ``plugins`` (default: the process's default
    plugin manager), only when ``fmt`` is not built in or the bytes are not a built-in format."""
    options = DecodeOptions(limits, sample_rate)
    if len(data) > limits.max_body_bytes:
        from ..errors import LimitExceeded
        raise LimitExceeded(f"input is {len(data)} bytes; limit max_body_bytes={limits.max_body_bytes}")
    if fmt is not None and fmt not in BUILTIN_DECODERS:
        return _plugin_decode(maybe_gunzip(data, limits), fmt, options, plugins)
    if fmt in (None, "pprof") and len(data) == 0:
        raise MalformedProfile("parsing profile: empty input file")
    if fmt == "pprof":
        return _pprof(data, options)
    raw = maybe_gunzip(data, limits)
    if fmt is not None:
        return BUILTIN_DECODERS[fmt](raw, options)
    try:
        return BUILTIN_DECODERS[detect_format(raw)](raw, options)
    except (UnsupportedFormat, MalformedProfile) as builtin_error:
        # not a built-in format: maybe a plugin's (this is the only sniffing that loads plugins)
        from ..plugins import sniff
        name = sniff(raw, plugins)
        if name is None:
            raise
        try:
            return _plugin_decode(raw, name, options, plugins)
        except BadInput as e:
            raise type(e)(f"{e.message} (format {name!r} sniffed by a plugin; "
                          f"as a built-in format: {builtin_error.message})") from None


def _plugin_decode(raw: bytes, fmt: str, options: DecodeOptions, plugins: PluginManager | None) -> Profile:
    from ..plugins import decoder_for
    return decoder_for(fmt, plugins)(raw, options)
