"""The wasmtime engine behind :class:`~profscope.wasm.host.WasmHost`, and what runs beside it.

Known wasmtime-py 50 behaviours this module (and host.py) is designed around:

1. ``wasmtime.Trap`` is not a subclass of ``WasmtimeError``: every guest call catches both.
   Trap codes (``Trap.trap_code``) tell fuel, epoch and stack traps apart.
2. With epoch interruption on, a store whose deadline was never set traps at once (its
   deadline is epoch 0). Every store gets its deadline *before* instantiation, because the
   start function runs inside instantiation.
3. Fuel is not accounted after an epoch interrupt: ``get_fuel()`` still returns what the store
   was given, so a timed-out run reports ``fuel_used = None``. After other traps the count can
   lag too (it is flushed at calls and loop heads), so a failed run's fuel is a lower bound.
4. A Python exception raised inside a host function is parked in a module global of
   ``wasmtime._func`` and re-raised by whichever thread next leaves Wasm, possibly another
   one. :func:`log_host` therefore never raises (it catches everything and drops the line).
5. Parallel compilation uses a process-wide thread pool that does not survive ``fork``: a
   compile in a forked child can hang. The engine is built lazily in the process that uses it
   (:class:`EngineState` remembers its pid and the host rebuilds it after a fork) and parallel
   compilation is off by default.
6. A ``FuncType`` object that was used with one engine must not be used with another: wasmtime
   panics (``ty.comes_from_same_engine(engine)``) and the whole process aborts. Each
   :class:`EngineState` builds its own types; nothing wasmtime-typed is a module global.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version as _pkg_version
from typing import Any

import wasmtime as wt

WASMTIME_VERSION = _pkg_version("wasmtime")
LOG_LEVELS = ("debug", "info", "warn", "error")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_BLANKS = re.compile(r"[\t\n\r]+")


def engine_settings(max_wasm_stack: int, parallel_compilation: bool) -> dict[str, Any]:
    """Every engine setting the host chooses (part of the compiled-code cache key).

    Proposals a plugin does not need are off: threads and shared memory, SIMD, multi-memory,
    memory64, GC, typed function references, exceptions, tail calls, stack switching, the
    component model. Reference types and bulk memory stay on because current C, Rust and
    AssemblyScript toolchains emit them by default (one table is still the limit).
    """
    return {
        "consume_fuel": True, "epoch_interruption": True, "max_wasm_stack": max_wasm_stack,
        "parallel_compilation": parallel_compilation, "cranelift_opt_level": "speed",
        "wasm_threads": False, "shared_memory": False, "wasm_simd": False,
        "wasm_relaxed_simd": False, "wasm_multi_memory": False, "wasm_memory64": False,
        "wasm_gc": False, "wasm_function_references": False, "wasm_exceptions": False,
        "wasm_tail_call": False, "wasm_stack_switching": False, "wasm_component_model": False,
        "wasm_wide_arithmetic": False, "wasm_custom_page_sizes": False,
        "wasm_reference_types": True, "wasm_bulk_memory": True, "wasm_multi_value": True,
    }


def settings_fingerprint(settings: dict[str, Any]) -> str:
    return json.dumps({"wasmtime": WASMTIME_VERSION, **settings}, sort_keys=True)


def make_engine(settings: dict[str, Any]) -> wt.Engine:
    cfg = wt.Config()
    for key, value in settings.items():
        setattr(cfg, key, value)
    return wt.Engine(cfg)


class EpochTicker:
    """ONE thread per engine that advances the epoch every ``tick_s`` while runs are active
    (it sleeps on a condition when idle, so an idle host costs nothing)."""

    def __init__(self, engine: wt.Engine, tick_s: float):
        self._engine = engine
        self._tick_s = tick_s
        self._cond = threading.Condition()
        self._active = 0
        self._stopped = False
        self.ticks = 0
        self._thread = threading.Thread(target=self._loop, name="profscope-wasm-epoch", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._active == 0 and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
            time.sleep(self._tick_s)
            self._engine.increment_epoch()
            self.ticks += 1

    @contextmanager
    def active(self) -> Iterator[None]:
        """Keep the ticker running for the duration of one guest execution."""
        with self._cond:
            self._active += 1
            self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._active -= 1

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


@dataclass
class LogSink:
    """The ``profscope.log`` lines of one run, bounded in size and count."""
    max_bytes: int = 4096
    max_lines: int = 100
    lines: list[dict[str, str]] = field(default_factory=list)
    dropped: int = 0

    def add(self, caller: Any, level: int, ptr: int, length: int) -> None:
        if len(self.lines) >= self.max_lines:
            self.dropped += 1
            return
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        mem = caller.get("memory")
        if not isinstance(mem, wt.Memory):
            self._append(level, "[log call without an exported memory]")
            return
        size = mem.data_len(caller)
        if ptr + length > size:
            self._append(level, f"[log call out of bounds: ptr={ptr} len={length}]")
            return
        n = min(length, self.max_bytes)
        text = bytes(mem.read(caller, ptr, ptr + n)).decode("utf-8", "replace")
        text = _CONTROL.sub("", _BLANKS.sub(" ", text)).strip()
        if n < length:
            text += f" [truncated {length - n} bytes]"
        self._append(level, text)

    def _append(self, level: int, text: str) -> None:
        name = LOG_LEVELS[level] if 0 <= level < len(LOG_LEVELS) else "info"
        self.lines.append({"level": name, "message": text})


_CURRENT = threading.local()   # the LogSink of the run executing on this thread


@contextmanager
def log_sink(sink: LogSink) -> Iterator[LogSink]:
    _CURRENT.sink = sink
    try:
        yield sink
    finally:
        _CURRENT.sink = None


def log_host(caller: Any, level: int, ptr: int, length: int) -> None:
    """The ``profscope.log`` import. Never raises (see behaviour 4 above)."""
    try:
        sink = getattr(_CURRENT, "sink", None)
        if sink is not None:
            sink.add(caller, level, ptr, length)
    except BaseException:     # noqa: BLE001 - an exception here would surface on another thread
        pass


class EngineState:
    """Engine, linker, ticker and compiled-module cache of ONE process."""

    def __init__(self, settings: dict[str, Any], tick_s: float):
        self.pid = os.getpid()
        self.engine = make_engine(settings)
        self.linker = wt.Linker(self.engine)
        log_type = wt.FuncType([wt.ValType.i32()] * 3, [])     # behaviour 6: one per engine
        self.linker.define_func("profscope", "log", log_type, log_host, access_caller=True)
        self.ticker = EpochTicker(self.engine, tick_s)
        self.lock = threading.Lock()
        self.modules: dict[str, tuple[wt.Module, wt.InstancePre]] = {}

    def close(self) -> None:
        self.ticker.stop()
        self.modules.clear()
