#!/usr/bin/env python3
"""Append a ``profscope.manifest`` custom section to a built core WebAssembly module.

Usage: pack_manifest.py MODULE.wasm MANIFEST.json -o OUT.wasm [--replace]

The manifest is checked first (the same rules the profscope host applies at upload: name,
version and abi required, abi == 1, limits positive integers, ...) and written compactly.
An existing manifest section is an error unless --replace is given, which drops it first.
Standard library only, so plugin authors can copy this file alone.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

SECTION = "profscope.manifest"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}")
LIMIT_KEYS = ("fuel", "memory_mb", "timeout_ms")
AUTO_RUN_KEYS = ("on_ingest", "on_diff")
CORE_PREAMBLE = b"\0asm\x01\x00\x00\x00"


class PackError(ValueError):
    pass


def check_manifest(obj: object) -> dict:
    """Raise PackError naming the first problem; return the manifest."""
    if not isinstance(obj, dict):
        raise PackError("manifest must be a JSON object")
    for key in ("name", "version", "abi"):
        if key not in obj:
            raise PackError(f"manifest: '{key}' is required")
    if not isinstance(obj["name"], str) or not NAME_RE.fullmatch(obj["name"]):
        raise PackError(f"manifest: name {obj['name']!r} must match {NAME_RE.pattern}")
    if not isinstance(obj["version"], str) or not VERSION_RE.fullmatch(obj["version"]):
        raise PackError(f"manifest: version {obj['version']!r} must match {VERSION_RE.pattern}")
    if type(obj["abi"]) is not int or obj["abi"] != 1:
        raise PackError(f"manifest: abi must be 1, not {obj['abi']!r}")
    if obj.get("input", "psf1") != "psf1":
        raise PackError("manifest: input must be 'psf1'")
    if not isinstance(obj.get("description", ""), str):
        raise PackError("manifest: description must be a string")
    if not isinstance(obj.get("config", {}), dict):
        raise PackError("manifest: config must be an object")
    limits = obj.get("limits", {})
    if not isinstance(limits, dict):
        raise PackError("manifest: limits must be an object")
    for k, v in limits.items():
        if k not in LIMIT_KEYS or type(v) is not int or v <= 0:
            raise PackError(f"manifest: limits.{k}={v!r}; known keys {LIMIT_KEYS}, positive integers")
    auto = obj.get("auto_run", {})
    if not isinstance(auto, dict) or any(k not in AUTO_RUN_KEYS or type(v) is not bool
                                         for k, v in auto.items()):
        raise PackError(f"manifest: auto_run must map {AUTO_RUN_KEYS} to booleans")
    return obj


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_leb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 35:
            raise PackError("truncated module")
        b = data[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        shift += 7
        if not b & 0x80:
            return result, pos


def strip_manifest(wasm: bytes) -> tuple[bytes, int]:
    """The module without its manifest sections, and how many were removed."""
    out, pos, removed = bytearray(wasm[:8]), 8, 0
    while pos < len(wasm):
        start = pos
        size, body = _read_leb(wasm, pos + 1)
        if body + size > len(wasm):
            raise PackError(f"section at byte {start} runs past the end")
        if wasm[start] == 0:
            nlen, p = _read_leb(wasm, body)
            if wasm[p:p + nlen] == SECTION.encode():
                removed += 1
                pos = body + size
                continue
        out += wasm[start:body + size]
        pos = body + size
    return bytes(out), removed


def pack(wasm: bytes, manifest: dict, replace: bool = False) -> bytes:
    """``wasm`` with the manifest appended as a custom section."""
    if wasm[:8] != CORE_PREAMBLE:
        raise PackError("input is not a core WebAssembly module (bad preamble)")
    check_manifest(manifest)
    stripped, removed = strip_manifest(wasm)
    if removed and not replace:
        raise PackError(f"module already has a {SECTION} section (use --replace)")
    payload = json.dumps(manifest, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    name = SECTION.encode()
    body = _leb(len(name)) + name + payload
    return stripped + b"\x00" + _leb(len(body)) + body


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module")
    ap.add_argument("manifest")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--replace", action="store_true", help="replace an existing manifest section")
    args = ap.parse_args(argv)
    try:
        with open(args.module, "rb") as f:
            wasm = f.read()
        with open(args.manifest, encoding="utf-8") as f:
            manifest = json.load(f)
        out = pack(wasm, manifest, args.replace)
    except (OSError, ValueError) as e:
        print(f"pack_manifest: {e}", file=sys.stderr)
        return 2
    with open(args.output, "wb") as f:
        f.write(out)
    print(f"{args.output}: {len(out)} bytes, manifest {manifest['name']} {manifest['version']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
