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
import pickle
import signal
import sys
import threading
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


def die_with_parent(parent: int, sig: int = signal.SIGKILL) -> None:
    """Have this process sent ``sig`` when ``parent`` (the process that forked it) dies (Linux:
    PR_SET_PDEATHSIG), so a killed server or command leaves nothing behind holding its pipes or
    its store; exits at once if ``parent`` is already gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            ctypes.CDLL(None, use_errno=True).prctl(1, sig)   # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:        # the parent died before prctl took effect
        os._exit(0)


def _executor(jobs: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=die_with_parent, initargs=(os.getpid(),))


def _decode_task(paths: list[str], fmt: str | None, limits: Limits) -> tuple[int, list[Profile | ProfscopeError]]:
    out: list[Profile | ProfscopeError] = []
    for p in paths:
        try:
            out.append(_decode_one(p, fmt, limits))
        except ProfscopeError as e:
            out.append(e)
            break              # the caller stops at the first bad file
    return hash(_SALT_PROBE), out


def server_jobs() -> int:
    """Decoding processes of a server: one more than the cores, up to 4. A worker stays taken
    while the request thread that holds it waits for the server's GIL to read the answer, so on
    2 cores 3 workers pushed 601-632 req/s (p99 143-150 ms) against 594-600 (p99 168-170) for 2
    (``benchmarks/bench_push.py --decode-workers``)."""
    return max(1, min((os.cpu_count() or 1) + 1, 4))


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


class _Worker:
    """One forked decoding process and our end of its pipe (one request at a time)."""

    def __init__(self, ctx, parent: int) -> None:
        mine, theirs = ctx.Pipe(duplex=True)
        _PARENT_ENDS.add(mine)
        self.proc = ctx.Process(target=_serve_requests, args=(theirs, parent), daemon=True,
                                name="profscope-decoder")
        self.proc.start()
        theirs.close()
        self.conn = mine

    def close(self) -> None:
        _PARENT_ENDS.discard(self.conn)
        self.conn.close()

    def call(self, fn, args: tuple) -> tuple[bool, object]:
        """``(True, result)`` or ``(False, the error fn raised)``; any exception here means the
        pipe's state is unknown (the worker died, say) and the worker must not be used again."""
        self.conn.send_bytes(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
        return pickle.loads(self.conn.recv_bytes())


# the server's ends of the workers' pipes: a forked worker closes its copies, so that a worker
# sees EOF (and exits) as soon as the server closes its end
_PARENT_ENDS: set = set()


class _FifoHandoff:
    """Idle workers handed to waiting request threads in arrival order (a plain queue lets any
    waiter win, and under load some requests waited far longer than others)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list = []
        self._waiters: deque[list] = deque()

    def get(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
            waiter = [threading.Lock(), None]
            waiter[0].acquire()
            self._waiters.append(waiter)
        waiter[0].acquire()                   # released by put(), which filled waiter[1]
        return waiter[1]

    def put(self, item) -> None:
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter[1] = item
                waiter[0].release()
            else:
                self._idle.append(item)


def _serve_requests(conn, parent: int) -> None:
    """A worker's loop: ``(fn, args)`` in, ``(True, result)`` or ``(False, error)`` out."""
    die_with_parent(parent)
    for end in list(_PARENT_ENDS):
        end.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)       # the server decides when we stop
    dumps, loads = pickle.dumps, pickle.loads
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        fn, args = loads(msg)
        try:
            out = dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:                              # noqa: BLE001  (sent back, raised there)
            try:
                out = dumps((False, e), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:                               # noqa: BLE001  (an unpicklable error)
                out = dumps((False, RuntimeError(f"{type(e).__name__}: {e}")))
        conn.send_bytes(out)


class DecodePool:
    """Decoding for a server, in worker processes: request threads hand over the bytes and wait,
    so the server's own process (one GIL) is left with HTTP, the store's dictionaries and DuckDB.
    Create it before the process starts threads or opens the store: the workers are forked at
    once. ``jobs=0`` decodes in the calling thread. If a worker dies, the pool is given up and
    decoding continues in the calling threads.

    Each worker has its own pipe and serves one request at a time; a request thread takes an idle
    worker (first come, first served; no helper thread), writes the pickled call, and blocks on
    the answer. This costs the server's process about a third of what
    :class:`concurrent.futures.ProcessPoolExecutor` does per call (its manager and feeder threads
    take the GIL several times per task)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._idle = _FifoHandoff()
        self._workers: list[_Worker] = []
        self._keys_valid = True
        self._active = jobs > 0
        if jobs > 0:
            from . import pprof  # noqa: F401  (loaded once here, inherited by the workers)
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._workers = [_Worker(ctx, os.getpid()) for _ in range(jobs)]
            self._keys_valid = all(w.call(_probe, ()) == (True, hash(_SALT_PROBE)) for w in self._workers)
            for w in self._workers:
                self._idle.put(w)

    @property
    def active(self) -> bool:
        return self._active

    def _call(self, fn, args: tuple):
        if not self._active:
            return fn(*args)
        w = self._idle.get()
        if w is None:                                 # given up (or closed) meanwhile
            self._idle.put(None)
            return fn(*args)
        try:
            ok, out = w.call(fn, args)
        except BaseException as e:                    # the worker died (the OS killed it, say)
            self._give_up()
            if not isinstance(e, Exception):
                raise
            return fn(*args)
        self._idle.put(w)
        if not ok:
            raise out
        return out

    def _run(self, fn, *args) -> Profile:
        profile = self._call(fn, args)
        if not self._keys_valid:
            profile.frames.keys = None
        return profile

    def stage(self, fn, *args):
        """``fn(*args)`` in a worker, for work that hashes frames and stacks (staging profiles
        for the store, :func:`profscope.wire.push.stage_push`): in the calling thread when the
        workers' string-hash salt is not this process's (spawned, not forked)."""
        if not self._keys_valid:
            return fn(*args)
        return self._call(fn, args)

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
        if self._active:
            self._active = False
            import logging
            logging.getLogger("profscope").error("a decoding worker process died; decoding in the "
                                                 "server process from now on")
        self._stop()

    def _stop(self) -> None:
        self._active = False
        self._idle.put(None)                          # wakes any thread waiting for a worker
        for w in self._workers:
            w.close()                                 # a worker at its recv sees EOF and exits
        for w in self._workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)

    def close(self) -> None:
        self._stop()
