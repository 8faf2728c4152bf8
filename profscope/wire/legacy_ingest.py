"""Grafana Pyroscope's legacy ``POST /ingest`` API: query parameters and body formats. No I/O.

Query: ``name=app.cpu{env=prod,region=eu}`` (application name, optional suffix naming the profile
type, tags), ``from``/``until`` (unix s/ms/us/ns, ``now-1h``), ``sampleRate`` (Hz, default 100),
``spyName``, ``units``, ``aggregationType``, ``format``. Body formats: ``folded`` (default),
``lines``, ``pprof`` (raw body, or ``multipart/form-data`` with fields ``profile`` and optional
``sample_type_config``) and ``speedscope``; ``jfr``, ``trie`` and ``tree`` are refused (415).

Series labels follow Pyroscope: ``__name__`` from the suffix (text formats) or from the pprof
sample types, ``service_name`` = the application name (when the tags give a ``service_name``,
the application name goes to ``app_name``), ``pyroscope_spy`` = ``spyName``; tags starting with
``__`` are dropped. pprof from the .NET agent (``dotnetspy``) gets Pyroscope's two repairs
(:func:`fix_dotnet_pprof`). For ``process_cpu`` and ``wall`` text profiles each count becomes
``1e9 / sampleRate`` nanoseconds (``cpu:nanoseconds`` / ``wall:nanoseconds``). pprof from the
pyspy/rbspy spies gets Pyroscope's ``<file>:-1 - <name>`` function names; ``prev_profile``
(cumulative uploads) is refused like Grafana Pyroscope refuses it.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.parser import BytesParser
from email.policy import HTTP

from ..errors import BadInput, LimitExceeded, ProfscopeError, UnsupportedFormat
from ..limits import DEFAULT_LIMITS, Limits
from ..model import FrameTable, Profile, ValueType
from ..query.timeparse import parse_time
from ..store.ingest import Staged, stage_input

DEFAULT_SAMPLE_RATE = 100
TEXT_FORMATS = ("folded", "lines", "groups")
REFUSED_FORMATS = ("jfr", "trie", "tree")
SCRIPTING_SPIES = ("pyspy", "rbspy", "scripting")   # pprof function names rewritten like Pyroscope
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")

# suffix -> (metric name, sample type, unit); sample type None keeps the suffix itself
SUFFIX_TYPES: dict[str, tuple[str, str | None, str]] = {
    "cpu": ("process_cpu", "samples", "count"),
    "itimer": ("process_cpu", "samples", "count"),
    "wall": ("wall", "samples", "count"),
    "seconds": ("wall", "samples", "count"),
    "milliseconds": ("wall", "samples", "count"),
    "microseconds": ("wall", "samples", "count"),
    "nanoseconds": ("wall", "samples", "count"),
    "inuse_objects": ("memory", None, "count"),
    "inuse_space": ("memory", None, "bytes"),
    "alloc_objects": ("memory", None, "count"),
    "alloc_space": ("memory", None, "bytes"),
    "alloc_in_new_tlab_objects": ("memory", None, "count"),
    "alloc_in_new_tlab_bytes": ("memory", None, "bytes"),
    "alloc_outside_tlab_objects": ("memory", None, "count"),
    "alloc_outside_tlab_bytes": ("memory", None, "bytes"),
    "live": ("memory", None, "count"),
    "bytes": ("memory", "samples", "bytes"),
    "goroutines": ("goroutine", None, "count"),
    "mutex_count": ("mutex", "contentions", "count"),
    "mutex_duration": ("mutex", "delay", "nanoseconds"),
    "block_count": ("block", "contentions", "count"),
    "block_duration": ("block", "delay", "nanoseconds"),
    "lock_count": ("block", "contentions", "count"),
    "lock_duration": ("block", "delay", "nanoseconds"),
    "exceptions": ("exceptions", "samples", "count"),
}


@dataclass
class IngestParams:
    name: str                        # application name as sent, suffix included
    tags: dict[str, str]
    start_ns: int
    end_ns: int
    sample_rate: int = DEFAULT_SAMPLE_RATE
    spy_name: str = "unknown"
    units: str = "samples"
    aggregation: str = "sum"
    format: str = "folded"


@dataclass
class IngestItem:
    labels: dict[str, str]
    profile: Profile
    warnings: list[str] = field(default_factory=list)


def parse_name(text: str | None) -> tuple[str, dict[str, str]]:
    """``app.cpu{k=v,k2=v2}`` -> (``app.cpu``, tags). Tags starting with ``__`` are dropped."""
    text = (text or "").strip()
    if not text:
        raise BadInput("parameter name is required, e.g. name=myapp.cpu{env=prod}")
    tags: dict[str, str] = {}
    i = text.find("{")
    app = text if i < 0 else text[:i].strip()
    if i >= 0:
        if not text.endswith("}"):
            raise BadInput(f"name {text!r}: tags must end with '}}', e.g. myapp.cpu{{env=prod}}")
        body = text[i + 1:-1]
        for part in body.split(","):
            part = part.strip()
            if not part:
                continue
            if "=" not in part:
                raise BadInput(f"name {text!r}: tag {part!r} must look like key=value")
            k, v = (s.strip() for s in part.split("=", 1))
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            if not _KEY.match(k):
                raise BadInput(f"name {text!r}: tag key {k!r} is invalid; use letters, digits, '_' and '.'")
            if k.startswith("__"):
                continue
            tags[k] = v
    if not app:
        raise BadInput(f"name {text!r}: the application name before '{{' is empty")
    return app, tags


def parse_params(args: Mapping[str, str], now_ns: int | None = None) -> IngestParams:
    """Read and check the query parameters of ``/ingest``."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    name, tags = parse_name(args.get("name"))
    start = parse_time(args.get("from") or None, now_ns, what="from")
    end = parse_time(args.get("until") or None, now_ns, what="until")
    start = now_ns if start is None else start
    end = now_ns if end is None else end
    if end < start:
        raise BadInput(f"until ({end}) is before from ({start})")
    rate = DEFAULT_SAMPLE_RATE
    raw_rate = args.get("sampleRate")
    if raw_rate:
        try:
            rate = int(raw_rate)
        except ValueError:
            raise BadInput(f"sampleRate {raw_rate!r} must be a positive integer (Hz)") from None
        if rate <= 0:
            raise BadInput(f"sampleRate {rate} must be a positive integer (Hz)")
    fmt = (args.get("format") or "").strip().lower()
    return IngestParams(name, tags, start, end, rate, args.get("spyName") or "unknown",
                        args.get("units") or "samples", args.get("aggregationType") or "sum", fmt)


def suffix_type(name: str) -> tuple[str, ValueType, str]:
    """Pyroscope's rule for text formats: the part after the last ``.`` names the profile type
    (no dot means ``cpu``). Returns (metric name, sample type, application name)."""
    app, dot, suffix = name.rpartition(".")
    if not dot:
        app, suffix = name, "cpu"
    rule = SUFFIX_TYPES.get(suffix)
    if rule is None:
        known = ", ".join(sorted(SUFFIX_TYPES))
        raise BadInput(f"name {name!r}: unknown profile type suffix {suffix!r}; known: {known}")
    metric, st, unit = rule
    return metric, ValueType(st or suffix, unit), app


def series_labels(metric: str, app: str, params: IngestParams) -> dict[str, str]:
    labels = dict(params.tags)
    labels["__name__"] = metric
    labels["pyroscope_spy"] = params.spy_name
    if "service_name" in labels:
        labels.setdefault("app_name", app)
    else:
        labels["service_name"] = app
    return labels


# ------------------------------------------------------------------------------------ bodies
def decode_ingest(params: IngestParams, body: bytes, content_type: str | None,
                  limits: Limits = DEFAULT_LIMITS) -> IngestItem:
    """Decode the body of an ``/ingest`` request into the profile to store and its labels.
    Bodies that cannot be decoded raise errors with HTTP status 422 (rejected profile)."""
    ctype = (content_type or "").lower()
    fmt = params.format
    if fmt in REFUSED_FORMATS or "octet-stream+trie" in ctype or "octet-stream+tree" in ctype:
        raise UnsupportedFormat(f"format {fmt or ctype!r} is not supported by profscope's /ingest; "
                                "send folded, lines, pprof or speedscope", status=415)
    if len(body) > limits.max_body_bytes:
        raise LimitExceeded(f"request body is {len(body)} bytes; limit max_body_bytes={limits.max_body_bytes}")
    if fmt != "pprof" and "multipart/form-data" not in ctype:
        suffix_type(params.name)   # a bad name is a bad request (400), not a rejected profile
    try:
        if fmt == "pprof" or (not fmt and "multipart/form-data" in ctype):
            return _pprof(params, body, content_type or "", limits)   # the boundary is case-sensitive
        if fmt == "speedscope":
            return _speedscope(params, body, limits)
        if fmt in ("", *TEXT_FORMATS):
            return _text(params, body, fmt or "folded", limits)
    except ProfscopeError as e:
        raise _rejected(e) from None
    raise UnsupportedFormat(f"format {fmt!r} is not one of: folded, lines, pprof, speedscope "
                            f"(jfr, trie and tree are not supported)", status=415)


def stage_ingest(params: IngestParams, body: bytes, content_type: str | None, limits: Limits,
                 tenant: str) -> list[Staged]:
    """A whole ``/ingest`` request decoded, checked and merged for the store: pure, so a decoding
    worker runs it (as :func:`profscope.wire.push.stage_push` for a push)."""
    item = decode_ingest(params, body, content_type, limits)
    return [stage_input(item.profile, item.labels, tenant, limits)]


def _rejected(e: ProfscopeError) -> ProfscopeError:
    if isinstance(e, LimitExceeded) or e.status != 400:
        return e
    e.status = 422
    return e


def _text(params: IngestParams, body: bytes, fmt: str, limits: Limits) -> IngestItem:
    from ..formats.compression import maybe_gunzip
    from ..formats.folded import decode_folded
    metric, st, app = suffix_type(params.name)
    raw = maybe_gunzip(body, limits)
    if fmt == "lines":
        raw = _lines_to_folded(raw)
    profile = decode_folded(raw, None)
    counts = profile.values[:, 0]
    if metric in ("process_cpu", "wall"):
        period = 10**9 // params.sample_rate
        st = ValueType("cpu" if metric == "process_cpu" else "wall", "nanoseconds")
        profile = replace(profile, sample_types=[st], values=(counts * period).reshape(-1, 1),
                          period_type=ValueType("cpu", "nanoseconds"), period=period)
    else:
        profile = replace(profile, sample_types=[st], values=counts.reshape(-1, 1), period_type=None, period=0)
    profile = _timed(replace(profile, default_sample_type=st.type, source_format=fmt), params)
    return IngestItem(series_labels(metric, app, params), profile, list(profile.warnings))


def _lines_to_folded(raw: bytes) -> bytes:
    """``lines``: one stack per line, each line one sample."""
    counts: dict[bytes, int] = {}
    for line in raw.splitlines():
        line = line.strip()
        if line:
            counts[line] = counts.get(line, 0) + 1
    if not counts:
        raise BadInput("lines input has no stacks")
    return b"\n".join(k + b" " + str(v).encode() for k, v in counts.items())


def _speedscope(params: IngestParams, body: bytes, limits: Limits) -> IngestItem:
    from ..formats import decode
    metric, st, app = suffix_type(params.name)
    profile = decode(body, "speedscope", limits)
    types = [t.type for t in profile.sample_types]
    col, period_type, period = 0, None, 0
    if "cpu" in types and metric in ("process_cpu", "wall"):
        col = types.index("cpu")
        st = ValueType("cpu" if metric == "process_cpu" else "wall", "nanoseconds")
        period_type, period = ValueType("cpu", "nanoseconds"), 10**9 // params.sample_rate
    profile = replace(profile, sample_types=[st], values=profile.values[:, [col]], period_type=period_type,
                      period=period, default_sample_type=st.type, source_format="speedscope")
    return IngestItem(series_labels(metric, app, params), _timed(profile, params), list(profile.warnings))


def _pprof(params: IngestParams, body: bytes, ctype: str, limits: Limits) -> IngestItem:
    from ..formats.pprof import decode_pprof
    config: dict = {}
    if "multipart/form-data" in ctype.lower():
        parts = multipart_fields(body, ctype)
        if "prev_profile" in parts and parts["prev_profile"]:
            # Grafana Pyroscope refuses it the same way (only the retired pyroscope-io server
            # subtracted a previous upload, keeping state between requests): see docs/pyroscope.md
            raise BadInput("multipart field prev_profile (cumulative profiles of old pyroscope-go "
                           "clients) is not supported: unsupported client version, update "
                           "github.com/grafana/pyroscope-go to the latest version")
        if not parts.get("profile"):
            raise BadInput("multipart body has no 'profile' field")
        body = parts["profile"]
        if parts.get("sample_type_config"):
            try:
                config = json.loads(parts["sample_type_config"])
            except ValueError as e:
                raise BadInput(f"sample_type_config is not valid JSON ({e})") from None
            if not isinstance(config, dict):
                raise BadInput("sample_type_config must be a JSON object {sample_type: {...}}")
    if is_dotnet_upload(params.spy_name, config):
        body = fix_dotnet_pprof(body, limits)
    profile = decode_pprof(body, limits)
    if params.spy_name in SCRIPTING_SPIES:
        profile = replace(profile, frames=scripting_frame_names(profile.frames))
    if config:
        profile = _apply_sample_type_config(profile, config)
    metric = pprof_metric_name(profile, config)
    labels = dict(params.tags)
    labels["__name__"] = metric
    labels["service_name"] = params.name
    labels["pyroscope_spy"] = params.spy_name
    if not profile.time_nanos or profile.time_nanos < 366 * 86400 * 10**9:   # unset or 1970
        profile = replace(profile, time_nanos=params.start_ns)
    if not profile.duration_nanos and params.end_ns > params.start_ns:
        profile = replace(profile, duration_nanos=params.end_ns - params.start_ns)
    return IngestItem(labels, replace(profile, source_format="pprof"), list(profile.warnings))


def is_dotnet_upload(spy_name: str, config: dict) -> bool:
    """Pyroscope's test for the .NET agent's uploads: ``spyName=dotnetspy``, or ``unknown`` with a
    ``sample_type_config`` that names ``inuse-space`` (the default configuration does not)."""
    return spy_name == "dotnetspy" or (spy_name == "unknown" and "inuse-space" in config)


def fix_dotnet_pprof(data: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """Pyroscope's two repairs of the .NET agent's pprof, applied to the protobuf before decoding:
    when every function has id 0 and there are as many functions as locations, function ``i``
    takes location ``i``'s id (the agent's lines refer to functions by those ids); and a sample
    type named with ``-`` (``alloc-size``) gets ``_`` instead (its string table entry is
    rewritten). A body that does not parse is returned as it is, for the decoder to word the error."""
    from google.protobuf.message import DecodeError

    from ..formats.compression import maybe_gunzip
    from ..formats.proto import profile_pb2
    msg = profile_pb2.Profile()
    try:
        msg.ParseFromString(maybe_gunzip(data, limits))
    except DecodeError:
        return data
    st = msg.string_table
    if len(msg.function) == len(msg.location) and not any(fn.id for fn in msg.function):
        for fn, loc in zip(msg.function, msg.location):
            fn.id = loc.id
    for vt in msg.sample_type:
        if 0 <= vt.type < len(st) and b"-" in st[vt.type]:
            st[vt.type] = st[vt.type].replace(b"-", b"_")
    return msg.SerializeToString()


def scripting_frame_names(frames: FrameTable) -> FrameTable:
    """Pyroscope's function names for pprof from scripting-language spies (``spyName`` pyspy,
    rbspy or scripting): every function becomes ``<file>:-1 - <name>`` (the line is not known per
    function, so Pyroscope writes -1). Address-only frames (no function) stay as they are."""
    names = [f"{file}:-1 - {name}" if (name or file) else name for name, file in zip(frames.name, frames.file)]
    return replace(frames, name=names)


def _apply_sample_type_config(profile: Profile, config: dict) -> Profile:
    """``display-name`` renames a sample type; types missing from the config are kept."""
    types = []
    for vt in profile.sample_types:
        c = config.get(vt.type)
        name = vt.type
        if isinstance(c, dict) and c.get("display-name"):
            name = str(c["display-name"])
        types.append(ValueType(name, vt.unit))
    default = profile.default_sample_type
    if isinstance(config.get(default), dict) and config[default].get("display-name"):
        default = str(config[default]["display-name"])
    return replace(profile, sample_types=types, default_sample_type=default)


def pprof_metric_name(profile: Profile, config: dict | None = None) -> str:
    """Pyroscope's ``__name__`` for a pprof pushed to ``/ingest``."""
    names = [vt.type for vt in profile.sample_types]
    if "wall" in names:
        return "wall"
    defaults = {"samples": "cpu"}
    st = ""
    for st in names:
        c = (config or {}).get(st)
        if isinstance(c, dict) and c.get("display-name"):
            st = str(c["display-name"])
        st = defaults.get(st, st) if not config else st
        if "cpu" in st:
            return "process_cpu"
        if "alloc_" in st or "inuse_" in st or st in ("space", "objects"):
            return "memory"
        if "mutex_" in st:
            return "mutex"
        if "block_" in st:
            return "block"
        if "goroutines" in st:
            return "goroutines"
    return st or "profile"


def _timed(profile: Profile, params: IngestParams) -> Profile:
    return replace(profile, time_nanos=params.start_ns, duration_nanos=max(0, params.end_ns - params.start_ns))


def multipart_fields(body: bytes, content_type: str) -> dict[str, bytes]:
    """Fields of a ``multipart/form-data`` body by name."""
    if "boundary=" not in content_type:
        raise BadInput("multipart/form-data body without a boundary in Content-Type")
    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not msg.is_multipart():
        raise BadInput("multipart/form-data body could not be parsed")
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            payload = part.get_payload(decode=True)
            out[str(name)] = payload if isinstance(payload, bytes) else b""
    return out

