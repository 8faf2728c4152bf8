"""The varint-stream readings of pprof (formats/pprof_scan.py, numpy, and its compiled twin
formats/_pprofscan.c) must give exactly what the message-by-message reading gives, on real files
and on hand-built encodings that real encoders produce (Go writes lists of one or two ids
unpacked) or may produce (fields out of order, unknown fields), and must step aside for what they
do not cover. Damaged bytes must never crash the compiled one or make it guess."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profscope.errors import BadInput
from profscope.formats import pprof as P
from profscope.formats import pprof_scan
from profscope.formats.pprof_scan import scan
from profscope.limits import Limits
from profscope.varint import uvarint


def _classic(raw: bytes):
    msg, strings = P._parse_message(raw)
    return P._build(msg, msg.time_nanos, strings, P._message_tables(msg), P._message_samples(msg), Limits())


def _same(a, b) -> None:
    assert a.sample_types == b.sample_types and a.period_type == b.period_type
    assert (a.period, a.time_nanos, a.duration_nanos, a.comments) == (b.period, b.time_nanos, b.duration_nanos,
                                                                       b.comments)
    assert np.array_equal(a.values, b.values)
    assert np.array_equal(a.stack_offsets, b.stack_offsets) and np.array_equal(a.stack_frames, b.stack_frames)
    fa, fb = a.frames, b.frames
    assert (fa.name, fa.system_name, fa.file, fa.mapping_file) == (fb.name, fb.system_name, fb.file, fb.mapping_file)
    for col in ("line", "start_line", "address"):
        assert np.array_equal(getattr(fa, col), getattr(fb, col))
    assert a.label_sets == b.label_sets and np.array_equal(a.sample_labels, b.sample_labels)


def _pprof_files(data: Path) -> list[Path]:
    return sorted(p for p in data.rglob("*") if p.is_file() and p.suffix in (".gz", ".pb", ".pprof")
                  and "otlp" not in p.name and "v1." not in p.name)


@pytest.fixture(params=["compiled", "numpy"])
def reading(request, monkeypatch):
    """Runs a test once with the compiled reading first in line, once with the numpy one alone."""
    if request.param == "numpy":
        monkeypatch.setattr(pprof_scan, "native", None)
    return request.param


def test_the_compiled_reading_is_built():
    assert pprof_scan.native is not None, (
        "profscope/formats/_pprofscan.c was not compiled: install a C compiler and Python's headers, "
        "then `pip install -e .` again (hatch_build.py prints why it failed)")


def _columns(sc) -> list[np.ndarray]:
    labels = list(sc.samples.labels) if sc.samples.labels is not None else []
    return [*sc.tables, *sc.samples[:4], *labels]


def _same_columns(a, b) -> None:
    ca, cb = _columns(a), _columns(b)
    assert len(ca) == len(cb)
    for x, y in zip(ca, cb):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_compiled_and_numpy_readings_give_the_same_columns(data):
    covered = 0
    for path in _pprof_files(data):
        try:
            raw = P._raw(path.read_bytes(), Limits())
        except Exception:
            continue
        native, numpy_ = scan(raw, use_native=True), scan(raw, use_native=False)
        if native is not None and numpy_ is not None:
            _same_columns(native, numpy_)
            covered += 1
        assert numpy_ is None or native is not None, f"{path.name}: the compiled reading stepped aside"
    assert covered > 20


def test_real_files_read_the_same_both_ways(data, reading):
    files = _pprof_files(data)
    assert len(files) > 20
    scanned = 0
    for path in files:
        try:
            raw = P._raw(path.read_bytes(), Limits())
            want = _classic(raw)
        except Exception as e:                      # a bad file: both readings give the same error
            with pytest.raises(type(e)) as got:
                P.decode_pprof(path.read_bytes())
            assert str(got.value) == str(e), path.name
            continue
        scanned += scan(raw) is not None
        _same(P.decode_pprof(path.read_bytes()), want)
    assert scanned > 20


# ------------------------------------------------------------------ hand-built encodings
def _f(num: int, value: int) -> bytes:
    return uvarint(num << 3) + uvarint(value & (2**64 - 1))


def _ld(num: int, payload: bytes) -> bytes:
    return uvarint(num << 3 | 2) + uvarint(len(payload)) + payload


def _packed(num: int, values: list[int]) -> bytes:
    return _ld(num, b"".join(uvarint(v & (2**64 - 1)) for v in values))


def _profile(samples: list[bytes], extra_location: bytes = b"") -> bytes:
    strings = ["", "samples", "count", "cpu", "nanoseconds", "main", "work", "main.go", "thread", "t1", "bytes",
               "/bin/app"]
    out = [_ld(1, _f(1, 1) + _f(2, 2)), _ld(1, _f(2, 4) + _f(1, 3))]         # second one: fields out of order
    out += [_ld(2, s) for s in samples]
    out.append(_ld(3, _f(1, 1) + _f(5, 11) + _f(7, 1)))                     # mapping
    out.append(_ld(4, _f(1, 1) + _f(2, 1) + _ld(4, _f(1, 1) + _f(2, 10)) + extra_location))
    # location 2: two lines (inlined), fields out of order, an unknown varint field 9
    out.append(_ld(4, _ld(4, _f(1, 2) + _f(2, 20)) + _f(1, 2) + _f(9, 77) + _ld(4, _f(2, 21) + _f(1, 1))))
    out.append(_ld(4, _f(1, 3) + _f(3, 0x4000)))                            # address only
    out.append(_ld(5, _f(1, 1) + _f(2, 5) + _f(4, 7) + _f(5, 3)))
    out.append(_ld(5, _f(4, 7) + _f(2, 6) + _f(1, 2)))
    out += [_ld(6, s.encode()) for s in strings]
    out += [_f(9, 1_700_000_000_000_000_000), _f(10, 10**10), _ld(11, _f(1, 3) + _f(2, 4)), _f(12, 10**7)]
    return b"".join(out)


def test_unpacked_lists_labels_and_field_order(reading):
    samples = [
        _packed(1, [2, 1]) + _packed(2, [3, 30]),
        _f(1, 3) + _f(1, 1) + _f(2, 1) + _f(2, -5),                         # unpacked, as Go writes short lists
        _f(2, 2) + _f(1, 1) + _f(2, 20) + _ld(3, _f(1, 8) + _f(2, 9)),       # values around an id, a label
        _ld(3, _f(1, 10) + _f(3, 4096) + _f(4, 10)) + _packed(1, [2]) + _packed(2, [1, 2]) + _ld(3, _f(1, 8) + _f(2, 9)),
        _packed(1, []) + _packed(2, [7, 70]),                               # no location at all
    ]
    raw = _profile(samples)
    assert scan(raw) is not None
    got = P.decode_pprof(raw)
    _same(got, _classic(raw))
    assert got.values[:, 1].tolist() == [30, -5, 20, 2, 70]
    assert got.label_sets[got.sample_labels[3]] == tuple(sorted(got.label_sets[got.sample_labels[3]]))
    assert len(got.label_sets[got.sample_labels[3]]) == 2 and got.sample_labels[2] != got.sample_labels[3]


def test_what_the_scan_does_not_cover_is_read_message_by_message(reading):
    fixed64 = uvarint(9 << 3 | 1) + (5).to_bytes(8, "little")              # wire type 1 in a Location
    raw = _profile([_packed(1, [1]) + _packed(2, [1, 10])], extra_location=fixed64)
    assert scan(raw) is None
    _same(P.decode_pprof(gzip.compress(raw)), _classic(raw))


def test_a_length_that_runs_past_its_message_is_not_guessed(reading):
    bad_sample = uvarint(1 << 3 | 2) + uvarint(9) + uvarint(1)              # packed ids claiming 9 bytes
    raw = _profile([bad_sample])
    assert scan(raw) is None
    with pytest.raises(Exception) as e:
        _classic(raw)
    with pytest.raises(type(e.value)) as e2:
        P.decode_pprof(raw)
    assert str(e2.value) == str(e.value)


def _outcome(fn):
    try:
        return fn(), None
    except Exception as e:                      # the error a reading gives is part of what it gives
        return None, (type(e), str(e))


_SAMPLES = [_packed(1, [2, 1]) + _packed(2, [3, 30]), _f(1, 3) + _f(1, 1) + _f(2, 1) + _f(2, -5),
            _ld(3, _f(1, 10) + _f(3, 4096) + _f(4, 10)) + _packed(1, [2]) + _packed(2, [1, 2])]


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_damaged_bytes_are_read_as_protobuf_reads_them_or_refused(hyp):
    """Random damage (bytes changed, cut, inserted) to a valid profile: where both readings answer,
    their columns are equal; with either reading, a profile the message-by-message decoding
    accepts decodes to the same profile, and one it refuses is refused."""
    raw = bytearray(_profile(_SAMPLES))
    for _ in range(hyp.draw(st.integers(1, 4))):
        at = hyp.draw(st.integers(0, len(raw) - 1))
        how = hyp.draw(st.sampled_from(["set", "cut", "insert"]))
        if how == "set":
            raw[at] = hyp.draw(st.integers(0, 255))
        elif how == "cut":
            del raw[at:at + hyp.draw(st.integers(1, 8))]
        else:
            raw[at:at] = hyp.draw(st.binary(min_size=1, max_size=6))
        if not raw:
            return
    raw = bytes(raw)
    compiled = pprof_scan.native.scan(raw)
    numpy_ = scan(raw, use_native=False)
    if compiled is not None and numpy_ is not None:
        _same_columns(scan(raw), numpy_)
    want, want_err = _outcome(lambda: _classic(raw))
    built = pprof_scan.native
    try:
        for native in (built, None):
            pprof_scan.native = native
            got, got_err = _outcome(lambda: P.decode_pprof(raw))
            if want is None:         # refused both ways (the first problem named may differ)
                assert got_err is not None and issubclass(got_err[0], BadInput), got_err
            else:
                assert got_err is None, got_err
                _same(got, want)
    finally:
        pprof_scan.native = built


def test_the_compiled_reading_takes_only_bytes_and_any_prefix():
    raw = _profile(_SAMPLES)
    with pytest.raises(TypeError):
        pprof_scan.native.scan(bytearray(raw))
    for cut in range(len(raw)):                  # every truncation: no crash, an answer or None
        cols = pprof_scan.native.scan(raw[:cut])
        assert cols is None or len(cols) == 22
