"""Decoding in worker processes: many files for ``profscope ingest`` (:func:`decode_files`, profiles
back in file order), and request bodies for the server (:class:`DecodePool`).

A decoded profile crosses the process boundary as a pickle of its numpy columns and its string
table (for a 300-sample profile about 0.14 ms to pickle and 0.09 ms to load, against 1.8 ms to
decode), so the caller stores or serves while workers decode. Workers are forked before the caller
opens anything else (no DuckDB connection or thread is inherited) where fork exists; frame keys
(:mod:`profscope.hashing`) from a worker with another str hash salt are dropped.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from ..errors import BadInput, ProfscopeError
from ..limits import DEFAULT_LIMITS, Limits
from ..model import Profile

FILES_PER_TASK = 16          # files a worker decodes per round trip, at most
BYTES_PER_TASK = 4 << 20     # ... and about this much input
INFLIGHT_BYTES = 64 << 20    # input decoding or decoded but not yet taken, at most (memory bound)
MIN_FILES = 48               # below this, starting workers costs more than it saves


def _decode_one(path: str, fmt: str | None, limits: Limits) -> Profile:
    from . import decode
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None
    try:
        return decode(data, fmt, limits)
    except ProfscopeError as e:
        e.message = f"{path}: {e.message}"
        e.args = (e.message,)
        raise


_SALT_PROBE = "profscope: is the str hash salt shared?"


def _worker_init(parent: int) -> None:
    """In each worker: die with the parent process (Linux: PR_SET_PDEATHSIG), so a killed server
    or command leaves no decoding process behind holding its pipes."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:        # the parent died before prctl took effect
        os._exit(0)


def _executor(jobs: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),))


def _decode_task(paths: list[str], fmt: str | None, limits: Limits) -> tuple[int, list[Profile | ProfscopeError]]:
    out: list[Profile | ProfscopeError] = []
    for p in paths:
        try:
            out.append(_decode_one(p, fmt, limits))
        except ProfscopeError as e:
            out.append(e)
            break              # the caller stops at the first bad file
    return hash(_SALT_PROBE), out


def default_jobs() -> int:
    """Decoding processes: one per core, up to 4 (storing a decoded profile costs the caller
    about half of what decoding it costs a worker, so the caller shares a core with them)."""
    return max(1, min(os.cpu_count() or 1, 4))


def decode_files(paths: list[str], fmt: str | None = None, limits: Limits = DEFAULT_LIMITS,
                 jobs: int | None = None) -> Iterator[tuple[str, Profile]]:
    """Yield ``(path, profile)`` in the order of ``paths``; the first unreadable or bad file raises
    its :class:`ProfscopeError` (message prefixed with the path). ``jobs=0`` decodes in this process.
    The workers start (and start decoding) before this returns; at most ``INFLIGHT_BYTES`` of input
    (and ``8 * jobs`` tasks) are in flight, so memory stays bounded however many files. Close the
    iterator to stop them early."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs <= 0 or len(paths) < MIN_FILES:
        return ((p, _decode_one(p, fmt, limits)) for p in paths)
    from . import pprof  # noqa: F401  (loaded once here, inherited by forked workers)
    return _Pool(_executor(jobs), paths, fmt, limits, jobs)


def _tasks(paths: list[str]):
    """Consecutive files, up to FILES_PER_TASK of them and about BYTES_PER_TASK of input."""
    chunk: list[str] = []
    size = 0
    for p in paths:
        try:
            n = os.path.getsize(p)
        except OSError:
            n = 0                   # the worker reports it
        if chunk and (len(chunk) == FILES_PER_TASK or size + n > BYTES_PER_TASK):
            yield chunk, size
            chunk, size = [], 0
        chunk.append(p)
        size += n
    if chunk:
        yield chunk, size


class _Pool:
    """Iterator over decoded files; ``close()`` stops the workers (also when never iterated)."""

    def __init__(self, ex: ProcessPoolExecutor, paths: list[str], fmt: str | None, limits: Limits,
                 jobs: int) -> None:
        self._ex, self._fmt, self._limits, self._jobs = ex, fmt, limits, jobs
        self._tasks: deque[tuple[list[str], int]] = deque(_tasks(paths))
        self._pending: deque = deque()
        self._inflight = 0
        self._fill()
        self._it = self._results()

    def _fill(self) -> None:
        # keep every worker busy, several tasks ahead, within the memory bound
        while self._tasks and (len(self._pending) <= self._jobs or
                               (len(self._pending) < 8 * self._jobs
                                and self._inflight + self._tasks[0][1] <= INFLIGHT_BYTES)):
            chunk, size = self._tasks.popleft()
            self._inflight += size
            self._pending.append((chunk, size, self._ex.submit(_decode_task, chunk, self._fmt, self._limits)))

    def _results(self) -> Iterator[tuple[str, Profile]]:
        while self._pending:
            chunk, size, fut = self._pending.popleft()
            probe, res = fut.result()
            self._inflight -= size
            self._fill()
            for p, r in zip(chunk, res):
                if isinstance(r, ProfscopeError):
                    raise r
                if probe != hash(_SALT_PROBE):    # a spawned worker: its frame keys mean nothing here
                    r.frames.keys = None
                yield p, r

    def __iter__(self) -> _Pool:
        return self

    def __next__(self) -> tuple[str, Profile]:
        try:
            return next(self._it)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._tasks.clear()
        for *_, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._ex.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------ a server's decoders

def _decode_pprof_bytes(data: bytes, limits: Limits) -> Profile:
    from .pprof import decode_pprof
    return decode_pprof(data, limits)


def _decode_bytes(data: bytes, fmt: str | None, limits: Limits, sample_rate: int | None) -> Profile:
    from . import decode
    return decode(data, fmt, limits, sample_rate=sample_rate)


def _probe() -> int:
    return hash(_SALT_PROBE)


class DecodePool:
    """Decoding for a server, in worker processes: request threads hand over the bytes and wait,
    so the server's own process (one GIL) is left with HTTP, the store's dictionaries and DuckDB.
    Create it before the process starts threads or opens the store: the workers are forked at
    once. ``jobs=0`` decodes in the calling thread. If a worker dies, the pool is given up and
    decoding continues in the calling threads."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._ex: ProcessPoolExecutor | None = None
        self._keys_valid = True
        if jobs > 0:
            from . import pprof  # noqa: F401  (loaded once here, inherited by the workers)
            self._ex = _executor(jobs)
            # the first task starts every worker now, before this process has other threads
            self._keys_valid = self._ex.submit(_probe).result() == hash(_SALT_PROBE)

    @property
    def active(self) -> bool:
        return self._ex is not None

    def _run(self, fn, *args) -> Profile:
        ex = self._ex
        if ex is None:
            return fn(*args)
        try:
            fut = ex.submit(fn, *args)
        except (BrokenProcessPool, RuntimeError):     # broken, or closed meanwhile
            self._give_up()
            return fn(*args)
        try:
            profile = fut.result()
        except BrokenProcessPool:                     # a worker died (the OS killed it, say)
            self._give_up()
            return fn(*args)
        if not self._keys_valid:
            profile.frames.keys = None
        return profile

    def pprof(self, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Profile:
        """:func:`profscope.formats.pprof.decode_pprof` in a worker."""
        return self._run(_decode_pprof_bytes, data, limits)

    def builtin(self, data: bytes, fmt: str | None, limits: Limits = DEFAULT_LIMITS,
                sample_rate: int | None = None) -> Profile:
        """:func:`profscope.formats.decode` of a built-in format (``fmt`` given or sniffed) in a
        worker; the worker's plugin manager is not the caller's, so callers decode plugin
        formats themselves."""
        return self._run(_decode_bytes, data, fmt, limits, sample_rate)

    def _give_up(self) -> None:
        ex, self._ex = self._ex, None
        if ex is not None:
            import logging
            logging.getLogger("profscope").error("a decoding worker process died; decoding in the "
                                                 "server process from now on")
            ex.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        ex, self._ex = self._ex, None
        if ex is not None:
            ex.shutdown(wait=True, cancel_futures=True)
