"""Decode many files on several cores: worker processes read and decode, the caller gets the
profiles back in file order.

A decoded small profile crosses the process boundary as a pickle of its numpy columns and frame
strings (about 0.4 ms for a 300-sample profile, against about 1.8 ms to decode it), so the caller
can store one file while the workers decode the next ones. Workers are forked before the caller
opens anything else (no DuckDB connection or thread is inherited) where fork exists.
"""
from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

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
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return _Pool(ProcessPoolExecutor(jobs, mp_context=ctx), paths, fmt, limits, jobs)


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
