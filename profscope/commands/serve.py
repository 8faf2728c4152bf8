"""``profscope serve``: the HTTP API on waitress (threaded, production WSGI server)."""
from __future__ import annotations

import os

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", default=4040, show_default=True, type=int)
@click.option("--data-dir", envvar="PROFSCOPE_DATA_DIR", default="./profscope-data", show_default=True,
              help="directory of the DuckDB store (also PROFSCOPE_DATA_DIR)")
@click.option("--threads", default=None, type=int, help="WSGI worker threads (default 8)")
@click.option("--multitenancy/--no-multitenancy", default=None, help="require X-Scope-OrgID")
@click.option("--otlp-grpc/--no-otlp-grpc", "otlp_grpc", default=None,
              help="also accept OTLP profiles over gRPC (default on)")
@click.option("--otlp-grpc-port", default=None, type=int, help="port of the OTLP gRPC listener (default 4317)")
@click.option("--decode-workers", default=None, type=click.IntRange(min=-1),
              help="processes decoding uploads (default: cores + 1, up to 4, on 2+ cores; 0: none)")
@click.option("--self-profile", is_flag=True, default=False,
              help='profile this server with the pyroscope-io SDK into its own store (service_name="profscope")')
def serve(host: str, port: int, data_dir: str, threads: int | None, multitenancy: bool | None,
          otlp_grpc: bool | None, otlp_grpc_port: int | None, decode_workers: int | None, self_profile: bool):
    """Run the profscope server (HTTP API, Pyroscope-compatible endpoints)."""
    import waitress

    from ..api import create_app
    from ..config import load_config
    cfg = load_config({"data_dir": data_dir, "host": host, "port": port, "threads": threads,
                       "multitenancy": multitenancy, "otlp_grpc": otlp_grpc, "otlp_grpc_port": otlp_grpc_port,
                       "decode_workers": decode_workers})
    # decoding workers are forked first, before the store and the server start threads
    from ..formats.parallel import DecodePool, server_jobs
    n = cfg["decode_workers"]
    decoder = DecodePool(server_jobs() if n < 0 and (os.cpu_count() or 1) >= 2 else max(n, 0))
    app = create_app(cfg, decoder)
    from ..gcpolicy import for_service
    for_service()
    # the call-path index of the stored stacks is built in the background, not by the first query
    import threading
    threading.Thread(target=app.extensions["profscope"].store.warm_index, name="index-warmup", daemon=True).start()
    if cfg["otlp_grpc"]:
        from ..wire.grpc_server import start_grpc_server
        try:
            _server, bound = start_grpc_server(app, host, cfg["otlp_grpc_port"])
            click.echo(f"profscope OTLP gRPC on {host}:{bound}", err=True)
        except OSError as e:   # HTTP (and OTLP over HTTP) still serve
            click.echo(f"warning: OTLP gRPC listener not started ({e}); choose another port with "
                       "--otlp-grpc-port or turn it off with --no-otlp-grpc", err=True)
    if self_profile:
        from ..capture.selfprofile import start_self_profiling
        # push to our own loopback address even when listening on all interfaces
        start_self_profiling(f"http://127.0.0.1:{port}", {"data_dir": str(data_dir)},
                             upload_interval=int(cfg["self_profile_upload_interval"]),
                             tenant="profscope" if cfg["multitenancy"] else "")
        click.echo("profscope is profiling itself (service_name=\"profscope\")", err=True)
    click.echo(f"profscope serving on http://{host}:{port} (data in {data_dir})", err=True)
    try:
        waitress.serve(app, host=host, port=port, threads=cfg["threads"], ident="profscope",
                       max_request_body_size=cfg.limits.max_body_bytes, connection_limit=1000,
                       channel_timeout=120, backlog=2048, _quiet=True)
    finally:
        if self_profile:
            from ..capture.selfprofile import stop_self_profiling
            stop_self_profiling()
        decoder.close()
    return 0
