"""Helpers shared by the Wasm tests: build test modules from WAT, small trees, the examples."""
from __future__ import annotations

import json
from pathlib import Path

import wasmtime

from profscope.analysis.stacks import profile_to_stackset
from profscope.analysis.tree import Tree, build_tree
from profscope.formats import decode
from profscope.wasm.binary import add_custom_section

ROOT = Path(__file__).resolve().parent.parent
PLUGINS = ROOT / "wasm" / "plugins"
HOSTILE = Path(__file__).resolve().parent / "wasm_hostile"
EXAMPLES = ("hotspots", "regressions", "slowpatterns")


def manifest(name: str = "test", **extra: object) -> dict:
    return {"name": name, "version": "1.0.0", "abi": 1, **extra}


def wat_module(wat: str, man: dict | None = None) -> bytes:
    """A module from WAT source (or a file name under tests/wasm_hostile/) with a manifest."""
    if wat.endswith(".wat"):
        wat = (HOSTILE / wat).read_text()
    wasm = bytes(wasmtime.wat2wasm(wat))
    if man is None:
        return wasm
    return add_custom_section(wasm, "profscope.manifest", json.dumps(man).encode())


def example_bytes(name: str) -> bytes:
    return (PLUGINS / f"{name}.wasm").read_bytes()


def folded_tree(text: str) -> Tree:
    return build_tree([profile_to_stackset(decode(text.encode(), "folded"))])


def pprof_stackset(path: Path, sample_type: str | None = None):
    return profile_to_stackset(decode(path.read_bytes()), sample_type)


TINY = folded_tree("main;parse;re.compile 3\nmain;work 1\n")
