"""``profscope ingest`` and ``profscope export``: the store from the command line, either a local
data directory or a running server (``--server URL``)."""
from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import click

from ..errors import BadInput, ProfscopeError, StoreError


def parse_label_options(items: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise BadInput(f"--label {item!r} must look like key=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def _chunks(items: list[tuple]) -> list[list[tuple]]:
    """Files per transaction: up to 64, and under ROWS_PER_TRANSACTION sample rows (see
    store/ingest.py) unless one file alone has more."""
    from ..store.ingest import ROWS_PER_TRANSACTION
    chunks: list[list[tuple]] = [[]]
    rows = 0
    for item in items:
        p = item[1]
        n = p.n_samples * max(len(p.sample_types), 1)
        if chunks[-1] and (len(chunks[-1]) == 64 or rows + n > ROWS_PER_TRANSACTION):
            chunks.append([])
            rows = 0
        chunks[-1].append(item)
        rows += n
    return [c for c in chunks if c]


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
def ingest(files, data_dir, server, service, labels, fmt, tenant):
    """Store profile files (whole or not at all, file by file)."""
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
    from ..formats import decode
    from ..plugins import transform_profile
    from ..store import Store
    store = Store(data_dir)
    try:
        # decode every file first: the command stores all of them or none
        items = []
        for f in files:
            try:
                with open(f, "rb") as fh:
                    p = decode(fh.read(), fmt, store.limits)
                file_labels = dict(lab)
                items.append((f, transform_profile(p, file_labels), file_labels))
            except OSError as e:
                raise BadInput(f"cannot read {f}: {e.strerror}") from None
            except ProfscopeError as e:
                e.message = f"{f}: {e.message}"
                raise
        for chunk in _chunks(items):
            results = store.ingest_many([(p, labels) for _, p, labels in chunk], tenant)
            for (f, p, _), res in zip(chunk, results, strict=True):
                for w in p.warnings:
                    click.echo(f"{f}: warning: {w}", err=True)
                click.echo(f"{f}: stored {res.samples} samples as {', '.join(res.profile_types)}")
    finally:
        store.close()
    return 0


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
