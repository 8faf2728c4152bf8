"""``profscope serve``: the HTTP API on granian.

granian (a Rust HTTP server) parses HTTP outside the GIL and calls the Flask WSGI app in its
blocking threads. Its main process only binds the port and supervises one worker process; the
worker builds everything that serves (:func:`_start_worker`): the decoding workers (forked first,
before any thread starts), the store, the OTLP gRPC listener and self-profiling; when granian
stops it (SIGINT or SIGTERM to the main process) it stops the gRPC listener, closes the store and
ends the decoding workers.
"""
from __future__ import annotations

import os
import signal
import sys
from functools import partial

import click

# How long a thread holding the GIL keeps it while another waits (Python's default: 5 ms). The
# writer gives up the GIL about 20 times per transaction (each DuckDB call, measured: 3 per
# statement), and each time a query's numpy work can hold it for the whole interval; at 1 ms, in
# three alternating 20 s runs of benchmarks/bench_push.py, p99 was 99.2-100.6 ms against
# 103.7-106.3 at 5 ms, pushing 1,008-1,032 req/s against 968-1,034.
SWITCH_INTERVAL = 0.001


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=4040, show_default=True, type=int)
@click.option("--data-dir", envvar="PROFSCOPE_DATA_DIR", default="./profscope-data", show_default=True,
              help="directory of the DuckDB store (also PROFSCOPE_DATA_DIR)")
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help="request threads running the app (default 48)")
@click.option("--multitenancy/--no-multitenancy", default=None, help="require X-Scope-OrgID")
@click.option("--otlp-grpc/--no-otlp-grpc", "otlp_grpc", default=None,
              help="also accept OTLP profiles over gRPC (default on)")
@click.option("--otlp-grpc-port", default=None, type=int, help="port of the OTLP gRPC listener (default 4317)")
@click.option("--decode-workers", default=None, type=click.IntRange(min=-1),
              help="processes decoding uploads (default: one per core, up to 4, on 2+ cores; 0: none)")
@click.option("--self-profile", is_flag=True, default=False,
              help='profile this server with the pyroscope-io SDK into its own store (service_name="profscope")')
def serve(host: str, port: int, data_dir: str, threads: int | None, multitenancy: bool | None,
          otlp_grpc: bool | None, otlp_grpc_port: int | None, decode_workers: int | None, self_profile: bool):
    """Run the profscope server (HTTP API, Pyroscope-compatible endpoints)."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from ..config import load_config
    cfg = load_config({"data_dir": data_dir, "host": host, "port": port, "threads": threads,
                       "multitenancy": multitenancy, "otlp_grpc": otlp_grpc, "otlp_grpc_port": otlp_grpc_port,
                       "decode_workers": decode_workers})
    _check_port(host, port)
    server = Granian("profscope", address=host, port=port, interface=Interfaces.WSGI, workers=1,
                     blocking_threads=max(1, int(cfg["threads"])), backlog=2048, websockets=False,
                     log_level=LogLevels.error, workers_kill_timeout=30)
    # granian exits the process itself (code 1) when the worker fails to start or dies
    server.serve(target_loader=partial(_start_worker, os.getpid(), cfg, host, port, data_dir, self_profile))
    return 0


def _check_port(host: str, port: int) -> None:
    """Refuse at once, with a plain message, a port that something else listens on (granian's
    own error is a Rust backtrace)."""
    import socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise click.UsageError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _start_worker(main: int, cfg, host: str, port: int, data_dir: str, self_profile: bool, _target: str):
    """In granian's worker process: everything that serves, and its closing at the process's end.
    Returns the WSGI app."""
    from multiprocessing.util import Finalize

    from ..formats.parallel import DecodePool, die_with_parent, server_jobs
    # granian's worker outlives a killed main process: have it sent SIGTERM, its orderly stop once
    # granian serves; until then (the handler inherited from granian's main process would ignore it)
    # SIGTERM ends the worker outright
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(main, signal.SIGTERM)
    # decoding workers are forked first, before the store and the server start threads; what they
    # run for a push (wire/push.py, which brings DuckDB's and Arrow's modules) is imported first, so
    # that each does not import it on its first push (about 80 ms)
    from ..wire import push  # noqa: F401
    n = cfg["decode_workers"]
    decoder = DecodePool(server_jobs() if n < 0 and (os.cpu_count() or 1) >= 2 else max(n, 0))
    try:
        from ..api import create_app
        app = create_app(cfg, decoder)
    except Exception as e:                                 # noqa: BLE001  (duckdb's: a locked file, say)
        decoder.close()
        print(f"error: cannot open the store in {data_dir}: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    store = app.extensions["profscope"].store
    # multiprocessing runs these, highest priority first, when the worker's target returns (granian
    # stopped it)
    Finalize(None, _stop_worker, args=(store, decoder), exitpriority=10)
    from ..gcpolicy import for_service
    for_service()
    sys.setswitchinterval(SWITCH_INTERVAL)
    # the call-path index of the stored stacks is built in the background, not by the first query
    import threading
    threading.Thread(target=store.warm_index, name="index-warmup", daemon=True).start()
    if cfg["otlp_grpc"]:
        from ..wire.grpc_server import start_grpc_server
        try:
            grpc_server, bound = start_grpc_server(app, host, cfg["otlp_grpc_port"])
            print(f"profscope OTLP gRPC on {host}:{bound}", file=sys.stderr)
            Finalize(None, grpc_server.stop, args=(5,), exitpriority=20)
        except OSError as e:   # HTTP (and OTLP over HTTP) still serve
            print(f"warning: OTLP gRPC listener not started ({e}); choose another port with "
                  "--otlp-grpc-port or turn it off with --no-otlp-grpc", file=sys.stderr)
    if self_profile:
        from ..capture.selfprofile import start_self_profiling
        # push to our own loopback address even when listening on all interfaces
        start_self_profiling(f"http://127.0.0.1:{port}", {"data_dir": str(data_dir)},
                             upload_interval=int(cfg["self_profile_upload_interval"]),
                             tenant="profscope" if cfg["multitenancy"] else "")
        print("profscope is profiling itself (service_name=\"profscope\")", file=sys.stderr)
    print(f"profscope serving on http://{host}:{port} (data in {data_dir})", file=sys.stderr)
    return _sized_bodies(app, cfg.limits.max_body_bytes)


def _sized_bodies(app, max_body_bytes: int):
    """A body sent without Content-Length (chunked) read here, at most ``max_body_bytes`` + 1
    bytes, and handed on with its length. granian undoes the chunked framing but does not set
    ``wsgi.input_terminated``, so werkzeug would read such a body as empty; a body over the limit
    is handed on as a Content-Length over it, which the app refuses with its 413."""
    import io

    def wsgi(environ, start_response):
        if not environ.get("CONTENT_LENGTH") and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
            data = environ["wsgi.input"].read(max_body_bytes + 1)
            del environ["HTTP_TRANSFER_ENCODING"]             # now a body of known length
            environ["CONTENT_LENGTH"] = str(len(data))
            environ["wsgi.input"] = io.BytesIO(b"" if len(data) > max_body_bytes else data)
        return app(environ, start_response)
    return wsgi


def _stop_worker(store, decoder) -> None:
    # a self-profiling agent is left to end with the process: HTTP is down by now, so its last
    # flush (to this server) could only wait for its timeout
    store.close()
    decoder.close()
