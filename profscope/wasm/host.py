"""The sandboxed Wasm analyzer host: validate modules at upload, run them on PSF1 trees.

``WasmHost.load_module(bytes) -> PluginInfo`` checks a module without running any of its code;
``WasmHost.run(info, tree, meta) -> RunResult`` runs it in a fresh store with fuel, an epoch
deadline, memory/table/instance limits and a Wasm stack cap, and checks its output. See
``wasm/ABI.md`` for the contract and engine.py for the wasmtime-py behaviours designed around.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import wasmtime as wt

from ..analysis.tree import Tree
from ..errors import BadInput, Overloaded
from .binary import PAGE, read_shape
from .engine import EngineState, LogSink, engine_settings, log_sink, settings_fingerprint
from .errors import PluginFailed, PluginRejected
from .manifest import SECTION, Manifest, parse_manifest
from .output import OutputError, parse_output
from .psf1 import plan_psf1

log = logging.getLogger("profscope.wasm")
MiB = 1024 * 1024

REQUIRED_EXPORTS: dict[str, tuple[list[str], list[str]] | None] = {
    "memory": None,                                   # a memory
    "profscope_abi_v1": ([], []),
    "psp_alloc": (["i32"], ["i32"]),
    "psp_analyze": (["i32", "i32"], ["i64"]),
}
ALLOWED_IMPORT = ("profscope", "log", (["i32", "i32", "i32"], []))
META_KEYS = ("profile_type", "sample_type", "unit", "query", "from", "until")


@dataclass(frozen=True)
class HostPolicy:
    """What the host allows; a manifest's ``limits`` are requests capped by the ``max_*``.
    Each field can be set with a ``PROFSCOPE_WASM_<FIELD>`` environment variable."""
    max_module_bytes: int = 4 * MiB
    default_fuel: int = 500_000_000
    max_fuel: int = 5_000_000_000
    default_memory_mb: int = 64
    max_memory_mb: int = 512
    default_timeout_ms: int = 1000
    max_timeout_ms: int = 10_000
    max_wasm_stack: int = 512 * 1024
    max_table_elements: int = 100_000
    max_output_bytes: int = MiB
    max_concurrency: int = max(1, os.cpu_count() or 1)
    queue_timeout_s: float = 30.0
    tick_ms: int = 10
    log_max_bytes: int = 4096
    log_max_lines: int = 100
    parallel_compilation: bool = False
    cache_dir: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> HostPolicy:
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("PROFSCOPE_WASM_" + f.name.upper())
            if raw:
                default = getattr(cls, f.name)
                values[f.name] = (raw.lower() in ("1", "true", "yes") if isinstance(default, bool)
                                  else float(raw) if isinstance(default, float)
                                  else raw if default is None else int(raw))
        values.update(overrides)
        return replace(cls(), **values)


@dataclass(frozen=True)
class PluginInfo:
    """A validated module: its manifest, identity (sha256) and bytes."""
    manifest: Manifest
    sha256: str
    size: int
    wasm: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": m.name, "version": m.version, "sha256": self.sha256, "abi": m.abi,
                "description": m.description, "size": self.size, "config": m.config,
                "limits": m.limits}


@dataclass
class RunResult:
    plugin: str
    version: str
    findings: list[dict[str, Any]]
    fuel_used: int | None
    wall_ms: float
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "version": self.version, "findings": self.findings,
                "fuel_used": self.fuel_used, "wall_ms": self.wall_ms, "logs": self.logs,
                "logs_dropped": self.logs_dropped}


def _sig(ft: wt.FuncType) -> tuple[list[str], list[str]]:
    return [str(p) for p in ft.params], [str(r) for r in ft.results]


class WasmHost:
    """One engine (built lazily, per process), one epoch ticker, a compiled-module cache and a
    semaphore bounding concurrent runs. Thread-safe; ``close()`` stops the ticker."""

    def __init__(self, policy: HostPolicy | None = None):
        self.policy = policy or HostPolicy.from_env()
        self.settings = engine_settings(self.policy.max_wasm_stack, self.policy.parallel_compilation)
        self.fingerprint = settings_fingerprint(self.settings)
        self._state_obj: EngineState | None = None
        self._init_lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(self.policy.max_concurrency)
        self.stats = {"compiled": 0, "memory_hits": 0, "disk_hits": 0}

    # ------------------------------------------------------------------ engine per process
    def _state(self) -> EngineState:
        st = self._state_obj
        if st is not None and st.pid == os.getpid():
            return st
        if st is not None:              # forked child: locks and threads did not come along
            self._init_lock = threading.Lock()
            self._sem = threading.BoundedSemaphore(self.policy.max_concurrency)
            self._state_obj = None
        with self._init_lock:
            if self._state_obj is None:
                self._state_obj = EngineState(self.settings, self.policy.tick_ms / 1000)
            return self._state_obj

    def close(self) -> None:
        """Stop the epoch ticker and drop compiled code."""
        st, self._state_obj = self._state_obj, None
        if st is not None and st.pid == os.getpid():
            st.close()

    def __enter__(self) -> WasmHost:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ compiled-code cache
    def cache_key(self, sha256: str) -> str:
        """Key of compiled code: module sha256 + wasmtime version + engine settings."""
        return hashlib.sha256(f"{sha256}|{self.fingerprint}".encode()).hexdigest()

    def _compiled(self, info: PluginInfo) -> tuple[wt.Module, wt.InstancePre]:
        return self._module_for(self._state(), info.sha256, info.wasm)

    def _module_for(self, st: EngineState, sha: str, wasm: bytes
                    ) -> tuple[wt.Module, wt.InstancePre]:
        """Compiled module + pre-linked instance for ``wasm``, from the cache when there.
        Only modules that pass the import/export checks are cached (in memory and on disk)."""
        key = self.cache_key(sha)
        with st.lock:
            hit = st.modules.get(key)
            if hit is not None:
                self.stats["memory_hits"] += 1
                return hit
        path = Path(self.policy.cache_dir) / f"{key}.cwasm" if self.policy.cache_dir else None
        module = self._from_disk(st, path)
        fresh = module is None
        if module is None:
            module = wt.Module(st.engine, wasm)
            with st.lock:
                self.stats["compiled"] += 1
        self._check_imports(module)
        self._check_exports(module)
        pre = st.linker.instantiate_pre(module)
        if fresh and path is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(bytes(module.serialize()))
            os.replace(tmp, path)
        with st.lock:
            return st.modules.setdefault(key, (module, pre))

    def _from_disk(self, st: EngineState, path: Path | None) -> wt.Module | None:
        """Code this host serialized itself into its private cache dir (never bytes from users;
        the file name is the cache key of validated module bytes)."""
        if path is None or not path.is_file():
            return None
        try:
            module = wt.Module.deserialize_file(st.engine, str(path))
        except wt.WasmtimeError:
            path.unlink(missing_ok=True)
            return None
        with st.lock:
            self.stats["disk_hits"] += 1
        return module

    # ------------------------------------------------------------------ upload
    def load_module(self, data: bytes) -> PluginInfo:
        """Validate a module without running it; raises :class:`PluginRejected`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise PluginRejected(f"module must be bytes, not {type(data).__name__}")
        data = bytes(data)
        if len(data) > self.policy.max_module_bytes:
            raise PluginRejected(f"module is {len(data)} bytes; limit max_module_bytes="
                                 f"{self.policy.max_module_bytes}")
        shape = read_shape(data)
        manifest = parse_manifest(shape.custom_sections(SECTION))
        lim = self.limits_for(manifest)
        if shape.n_memories != 1:
            raise PluginRejected(f"the module has {shape.n_memories} memories; exactly 1 is required")
        if shape.n_tables > 1:
            raise PluginRejected(f"the module has {shape.n_tables} tables; at most 1 is allowed")
        if shape.memory_min_pages * PAGE > lim["memory_mb"] * MiB:
            raise PluginRejected(f"initial memory of {shape.memory_min_pages} pages exceeds the "
                                 f"memory limit of {lim['memory_mb']} MiB")
        if shape.table_min_elements > self.policy.max_table_elements:
            raise PluginRejected(f"table of {shape.table_min_elements} elements exceeds "
                                 f"max_table_elements={self.policy.max_table_elements}")
        sha = hashlib.sha256(data).hexdigest()
        try:
            self._module_for(self._state(), sha, data)
        except wt.WasmtimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
            raise PluginRejected(f"not a valid WebAssembly module for this host: {first}") from None
        return PluginInfo(manifest, sha, len(data), data)

    @staticmethod
    def _check_imports(module: wt.Module) -> None:
        bad = []
        for imp in module.imports:
            ty = imp.type
            ok = (imp.module, imp.name) == ALLOWED_IMPORT[:2] and isinstance(ty, wt.FuncType) \
                and _sig(ty) == ALLOWED_IMPORT[2]
            if not ok:
                kind = type(ty).__name__.replace("Type", "").lower()
                bad.append(f"{imp.module}.{imp.name} ({kind})")
        if bad:
            raise PluginRejected(f"forbidden imports: {', '.join(bad)}; the only import allowed is "
                                 "profscope.log(i32, i32, i32)", kind="forbidden_import",
                                 details={"forbidden": bad})

    @staticmethod
    def _check_exports(module: wt.Module) -> None:
        exports = {e.name: e.type for e in module.exports}
        missing = [n for n in REQUIRED_EXPORTS if n not in exports]
        if missing:
            raise PluginRejected(f"missing required exports: {', '.join(missing)}",
                                 details={"missing": missing})
        for name, want in REQUIRED_EXPORTS.items():
            ty = exports[name]
            if want is None and not isinstance(ty, wt.MemoryType):
                raise PluginRejected(f"export '{name}' must be a memory")
            if want is not None and (not isinstance(ty, wt.FuncType) or _sig(ty) != want):
                got = _sig(ty) if isinstance(ty, wt.FuncType) else type(ty).__name__
                raise PluginRejected(f"export '{name}' has type {got}; expected func {want}")

    def limits_for(self, plugin: PluginInfo | Manifest) -> dict[str, int]:
        """Effective fuel / memory_mb / timeout_ms: the manifest's requests capped by policy."""
        m = plugin.manifest if isinstance(plugin, PluginInfo) else plugin
        p = self.policy
        return {"fuel": min(m.limits.get("fuel", p.default_fuel), p.max_fuel),
                "memory_mb": min(m.limits.get("memory_mb", p.default_memory_mb), p.max_memory_mb),
                "timeout_ms": min(m.limits.get("timeout_ms", p.default_timeout_ms), p.max_timeout_ms)}

    # ------------------------------------------------------------------ run
    def metadata(self, plugin: PluginInfo, meta: dict[str, Any] | None) -> dict[str, Any]:
        """The PSF1 metadata: the standard keys (None when unknown), the caller's extra keys,
        and ``config`` = manifest config updated with ``meta["config"]``."""
        meta = dict(meta or {})
        extra = meta.pop("config", None) or {}
        if not isinstance(extra, dict):
            raise BadInput("meta['config'] must be an object")
        out: dict[str, Any] = {k: None for k in META_KEYS}
        out.update(meta)
        out["config"] = {**plugin.manifest.config, **extra}
        return out

    def run(self, plugin: PluginInfo, tree: Tree, meta: dict[str, Any] | None = None) -> RunResult:
        """Run ``plugin`` on ``tree``; raises :class:`PluginFailed` with the failure's kind."""
        t0 = time.perf_counter()
        compiled = self._compiled(plugin)
        plan = plan_psf1(tree, self.metadata(plugin, meta))
        sem = self._sem
        if not sem.acquire(timeout=self.policy.queue_timeout_s):
            raise Overloaded(f"all {self.policy.max_concurrency} Wasm run slots stayed busy for "
                             f"{self.policy.queue_timeout_s} s; try again later")
        try:
            st = self._state()
            with st.ticker.active():
                return self._execute(st, plugin, compiled[1], plan, t0)
        finally:
            sem.release()

    def _execute(self, st: EngineState, plugin: PluginInfo, pre: wt.InstancePre, plan: Any,
                 t0: float) -> RunResult:
        lim = self.limits_for(plugin)
        mem_cap = lim["memory_mb"] * MiB
        fuel = lim["fuel"]
        store = wt.Store(st.engine)
        store.set_limits(memory_size=mem_cap, table_elements=self.policy.max_table_elements,
                         instances=1, tables=1, memories=1)
        store.set_fuel(fuel)
        # behaviour 2: the deadline must exist before instantiation runs the start function
        store.set_epoch_deadline(math.ceil(lim["timeout_ms"] / self.policy.tick_ms) + 1)
        sink = LogSink(self.policy.log_max_bytes, self.policy.log_max_lines)
        memory: wt.Memory | None = None
        stage = "instantiate"

        def fail(kind: str, msg: str, fuel_used: int | None = None) -> PluginFailed:
            return PluginFailed(f"plugin {plugin.name} {plugin.version}: {msg}", kind=kind, details={
                "plugin": plugin.name, "version": plugin.version, "fuel_used": fuel_used,
                "wall_ms": round((time.perf_counter() - t0) * 1000, 3), "logs": sink.lines})

        with log_sink(sink):
            try:
                instance = pre.instantiate(store)
                ex = instance.exports(store)
                memory = ex["memory"]
                n = plan.total_len
                stage = "psp_alloc"
                ptr = ex["psp_alloc"](store, n) & 0xFFFFFFFF
                if ptr == 0:
                    raise fail("memory_limit", f"psp_alloc({n}) returned 0: the {n}-byte input does "
                               f"not fit in the memory limit of {lim['memory_mb']} MiB")
                if ptr % 8 or ptr + n > memory.data_len(store):
                    raise fail("bad_output", f"psp_alloc({n}) returned {ptr}, which is not an "
                               "8-byte aligned pointer to n bytes inside memory")
                plan.write_into(np.frombuffer(memory.get_buffer_ptr(store, n, ptr), np.uint8))
                stage = "psp_analyze"
                ret = ex["psp_analyze"](store, ptr, n) & 0xFFFFFFFFFFFFFFFF
            except (wt.Trap, wt.WasmtimeError) as e:      # behaviour 1: Trap is no WasmtimeError
                kind, msg, used = self._classify(e, store, fuel, memory, mem_cap)
                raise fail(kind, f"{stage}: {msg}", used) from None
        fuel_used = fuel - store.get_fuel()
        findings: list[dict[str, Any]] = []
        if ret:
            out_ptr, out_len = ret & 0xFFFFFFFF, ret >> 32
            if out_len > self.policy.max_output_bytes:
                raise fail("bad_output", f"output of {out_len} bytes exceeds the limit of "
                           f"{self.policy.max_output_bytes} bytes", fuel_used)
            if out_len == 0:
                raise fail("bad_output", f"psp_analyze returned pointer {out_ptr} with length 0 "
                           "(return 0 for no output)", fuel_used)
            if out_ptr + out_len > memory.data_len(store):
                raise fail("bad_output", f"output pointer {out_ptr} + length {out_len} is outside "
                           f"linear memory of {memory.data_len(store)} bytes", fuel_used)
            raw = bytes(memory.get_buffer_ptr(store, out_len, out_ptr))
            try:
                findings = parse_output(raw)
            except OutputError as e:
                kind = "bad_output"
                if e.guest_error:
                    kind = "memory_limit" if self._near_cap(store, memory, mem_cap) else "trap"
                raise fail(kind, str(e), fuel_used) from None
        wall_ms = round((time.perf_counter() - t0) * 1000, 3)
        if sink.lines:
            log.debug("plugin %s logged %d lines", plugin.name, len(sink.lines))
        return RunResult(plugin.name, plugin.version, findings, fuel_used, wall_ms, sink.lines,
                         sink.dropped)

    @staticmethod
    def _near_cap(store: wt.Store, memory: wt.Memory | None, cap: int) -> bool:
        """Heuristic for memory_limit: the guest failed while its memory was within 1/16 of
        the cap (a refused ``memory.grow`` returns -1; the guest then traps or gives up)."""
        if memory is None:
            return False
        try:
            return memory.data_len(store) + max(PAGE, cap // 16) > cap
        except (wt.Trap, wt.WasmtimeError, ValueError):
            return False

    def _classify(self, e: Exception, store: wt.Store, fuel: int, memory: wt.Memory | None,
                  cap: int) -> tuple[str, str, int | None]:
        text = e.message if isinstance(e, wt.Trap) else str(e)
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        msg = lines[-1].strip() if lines else type(e).__name__
        code = e.trap_code if isinstance(e, wt.Trap) else None
        try:
            used: int | None = fuel - store.get_fuel()
        except (wt.Trap, wt.WasmtimeError):
            used = None
        if code == wt.TrapCode.INTERRUPT:
            kind, used = "timeout", None                 # behaviour 3: fuel not accounted
            msg = "wall-clock timeout (epoch deadline reached)"
        elif code == wt.TrapCode.OUT_OF_FUEL:
            kind, used, msg = "out_of_fuel", fuel, f"ran out of fuel ({fuel} units)"
        elif code == wt.TrapCode.STACK_OVERFLOW:
            kind, msg = "stack_overflow", f"Wasm stack overflow (cap {self.policy.max_wasm_stack} bytes)"
        elif not isinstance(e, wt.Trap) and "memory" in text and "limit" in text:
            kind = "memory_limit"
        else:
            kind = "trap"
        if kind in ("trap", "out_of_fuel", "timeout") and self._near_cap(store, memory, cap):
            msg = f"memory limit of {cap // MiB} MiB reached ({msg})"
            kind = "memory_limit"
        return kind, msg, used
