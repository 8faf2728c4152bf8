"""Decode pprof (``perftools.profiles.Profile``) into the canonical :class:`Profile`.

Parsing is done by protobuf's C backend (upb) with profscope's own ``profile.proto``. The tables
(samples, locations, functions, mappings) are read as varint streams by :mod:`.pprof_scan`, into
numpy columns without Python code per entry; a file that reading does not cover is parsed message
by message (``_message_tables``/``_message_samples``). Both feed the same checks and the same
build: distinct frames per location line, then sample stacks expanded to frames with one
vectorized CSR gather.

Validation follows what ``go tool pprof`` rejects (``../shared/data/edge/EXPECTED.txt``), with
messages that name the offending field.
"""
from __future__ import annotations

import re
from itertools import chain

import numpy as np
from google.protobuf.message import DecodeError

from ..analysis.stacks import unique_inverse
from ..errors import LimitExceeded, MalformedProfile, UnsupportedFormat
from ..hashing import frame_content_keys, str_hashes
from ..limits import DEFAULT_LIMITS, Limits
from ..model import FrameTable, Label, Profile, ValueType
from .compression import maybe_gunzip
from .pprof_scan import LabelRows, SampleColumns, Tables, scan
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


def _raw(data: bytes, limits: Limits) -> bytes:
    """Gunzip (bounded) and refuse empty and legacy input."""
    if len(data) == 0:
        raise MalformedProfile("parsing profile: empty input file")
    raw = maybe_gunzip(data, limits)
    if len(raw) == 0:
        raise MalformedProfile("parsing profile: empty input after gunzip")
    legacy = looks_like_legacy(raw)
    if legacy:
        raise UnsupportedFormat(f"unsupported format: {legacy}; only protobuf pprof is accepted "
                                "(convert it with `go tool pprof -proto`)")
    return raw


def _strings(table, has_content: bool) -> list[str]:
    # one decode for the whole table; NUL separates (a string holding NUL is decoded alone)
    joined = b"\0".join(table)
    strings = joined.decode("utf-8", "replace").split("\0") if joined else []
    if len(strings) != len(table):
        strings = [x.decode("utf-8", "replace") for x in table]
    if not strings:
        raise MalformedProfile("parsing profile: string_table is empty (string_table[0] must be \"\")"
                               if has_content else "parsing profile: not a pprof profile (no string table)")
    if strings[0] != "":
        raise MalformedProfile(f"parsing profile: string_table[0] must be empty, found {strings[0][:40]!r}")
    return strings


def _concatenated(times: list[int]) -> None:
    if len(times) > 1 and any(times[:-1]):
        raise MalformedProfile("parsing profile: concatenated profiles detected "
                               "(time_nanos appears more than once)")


def _parse_message(raw: bytes) -> tuple[pb.Profile, list[str]]:
    """Parse message by message and check the string table."""
    msg = pb.Profile()
    try:
        msg.ParseFromString(raw)
    except DecodeError as e:
        raise UnsupportedFormat(f"unsupported format: not a protobuf pprof profile ({e})") from None
    # pprof refuses a second time_nanos (concatenated profiles); a re-encoded size equal to the input
    # proves there was none, so the second, slower parse runs only when sizes differ
    _concatenated(_TimesOnly.count(raw) if msg.ByteSize() != len(raw) else [])
    return msg, _strings(msg.string_table, bool(len(msg.sample) or len(msg.sample_type)))


def decode_pprof(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Profile:
    """Decode a pprof profile. The varint-stream reading (:mod:`.pprof_scan`) covers every profile
    the usual encoders write; anything else is parsed message by message."""
    raw = _raw(data, limits)
    sc = scan(raw)
    if sc is not None:
        hdr = sc.view
        times = list(hdr.time_nanos)
        _concatenated(times)
        strings = _strings(hdr.string_table, bool(len(hdr.sample) or len(hdr.sample_type)))
        return _build(hdr, times[-1] if times else 0, strings, sc.tables, sc.samples, limits)
    msg, strings = _parse_message(raw)
    return _build(msg, msg.time_nanos, strings, _message_tables(msg), _message_samples(msg), limits)


def _build(hdr, time_nanos: int, strings: list[str], tables: Tables, cols: SampleColumns,
           limits: Limits) -> Profile:
    nstr = len(strings)

    def s(i: int, what: str) -> str:
        if i < 0 or i >= nstr:
            raise MalformedProfile(f"parsing profile: {what} string index {i} out of range "
                                   f"(string_table has {nstr} entries)")
        return strings[i]

    sample_types = [ValueType(s(v.type, "sample_type.type"), s(v.unit, "sample_type.unit"))
                    for v in hdr.sample_type]
    ntypes = len(sample_types)
    period_type = (ValueType(s(hdr.period_type.type, "period_type.type"),
                             s(hdr.period_type.unit, "period_type.unit"))
                   if hdr.HasField("period_type") else None)
    comments = [s(c, "comment") for c in hdr.comment]
    default_type = s(hdr.default_sample_type, "default_sample_type")
    doc_url = s(hdr.doc_url, "doc_url")
    drop = s(hdr.drop_frames, "drop_frames")
    keep = s(hdr.keep_frames, "keep_frames")

    frames, loc_ids_arr, loc_lens, loc_offs, loc_flat = _location_frames(tables, strings)
    nloc = len(loc_ids_arr)

    # --- samples into columns
    slens, vlens = cols.slens, cols.vlens
    n = len(slens)
    if n > limits.max_samples:
        raise LimitExceeded(f"profile has {n} samples; limit max_samples={limits.max_samples}")
    bad = np.flatnonzero(vlens != ntypes)
    if len(bad):
        raise MalformedProfile(f"malformed profile: mismatch: sample {int(bad[0])} has "
                               f"{int(vlens[bad[0]])} values vs. {ntypes} types")
    sloc = cols.sloc
    values = cols.values.reshape(n, ntypes)

    def missing_loc(lid):
        raise MalformedProfile(f"malformed profile: sample has nil location (location id {lid} is not defined)")
    sloc_pos = _positions(loc_ids_arr, sloc, missing_loc)

    soffs = np.zeros(n + 1, np.int64)
    np.cumsum(slens, out=soffs[1:])
    if drop:
        loc_frame_lists = [loc_flat[loc_offs[i]:loc_offs[i + 1]].tolist() for i in range(nloc)]
        sloc_pos, soffs = _prune_drop_frames(drop, keep, sloc_pos, soffs, loc_frame_lists, frames.name)
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
    idx = np.repeat(loc_offs[sloc_pos] - per_loc_csum[:-1], per_loc) + np.arange(total_frames)
    stack_frames = loc_flat[idx] if total_frames else np.zeros(0, np.int32)
    depth = int(frame_count_per_sample.max()) if n else 0
    if depth > limits.max_stack_depth:
        raise LimitExceeded(f"a stack has {depth} frames; limit max_stack_depth={limits.max_stack_depth}")

    if cols.labels is None and isinstance(hdr, pb.Profile):
        label_sets, sample_labels = _labels(hdr.sample, n, s)
    else:
        label_sets, sample_labels = _label_rows(cols.labels, n, s)

    return Profile(
        sample_types=sample_types, values=values, stack_offsets=stack_offsets,
        stack_frames=stack_frames.astype(np.int32, copy=False), frames=frames,
        sample_labels=sample_labels, label_sets=label_sets, period_type=period_type,
        period=hdr.period, time_nanos=time_nanos, duration_nanos=hdr.duration_nanos,
        default_sample_type=default_type, comments=comments, doc_url=doc_url,
        drop_frames=drop, keep_frames=keep, source_format="pprof")


def _message_samples(msg: pb.Profile) -> SampleColumns:
    samples = msg.sample
    n = len(samples)
    loc_lists = [x.location_id for x in samples]
    val_lists = [x.value for x in samples]
    slens = np.fromiter(map(len, loc_lists), np.int64, n)
    vlens = np.fromiter(map(len, val_lists), np.int64, n)
    sloc = np.fromiter(chain.from_iterable(loc_lists), np.uint64, int(slens.sum()))
    values = np.fromiter(chain.from_iterable(val_lists), np.int64, int(vlens.sum()))
    return SampleColumns(slens, sloc, vlens, values, None)


def _message_tables(msg: pb.Profile) -> Tables:
    maps, funcs, locs = msg.mapping, msg.function, msg.location
    nm, nf, nloc = len(maps), len(funcs), len(locs)
    line_lists = [lc.line for lc in locs]
    all_lines = list(chain.from_iterable(line_lists))
    return Tables(
        np.fromiter((m.id for m in maps), np.uint64, nm),
        np.fromiter((m.filename for m in maps), np.int64, nm),
        np.fromiter((f.id for f in funcs), np.uint64, nf),
        np.fromiter((f.name for f in funcs), np.int64, nf),
        np.fromiter((f.system_name for f in funcs), np.int64, nf),
        np.fromiter((f.filename for f in funcs), np.int64, nf),
        np.fromiter((f.start_line for f in funcs), np.int64, nf),
        np.fromiter((lc.id for lc in locs), np.uint64, nloc),
        np.fromiter((lc.mapping_id for lc in locs), np.uint64, nloc),
        np.fromiter((lc.address for lc in locs), np.uint64, nloc),
        np.fromiter(map(len, line_lists), np.int64, nloc),
        np.fromiter((ln.function_id for ln in all_lines), np.uint64, len(all_lines)),
        np.fromiter((ln.line for ln in all_lines), np.int64, len(all_lines)))


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


def _prune_drop_frames(drop, keep, sloc_pos, soffs, loc_frame_lists, frame_names):
    """pprof's ``Prune``: remove frames beneath (and including) the first root-side frame matching
    ``drop_frames`` but not ``keep_frames``, never before the first user frame."""
    try:
        drop_rx = re.compile("^(?:" + drop + ")$")
        keep_rx = re.compile("^(?:" + keep + ")$") if keep else None
    except re.error as e:
        raise MalformedProfile(f"malformed profile: drop_frames/keep_frames is not a valid regex ({e})") from None
    prune, prune_beneath = set(), set()
    for li, fl in enumerate(loc_frame_lists):
        names = [frame_names[f] for f in fl]
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


def _ids(ids: np.ndarray, what: str) -> np.ndarray:
    if len(ids) and (ids == 0).any():
        raise MalformedProfile(f"malformed profile: found {what} with reserved ID=0")
    s = np.sort(ids)
    dup = s[1:] == s[:-1]
    if dup.any():                       # the smallest id given twice is named
        raise MalformedProfile(f"malformed profile: duplicate {what} id {int(s[1:][dup][0])}"
                               + (" (sample has nil location)" if what == "location" else ""))
    return ids


def _positions(ids: np.ndarray, refs: np.ndarray, err) -> np.ndarray:
    """Index in ``ids`` of each of ``refs`` (ids need not be dense); ``err(bad_ref)`` on a miss."""
    top = int(ids.max()) if len(ids) else 0
    if len(ids) and top < 4 * len(ids) + 4096:   # near-dense ids: a lookup table beats a search
        table = np.full(top + 2, -1, np.int64)
        table[ids.astype(np.int64)] = np.arange(len(ids))
        pos = table[np.minimum(refs, top + 1).astype(np.int64)] if len(refs) else np.zeros(0, np.int64)
        if len(pos) and (pos < 0).any():
            err(int(refs[np.flatnonzero(pos < 0)[0]]))
        return pos
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, refs)
    pos_c = np.minimum(pos, max(len(ids) - 1, 0))
    ok = (pos < len(ids)) & (sorted_ids[pos_c] == refs) if len(ids) else np.zeros(len(refs), bool)
    if not ok.all():
        err(int(refs[np.flatnonzero(~ok)[0]]))
    return order[pos_c] if len(refs) else np.zeros(0, np.int64)


def _unique_cols(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of int64 columns ``cols`` (equal lengths), sorted: the index of each
    one's first occurrence and each row's group. When the columns' ranges multiply to under 2**62,
    through one int64 code per row (rows in numeric order, much faster than sorting rows as raw
    bytes); otherwise ``np.unique(..., axis=0)`` (its own order)."""
    if not len(cols[0]):
        z = np.zeros(0, np.int64)
        return z, z
    bounds = [(int(c.min()), int(c.max())) for c in cols]
    total = 1
    for lo, hi in bounds:
        total *= hi - lo + 1
    if total >= 2**62:
        _, first, inv = np.unique(np.stack(cols, axis=1), axis=0, return_index=True, return_inverse=True)
        return first, inv.reshape(-1)
    code = cols[0] - bounds[0][0]
    for c, (lo, hi) in zip(cols[1:], bounds[1:]):
        code = code * (hi - lo + 1) + (c - lo)
    return unique_inverse(code, first=True)


def _unique_rows(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_unique_cols` of an (n, k) int64 array's columns, with the distinct rows."""
    first, inv = _unique_cols(list(keys.T))
    return keys[first], first, inv


def _check_strs(nstr: int, idx: np.ndarray, what: str) -> None:
    if len(idx) and (idx.min() < 0 or idx.max() >= nstr):
        bad = int(idx[(idx < 0) | (idx >= nstr)][0])
        raise MalformedProfile(f"parsing profile: {what} string index {bad} out of range "
                               f"(string_table has {nstr} entries)")


def _location_frames(t: Tables, strings: list[str]):
    """Locations -> distinct frames, vectorized over lines (one frame per line, leaf first; an
    address-only location is one frame). Returns (frames, location ids, frames per location,
    CSR offsets, frame index per location line)."""
    nstr = len(strings)
    map_ids = _ids(t.map_ids, "mapping")
    _check_strs(nstr, t.map_file, "mapping.filename")
    fn_ids = _ids(t.fn_ids, "function")
    _check_strs(nstr, t.fn_name, "function.name")
    _check_strs(nstr, t.fn_sys, "function.system_name")
    _check_strs(nstr, t.fn_file, "function.filename")
    fn_start = t.fn_start
    loc_ids = _ids(t.loc_ids, "location")
    loc_map, loc_addr, nlines, line_fn, line_no = t.loc_map, t.loc_addr, t.nlines, t.line_fn, t.line_no
    nloc = len(loc_ids)

    has_map = loc_map != 0

    def missing_map(mid):
        li = int(np.flatnonzero(has_map & ~np.isin(loc_map, map_ids))[0])
        raise MalformedProfile(f"malformed profile: location id {int(loc_ids[li])} refers to missing mapping id {mid}")
    map_pos = np.full(nloc, -1, np.int64)
    map_pos[has_map] = _positions(map_ids, loc_map[has_map], missing_map)
    line_loc = np.repeat(np.arange(nloc), nlines)

    def missing_fn(fid):
        li = int(line_loc[np.flatnonzero(line_fn == fid)[0]])
        raise MalformedProfile(f"malformed profile: location id: {int(loc_ids[li])} has a line with nil "
                               f"function (function id {fid})")
    line_fpos = _positions(fn_ids, line_fn, missing_fn)

    # frame key per location line: (function, line number, mapping); address-only: (address, mapping)
    lm = map_pos[line_loc] + 1
    line_fpos = line_fpos.astype(np.int64, copy=False)
    first_line, inv_line = _unique_cols([line_fpos, line_no, lm])
    addr_only = np.flatnonzero(nlines == 0)
    a_addr, a_map = loc_addr[addr_only].view(np.int64), map_pos[addr_only] + 1
    first_addr, inv_addr = _unique_cols([a_addr, a_map])
    nlf = len(first_line)
    # strings picked by index with numpy (an object array), straight from the string table to
    # each frame; string_table[0] is "": an address-only frame's name, file of no mapping
    table = np.empty(nstr, object)
    table[:] = strings
    fp = line_fpos[first_line]
    pad = np.zeros(len(first_addr), np.int64)
    mfile = np.concatenate([np.zeros(1, np.int64), t.map_file])
    name_i = np.concatenate([t.fn_name[fp], pad])
    sys_i = np.concatenate([t.fn_sys[fp], pad])
    file_i = np.concatenate([t.fn_file[fp], pad])
    map_i = mfile[np.concatenate([lm[first_line], a_map[first_addr]])]
    line, start = np.concatenate([line_no[first_line], pad]), np.concatenate([fn_start[fp], pad])
    addr = np.concatenate([np.zeros(nlf, np.uint64), a_addr[first_addr].view(np.uint64)])
    sh = str_hashes(strings)     # the content keys from one hash per string of the table
    frames = FrameTable(table[name_i].tolist(), table[sys_i].tolist(), table[file_i].tolist(), line, start,
                        addr, table[map_i].tolist(),
                        frame_content_keys(sh[name_i], sh[sys_i], sh[file_i], line, start, addr, sh[map_i]),
                        (strings, np.stack([name_i, sys_i, file_i, map_i])))
    # location CSR over frames: lines in order, an address-only location gets its one frame
    loc_lens = np.maximum(nlines, 1)
    loc_offs = np.zeros(nloc + 1, np.int64)
    np.cumsum(loc_lens, out=loc_offs[1:])
    loc_flat = np.empty(int(loc_offs[-1]), np.int32)
    line_start = np.repeat(loc_offs[:-1] , nlines) + (np.arange(len(line_loc)) - np.repeat(np.cumsum(nlines) - nlines, nlines))
    loc_flat[line_start] = inv_line
    loc_flat[loc_offs[addr_only]] = nlf + inv_addr
    return frames, loc_ids, loc_lens, loc_offs, loc_flat


def _label_rows(rows: LabelRows | None, n: int, s) -> tuple[list[tuple[Label, ...]], np.ndarray]:
    """Label sets from label rows (see :func:`_labels`): Label objects are made once per distinct
    label and once per distinct set, never per sample."""
    sample_labels = np.zeros(n, np.int32)
    label_sets: list[tuple[Label, ...]] = [()]
    if rows is None or not len(rows.sample):
        return label_sets, sample_labels
    quad = np.stack([rows.key, rows.str, rows.num, rows.unit], axis=1)
    uq, _, inv = _unique_rows(quad)
    labels = []
    for key, sv, num, unit in uq.tolist():
        k = s(key, "label.key")
        labels.append(Label(k, s(sv, "label.str")) if sv else Label(k, "", num, s(unit, "label.num_unit"), True))
    order = sorted(range(len(labels)), key=labels.__getitem__)
    rank = np.empty(len(labels), np.int64)
    rank[order] = np.arange(len(labels))
    r = rank[inv]
    o = np.lexsort((r, rows.sample))
    smp, r = rows.sample[o], r[o]
    owners, first, counts = np.unique(smp, return_index=True, return_counts=True)
    width = int(counts.max())
    mat = np.full((len(owners), width), -1, np.int64)
    mat[np.repeat(np.arange(len(owners)), counts), np.arange(len(smp)) - np.repeat(first, counts)] = r
    sets, set_first, set_inv = _unique_rows(mat)
    appearance = np.argsort(set_first, kind="stable")          # number the sets as they first appear
    number = np.empty(len(sets), np.int32)
    number[appearance] = np.arange(1, len(sets) + 1)
    by_rank = [labels[i] for i in order]
    for row in sets[appearance].tolist():
        label_sets.append(tuple(by_rank[x] for x in row if x >= 0))
    sample_labels[owners] = number[set_inv]
    return label_sets, sample_labels
