"""The ``profscope.manifest`` custom section: parsed and checked without running any code."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import PluginRejected

SECTION = "profscope.manifest"
ABI_VERSION = 1
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
MAX_MANIFEST_BYTES = 64 * 1024
LIMIT_KEYS = ("fuel", "memory_mb", "timeout_ms")
AUTO_RUN_KEYS = ("on_ingest", "on_diff")


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    abi: int
    description: str = ""
    input: str = "psf1"
    config: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)      # requests; the host caps them
    auto_run: dict[str, bool] = field(default_factory=dict)   # default on_ingest/on_diff flags
    raw: dict[str, Any] = field(default_factory=dict)


def _reject(msg: str) -> PluginRejected:
    return PluginRejected(f"manifest ({SECTION}): {msg}")


def parse_manifest(sections: list[bytes]) -> Manifest:
    """The one manifest of a module, given the payloads of its sections named ``SECTION``."""
    if not sections:
        raise PluginRejected(f"the module has no '{SECTION}' custom section; add one with "
                             "wasm/tools/pack_manifest.py")
    if len(sections) > 1:
        raise _reject(f"{len(sections)} sections found; exactly one is allowed")
    payload = sections[0]
    if len(payload) > MAX_MANIFEST_BYTES:
        raise _reject(f"{len(payload)} bytes; limit {MAX_MANIFEST_BYTES}")
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise _reject(f"not UTF-8 JSON ({e})") from None
    return validate_manifest(obj)


def validate_manifest(obj: Any) -> Manifest:
    """Check a manifest object field by field; the message names the field and what is allowed."""
    if not isinstance(obj, dict):
        raise _reject("must be a JSON object")
    for key in ("name", "version", "abi"):
        if key not in obj:
            raise _reject(f"'{key}' is required")
    name, version, abi = obj["name"], obj["version"], obj["abi"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise _reject(f"name {name!r} must match {NAME_RE.pattern}")
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise _reject(f"version {version!r} must be a string matching {VERSION_RE.pattern}")
    if type(abi) is not int or abi != ABI_VERSION:
        raise _reject(f"abi {abi!r} is not supported; this host speaks abi {ABI_VERSION}")
    inp = obj.get("input", "psf1")
    if inp != "psf1":
        raise _reject(f"input {inp!r} is not supported; only 'psf1'")
    desc = obj.get("description", "")
    if not isinstance(desc, str) or len(desc) > 1000:
        raise _reject("description must be a string of at most 1000 characters")
    config = obj.get("config", {})
    if not isinstance(config, dict):
        raise _reject("config must be a JSON object")
    limits = obj.get("limits", {})
    if not isinstance(limits, dict):
        raise _reject("limits must be a JSON object")
    for k, v in limits.items():
        if k not in LIMIT_KEYS:
            raise _reject(f"limits.{k} is unknown; known: {', '.join(LIMIT_KEYS)}")
        if type(v) is not int or v <= 0:
            raise _reject(f"limits.{k} must be a positive integer, not {v!r}")
    auto = obj.get("auto_run", {})
    if not isinstance(auto, dict) or any(k not in AUTO_RUN_KEYS or type(v) is not bool
                                         for k, v in auto.items()):
        raise _reject(f"auto_run must map {' / '.join(AUTO_RUN_KEYS)} to booleans")
    return Manifest(name, version, abi, desc, inp, dict(config), dict(limits), dict(auto), obj)
