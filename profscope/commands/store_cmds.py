"""``profscope ingest`` and ``profscope export``: the store from the command line, either a local
data directory or a running server (``--server URL``)."""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import click

from ..errors import BadInput, StoreError


def parse_label_options(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise BadInput(f"--label {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _chunks(items, size: int = 64):
    """Files per insert: up to ``size``."""
    chunk: list[tuple] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> bytes:
    """A request to a profscope server; its JSON errors become ProfscopeErrors."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            msg = json.loads(body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            msg = body[:200].decode("utf-8", "replace")
        err = BadInput(f"server answered {e.code}: {msg}") if 400 <= e.code < 500 else \
            StoreError(f"server answered {e.code}: {msg}")
        raise err from None
    except urllib.error.URLError as e:
        raise StoreError(f"cannot reach {url}: {e.reason}") from None


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--data-dir", envvar="PROFSCOPE_DATA_DIR", default=None, help="local store directory")
@click.option("--server", default=None, help="URL of a running profscope server instead of a local store")
@click.option("--service", default=None, help="service_name label")
@click.option("--label", "labels", multiple=True, help="k=v series label (repeatable)")
@click.option("--format", "fmt", default=None,
              help="pprof, folded, speedscope or a plugin's format (default: sniffed)")
@click.option("--tenant", default="anonymous", show_default=True)
@click.option("--jobs", type=click.IntRange(min=0), default=None,
              help="processes decoding files while the store writes (default: one per core, up to 4; 0: none)")
def ingest(files, data_dir, server, service, labels, fmt, tenant, jobs):
    """Store profile files: every file or none of them (one transaction)."""
    lab = parse_label_options(labels)
    if service:
        lab["service_name"] = service
    if data_dir and server:
        raise click.UsageError("give --data-dir or --server, not both")
    if server:
        for f in files:
            q = [("label", f"{k}={v}") for k, v in lab.items()] + ([("format", fmt)] if fmt else [])
            url = server.rstrip("/") + "/api/v1/ingest?" + urllib.parse.urlencode(q)
            with open(f, "rb") as fh:
                body = fh.read()
            res = json.loads(http("POST", url, body, {"X-Scope-OrgID": tenant,
                                                      "Content-Type": "application/octet-stream"}))
            click.echo(f"{f}: stored {res['samples']} samples as {', '.join(res['profile_types'])}")
        return 0
    from ..formats.parallel import decode_files
    decoded = decode_files(list(files), fmt, jobs=jobs)   # forks its workers before the store opens
    stored: list[tuple[str, object]] = []      # (file, profile) in the order they are stored

    def chunks():
        # decoding (in worker processes) runs ahead while earlier chunks are written
        for chunk in _chunks(_transformed(decoded, lab)):
            stored.extend((f, p) for f, p, _ in chunk)
            yield [(p, labels) for _, p, labels in chunk]
    try:
        from ..store import Store
        store = Store(data_dir)
        try:
            results = store.ingest_all(chunks(), tenant)    # one transaction: every file or none
        finally:
            store.close()
    finally:
        decoded.close()
    for (f, p), res in zip(stored, results, strict=True):
        for w in p.warnings:
            click.echo(f"{f}: warning: {w}", err=True)
        click.echo(f"{f}: stored {res.samples} samples as {', '.join(res.profile_types)}")
    return 0


def _transformed(decoded, lab: dict[str, str]):
    from ..plugins import transform_profile
    for f, p in decoded:
        file_labels = dict(lab)
        yield f, transform_profile(p, file_labels), file_labels


@click.command()
@click.option("--query", "query", default="", help='selection: type{labels}, e.g. cpu{service_name="api"}')
@click.option("--from", "start", default=None)
@click.option("--until", "end", default=None)
@click.option("--format", "fmt", default="pprof", show_default=True,
              help="pprof, speedscope, folded or a plugin's export format")
@click.option("-o", "--output", default="-", help="file to write (default stdout)")
@click.option("--data-dir", envvar="PROFSCOPE_DATA_DIR", default=None)
@click.option("--server", default=None, help="URL of a running profscope server")
@click.option("--tenant", default="anonymous", show_default=True)
def export(query, start, end, fmt, output, data_dir, server, tenant):
    """Export a stored selection as pprof, speedscope JSON or folded stacks."""
    if server:
        q = {"query": query, "format": fmt}
        if start:
            q["from"] = start
        if end:
            q["until"] = end
        body = http("GET", server.rstrip("/") + "/api/v1/export?" + urllib.parse.urlencode(q),
                    headers={"X-Scope-OrgID": tenant})
    else:
        from ..formats.exporters import export as do_export
        from ..query.selector import Selection
        from ..query.timeparse import parse_time
        from ..store import Store
        store = Store(data_dir)
        try:
            sel = Selection.from_query(query, parse_time(start, what="--from"), parse_time(end, what="--until"), tenant)
            ss = store.select(sel)
            if ss.n_profiles == 0:
                raise BadInput(f"selection {query!r} matches no stored profile")
            body, _ = do_export(ss, fmt)
        finally:
            store.close()
    if output == "-":
        sys.stdout.buffer.write(body)
    else:
        with open(output, "wb") as fh:
            fh.write(body)
    return 0
