"""Decode pprof (``perftools.profiles.Profile``) into the canonical :class:`Profile`.

Parsing is done by protobuf's C backend (upb) with profscope's own ``profile.proto``. Samples are
moved into numpy columns with ``np.fromiter`` over the C containers; locations and functions
(far fewer than samples) are resolved with dictionaries, then sample stacks are expanded to
frames with one vectorized CSR gather.

Validation follows what ``go tool pprof`` rejects (``../shared/data/edge/EXPECTED.txt``), with
messages that name the offending field.
"""
from __future__ import annotations

from itertools import chain
import re

import numpy as np
from google.protobuf.message import DecodeError

from ..errors import LimitExceeded, MalformedProfile, UnsupportedFormat
from ..limits import DEFAULT_LIMITS, Limits
from ..model import FrameTable, Label, Profile, ValueType
from .compression import maybe_gunzip
from .proto import profile_pb2 as pb

_TIME_NANOS_TAG = 9


class _TimesOnly:
    """Parses only field 9 of a Profile, to detect concatenated profiles as pprof does."""
    _cls = None

    @classmethod
    def count(cls, raw: bytes) -> list[int]:
        if cls._cls is None:
            from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
            fdp = descriptor_pb2.FileDescriptorProto(name="profscope_times.proto",
                                                     package="profscope.internal", syntax="proto3")
            m = fdp.message_type.add(name="Times")
            m.field.add(name="time_nanos", number=_TIME_NANOS_TAG, type=3, label=3)  # int64, repeated
            pool = descriptor_pool.DescriptorPool()
            pool.Add(fdp)
            cls._cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("profscope.internal.Times"))
        msg = cls._cls()
        msg.ParseFromString(raw)
        return list(msg.time_nanos)


def looks_like_legacy(data: bytes) -> str | None:
    head = data[:64]
    for marker, what in ((b"heap profile:", "legacy gperftools heap profile"),
                         (b"--- heapz", "legacy heapz profile"),
                         (b"--- contention", "legacy contention profile"),
                         (b"--- growthz", "legacy growthz profile"),
                         (b"--- threadz", "legacy threadz profile")):
        if head.lstrip().startswith(marker):
            return what
    if len(data) >= 24 and data[:8] == b"\0" * 8 and data[8:16] in (
            (3).to_bytes(8, "little"), (3).to_bytes(8, "big")):
        return "legacy binary CPU profile (gperftools / pre-protobuf Go)"
    if len(data) >= 12 and data[:4] == b"\0" * 4 and data[4:8] in ((3).to_bytes(4, "little"),
                                                                 (3).to_bytes(4, "big")):
        return "legacy binary CPU profile (gperftools, 32-bit)"
    return None


def parse_pprof_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[pb.Profile, list[str]]:
    """Gunzip (bounded), parse and check the string table. Returns the message and strings."""
    if len(data) == 0:
        raise MalformedProfile("parsing profile: empty input file")
    raw = maybe_gunzip(data, limits)
    if len(raw) == 0:
        raise MalformedProfile("parsing profile: empty input after gunzip")
    legacy = looks_like_legacy(raw)
    if legacy:
        raise UnsupportedFormat(f"unsupported format: {legacy}; only protobuf pprof is accepted "
                                "(convert it with `go tool pprof -proto`)")
    msg = pb.Profile()
    try:
        msg.ParseFromString(raw)
    except DecodeError as e:
        raise UnsupportedFormat(f"unsupported format: not a protobuf pprof profile ({e})") from None
    times = _TimesOnly.count(raw)
    if len(times) > 1 and any(times[:-1]):
        raise MalformedProfile("parsing profile: concatenated profiles detected "
                               "(time_nanos appears more than once)")
    strings = [s.decode("utf-8", "replace") for s in msg.string_table]
    if not strings:
        raise MalformedProfile("parsing profile: string_table is empty (string_table[0] must be \"\")"
                               if len(msg.sample) or len(msg.sample_type) else
                               "parsing profile: not a pprof profile (no string table)")
    if strings[0] != "":
        raise MalformedProfile(f"parsing profile: string_table[0] must be empty, found {strings[0][:40]!r}")
    return msg, strings


def decode_pprof(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Profile:
    msg, strings = parse_pprof_message(data, limits)
    nstr = len(strings)

    def s(i: int, what: str) -> str:
        if i < 0 or i >= nstr:
            raise MalformedProfile(f"parsing profile: {what} string index {i} out of range "
                                   f"(string_table has {nstr} entries)")
        return strings[i]

    sample_types = [ValueType(s(v.type, "sample_type.type"), s(v.unit, "sample_type.unit"))
                    for v in msg.sample_type]
    ntypes = len(sample_types)
    period_type = (ValueType(s(msg.period_type.type, "period_type.type"),
                             s(msg.period_type.unit, "period_type.unit"))
                   if msg.HasField("period_type") else None)
    comments = [s(c, "comment") for c in msg.comment]
    default_type = s(msg.default_sample_type, "default_sample_type")
    doc_url = s(msg.doc_url, "doc_url")
    drop = s(msg.drop_frames, "drop_frames")
    keep = s(msg.keep_frames, "keep_frames")

    # --- mappings and functions (one Python step per entry, never per sample)
    mapping_file: dict[int, str] = {}
    for m in msg.mapping:
        if m.id == 0:
            raise MalformedProfile("malformed profile: found mapping with reserved ID=0")
        if m.id in mapping_file:
            raise MalformedProfile(f"malformed profile: duplicate mapping id {m.id}")
        mapping_file[m.id] = s(m.filename, "mapping.filename")
    functions: dict[int, tuple[str, str, str, int]] = {}
    for f in msg.function:
        if f.id == 0:
            raise MalformedProfile("malformed profile: found function with reserved ID=0")
        if f.id in functions:
            raise MalformedProfile(f"malformed profile: duplicate function id {f.id}")
        functions[f.id] = (s(f.name, "function.name"), s(f.system_name, "function.system_name"),
                           s(f.filename, "function.filename"), f.start_line)

    # --- locations -> frames (leaf first inside a location)
    frame_index: dict[tuple, int] = {}
    frame_rows: list[tuple[str, str, str, int, int, int, str]] = []
    loc_ids: list[int] = []
    loc_frame_lists: list[list[int]] = []
    seen_locs: set[int] = set()
    for loc in msg.location:
        if loc.id == 0:
            raise MalformedProfile("malformed profile: found location with reserved ID=0")
        if loc.id in seen_locs:
            raise MalformedProfile(f"malformed profile: duplicate location id {loc.id} "
                                   "(sample has nil location)")
        seen_locs.add(loc.id)
        if loc.mapping_id and loc.mapping_id not in mapping_file:
            raise MalformedProfile(f"malformed profile: location id {loc.id} refers to missing "
                                   f"mapping id {loc.mapping_id}")
        mfile = mapping_file.get(loc.mapping_id, "")
        fl: list[int] = []
        if len(loc.line) == 0:
            keys = [("", "", "", 0, 0, loc.address, mfile)]
        else:
            keys = []
            for ln in loc.line:
                fn = functions.get(ln.function_id)
                if fn is None:
                    raise MalformedProfile(f"malformed profile: location id: {loc.id} has a line "
                                           f"with nil function (function id {ln.function_id})")
                keys.append((fn[0], fn[1], fn[2], ln.line, fn[3], 0 if fn[0] else loc.address, mfile))
        for key in keys:
            fi = frame_index.get(key)
            if fi is None:
                fi = frame_index[key] = len(frame_rows)
                frame_rows.append(key)
            fl.append(fi)
        loc_ids.append(loc.id)
        loc_frame_lists.append(fl)

    nloc = len(loc_ids)
    loc_ids_arr = np.array(loc_ids, np.uint64)
    loc_lens = np.fromiter((len(x) for x in loc_frame_lists), np.int64, nloc)
    loc_offs = np.zeros(nloc + 1, np.int64)
    np.cumsum(loc_lens, out=loc_offs[1:])
    loc_flat = np.fromiter(chain.from_iterable(loc_frame_lists), np.int32, int(loc_offs[-1]))

    # --- samples into columns
    samples = msg.sample
    n = len(samples)
    if n > limits.max_samples:
        raise LimitExceeded(f"profile has {n} samples; limit max_samples={limits.max_samples}")
    slens = np.fromiter((len(x.location_id) for x in samples), np.int64, n)
    vlens = np.fromiter((len(x.value) for x in samples), np.int64, n)
    bad = np.flatnonzero(vlens != ntypes)
    if len(bad):
        raise MalformedProfile(f"malformed profile: mismatch: sample {int(bad[0])} has "
                               f"{int(vlens[bad[0]])} values vs. {ntypes} types")
    sloc = np.fromiter(chain.from_iterable(x.location_id for x in samples), np.uint64, int(slens.sum()))
    values = np.fromiter(chain.from_iterable(x.value for x in samples), np.int64, n * ntypes
                         ).reshape(n, ntypes)

    # location id -> position, for non-dense ids too
    order = np.argsort(loc_ids_arr, kind="stable")
    sorted_ids = loc_ids_arr[order]
    pos = np.searchsorted(sorted_ids, sloc)
    pos_c = np.minimum(pos, max(nloc - 1, 0))
    ok = (pos < nloc) & (sorted_ids[pos_c] == sloc) if nloc else np.zeros(len(sloc), bool)
    if not ok.all():
        missing = int(sloc[np.flatnonzero(~ok)[0]])
        raise MalformedProfile(f"malformed profile: sample has nil location (location id {missing} "
                               "is not defined)")
    sloc_pos = order[pos_c] if len(sloc) else np.zeros(0, np.int64)

    soffs = np.zeros(n + 1, np.int64)
    np.cumsum(slens, out=soffs[1:])
    if drop:
        sloc_pos, soffs = _prune_drop_frames(msg, strings, drop, keep, loc_ids_arr, sloc_pos, soffs,
                                             loc_frame_lists, frame_rows)
        # drop_frames can shorten locations: rebuild location CSR from the pruned lists
        loc_lens = np.fromiter((len(x) for x in loc_frame_lists), np.int64, nloc)
        loc_offs = np.zeros(nloc + 1, np.int64)
        np.cumsum(loc_lens, out=loc_offs[1:])
        loc_flat = np.fromiter(chain.from_iterable(loc_frame_lists), np.int32, int(loc_offs[-1]))

    # expand locations to frames: each sample location contributes loc_lens[loc] frames
    per_loc = loc_lens[sloc_pos]
    per_loc_csum = np.zeros(len(per_loc) + 1, np.int64)
    np.cumsum(per_loc, out=per_loc_csum[1:])
    frame_count_per_sample = per_loc_csum[soffs[1:]] - per_loc_csum[soffs[:-1]]
    stack_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(frame_count_per_sample, out=stack_offsets[1:])
    total_frames = int(stack_offsets[-1])
    starts_out = np.zeros(len(per_loc) + 1, np.int64)
    np.cumsum(per_loc, out=starts_out[1:])
    idx = np.repeat(loc_offs[sloc_pos] - starts_out[:-1], per_loc) + np.arange(total_frames)
    stack_frames = loc_flat[idx] if total_frames else np.zeros(0, np.int32)
    depth = int(frame_count_per_sample.max()) if n else 0
    if depth > limits.max_stack_depth:
        raise LimitExceeded(f"a stack has {depth} frames; limit max_stack_depth={limits.max_stack_depth}")

    label_sets, sample_labels = _labels(samples, n, s)

    return Profile(
        sample_types=sample_types, values=values, stack_offsets=stack_offsets,
        stack_frames=stack_frames.astype(np.int32, copy=False), frames=FrameTable.from_rows(frame_rows),
        sample_labels=sample_labels, label_sets=label_sets, period_type=period_type,
        period=msg.period, time_nanos=msg.time_nanos, duration_nanos=msg.duration_nanos,
        default_sample_type=default_type, comments=comments, doc_url=doc_url,
        drop_frames=drop, keep_frames=keep, source_format="pprof")


def _labels(samples, n: int, s) -> tuple[list[tuple[Label, ...]], np.ndarray]:
    nl = np.fromiter((len(x.label) for x in samples), np.int64, n)
    sample_labels = np.zeros(n, np.int32)
    label_sets: list[tuple[Label, ...]] = [()]
    if not nl.any():
        return label_sets, sample_labels
    index: dict[tuple, int] = {(): 0}
    for i in np.flatnonzero(nl).tolist():
        labs = []
        for lb in samples[i].label:
            key = s(lb.key, "label.key")
            if lb.str:
                labs.append(Label(key, s(lb.str, "label.str")))
            else:
                labs.append(Label(key, "", lb.num, s(lb.num_unit, "label.num_unit"), True))
        t = tuple(sorted(labs))
        li = index.get(t)
        if li is None:
            li = index[t] = len(label_sets)
            label_sets.append(t)
        sample_labels[i] = li
    return label_sets, sample_labels


def _prune_drop_frames(msg, strings, drop, keep, loc_ids_arr, sloc_pos, soffs, loc_frame_lists, frame_rows):
    """pprof's ``Prune``: remove frames beneath (and including) the first root-side frame matching
    ``drop_frames`` but not ``keep_frames``, never before the first user frame."""
    try:
        drop_rx = re.compile("^(?:" + drop + ")$")
        keep_rx = re.compile("^(?:" + keep + ")$") if keep else None
    except re.error as e:
        raise MalformedProfile(f"malformed profile: drop_frames/keep_frames is not a valid regex ({e})") from None
    prune, prune_beneath = set(), set()
    for li, fl in enumerate(loc_frame_lists):
        names = [frame_rows[f][0] for f in fl]
        i = len(names) - 1
        while i >= 0:
            name = names[i]
            if name:
                nm = name[1:] if name[0] == "." else name
                if drop_rx.match(nm) and not (keep_rx and keep_rx.match(nm)):
                    break
            i -= 1
        if i >= 0 and names:
            prune_beneath.add(li)
            if i == len(names) - 1:
                prune.add(li)
            else:
                loc_frame_lists[li] = fl[i + 1:]
    if not prune and not prune_beneath:
        return sloc_pos, soffs
    new_locs: list[np.ndarray] = []
    lens = []
    for si in range(len(soffs) - 1):
        locs = sloc_pos[soffs[si]:soffs[si + 1]]
        found_user = False
        for j in range(len(locs) - 1, -1, -1):
            lid = int(locs[j])
            if lid not in prune and lid not in prune_beneath:
                found_user = True
                continue
            if not found_user:
                continue
            locs = locs[j + 1:] if lid in prune else locs[j:]
            break
        new_locs.append(locs)
        lens.append(len(locs))
    offs = np.zeros(len(lens) + 1, np.int64)
    np.cumsum(lens, out=offs[1:])
    flat = np.concatenate(new_locs) if new_locs else np.zeros(0, np.int64)
    return flat.astype(np.int64), offs
