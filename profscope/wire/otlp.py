"""OTLP profiles (opentelemetry-proto v1.10.0, package ``v1development``) into profscope profiles.

``decode_export_request(body, content_type, content_encoding)`` reads an
``ExportProfilesServiceRequest`` from protobuf or JSON (optionally gzipped) and refuses payloads
written against another schema version: the profiles schema was renumbered at v1.8, v1.9 and
v1.10, so an old binary payload parses "successfully" into garbage and an old JSON payload loads
with no samples. Unknown fields and out-of-range dictionary indices are therefore errors, and
every error names the version profscope expects.

``convert_request(req)`` turns the request into ``(series labels, Profile)`` pairs following
Grafana Pyroscope's rules: ``service.name`` becomes ``service_name`` (fallback
``unknown_service`` or ``unknown_service:<process.executable.name>``), resource and scope
attributes with string values become series labels, sample attributes and links become sample
labels (``span_id`` / ``trace_id`` in hex), a sample with timestamps and no values counts one
per timestamp, and ``samples/count`` with period ``cpu/nanoseconds`` becomes ``process_cpu``
``cpu/nanoseconds`` with values multiplied by the period. No I/O here.
"""
from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass

import numpy as np
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as otlp_pb

from ..errors import BadInput, MalformedProfile, UnsupportedFormat
from ..formats.compression import gunzip, is_gzip
from ..limits import DEFAULT_LIMITS, Limits
from ..model import FrameTable, Label, Profile, ValueType, csr_take

EXPECTED_VERSION = "expected OTLP profiles v1.10.0 (opentelemetry-proto 1.45 / v1development)"
SERVICE_NAME_ATTR = "service.name"
EXECUTABLE_NAME_ATTR = "process.executable.name"
FALLBACK_SERVICE = "unknown_service"
DEFAULT_DURATION_NS = 10 * 10**9

ExportRequest = otlp_pb.ExportProfilesServiceRequest


@dataclass
class OtlpSeries:
    labels: dict[str, str]
    profile: Profile


# ------------------------------------------------------------------------------------ decoding
def decode_export_request(body: bytes, content_type: str = "application/x-protobuf",
                          content_encoding: str | None = None,
                          limits: Limits = DEFAULT_LIMITS) -> ExportRequest:
    """Bytes of an HTTP body (or a gRPC message) to a checked ``ExportProfilesServiceRequest``."""
    if content_encoding and content_encoding.lower() == "gzip" or is_gzip(body):
        body = gunzip(body, limits, what="OTLP request body")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return _decode_json(body)
    if ctype in ("application/x-protobuf", "application/protobuf", "application/grpc", ""):
        return _decode_binary(body)
    raise UnsupportedFormat(f"Content-Type {content_type!r} is not supported for OTLP profiles; "
                            "use application/x-protobuf or application/json")


def _decode_binary(body: bytes) -> ExportRequest:
    req = ExportRequest()
    try:
        req.ParseFromString(body)
    except DecodeError as e:
        raise MalformedProfile(f"OTLP profiles protobuf does not parse ({e}); {EXPECTED_VERSION}") from None
    check_no_unknown_fields(req)
    return req


def check_no_unknown_fields(req: ExportRequest) -> None:
    """Refuse a message that carries fields the v1.10 schema does not define (a sign of another
    schema version). Detected cheaply: dropping unknown fields changes the serialized size."""
    with_unknown = req.ByteSize()
    probe = ExportRequest()
    probe.CopyFrom(req)
    probe.DiscardUnknownFields()
    if probe.ByteSize() == with_unknown:
        return
    where = _find_unknown(req)
    raise MalformedProfile(f"OTLP profiles payload has fields this schema does not define ({where}); "
                           f"it was probably written for another version of the profiles schema; "
                           f"{EXPECTED_VERSION}")


def _find_unknown(msg, path: str = "request", out: list | None = None, limit: int = 3) -> str:
    from google.protobuf import unknown_fields
    out = [] if out is None else out
    stack = [(msg, path)]
    while stack and len(out) < limit:
        m, p = stack.pop()
        nums = sorted({f.field_number for f in unknown_fields.UnknownFieldSet(m)})
        if nums:
            out.append(f"{m.DESCRIPTOR.name} at {p}: field number(s) {', '.join(map(str, nums))}")
            continue
        for fd, value in m.ListFields():
            if fd.message_type is None:
                continue
            if fd.is_repeated:
                if fd.message_type.GetOptions().map_entry:
                    continue
                for i in range(len(value) - 1, -1, -1):
                    stack.append((value[i], f"{p}.{fd.name}[{i}]"))
            else:
                stack.append((value, f"{p}.{fd.name}"))
    return "; ".join(out) if out else "unknown fields present"


_HEX_ID_FIELDS = {"traceId": 32, "trace_id": 32, "spanId": 16, "span_id": 16,
                  "profileId": 32, "profile_id": 32}
_HEX = re.compile(r"^[0-9a-fA-F]*$")


def _hex_ids_to_base64(node: object) -> None:
    """OTLP/JSON writes trace, span and profile ids as hex; protobuf's JSON mapping reads bytes
    as base64. Convert ids that are well-formed hex of the right length, in place."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            for k, v in cur.items():
                n = _HEX_ID_FIELDS.get(k)
                if n and isinstance(v, str) and len(v) == n and _HEX.match(v):
                    cur[k] = base64.b64encode(bytes.fromhex(v)).decode("ascii")
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(cur, list):
            stack.extend(x for x in cur if isinstance(x, (dict, list)))


def _decode_json(body: bytes) -> ExportRequest:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"OTLP profiles JSON is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"OTLP profiles JSON must be an object; {EXPECTED_VERSION}")
    _hex_ids_to_base64(doc)
    req = ExportRequest()
    try:
        json_format.ParseDict(doc, req, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        raise MalformedProfile(f"OTLP profiles JSON does not match the schema ({e}); {EXPECTED_VERSION}") from None
    return req


# ------------------------------------------------------------------------------------ conversion
class _Dict:
    """The request's dictionary with bounds-checked lookups and per-request frame tables."""

    def __init__(self, d) -> None:
        self.d = d
        self.strings = list(d.string_table)
        self.n_attr = len(d.attribute_table)
        self.rows: list[tuple[str, str, str, int, int, int, str]] = []
        self._loc_frames: dict[int, list[int]] = {}
        self._stack_cache: dict[int, list[int]] = {}
        self._attr_cache: dict[int, tuple[str, str | None]] = {}

    def string(self, i: int, what: str) -> str:
        if not 0 <= i < len(self.strings):
            raise _index_error(what, i, "string_table", len(self.strings))
        return self.strings[i]

    def attribute(self, i: int, what: str) -> tuple[str, str | None]:
        """(key, value as text or None when the value is not representable as a label)."""
        hit = self._attr_cache.get(i)
        if hit is not None:
            return hit
        if not 0 <= i < self.n_attr:
            raise _index_error(what, i, "attribute_table", self.n_attr)
        a = self.d.attribute_table[i]
        key = self.string(a.key_strindex, f"{what} key_strindex")
        hit = self._attr_cache[i] = (key, _any_value_text(a.value, self, what))
        return hit

    def location_frames(self, li: int, what: str) -> list[int]:
        hit = self._loc_frames.get(li)
        if hit is not None:
            return hit
        table = self.d.location_table
        if not 0 <= li < len(table):
            raise _index_error(what, li, "location_table", len(table))
        loc = table[li]
        where = f"location_table[{li}]"
        mfile = ""
        if loc.mapping_index:
            if not 0 <= loc.mapping_index < len(self.d.mapping_table):
                raise _index_error(f"{where}.mapping_index", loc.mapping_index, "mapping_table",
                                   len(self.d.mapping_table))
            m = self.d.mapping_table[loc.mapping_index]
            mfile = self.string(m.filename_strindex, f"mapping_table[{loc.mapping_index}].filename_strindex")
            for k, ai in enumerate(m.attribute_indices):
                self.attribute(ai, f"mapping_table[{loc.mapping_index}].attribute_indices[{k}]")
        for k, ai in enumerate(loc.attribute_indices):
            self.attribute(ai, f"{where}.attribute_indices[{k}]")
        out: list[int] = []
        ftable = self.d.function_table
        for k, line in enumerate(loc.lines):   # lines[0] is the innermost (leaf) frame
            fi = line.function_index
            if not 0 <= fi < len(ftable):
                raise _index_error(f"{where}.lines[{k}].function_index", fi, "function_table", len(ftable))
            f = ftable[fi]
            fw = f"function_table[{fi}]"
            name = self.string(f.name_strindex, f"{fw}.name_strindex")
            sysname = self.string(f.system_name_strindex, f"{fw}.system_name_strindex")
            file = self.string(f.filename_strindex, f"{fw}.filename_strindex")
            out.append(self._row((name, sysname, file, int(line.line), int(f.start_line), int(loc.address), mfile)))
        if not out:
            out.append(self._row(("", "", "", 0, 0, int(loc.address), mfile)))
        self._loc_frames[li] = out
        return out

    def _row(self, row: tuple[str, str, str, int, int, int, str]) -> int:
        self.rows.append(row)
        return len(self.rows) - 1

    def stack_frames(self, si: int, what: str) -> list[int]:
        hit = self._stack_cache.get(si)
        if hit is not None:
            return hit
        table = self.d.stack_table
        if not 0 <= si < len(table):
            raise _index_error(what, si, "stack_table", len(table))
        frames: list[int] = []
        for k, li in enumerate(table[si].location_indices):   # leaf first
            frames.extend(self.location_frames(li, f"stack_table[{si}].location_indices[{k}]"))
        self._stack_cache[si] = frames
        return frames

    def link(self, i: int, what: str) -> tuple[str, str]:
        table = self.d.link_table
        if not 0 <= i < len(table):
            raise _index_error(what, i, "link_table", len(table))
        lk = table[i]
        return lk.trace_id.hex(), lk.span_id.hex()


def _index_error(what: str, i: int, table: str, n: int) -> MalformedProfile:
    return MalformedProfile(f"OTLP profile: {what} = {i} is out of range ({table} has {n} entries); "
                            f"{EXPECTED_VERSION}")


def _any_value_text(v, dic: _Dict | None, what: str) -> str | None:
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return v.string_value
    if kind == "string_value_strindex":
        if dic is None:
            return None
        return dic.string(v.string_value_strindex, f"{what} string_value_strindex")
    if kind == "int_value":
        return str(v.int_value)
    if kind == "bool_value":
        return "true" if v.bool_value else "false"
    if kind == "double_value":
        return repr(v.double_value)
    return None


def _key_values(attrs, dic: _Dict, what: str) -> list[tuple[str, str | None]]:
    """Resource/scope ``KeyValue`` attributes with string values (keys and values may be
    string-table indices). Like Pyroscope, other value kinds (``process.pid``) do not become
    series labels: they would split a service into one series per process."""
    out = []
    for k, kv in enumerate(attrs):
        key = kv.key if kv.key else (dic.string(kv.key_strindex, f"{what}[{k}].key_strindex")
                                     if kv.key_strindex else "")
        text = _any_value_text(kv.value, dic, f"{what}[{k}].value")
        out.append((key, text if kv.value.WhichOneof("value") in _STRING_KINDS else None))
    return out


_STRING_KINDS = ("string_value", "string_value_strindex")


def resource_service_name(attrs: list[tuple[str, str | None]]) -> str:
    """Pyroscope's rule: ``service.name``; else ``unknown_service:<process.executable.name>``;
    else ``unknown_service``."""
    fallback = FALLBACK_SERVICE
    for key, val in attrs:
        if key == SERVICE_NAME_ATTR and val:
            return val
        if key == EXECUTABLE_NAME_ATTR and val:
            fallback = f"{FALLBACK_SERVICE}:{val}"
    return fallback


def _type_rule(sample_type: ValueType, period_type: ValueType | None, period: int) -> tuple[str, ValueType, int]:
    """(series ``__name__``, stored sample type, value multiplier)."""
    pt = period_type if (period_type and period) else ValueType("", "")
    if (sample_type.type, sample_type.unit, pt.type, pt.unit) == ("samples", "count", "cpu", "nanoseconds"):
        return "process_cpu", ValueType("cpu", "nanoseconds"), int(period)
    if sample_type.type == "off_cpu" and not pt.type:
        return "off_cpu", sample_type, 1
    return (pt.type or sample_type.type or "profile"), sample_type, 1


def convert_request(req: ExportRequest, now_ns: int | None = None) -> list[OtlpSeries]:
    """Every profile of the request as ``(series labels, Profile)``. Profiles (and parts of
    profiles, when samples carry their own ``service.name``) that end up with the same series
    labels and sample type are merged into one profile."""
    if not req.resource_profiles:
        return []
    dic = _Dict(req.dictionary)
    now_ns = time.time_ns() if now_ns is None else now_ns
    acc = _Accumulator()
    for ri, rp in enumerate(req.resource_profiles):
        res_attrs = _key_values(rp.resource.attributes, dic, f"resource_profiles[{ri}].resource.attributes")
        service = resource_service_name(res_attrs)
        for si, sp in enumerate(rp.scope_profiles):
            scope_attrs = _key_values(sp.scope.attributes, dic,
                                      f"resource_profiles[{ri}].scope_profiles[{si}].scope.attributes")
            base: dict[str, str] = {}
            for key, val in res_attrs + scope_attrs:
                if key and val and key not in base and not key.startswith("__"):
                    base[key] = val
            for pi, p in enumerate(sp.profiles):
                where = f"resource_profiles[{ri}].scope_profiles[{si}].profiles[{pi}]"
                _add_profile(acc, p, dic, base, service, where, now_ns)
    return acc.build(dic)


@dataclass
class _Group:
    labels: dict[str, str]
    sample_type: ValueType
    period_type: ValueType | None
    period: int
    time_nanos: int
    duration_nanos: int


class _Accumulator:
    """Samples of every profile of a request, with the group (series + type) each belongs to."""

    def __init__(self) -> None:
        self.groups: list[_Group] = []
        self.group_index: dict[tuple, int] = {}
        self.stack_idx: list[int] = []
        self.values: list[int] = []
        self.group_of: list[int] = []
        self.label_key: list[tuple] = []

    def group(self, labels: dict[str, str], st: ValueType, pt: ValueType | None, period: int,
              t: int, d: int) -> int:
        key = (tuple(sorted(labels.items())), st, pt, period)
        g = self.group_index.get(key)
        if g is None:
            g = self.group_index[key] = len(self.groups)
            self.groups.append(_Group(labels, st, pt, period, t, d))
        else:
            grp = self.groups[g]
            end = max(grp.time_nanos + grp.duration_nanos, t + d)
            grp.time_nanos = min(grp.time_nanos, t)
            grp.duration_nanos = end - grp.time_nanos
        return g

    def build(self, dic: _Dict) -> list[OtlpSeries]:
        n = len(self.stack_idx)
        if not self.groups:
            return []
        stack_idx = np.array(self.stack_idx, np.int64)
        values = np.array(self.values, np.int64)
        group_of = np.array(self.group_of, np.int64)
        uniq_stacks, inv = np.unique(stack_idx, return_inverse=True)
        per_stack = [dic.stack_frames(int(si), "samples[*].stack_index") for si in uniq_stacks.tolist()]
        lens = np.fromiter((len(f) for f in per_stack), np.int64, len(per_stack))
        s_offs = np.zeros(len(per_stack) + 1, np.int64)
        np.cumsum(lens, out=s_offs[1:])
        s_flat = np.fromiter((x for f in per_stack for x in f), np.int64, int(s_offs[-1]))
        # sample label sets: attributes (except service.name) + link ids
        ls_index: dict[tuple, int] = {}
        label_sets: list[tuple[Label, ...]] = [()]
        sample_ls = np.zeros(n, np.int32)
        for i, lk in enumerate(self.label_key):
            li = ls_index.get(lk)
            if li is None:
                li = ls_index[lk] = len(label_sets)
                label_sets.append(_sample_labels(lk, dic, "samples[*]"))
            sample_ls[i] = li
        label_sets, sample_ls = _dedupe_label_sets(label_sets, sample_ls)
        order = np.argsort(group_of, kind="stable")
        bounds = np.searchsorted(group_of[order], np.arange(len(self.groups) + 1))
        out = []
        for g, grp in enumerate(self.groups):
            rows = order[bounds[g]:bounds[g + 1]]
            offs, flat = csr_take(s_offs, s_flat, inv[rows])
            used, local = np.unique(flat, return_inverse=True)
            frames = FrameTable.from_rows([dic.rows[j] for j in used.tolist()])
            profile = Profile(
                sample_types=[grp.sample_type], values=values[rows].reshape(-1, 1), stack_offsets=offs,
                stack_frames=local.astype(np.int32), frames=frames, sample_labels=sample_ls[rows],
                label_sets=label_sets, period_type=grp.period_type, period=grp.period,
                time_nanos=grp.time_nanos, duration_nanos=grp.duration_nanos,
                default_sample_type=grp.sample_type.type, source_format="otlp")
            out.append(OtlpSeries(dict(grp.labels), profile))
        return out


def _add_profile(acc: _Accumulator, p, dic: _Dict, base: dict[str, str], service: str, where: str,
                 now_ns: int) -> None:
    if not p.HasField("sample_type"):
        raise MalformedProfile(f"OTLP profile {where}: sample_type is missing; {EXPECTED_VERSION}")
    st = ValueType(dic.string(p.sample_type.type_strindex, f"{where}.sample_type.type_strindex"),
                   dic.string(p.sample_type.unit_strindex, f"{where}.sample_type.unit_strindex"))
    pt = None
    if p.HasField("period_type"):
        pt = ValueType(dic.string(p.period_type.type_strindex, f"{where}.period_type.type_strindex"),
                       dic.string(p.period_type.unit_strindex, f"{where}.period_type.unit_strindex"))
    name, stored_type, mult = _type_rule(st, pt, int(p.period))
    labels = dict(base)
    for k, ai in enumerate(p.attribute_indices):
        key, val = dic.attribute(ai, f"{where}.attribute_indices[{k}]")
        if val and not key.startswith("__"):
            labels.setdefault(key, val)
    labels["__name__"] = name
    t = int(p.time_unix_nano) or now_ns
    d = int(p.duration_nano) or DEFAULT_DURATION_NS
    ptype = pt if p.period else None
    groups: dict[str, int] = {}

    def group_for(svc: str) -> int:
        g = groups.get(svc)
        if g is None:
            lab = dict(labels)
            lab["service_name"] = svc
            g = groups[svc] = acc.group(lab, stored_type, ptype, int(p.period), t, d)
        return g

    default_group = group_for(service)
    n_attr = dic.n_attr
    for i, s in enumerate(p.samples):
        vals = s.values
        acc.stack_idx.append(s.stack_index)
        acc.values.append((sum(vals) if vals else len(s.timestamps_unix_nano)) * mult)
        attrs = tuple(s.attribute_indices)
        acc.label_key.append((attrs, s.link_index))
        g = default_group
        for k, ai in enumerate(attrs):
            if not 0 <= ai < n_attr:
                raise _index_error(f"{where}.samples[{i}].attribute_indices[{k}]", ai, "attribute_table", n_attr)
            key, val = dic.attribute(ai, "")
            if key == SERVICE_NAME_ATTR and val:
                g = group_for(val)
        acc.group_of.append(g)


def _sample_labels(key: tuple, dic: _Dict, what: str) -> tuple[Label, ...]:
    attrs, link_index = key
    labels: dict[str, str] = {}
    for k, ai in enumerate(attrs):
        name, val = dic.attribute(ai, f"{what}.attribute_indices[{k}]")
        if name == SERVICE_NAME_ATTR or val is None or val == "":
            continue
        labels.setdefault(name, val)
    if link_index:
        trace_id, span_id = dic.link(link_index, f"{what}.link_index")
        labels["span_id"] = span_id
        if len(trace_id) == 32:
            labels["trace_id"] = trace_id
    return tuple(sorted(Label(k, v) for k, v in labels.items()))


def _dedupe_label_sets(sets: list[tuple[Label, ...]], idx: np.ndarray) -> tuple[list[tuple[Label, ...]], np.ndarray]:
    """Different attribute index tuples can resolve to the same labels: keep one set each."""
    seen: dict[tuple[Label, ...], int] = {(): 0}
    out: list[tuple[Label, ...]] = [()]
    remap = np.zeros(len(sets), np.int32)
    for i, s in enumerate(sets):
        j = seen.get(s)
        if j is None:
            j = seen[s] = len(out)
            out.append(s)
        remap[i] = j
    return out, remap[idx]
