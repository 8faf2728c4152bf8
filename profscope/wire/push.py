"""Pyroscope's push (``push.v1.PusherService/Push``): request bytes in, validated and merged
profiles (:class:`~profscope.store.ingest.Staged`) out. Pure: no server state, so a decoding
worker process runs it whole and the server's process is left with the dictionaries and
DuckDB (:meth:`profscope.formats.parallel.DecodePool.stage`)."""
from __future__ import annotations

import re
import time

from ..errors import BadInput, LimitExceeded
from ..formats.pprof import decode_pprof
from ..limits import Limits
from ..model import Profile
from ..store.ingest import Staged, stage_input
from .connect import parse_request
from .proto.push.v1 import push_pb2

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")
RESERVED_KEEP = {"__name__"}
REQUIRED_LABELS = ("__name__", "service_name")


def fix_time(profile: Profile, now_ns: int | None = None) -> Profile:
    """Profiles without a time are stamped now; times written in microseconds by old
    pyroscope-rs/py-spy versions (they land in 1970) are scaled to nanoseconds."""
    t = profile.time_nanos
    if t <= 0:
        profile.time_nanos = now_ns or time.time_ns()
    elif 10**14 <= t < 10**17:
        profile.time_nanos = t * 1000
    return profile


def profile_uuid(text: str) -> str | None:
    """A client's profile ID (``RawSample.ID``, a UUID) in canonical form (lower case, dashed),
    or None when it is empty or not a UUID."""
    t = text.strip().lower()
    if not _UUID.match(t):
        return None
    h = t.replace("-", "")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def push_labels(pairs) -> dict[str, str]:
    """A series' labels; Pyroscope-internal reserved names (``__delta__``, ``__session_id__``,
    ...) are dropped, ``__name__`` and ``service_name`` are required."""
    labels: dict[str, str] = {}
    for lp in pairs:
        if lp.name.startswith("__") and lp.name not in RESERVED_KEEP:
            continue
        labels[lp.name] = lp.value
    missing = [n for n in REQUIRED_LABELS if not labels.get(n)]
    if missing:
        raise BadInput(f"series labels {sorted(labels)} lack the required label(s) {', '.join(missing)}")
    return labels


def stage_push(body: bytes, content_type: str | None, content_encoding: str | None, limits: Limits,
               tenant: str, now_ns: int) -> list[Staged]:
    """Every profile of a PushRequest body decoded, checked and merged; the first bad one raises
    (its series and sample named), so a request is stored whole or not at all. A sample's UUID
    ``ID`` becomes the stored profiles' ``source_id`` (Pyroscope's ``profile_id_selector``)."""
    req = parse_request(body, content_type, push_pb2.PushRequest(), content_encoding, limits)
    items: list[tuple[Profile, dict[str, str], str | None]] = []
    for si, series in enumerate(req.series):
        labels = push_labels(series.labels)
        for k, sample in enumerate(series.samples):
            try:
                profile = decode_pprof(sample.raw_profile, limits)
            except LimitExceeded:
                raise
            except BadInput as e:
                raise BadInput(f"series[{si}].samples[{k}].raw_profile: {e.message}") from None
            items.append((fix_time(profile, now_ns), labels, profile_uuid(sample.ID)))
    return [stage_input(p, dict(labels), tenant, limits, uid) for p, labels, uid in items]
