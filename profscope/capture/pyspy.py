"""Record a Python program with py-spy and turn what it writes into a :class:`Profile`.

profscope starts the command itself and runs ``py-spy record --pid`` beside it, instead of
letting py-spy start it: py-spy exits 0 whatever its child did, and ``profscope record`` must
pass the command's exit code through. Because py-spy is then a sibling, not a parent, of the
command, the command declares ``prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY)`` before ``exec`` so
that ``kernel.yama.ptrace_scope=1`` (descendants only, the default on Ubuntu/Debian hosts) still
lets py-spy read it. py-spy writes ``--format raw`` (folded stacks with ``func (file:line)``
frames and ``thread``/``process`` roots), decoded by :func:`profscope.formats.folded.decode_folded`.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, ProfscopeError
from ..model import Profile


class CaptureError(ProfscopeError):
    """py-spy could not record (operational: exit 3)."""
    status = 500
    kind = "capture_failed"
    exit_code = 3


class PySpyMissing(CaptureError):
    kind = "pyspy_missing"


class PtraceDenied(CaptureError):
    kind = "ptrace_denied"


class NoSamples(CaptureError):
    kind = "no_samples"


@dataclass(frozen=True)
class RecordOptions:
    """What ``py-spy record`` is asked to do; the names follow py-spy's own flags."""
    rate: int = 100                 # samples per second
    duration: int | None = None     # seconds; None records until the command exits (or Ctrl-C)
    idle: bool = False              # include idle (waiting) threads
    gil: bool = False               # only threads holding the GIL
    native: bool = False            # native (C/C++/Cython) frames too
    subprocesses: bool = False      # follow child processes
    threads: bool = True            # thread id/name roots -> thread_id/thread_name labels
    nonblocking: bool = False       # do not pause the target while sampling


@dataclass
class Recording:
    """The result of one recording."""
    profile: Profile
    pid: int
    elapsed: float                       # seconds from start to py-spy's exit
    exit_code: int | None = None         # the command's (shell style: 128+N for signal N); None with --pid
    stopped_after_duration: bool = False  # the command still ran at --duration and was stopped
    pyspy_errors: int = 0                # samples py-spy failed to take
    warnings: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.profile.values[:, 0].sum()) if self.profile.n_samples else 0


PTRACE_HELP = (
    "py-spy may not read process {pid}: ptrace permission denied. In a container, start it with "
    "`--cap-add SYS_PTRACE` (docker run; `cap_add: [SYS_PTRACE]` in compose; "
    "`securityContext.capabilities.add: [SYS_PTRACE]` in Kubernetes). On a host, "
    "kernel.yama.ptrace_scope decides: 0 lets a user trace their own processes, 1 only "
    "descendants (`profscope record -- COMMAND` works, `--pid` needs root or "
    "`sudo sysctl kernel.yama.ptrace_scope=0`), 2 needs root/CAP_SYS_PTRACE, 3 forbids it; "
    "here it is {scope}. A process of another user needs root."
)
_PERMISSION = re.compile(r"Permission denied \(os error 13\)|Operation not permitted \(os error 1\)")
_NOT_PYTHON = re.compile(r"Failed to find python version|Failed to find a python interpreter")
_GONE = re.compile(r"No such file or directory \(os error 2\)|No such process \(os error 3\)"
                   r"|Check that the process is running")
_PYSPY_COUNTS = re.compile(r"Samples: (\d+) Errors: (\d+)")

PR_SET_PTRACER = 0x59616D61
PR_SET_PTRACER_ANY = 2 ** 64 - 1  # (unsigned long) -1


def find_pyspy() -> str:
    """Path of the ``py-spy`` executable: beside ``sys.executable`` first, then on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    raise PySpyMissing(f"py-spy not found (looked beside {sys.executable} and on PATH); "
                       "install it with `pip install py-spy`")


def ptrace_scope() -> str:
    """``kernel.yama.ptrace_scope`` as text, or why it is not known."""
    try:
        return Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        return "not set (Yama is not enabled in this kernel)"


def pyspy_argv(pyspy: str, output: str, pid: int, opts: RecordOptions) -> list[str]:
    """The ``py-spy record`` command line for ``pid``."""
    argv = [pyspy, "record", "--format", "raw", "--output", output, "--rate", str(opts.rate),
            "--pid", str(pid)]
    if opts.duration:
        argv += ["--duration", str(opts.duration)]
    for flag, on in (("--idle", opts.idle), ("--gil", opts.gil), ("--native", opts.native),
                     ("--subprocesses", opts.subprocesses), ("--threads", opts.threads),
                     ("--nonblocking", opts.nonblocking)):
        if on:
            argv.append(flag)
    return argv


def classify_failure(log: str, pid: int, returncode: int, target_exited: bool,
                     target_code: int | None = None) -> ProfscopeError:
    """Turn py-spy's failure (its output ``log`` and exit code) into an error that says what to do."""
    if _PERMISSION.search(log):
        return PtraceDenied(PTRACE_HELP.format(pid=pid, scope=ptrace_scope()))
    if target_exited:
        return _exited_early(target_code)
    if _NOT_PYTHON.search(log):
        return BadInput(f"process {pid} is not running Python (py-spy found no interpreter); if the "
                        "command starts Python in a child process, add --subprocesses")
    if _GONE.search(log):
        return BadInput(f"process {pid} is not running (it exited or never existed)")
    lines = [ln.strip() for ln in log.splitlines() if ln.strip() and not ln.startswith("py-spy> ")]
    first = next((ln for ln in lines if ln.startswith("Error:")), lines[0] if lines else "no output")
    return CaptureError(f"py-spy failed (exit {returncode}): {first}")


def _exited_early(code: int | None) -> NoSamples:
    how = f" with exit code {code}" if code is not None else ""
    return NoSamples(f"the command exited{how} before py-spy took its first sample; no profile "
                     "was written (profile something that runs for at least 1/rate seconds)")


def _allow_any_tracer() -> Callable[[], None] | None:
    """A ``preexec_fn`` that lets a non-ancestor (py-spy) trace the child under Yama scope 1."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int

    def allow() -> None:
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0)   # EINVAL without Yama: harmless
    return allow


def _shell_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc


@contextlib.contextmanager
def _signals(on_int: Callable[[], None], on_term: Callable[[], None]) -> Iterator[None]:
    """While recording: Ctrl-C reaches the whole foreground group (command, py-spy), so profscope
    itself only notes it and waits for py-spy to write; SIGTERM is forwarded by ``on_term``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old_int = signal.signal(signal.SIGINT, lambda *_: on_int())
    old_term = signal.signal(signal.SIGTERM, lambda *_: on_term())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def _stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record(command: Sequence[str] | None = None, pid: int | None = None,
           opts: RecordOptions = RecordOptions(),
           on_progress: Callable[[float], None] | None = None) -> Recording:
    """Run ``command`` (or attach to ``pid``) under py-spy until it exits, ``opts.duration``
    passes or Ctrl-C; return the profile (``samples/count`` and ``cpu/nanoseconds``, period
    1e9/rate). ``on_progress(elapsed_seconds)`` is called about four times a second."""
    if (command is None) == (pid is None):
        raise BadInput("give exactly one of: a command, --pid")
    if opts.rate < 1:
        raise BadInput(f"--rate must be at least 1 Hz, got {opts.rate}")
    if command is not None:
        if not command:
            raise BadInput("no command given: profscope record [OPTIONS] -- COMMAND [ARGS]...")
        if shutil.which(command[0]) is None:
            raise BadInput(f"command not found: {command[0]!r} (not an executable file nor on PATH)")
    else:
        _check_pid(pid)
    pyspy = find_pyspy()
    env = dict(os.environ, RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")
    with tempfile.TemporaryDirectory(prefix="profscope-record-") as tmp:
        out, log_path = os.path.join(tmp, "raw.txt"), os.path.join(tmp, "py-spy.log")
        t0_ns, t0 = time.time_ns(), time.monotonic()
        child = _spawn(command) if command is not None else None
        target = child.pid if child is not None else int(pid)  # type: ignore[arg-type]
        interrupted = False

        def on_int() -> None:
            nonlocal interrupted
            interrupted = True

        with open(log_path, "wb") as log:
            try:
                spy = subprocess.Popen(pyspy_argv(pyspy, out, target, opts), stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, env=env)
            except OSError as e:
                if child is not None:
                    _stop(child)
                raise PySpyMissing(f"cannot run py-spy at {pyspy}: {e.strerror}") from None

            def on_term() -> None:
                on_int()
                with contextlib.suppress(OSError):
                    (child or spy).send_signal(signal.SIGTERM if child else signal.SIGINT)

            with _signals(on_int, on_term):
                while True:
                    try:
                        spy.wait(0.25)
                        break
                    except subprocess.TimeoutExpired:
                        if on_progress is not None:
                            on_progress(time.monotonic() - t0)
                elapsed = time.monotonic() - t0
                exited = child is not None and child.poll() is not None
                stopped = False
                if child is not None and not exited:
                    if spy.returncode != 0 or not interrupted:
                        # py-spy failed, or --duration is over: stop the command
                        stopped = spy.returncode == 0
                        _stop(child)
                    else:
                        child.wait()   # Ctrl-C reached the command too; let it finish its way
        log_text = Path(log_path).read_text("utf-8", "replace")
        exit_code = _shell_code(child.returncode) if child is not None else None
        if spy.returncode != 0:
            raise classify_failure(log_text, target, spy.returncode, exited, exit_code)
        raw = Path(out).read_bytes() if os.path.exists(out) else b""
    profile = parse_raw(raw, opts.rate, exited, exit_code, opts)
    profile.time_nanos = t0_ns
    profile.duration_nanos = int(elapsed * 1e9)
    counts = _PYSPY_COUNTS.search(log_text)
    return Recording(profile, target, elapsed, exit_code, stopped,
                     int(counts.group(2)) if counts else 0, list(profile.warnings))


def parse_raw(raw: bytes, rate: int, target_exited: bool = False, exit_code: int | None = None,
              opts: RecordOptions = RecordOptions()) -> Profile:
    """Decode py-spy's ``--format raw`` output; :class:`NoSamples` when it holds no stack."""
    from ..formats.folded import decode_folded
    try:
        profile = decode_folded(raw, sample_rate=rate)
    except BadInput:
        profile = None
    if profile is None or profile.n_samples == 0:
        if target_exited:
            raise _exited_early(exit_code)
        hint = "" if opts.idle else "; if the program mostly waits (I/O, sleep, locks), add --idle"
        raise NoSamples(f"py-spy collected no samples{hint}")
    profile.source_format = "py-spy"
    profile.comments = [f"profscope record: py-spy at {rate} Hz"]
    return profile


def _check_pid(pid: int | None) -> None:
    if pid is None or pid <= 0:
        raise BadInput(f"--pid must be a positive process id, got {pid}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise BadInput(f"no process with pid {pid}") from None
    except PermissionError:
        pass   # another user's process: py-spy will say whether it may read it


def _spawn(command: Sequence[str]) -> subprocess.Popen:
    try:
        return subprocess.Popen(list(command), preexec_fn=_allow_any_tracer())
    except FileNotFoundError:
        raise BadInput(f"command not found: {command[0]!r}") from None
    except PermissionError:
        raise BadInput(f"command is not executable: {command[0]!r}") from None
    except OSError as e:
        raise BadInput(f"cannot run {command[0]!r}: {e.strerror}") from None
