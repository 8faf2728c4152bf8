"""Read the shape of a WebAssembly binary without compiling or running it. No I/O here.

Only what upload validation needs: the preamble (core module, component, or something else),
the custom sections, and the number and initial size of memories and tables the module
defines or imports. Anything malformed raises :class:`PluginRejected` (``bad_module``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..varint import uvarint
from .errors import PluginRejected

WASM_MAGIC = b"\0asm"
CORE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_LAYER = b"\x0d\x00\x01\x00"
PAGE = 65536

SEC_CUSTOM, SEC_IMPORT, SEC_TABLE, SEC_MEMORY, SEC_START = 0, 2, 4, 5, 8


@dataclass
class ModuleShape:
    custom: list[tuple[str, bytes]] = field(default_factory=list)
    n_memories: int = 0               # defined + imported
    n_tables: int = 0
    memory_min_pages: int = 0         # of the first defined memory
    memory_flags: int = 0
    table_min_elements: int = 0       # largest initial size of a defined or imported table
    has_start: bool = False

    def custom_sections(self, name: str) -> list[bytes]:
        return [payload for n, payload in self.custom if n == name]


def _bad(msg: str) -> PluginRejected:
    return PluginRejected(f"not a valid WebAssembly module: {msg}")


def _uleb(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 35:
            raise _bad(f"truncated or overlong LEB128 at byte {pos}")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def check_preamble(data: bytes) -> None:
    """Refuse anything that is not a core WebAssembly module, with a message saying what it is."""
    if data[:4] != WASM_MAGIC:
        what = "a native object file (precompiled artifacts are never accepted)" \
            if data[:4] == b"\x7fELF" else "the \\0asm magic is missing"
        raise _bad(what)
    if len(data) < 8:
        raise _bad("truncated preamble")
    if data[4:8] == COMPONENT_LAYER:
        raise _bad("this is a WebAssembly component; plugins must be core modules")
    if data[4:8] != CORE_VERSION:
        raise _bad(f"unsupported binary version {data[4:8].hex()}")


def _limits(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(flags, min, position after) of a limits entry."""
    if pos >= end:
        raise _bad("truncated limits")
    flags = data[pos]
    mn, pos = _uleb(data, pos + 1, end)
    if flags & 1:
        _, pos = _uleb(data, pos, end)
    if flags & 8:            # custom page size
        _, pos = _uleb(data, pos, end)
    return flags, mn, pos


def read_shape(data: bytes) -> ModuleShape:
    """Sections of a core module (preamble checked first)."""
    check_preamble(data)
    shape = ModuleShape()
    pos, end = 8, len(data)
    while pos < end:
        sid = data[pos]
        size, body = _uleb(data, pos + 1, end)
        stop = body + size
        if stop > end:
            raise _bad(f"section {sid} at byte {pos} runs past the end")
        if sid == SEC_CUSTOM:
            nlen, p = _uleb(data, body, stop)
            if p + nlen > stop:
                raise _bad(f"custom section name at byte {pos} runs past its section")
            try:
                name = data[p:p + nlen].decode("utf-8")
            except UnicodeDecodeError:
                raise _bad(f"custom section name at byte {pos} is not UTF-8") from None
            shape.custom.append((name, bytes(data[p + nlen:stop])))
        elif sid == SEC_IMPORT:
            shape_imports(data, body, stop, shape)
        elif sid == SEC_TABLE:
            count, p = _uleb(data, body, stop)
            shape.n_tables += count
            for _ in range(count):
                if p >= stop or data[p] == 0x40:    # init-expression tables: wasmtime decides
                    break
                _, mn, p = _limits(data, p + 1, stop)
                shape.table_min_elements = max(shape.table_min_elements, mn)
        elif sid == SEC_MEMORY:
            count, p = _uleb(data, body, stop)
            if count:
                shape.memory_flags, shape.memory_min_pages, _ = _limits(data, p, stop)
            shape.n_memories += count
        elif sid == SEC_START:
            shape.has_start = True
        pos = stop
    return shape


def shape_imports(data: bytes, pos: int, end: int, shape: ModuleShape) -> None:
    """Count imported tables and memories (their full checks come from wasmtime's import list)."""
    count, pos = _uleb(data, pos, end)
    for _ in range(count):
        for _name in range(2):
            n, pos = _uleb(data, pos, end)
            pos += n
        if pos >= end:
            raise _bad("truncated import section")
        kind = data[pos]
        pos += 1
        if kind == 0:                   # func: type index
            _, pos = _uleb(data, pos, end)
        elif kind == 1:                 # table: reftype + limits
            shape.n_tables += 1
            _, mn, pos = _limits(data, pos + 1, end)
            shape.table_min_elements = max(shape.table_min_elements, mn)
        elif kind == 2:                 # memory: limits
            shape.n_memories += 1
            _, _, pos = _limits(data, pos, end)
        elif kind == 3:                 # global: valtype + mutability
            pos += 2
        else:                           # tags and newer kinds: stop counting, wasmtime decides
            return


def add_custom_section(wasm: bytes, name: str, payload: bytes) -> bytes:
    """``wasm`` with one custom section appended (used by tests; the packer does the same)."""
    nb = name.encode("utf-8")
    body = uvarint(len(nb)) + nb + payload
    return bytes(wasm) + b"\x00" + uvarint(len(body)) + body
