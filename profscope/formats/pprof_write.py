"""Encode a :class:`Profile` or :class:`StackSet` as gzipped pprof that ``go tool pprof`` reads."""
from __future__ import annotations

import gzip

import numpy as np

from ..model import FrameTable, Profile, StackSet, ValueType
from .proto import profile_pb2 as pb


class _Strings:
    def __init__(self) -> None:
        self.table: list[str] = [""]
        self.index: dict[str, int] = {"": 0}

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.table)
            self.table.append(s)
        return i


def _frames_into(msg: pb.Profile, frames: FrameTable, st: _Strings) -> None:
    """One location per frame (id = frame index + 1), one function per distinct function."""
    fn_ids: dict[tuple, int] = {}
    map_ids: dict[str, int] = {}
    for i in range(len(frames)):
        mfile = frames.mapping_file[i]
        mid = 0
        if mfile:
            mid = map_ids.get(mfile, 0)
            if not mid:
                mid = map_ids[mfile] = len(map_ids) + 1
                msg.mapping.add(id=mid, filename=st(mfile), has_functions=True)
        loc = msg.location.add(id=i + 1, mapping_id=mid, address=int(frames.address[i]))
        name = frames.name[i]
        if name:
            key = (name, frames.system_name[i], frames.file[i], int(frames.start_line[i]))
            fid = fn_ids.get(key)
            if fid is None:
                fid = fn_ids[key] = len(fn_ids) + 1
                msg.function.add(id=fid, name=st(name), system_name=st(frames.system_name[i] or name),
                                 filename=st(frames.file[i]), start_line=key[3])
            loc.line.add(function_id=fid, line=int(frames.line[i]))


def encode_profile(p: Profile, compress: bool = True) -> bytes:
    st = _Strings()
    msg = pb.Profile()
    for vt in p.sample_types:
        msg.sample_type.add(type=st(vt.type), unit=st(vt.unit))
    _frames_into(msg, p.frames, st)
    offs = p.stack_offsets.tolist()
    locs = (p.stack_frames.astype(np.int64) + 1).tolist()
    vals = p.values.tolist()
    label_msgs = []
    for ls in p.label_sets:
        label_msgs.append([pb.Label(key=st(lb.key), num=lb.num, num_unit=st(lb.unit)) if lb.is_num
                           else pb.Label(key=st(lb.key), str=st(lb.str)) for lb in ls])
    sl = p.sample_labels.tolist()
    for i in range(p.n_samples):
        s = msg.sample.add(location_id=locs[offs[i]:offs[i + 1]], value=vals[i])
        if sl[i]:
            s.label.extend(label_msgs[sl[i]])
    _header(msg, st, p.period_type, p.period, p.time_nanos, p.duration_nanos, p.comments,
            p.default_sample_type)
    msg.string_table.extend(s.encode("utf-8", "surrogatepass") for s in st.table)
    raw = msg.SerializeToString()
    return gzip.compress(raw, 6) if compress else raw


def encode_stackset(ss: StackSet, time_nanos: int = 0, compress: bool = True) -> bytes:
    """A merged selection as a one-sample-type pprof."""
    labels = np.zeros(ss.n_stacks, np.int32)
    p = Profile([ss.sample_type if ss.sample_type.type else ValueType("samples", "count")],
                ss.values.reshape(-1, 1), ss.stack_offsets, ss.stack_frames, ss.frames, labels,
                period_type=ss.period_type, period=ss.period, time_nanos=time_nanos,
                duration_nanos=ss.duration_nanos, comments=list(ss.comments))
    return encode_profile(p, compress)


def _header(msg, st, period_type: ValueType | None, period, time_nanos, duration_nanos, comments,
            default_type) -> None:
    if period_type is not None:
        msg.period_type.type = st(period_type.type)
        msg.period_type.unit = st(period_type.unit)
    msg.period = int(period or 0)
    msg.time_nanos = int(time_nanos or 0)
    msg.duration_nanos = int(duration_nanos or 0)
    msg.comment.extend(st(c) for c in comments)
    if default_type:
        msg.default_sample_type = st(default_type)
