"""``profscope record``: run a command (or attach to a pid) under py-spy, write or store a pprof.

The command's exit code is passed through; profscope's own errors exit 2 (bad input: command
not found, not Python, bad option) or 3 (py-spy missing, ptrace refused, no samples, upload
failed). Progress goes to stderr when it is a terminal; a one-line summary always goes to
stderr, so the command's stdout stays its own.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import time

import click

from ..errors import BadInput, ProfscopeError

_LABEL = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=(.*)$")


def parse_labels(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("k=v", ...)`` -> dict; a malformed pair is a :class:`BadInput` naming it."""
    out: dict[str, str] = {}
    for p in pairs:
        m = _LABEL.match(p)
        if not m:
            raise BadInput(f"--label {p!r} is not NAME=VALUE (NAME: letters, digits, '_' and '.')")
        out[m.group(1)] = m.group(2)
    return out


def default_service(command: tuple[str, ...], pid: int | None) -> str:
    """The command's script or program name (``python3 bench.py`` -> ``bench``), or ``pid-N``."""
    if pid is not None:
        return f"pid-{pid}"
    prog = os.path.basename(command[0])
    if prog.startswith("python"):
        args = list(command[1:])
        if len(args) >= 2 and args[0] == "-m":
            return args[1]
        script = next((a for a in args if not a.startswith("-")), None)
        if script:
            return os.path.splitext(os.path.basename(script))[0]
    return prog


class _Progress:
    """A self-overwriting status line on a terminal; silent otherwise."""

    def __init__(self, rate: int, target: str):
        self.on = sys.stderr.isatty()
        self.rate, self.target = rate, target
        self._last = 0.0

    def __call__(self, elapsed: float) -> None:
        if self.on and time.monotonic() - self._last >= 0.5:
            self._last = time.monotonic()
            click.echo(f"\r\x1b[Kprofscope record: {self.target}: {elapsed:5.1f} s, "
                       f"~{int(elapsed * self.rate)} samples at {self.rate} Hz (Ctrl-C stops)",
                       err=True, nl=False)

    def clear(self) -> None:
        if self.on and self._last:
            click.echo("\r\x1b[K", err=True, nl=False)


def summary_line(rec, dest: str) -> str:
    """``profscope record: N samples in T s at R Hz -> dest; top: f 61.2%, g 20.0%, h 3.1%``."""
    from ..analysis.stacks import profile_to_stackset
    from ..analysis.top import top_table
    table = top_table(profile_to_stackset(rec.profile, "samples"), "functions")
    tot = table.total or 1
    top = ", ".join(f"{r['name']} {100 * r['flat'] / tot:.1f}%" for r in table.rows(3) if r["flat"])
    extra = f", {rec.pyspy_errors} py-spy errors" if rec.pyspy_errors else ""
    rate = rec.profile.period and round(1e9 / rec.profile.period)
    line = (f"profscope record: {rec.n_samples} samples in {rec.elapsed:.1f} s at {rate} Hz{extra}"
            f" -> {dest}; top: {top or '(none)'}")
    if rec.stopped_after_duration:
        line += " (command stopped at --duration)"
    return line


def write_pprof(profile, path: str) -> None:
    """Write gzipped pprof atomically (a temporary file beside ``path``, then rename)."""
    from ..formats.pprof_write import encode_profile
    data = encode_profile(profile)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise BadInput(f"cannot write {path}: {e.strerror}") from None


def _check_output(path: str) -> None:
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise BadInput(f"-o {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"-o {path}: directory {parent} is not writable")


def deliver(rec, output: str | None, server: str | None, data_dir: str | None,
            labels: dict[str, str], tenant: str = "anonymous") -> str:
    """Write, store or upload (``POST /api/v1/ingest``) the recording; say where it went."""
    if output:
        write_pprof(rec.profile, output)
        return output
    if data_dir:
        from ..store import Store
        store = Store(data_dir)
        try:
            res = store.ingest(rec.profile, labels, tenant)
        finally:
            store.close()
        return f"{data_dir} (profile {', '.join(map(str, res.profile_ids))})"
    import json
    import urllib.parse

    from ..formats.pprof_write import encode_profile
    from .store_cmds import http
    query = urllib.parse.urlencode([("label", f"{k}={v}") for k, v in labels.items()] + [("format", "pprof")])
    url = f"{server.rstrip('/')}/api/v1/ingest?{query}"  # type: ignore[union-attr]
    res = json.loads(http("POST", url, encode_profile(rec.profile),
                          {"X-Scope-OrgID": tenant, "Content-Type": "application/octet-stream"}))
    return f"{server} (profile {', '.join(map(str, res.get('profile_ids', [])))})"


@click.command(context_settings={"allow_interspersed_args": False})
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--pid", type=int, help="attach to this running Python process instead of starting COMMAND")
@click.option("--rate", type=click.IntRange(1, 10000), default=100, show_default=True,
              help="samples per second")
@click.option("--duration", type=click.IntRange(min=1),
              help="stop after this many seconds (a started command is then stopped too)")
@click.option("--idle", is_flag=True, help="include idle threads (waiting on I/O, sleep, locks)")
@click.option("--gil", is_flag=True, help="only threads holding the GIL")
@click.option("--native", is_flag=True, help="include native (C/C++/Cython) frames")
@click.option("--subprocesses", is_flag=True, help="follow child processes (labels pid, cmdline)")
@click.option("--threads/--no-threads", default=True, show_default=True,
              help="label samples with thread_id and thread_name")
@click.option("--nonblocking", is_flag=True, help="do not pause the program while sampling (less exact)")
@click.option("--service", help="service_name for --server/--data-dir (default: the script name)")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="series label for --server/--data-dir")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="write gzipped pprof here")
@click.option("--server", metavar="URL", help="upload to a profscope server")
@click.option("--data-dir", type=click.Path(file_okay=False), help="store into this profscope data directory")
@click.option("--tenant", default="anonymous", show_default=True, help="tenant for --server/--data-dir")
def record(command, pid, rate, duration, idle, gil, native, subprocesses, threads, nonblocking,
           service, labels, output, server, data_dir, tenant):
    """Run COMMAND under py-spy (or attach with --pid) and save a pprof profile.

    \b
      profscope record -o out.pb.gz -- python3 bench.py --size 1000
      profscope record --pid 4242 --duration 30 --server http://127.0.0.1:4040
    Exits with COMMAND's exit code; 2 or 3 when profscope itself fails.
    """
    from ..capture.pyspy import RecordOptions
    from ..capture.pyspy import record as run_record
    if sum(x is not None for x in (output, server, data_dir)) != 1:
        raise BadInput("give exactly one destination: -o FILE.pb.gz, --server URL or --data-dir DIR")
    if pid is not None and command:
        raise BadInput("give either --pid or a COMMAND, not both")
    if pid is None and not command:
        raise BadInput("no command given: profscope record [OPTIONS] -- COMMAND [ARGS]... (or --pid PID)")
    if output:
        _check_output(output)
    if server:   # fail before a long recording, not after it
        from .store_cmds import http
        http("GET", server.rstrip("/") + "/healthz")
    series = parse_labels(labels)
    series["service_name"] = service or default_service(command, pid)
    if server or data_dir:
        from ..limits import DEFAULT_LIMITS
        from ..store.ingest import check_labels
        check_labels(series, DEFAULT_LIMITS)
    opts = RecordOptions(rate=rate, duration=duration, idle=idle, gil=gil, native=native,
                         subprocesses=subprocesses, threads=threads, nonblocking=nonblocking)
    progress = _Progress(rate, f"pid {pid}" if pid is not None else os.path.basename(command[0]))
    try:
        rec = run_record(command if pid is None else None, pid, opts, progress)
    finally:
        progress.clear()
    try:
        dest = deliver(rec, output, server, data_dir, series, tenant)
    except ProfscopeError as e:
        if output:
            raise
        keep = os.path.join(tempfile.gettempdir(), f"profscope-record-{os.getpid()}-{int(time.time())}.pb.gz")
        write_pprof(rec.profile, keep)
        e.message = f"{e.message}; the recording was saved to {keep} (store it later with profscope ingest)"
        raise
    click.echo(summary_line(rec, dest), err=True)
    if rec.exit_code is None or rec.stopped_after_duration:
        return 0
    return rec.exit_code
