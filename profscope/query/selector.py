"""Selections: ``<profile_type>{matchers}`` in PromQL matcher syntax, plus time ranges.

``parse_query('process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="api", env!="dev"}')``
returns the profile type (or None) and the matchers. Regex matchers are fully anchored, as in
PromQL.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import BadInput

_MATCHER = re.compile(r'\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise BadInput(f"matcher operator {self.op!r} is not one of {', '.join(OPS)}")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as e:
                raise BadInput(f"matcher {self.name}{self.op}\"{self.value}\": invalid regex ({e})") from None

    def matches(self, value: str | None) -> bool:
        """``value`` None means the label is absent (PromQL: absent equals the empty string)."""
        v = "" if value is None else value
        if self.op == "=":
            return v == self.value
        if self.op == "!=":
            return v != self.value
        hit = re.fullmatch(self.value, v) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


def parse_matchers(text: str) -> list[Matcher]:
    body = text.strip()
    if not body:
        return []
    if not (body.startswith("{") and body.endswith("}")):
        raise BadInput(f"label selector {text!r} must look like {{name=\"value\", ...}}")
    body = body[1:-1].strip()
    out: list[Matcher] = []
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m:
            raise BadInput(f"label selector {text!r}: cannot parse near {body[pos:pos + 30]!r}; "
                           'expected name="value", name!="value", name=~"regex" or name!~"regex"')
        value = m.group(3).encode().decode("unicode_escape") if "\\" in m.group(3) else m.group(3)
        out.append(Matcher(m.group(1), m.group(2), value))
        pos = m.end()
    return out


def parse_query(text: str | None) -> tuple[str | None, list[Matcher]]:
    """Split ``type{matchers}`` (either part optional)."""
    text = (text or "").strip()
    if not text:
        return None, []
    i = text.find("{")
    if i < 0:
        return text, []
    ptype = text[:i].strip() or None
    return ptype, parse_matchers(text[i:])


@dataclass(frozen=True)
class Selection:
    """What to merge: a profile type (full id ``name:type:unit:ptype:punit``, or just a sample type
    such as ``cpu``), label matchers, a time range in unix nanoseconds, a tenant; optionally a
    call site (stack prefix) and a list of profile ids."""
    profile_type: str | None = None
    matchers: tuple[Matcher, ...] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    tenant: str = "anonymous"
    extra: dict = field(default_factory=dict, compare=False, hash=False)
    # Pyroscope's stack_trace_selector: keep the stacks whose root-first function names start
    # with these names (analysis.stacks.call_site_mask); empty = every stack
    call_site: tuple[str, ...] = ()
    # Pyroscope's profile_id_selector: only these profiles (store profile id as decimal text, or
    # the source_id of an upload); empty = every profile
    profile_ids: tuple[str, ...] = ()
    # pprof -tagfocus / -tagignore filters (analysis.stacks.TagFilter) on sample labels; unlike
    # matchers they keep the total of the whole selection, as pprof keeps the file's total
    tags: tuple = ()

    @classmethod
    def from_query(cls, query: str | None, start_ns: int | None = None, end_ns: int | None = None,
                   tenant: str = "anonymous") -> Selection:
        ptype, matchers = parse_query(query)
        return cls(ptype, tuple(matchers), start_ns, end_ns, tenant)
