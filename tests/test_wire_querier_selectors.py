"""querier.v1 selectors and formats against a real server: ``stack_trace_selector`` (call site),
``profile_id_selector``, ``max_nodes`` on SelectMergeProfile and ``PROFILE_FORMAT_TREE``.

Expected numbers come from the profile files themselves, read with the generated pprof classes
(not profscope's decoder), and from Pyroscope's documented rules re-implemented here per sample
(slow and obvious on purpose); the tree bytes are read by a decoder written from the format."""
from __future__ import annotations

import base64
import gzip
from collections import Counter

import pytest
import requests
from conftest import DATA
from wire_helpers import call_json, call_proto, pprof_stacks, server

from profscope.wire.proto.google.v1 import profile_pb2
from profscope.wire.proto.querier.v1 import querier_pb2 as q
from profscope.wire.proto.types.v1 import types_pb2 as t

KAFKA = DATA / "pyroscope-agpl/pyro_jfr_kafka.cpu.pb.gz"      # 440 samples, 1238 locations
FIB = DATA / "pprof/parca_fib_bigint.cpu.pb.gz"                # inlined frames, 2 sample types


def file_stacks(path, type_name: str) -> Counter:
    """Root-first function-name stacks of a pprof file -> summed value of sample type
    ``type_name`` (inlined lines expanded, innermost first within a location)."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    p = profile_pb2.Profile()
    p.ParseFromString(raw)
    st = p.string_table
    col = [st[v.type] for v in p.sample_type].index(type_name)
    fn = {f.id: st[f.name] for f in p.function}
    loc = {lc.id: tuple(fn[ln.function_id] for ln in lc.line) for lc in p.location}
    out: Counter = Counter()
    for s in p.sample:
        leaf_first = tuple(name for lid in s.location_id for name in loc[lid])
        out[leaf_first[::-1]] += s.value[col]
    return out


def ingest(srv, path, service: str) -> dict:
    r = requests.post(srv.url + "/api/v1/ingest", params={"service": service}, data=path.read_bytes(), timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def cpu_type(answer: dict) -> tuple[str, int]:
    """(profile type id, store profile id) of the cpu/nanoseconds sample type of an upload."""
    i = next(i for i, pt in enumerate(answer["profile_types"]) if pt.split(":")[1:3] == ["cpu", "nanoseconds"])
    return answer["profile_types"][i], answer["profile_ids"][i]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with server(tmp_path_factory.mktemp("selectors")) as s:
        s.kafka = cpu_type(ingest(s, KAFKA, "kafka"))[0]
        s.fib = cpu_type(ingest(s, FIB, "fib"))[0]
        s.ids = [ingest(s, FIB, "ids"), ingest(s, FIB, "ids")]     # two uploads of one series
        yield s


def sts(*names: str) -> t.StackTraceSelector:
    return t.StackTraceSelector(call_site=[t.Location(name=n) for n in names])


def flame_paths(fg) -> dict[tuple[str, ...], int]:
    """Root-first path -> total of a querier FlameGraph, decoded from its levels (x positions
    are delta-encoded per level; a bar's parent is the bar above that contains its x)."""
    names = list(fg.names)
    out: dict[tuple[str, ...], int] = {}
    above: list[tuple[int, int, tuple]] = [(0, fg.total, ())]
    for li, lv in enumerate(fg.levels):
        v = list(lv.values)
        x = 0
        cur = []
        for i in range(0, len(v), 4):
            x += v[i]
            total, name = v[i + 1], names[v[i + 3]]
            if li == 0:
                path = ()
            else:
                par = next(p for (px, pt, p) in above if px <= x < px + pt or (pt == 0 and px == x))
                path = par + (name,)
                out[path] = out.get(path, 0) + total
            cur.append((x, total, path))
            x += total
        above = cur
    return out


def decode_tree(b: bytes) -> tuple[dict[tuple[str, ...], list[int]], int]:
    """Pyroscope tree bytes -> ({root-first path: [self, total]}, node count without the
    virtual root). Written from the format: per node, depth first, uvarint name length, name,
    uvarint self, uvarint child count."""
    pos = 0

    def uv() -> int:
        nonlocal pos
        shift = val = 0
        while True:
            byte = b[pos]
            pos += 1
            val |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return val

    nodes: dict[tuple[str, ...], list[int]] = {}
    todo = [None]                 # parent paths of nodes still to read; None = the virtual root
    count = -1
    while todo and pos < len(b):
        par = todo.pop()
        n = uv()
        name = b[pos:pos + n].decode()
        pos += n
        self_ = uv()
        kids = uv()
        path = () if par is None else par + (name,)
        if par is None:
            assert name == "" and self_ == 0
        else:
            assert path not in nodes, f"duplicate node {path}"
            nodes[path] = [self_, 0]
        count += 1
        todo.extend([path] * kids)
    assert pos == len(b) and not todo
    for path, (self_, _) in list(nodes.items()):      # totals: self of the node and all below
        for d in range(1, len(path) + 1):
            nodes[path[:d]][1] += self_
    return nodes, count


def heaviest_prefix(stacks: Counter, depth: int) -> tuple[str, ...]:
    best = max(stacks.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return best[:depth]


# ------------------------------------------------------------------------------ call site
@pytest.mark.parametrize("path,attr,depth", [(KAFKA, "kafka", 1), (KAFKA, "kafka", 4), (FIB, "fib", 3)])
def test_call_site_keeps_stacks_under_the_prefix(srv, path, attr, depth):
    ptype = getattr(srv, attr)
    stacks = file_stacks(path, "cpu")
    prefix = heaviest_prefix(stacks, depth)
    want = sum(v for s, v in stacks.items() if s[:depth] == prefix)
    everything = sum(stacks.values())
    assert 0 < want <= everything
    service = f'{{service_name="{attr}"}}'
    req = q.SelectMergeStacktracesRequest(profile_typeID=ptype, label_selector=service, stack_trace_selector=sts(*prefix))
    status, resp = call_proto(srv, "SelectMergeStacktraces", req, q.SelectMergeStacktracesResponse)
    assert status == 200
    fg = resp.flamegraph
    assert fg.total == want
    paths = flame_paths(fg)
    assert paths[prefix] == want and all(p[:len(prefix)] == prefix[:len(p)] for p in paths)
    # the same through SelectMergeProfile: every stack starts with the prefix
    req = q.SelectMergeProfileRequest(profile_typeID=ptype, label_selector=service, stack_trace_selector=sts(*prefix))
    status, prof = call_proto(srv, "SelectMergeProfile", req, profile_pb2.Profile)
    got, _ = pprof_stacks(prof.SerializeToString())
    assert sum(got.values()) == want and all(s[::-1][:depth] == prefix for s in got)
    # SelectSeries: the series sums only the selected stacks
    req = q.SelectSeriesRequest(profile_typeID=ptype, label_selector=service, step=10.0 ** 9,
                                stack_trace_selector=sts(*prefix))
    status, ser = call_proto(srv, "SelectSeries", req, q.SelectSeriesResponse)
    assert sum(p.value for s in ser.series for p in s.points) == want
    # Diff: the selector applies per side
    left = q.SelectMergeStacktracesRequest(profile_typeID=ptype, label_selector=service,
                                           stack_trace_selector=sts(*prefix))
    right = q.SelectMergeStacktracesRequest(profile_typeID=ptype, label_selector=service)
    status, d = call_proto(srv, "Diff", q.DiffRequest(left=left, right=right), q.DiffResponse)
    assert (d.flamegraph.leftTicks, d.flamegraph.rightTicks) == (want, everything)


def test_call_site_json_unknown_name_and_go_pgo(srv):
    stacks = file_stacks(KAFKA, "cpu")
    prefix = heaviest_prefix(stacks, 2)
    want = sum(v for s, v in stacks.items() if s[:2] == prefix)
    body = {"profileTypeID": srv.kafka, "labelSelector": '{service_name="kafka"}',
            "stackTraceSelector": {"callSite": [{"name": n} for n in prefix]}}
    status, js = call_json(srv, "SelectMergeStacktraces", body)
    assert status == 200 and int(js["flamegraph"]["total"]) == want
    # a prefix nothing starts with: an empty answer, not an error
    body["stackTraceSelector"] = {"callSite": [{"name": prefix[0]}, {"name": "no.such.function"}]}
    status, js = call_json(srv, "SelectMergeStacktraces", body)
    assert status == 200 and int(js["flamegraph"].get("total", 0)) == 0
    body["stackTraceSelector"] = {"goPgo": {"keepLocations": 5}}
    status, err = call_json(srv, "SelectMergeStacktraces", body)
    assert status == 400 and "go_pgo" in err["message"]


# ------------------------------------------------------------------------------ profile ids
def test_profile_id_selector(srv):
    one = sum(file_stacks(FIB, "cpu").values())
    (a, b) = srv.ids
    ptype, id_a = cpu_type(a)

    def total(selector) -> int:
        req = q.SelectMergeStacktracesRequest(profile_typeID=ptype, label_selector='{service_name="ids"}',
                                              profile_id_selector=selector)
        status, resp = call_proto(srv, "SelectMergeStacktraces", req, q.SelectMergeStacktracesResponse)
        assert status == 200, resp
        return resp.flamegraph.total

    assert total([]) == 2 * one
    assert total([str(id_a)]) == one
    assert total([b["source_id"]]) == one
    assert total([str(id_a), b["source_id"]]) == 2 * one
    assert total(["7c9e6679-7425-40de-944b-e07fc1f90ae7"]) == 0      # a UUID no push sent
    # the other sample type's id of the same upload is not a cpu profile: nothing
    other_id = next(i for i, pt in zip(a["profile_ids"], a["profile_types"]) if pt != ptype)
    assert total([str(other_id)]) == 0
    req = q.SelectMergeProfileRequest(profile_typeID=ptype, label_selector='{service_name="ids"}',
                                      profile_id_selector=[b["source_id"]])
    status, prof = call_proto(srv, "SelectMergeProfile", req, profile_pb2.Profile)
    assert sum(pprof_stacks(prof.SerializeToString())[0].values()) == one
    status, err = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": ptype, "profileIdSelector": ["bogus!"]})
    assert status == 400 and err["code"] == "invalid_argument" and "bogus!" in err["message"]


# ------------------------------------------------------------------------------ max_nodes pprof
def pyroscope_truncation(stacks: Counter, max_nodes: int) -> Counter:
    """Pyroscope's SelectMergeProfile max_nodes rule, per sample: function call tree totals, keep
    nodes whose total reaches the max_nodes-th largest, cut each stack after its kept root part
    and mark the cut with an ``other`` leaf."""
    node_total: Counter = Counter()
    for s, v in stacks.items():
        for d in range(1, len(s) + 1):
            node_total[s[:d]] += v
    if len(node_total) <= max_nodes:
        return Counter(stacks)
    min_val = sorted(node_total.values(), reverse=True)[max_nodes - 1]
    out: Counter = Counter()
    for s, v in stacks.items():
        k = 0
        while k < len(s) and node_total[s[:k + 1]] >= min_val:
            k += 1
        out[s[:k] + (("other",) if k < len(s) else ())] += v
    return out


@pytest.mark.parametrize("max_nodes", [1, 10, 60])
def test_select_merge_profile_max_nodes(srv, max_nodes):
    full = Counter({s: v for s, v in file_stacks(KAFKA, "cpu").items() if v})
    req = q.SelectMergeProfileRequest(profile_typeID=srv.kafka, label_selector='{service_name="kafka"}',
                                      max_nodes=max_nodes)
    status, prof = call_proto(srv, "SelectMergeProfile", req, profile_pb2.Profile)
    assert status == 200
    got, _ = pprof_stacks(prof.SerializeToString())
    got_root_first = Counter({s[::-1]: v for s, v in got.items()})
    want = pyroscope_truncation(full, max_nodes)
    assert got_root_first == want
    assert sum(got.values()) == sum(full.values())
    assert any(s[-1] == "other" for s in got_root_first)      # the tree was larger: something was cut
    # without max_nodes: every stack as stored
    req = q.SelectMergeProfileRequest(profile_typeID=srv.kafka, label_selector='{service_name="kafka"}')
    status, prof = call_proto(srv, "SelectMergeProfile", req, profile_pb2.Profile)
    assert Counter({s[::-1]: v for s, v in pprof_stacks(prof.SerializeToString())[0].items()}) == full


# ------------------------------------------------------------------------------ tree format
def test_tree_format_matches_the_flame_graph(srv):
    base = {"profile_typeID": srv.kafka, "label_selector": '{service_name="kafka"}'}
    status, fg = call_proto(srv, "SelectMergeStacktraces", q.SelectMergeStacktracesRequest(**base, max_nodes=-1),
                            q.SelectMergeStacktracesResponse)
    status, tr = call_proto(srv, "SelectMergeStacktraces",
                            q.SelectMergeStacktracesRequest(**base, max_nodes=-1, format=q.PROFILE_FORMAT_TREE),
                            q.SelectMergeStacktracesResponse)
    assert status == 200 and not tr.HasField("flamegraph")
    nodes, count = decode_tree(tr.tree)
    assert {p: tot for p, (_, tot) in nodes.items()} == flame_paths(fg.flamegraph)
    assert sum(tot for p, (_, tot) in nodes.items() if len(p) == 1) == fg.flamegraph.total
    # and both equal the file read independently
    stacks = file_stacks(KAFKA, "cpu")
    leaf_self: Counter = Counter()
    for s, v in stacks.items():
        if v:
            leaf_self[s] += v
    assert {p: s for p, (s, _) in nodes.items() if s} == dict(leaf_self)


@pytest.mark.parametrize("max_nodes", [5, 40])
def test_tree_format_truncation(srv, max_nodes):
    base = {"profile_typeID": srv.kafka, "label_selector": '{service_name="kafka"}', "format": q.PROFILE_FORMAT_TREE}
    _, full = call_proto(srv, "SelectMergeStacktraces", q.SelectMergeStacktracesRequest(**base, max_nodes=-1),
                         q.SelectMergeStacktracesResponse)
    _, cut = call_proto(srv, "SelectMergeStacktraces", q.SelectMergeStacktracesRequest(**base, max_nodes=max_nodes),
                        q.SelectMergeStacktracesResponse)
    full_nodes, n_full = decode_tree(full.tree)
    nodes, _ = decode_tree(cut.tree)
    assert n_full > max_nodes
    min_val = sorted((tot for _, tot in full_nodes.values()), reverse=True)[max_nodes - 1]
    real = {p for p in nodes if p[-1] != "other"}
    # exactly the nodes reaching the threshold survive, with their totals unchanged
    assert real == {p for p, (_, tot) in full_nodes.items() if tot >= min_val}
    assert all(nodes[p][1] == full_nodes[p][1] for p in real)
    # each "other" holds what its parent lost
    for p in nodes:
        if p[-1] == "other":
            par = p[:-1]
            lost = sum(tot for c, (_, tot) in full_nodes.items() if c[:-1] == par and c not in real)
            assert nodes[p] == [lost, lost]
    assert sum(tot for p, (_, tot) in nodes.items() if len(p) == 1) == sum(
        tot for p, (_, tot) in full_nodes.items() if len(p) == 1)
    # JSON carries the same bytes (base64)
    status, js = call_json(srv, "SelectMergeStacktraces", {"profileTypeID": srv.kafka, "labelSelector":
                                                           '{service_name="kafka"}', "maxNodes": str(max_nodes),
                                                           "format": "PROFILE_FORMAT_TREE"})
    assert status == 200 and base64.b64decode(js["tree"]) == cut.tree


def test_tree_format_empty_and_span_profile(srv):
    req = q.SelectMergeStacktracesRequest(profile_typeID=srv.kafka, label_selector='{service_name="nobody"}',
                                          format=q.PROFILE_FORMAT_TREE)
    status, resp = call_proto(srv, "SelectMergeStacktraces", req, q.SelectMergeStacktracesResponse)
    assert status == 200 and resp.tree == b""
    req = q.SelectMergeSpanProfileRequest(profile_typeID=srv.kafka, label_selector="{}", span_selector=["00000000000000aa"],
                                          format=q.PROFILE_FORMAT_TREE)
    status, resp = call_proto(srv, "SelectMergeSpanProfile", req, q.SelectMergeSpanProfileResponse)
    assert status == 200 and resp.tree == b""
