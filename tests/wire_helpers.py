"""Helpers for the Pyroscope / OTLP wire tests: servers with a given configuration, Connect calls
decoded with the classes generated from the published .proto files, pprof reading."""
from __future__ import annotations

import contextlib
import gzip
import json
import re
from collections import Counter

import requests
from conftest import LiveServer

from profscope.api import create_app
from profscope.wire.proto.google.v1 import profile_pb2

QUERIER = "/querier.v1.QuerierService/"
CPU = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"


@contextlib.contextmanager
def server(tmp_path, decode_workers: int = 0, **config):
    """A live server on loopback over a fresh store; ``decode_workers`` > 0: uploads are decoded
    (and pushes staged) in that many forked worker processes, as ``profscope serve`` does."""
    from profscope.formats.parallel import DecodePool
    decoder = DecodePool(decode_workers)
    app = create_app({"data_dir": str(tmp_path / "store"), **config}, decoder)
    srv = LiveServer(app)
    try:
        yield srv
    finally:
        srv.close()
        app.extensions["profscope"].store.close()
        decoder.close()


def call_proto(srv, method: str, msg, response_cls, headers=None):
    """A Connect unary call with a protobuf body; returns (status, decoded response or error)."""
    h = {"Content-Type": "application/proto", **(headers or {})}
    r = requests.post(srv.url + QUERIER + method, data=msg.SerializeToString(), headers=h, timeout=60)
    if r.status_code != 200:
        return r.status_code, r.json()
    out = response_cls()
    out.ParseFromString(r.content)
    return 200, out


def call_json(srv, method: str, body: dict, headers=None):
    r = requests.post(srv.url + QUERIER + method, data=json.dumps(body),
                      headers={"Content-Type": "application/json", **(headers or {})}, timeout=60)
    return r.status_code, r.json()


def pprof_stacks(raw: bytes) -> tuple[Counter, profile_pb2.Profile]:
    """Stacks of a pprof (leaf first) as tuples of function names (address for address-only
    locations) -> summed first value."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    p = profile_pb2.Profile()
    p.ParseFromString(raw)
    st = p.string_table
    fn = {f.id: st[f.name] for f in p.function}
    loc = {}
    for lc in p.location:
        loc[lc.id] = tuple(fn[ln.function_id] for ln in lc.line) or (f"0x{lc.address:x}",)
    out: Counter = Counter()
    for s in p.sample:
        key = tuple(name for lid in s.location_id for name in loc[lid])
        out[key] += s.value[0]
    return out, p


_LINE = re.compile(r"^(.*)\[(.*)\]@(.*):(-?\d+)$")


def expected_compact_stacks(doc: dict) -> Counter:
    """Pyroscope's expected-output JSON (strprofile compact form) as the same Counter."""
    out: Counter = Counter()
    for s in doc["samples"]:
        key = []
        for lc in s["locations"]:
            if lc["lines"]:
                key.extend(_LINE.match(x).group(1) for x in lc["lines"])
            else:
                key.append(lc["address"])
        vals = s["values"]
        out[tuple(key)] += int(vals if isinstance(vals, (str, int)) else vals[0])
    return out
