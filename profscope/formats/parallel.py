"""Decoding in worker processes: many files for ``profscope ingest`` (:func:`decode_files`, profiles
back in file order), and request bodies for the server (:class:`DecodePool`).

A decoded profile crosses the process boundary as a pickle of its numpy columns and its string
table (for a 300-sample profile about 0.14 ms to pickle and 0.09 ms to load, against 1.8 ms to
decode), so the caller stores or serves while workers decode. Workers are forked before the caller
opens anything else (no DuckDB connection or thread is inherited) where fork exists; frame keys
(:mod:`profscope.hashing`) from a worker with another str hash salt are dropped.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import selectors
import signal
import sys
import threading
import time
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


def _child_init(parent: int) -> None:
    """First thing in a decoding process: die with ``parent``, and keep the garbage collector off
    every object inherited from it (``gc.freeze``): they are never collected here, and a fork of a
    process whose other threads were running may have caught some of them half-changed (a forked
    worker's collector once crashed walking them under pytest)."""
    die_with_parent(parent)
    gc.freeze()


def _executor(jobs: int) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_child_init, initargs=(os.getpid(),))


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
    """Decoding processes of a server: one per core, up to 4. Calls queue in the workers' pipes
    (:class:`DecodePool`), so a worker is never idle while a request waits; a third worker on 2
    cores only took CPU from the server's process: in five alternating 20 s runs of
    ``benchmarks/bench_push.py --decode-workers``, 2 workers pushed 914-957 req/s (p99 104-119 ms)
    against 887-932 (p99 115-130) for 3."""
    return max(1, min(os.cpu_count() or 1, 4))


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

def _decode_bytes(data: bytes, fmt: str | None, limits: Limits, sample_rate: int | None) -> Profile:
    from . import decode
    return decode(data, fmt, limits, sample_rate=sample_rate)


def _probe() -> int:
    return hash(_SALT_PROBE)


class _Job:
    """One call sent to a worker; ``done(ok, value)`` is called exactly once, whoever finishes it
    (the results thread, or the caller's thread when the worker is gone)."""
    __slots__ = ("fn", "args", "done", "_once")

    def __init__(self, fn, args: tuple, done) -> None:
        self.fn, self.args, self.done = fn, args, done
        self._once = threading.Lock()

    def finish(self, ok: bool, value) -> None:
        if self._once.acquire(blocking=False):
            try:
                self.done(ok, value)
            except Exception:                               # noqa: BLE001  (the results thread must live on)
                logging.getLogger("profscope").exception("a decoded result's handler failed")

    def run_here(self) -> None:
        """Run the call in this thread (no worker to run it)."""
        try:
            out = (True, self.fn(*self.args))
        except Exception as e:                              # noqa: BLE001  (handed to done)
            out = (False, e)
        self.finish(*out)


class _Worker:
    """One forked decoding process and our end of its pipe. Calls are written to the pipe as
    they come (the worker takes them in order), so the worker never waits for the caller's
    thread to read an answer; ``jobs`` holds the calls written and not yet answered, oldest
    first, in the order their bytes went into the pipe."""

    def __init__(self, ctx, parent: int) -> None:
        mine, theirs = ctx.Pipe(duplex=True)
        _PARENT_ENDS.add(mine)
        self.proc = ctx.Process(target=_serve_requests, args=(theirs, parent), daemon=True,
                                name="profscope-decoder")
        self.proc.start()
        theirs.close()
        self.conn = mine
        self.jobs: deque[_Job] = deque()
        self.send_lock = threading.Lock()
        self.dead = False

    def close(self) -> None:
        _PARENT_ENDS.discard(self.conn)
        self.conn.close()

    def call(self, fn, args: tuple) -> tuple[bool, object]:
        """One call, answered before the next (only before the results thread starts)."""
        self.conn.send_bytes(pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
        return pickle.loads(self.conn.recv_bytes())


# the server's ends of the workers' pipes: a forked worker closes its copies, so that a worker
# sees EOF (and exits) as soon as the server closes its end
_PARENT_ENDS: set = set()


def _serve_requests(conn, parent: int) -> None:
    """A worker's loop: ``(fn, args)`` in, ``(True, result)`` or ``(False, error)`` out."""
    _child_init(parent)
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


class _Answer:
    """A caller's wait for one job's ``(ok, value)``."""
    __slots__ = ("_lock", "out")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.out: tuple[bool, object] = (False, None)

    def set(self, ok: bool, value) -> None:
        self.out = (ok, value)
        self._lock.release()

    def get(self):
        self._lock.acquire()
        ok, value = self.out
        if not ok:
            raise value
        return value


class DecodePool:
    """Decoding for a server, in worker processes, so the server's own process (one GIL) is left
    with HTTP, the store's dictionaries and DuckDB. Create it before the process starts threads
    or opens the store: the workers are forked at once. ``jobs=0`` decodes in the calling
    thread. If a worker dies, the pool is given up: what the workers had not answered and
    everything after is run in the server's process.

    A call is pickled by the caller's thread and written to the pipe of the worker with the
    fewest calls waiting (the pipe is the worker's queue), and one results thread reads every
    worker's answers and hands each to its call's ``done`` (:meth:`submit`). The caller's thread
    is not woken to read an answer, and a worker never waits for a busy server's threads to take
    one before starting its next call."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._workers: list[_Worker] = []
        self._keys_valid = True
        self._active = jobs > 0
        self._lock = threading.Lock()            # the choice of a worker, against a give-up
        self._stopping = False
        if jobs > 0:
            from . import pprof  # noqa: F401  (loaded once here, inherited by the workers)
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._workers = [_Worker(ctx, os.getpid()) for _ in range(jobs)]
            self._keys_valid = all(w.call(_probe, ()) == (True, hash(_SALT_PROBE)) for w in self._workers)
            self._wake_r, self._wake_w = ctx.Pipe(duplex=False)       # close() wakes the results thread
            _PARENT_ENDS.update((self._wake_r, self._wake_w))
            self._results = threading.Thread(target=self._collect, name="profscope-decode-results", daemon=True)
            self._results.start()

    @property
    def active(self) -> bool:
        return self._active

    def submit(self, fn, args: tuple, done, *, hashes: bool = False) -> None:
        """Run ``fn(*args)`` in a worker; ``done(True, result)`` or ``done(False, the error it
        raised)`` is called once, in the pool's results thread (or in this thread when the pool
        decodes here). ``hashes``: ``fn`` hashes frames and stacks (staging profiles for the
        store, :func:`profscope.wire.push.stage_push`), so it runs here when the workers'
        string-hash salt is not this process's (spawned, not forked). ``done`` must not block."""
        job = _Job(fn, args, done)
        if not self._active or (hashes and not self._keys_valid):
            job.run_here()
            return
        msg = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        with self._lock:
            w = min(self._workers, key=lambda w: len(w.jobs)) if self._active else None
        if w is None:
            job.run_here()
            return
        with w.send_lock:
            if not w.dead:
                w.jobs.append(job)                # before the bytes: the answer may come at once
                try:
                    w.conn.send_bytes(msg)
                    return
                except (OSError, ValueError):     # the worker died; the results thread gives up
                    pass
        job.run_here()                            # a no-op if the give-up ran it first

    def _call(self, fn, args: tuple):
        answer = _Answer()
        self.submit(fn, args, answer.set)
        return answer.get()

    def _run(self, fn, *args) -> Profile:
        profile = self._call(fn, args)
        if not self._keys_valid:
            profile.frames.keys = None
        return profile

    def builtin(self, data: bytes, fmt: str | None, limits: Limits = DEFAULT_LIMITS,
                sample_rate: int | None = None) -> Profile:
        """:func:`profscope.formats.decode` of a built-in format (``fmt`` given or sniffed) in a
        worker; the worker's plugin manager is not the caller's, so callers decode plugin
        formats themselves."""
        return self._run(_decode_bytes, data, fmt, limits, sample_rate)

    def _collect(self) -> None:
        """The results thread: every answer, in each worker's order, to its call's ``done``."""
        with selectors.DefaultSelector() as sel:   # registered once (connection.wait() would each time)
            for w in self._workers:
                sel.register(w.conn, selectors.EVENT_READ, w)
            sel.register(self._wake_r, selectors.EVENT_READ, None)
            while True:
                for key, _ in sel.select():
                    w = key.data
                    if w is None:
                        return                    # closing
                    try:
                        ok, value = pickle.loads(w.conn.recv_bytes())
                    except Exception:             # noqa: BLE001  (EOF: the worker died)
                        if not self._stopping:
                            self._give_up()
                        return
                    w.jobs.popleft().finish(ok, value)

    def _give_up(self) -> None:
        """A worker died (the OS killed it, say): stop them all; what they had not answered is
        run here, and so is every later call."""
        logging.getLogger("profscope").error("a decoding worker process died; decoding in the "
                                             "server process from now on")
        with self._lock:
            self._active = False
        for w in self._workers:
            w.proc.kill()                         # a thread blocked writing to it gets an error
        left: list[_Job] = []
        for w in self._workers:
            with w.send_lock:
                w.dead = True
                left.extend(w.jobs)
                w.jobs.clear()
        for job in left:
            job.run_here()
        self._close_workers()

    def _close_workers(self) -> None:
        for w in self._workers:
            w.close()                             # a worker at its recv sees EOF and exits
        for w in self._workers:
            w.proc.join(timeout=5)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)

    def close(self) -> None:
        """Stop the workers once they have answered what was sent to them (a server's requests
        have ended by now); answers not in after 30 s are computed here."""
        if not self._workers or self._stopping:
            return
        self._stopping = True
        with self._lock:
            self._active = False
        for w in self._workers:
            with w.send_lock:
                w.dead = True                     # later calls run in their callers' threads
        deadline = time.monotonic() + 30
        while any(w.jobs for w in self._workers) and self._results.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if self._results.is_alive():
            self._wake_w.send_bytes(b"")
            self._results.join()
        for c in (self._wake_r, self._wake_w):
            _PARENT_ENDS.discard(c)
            c.close()
        for w in self._workers:
            while w.jobs:
                w.jobs.popleft().run_here()
        self._close_workers()
