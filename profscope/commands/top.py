"""``profscope top``: pprof's -top on files, no server and no store."""
from __future__ import annotations

import json

import click

from ..errors import BadInput


def fmt_value(v: int, unit: str) -> str:
    return f"{v}{ {'nanoseconds': 'ns', 'bytes': 'B'}.get(unit, '') }"


def read_input(path: str) -> bytes:
    """The bytes of an input file, or a BadInput naming it."""
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise BadInput(f"cannot read {path}: {e.strerror}") from None


def load_stackset(files: tuple[str, ...], sample_type: str | None, focus: str | None,
                  ignore: str | None, tags: tuple[str, ...] = (), tag_ignore: tuple[str, ...] = (),
                  fmt: str | None = None):
    """Decode ``files`` and merge them into one StackSet of ``sample_type``."""
    from ..analysis.stacks import Filters, TagFilter, concat_stacksets, profile_to_stackset
    from ..formats import decode
    filters = Filters(focus, ignore, tuple([TagFilter.parse(t) for t in tags]
                                           + [TagFilter.parse(t, negate=True) for t in tag_ignore]))
    sets = []
    for f in files:
        data = read_input(f)
        try:
            p = decode(data, fmt)
            sets.append(profile_to_stackset(p, sample_type, filters))
        except BadInput as e:
            raise type(e)(f"{f}: {e.message}") from None
    types = {(s.sample_type.type, s.sample_type.unit) for s in sets}
    if len(types) > 1:
        raise BadInput(f"files have different sample types: {sorted(types)}; pick one with --sample-type")
    return concat_stacksets(sets)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--sample-type", "sample_type", help="pprof sample type name (cpu, samples, alloc_space, ...)")
@click.option("--granularity", type=click.Choice(["functions", "files", "lines", "addresses"]),
              default="functions", show_default=True)
@click.option("--focus", help="keep samples with a frame matching this regex")
@click.option("--ignore", help="drop samples with a frame matching this regex")
@click.option("--tagfocus", "tags", multiple=True, help="[key=]regex[,regex] or [key=]min:max with units (bytes=1kb:), pprof rules")
@click.option("--tagignore", "tag_ignore", multiple=True, help="like --tagfocus: drop matching samples")
@click.option("--format", "fmt", help="input format: pprof, folded, speedscope or a plugin's "
              "(sniffed from the bytes by default)")
@click.option("--limit", default=20, show_default=True, help="rows to print; 0 means every row")
@click.option("--json", "as_json", is_flag=True, help="print JSON: sample_type, unit, total, rows")
def top(files, sample_type, granularity, focus, ignore, tags, tag_ignore, fmt, limit, as_json):
    """Flat and cumulative values per function, like `go tool pprof -top`."""
    from ..analysis.top import top_table
    ss = load_stackset(files, sample_type, focus, ignore, tags, tag_ignore, fmt)
    table = top_table(ss, granularity)
    if as_json:
        click.echo(json.dumps(table.to_json(limit)))
        return 0
    unit = table.unit
    click.echo(f"Type: {table.sample_type}  Unit: {unit}  Total: {fmt_value(table.total, unit)}")
    click.echo(f"{'flat':>16} {'flat%':>7} {'sum%':>7} {'cum':>16} {'cum%':>7}  name")
    running = 0
    tot = table.total or 1
    for r in table.rows(limit):
        running += r["flat"]
        click.echo(f"{fmt_value(r['flat'], unit):>16} {100 * r['flat'] / tot:6.2f}% {100 * running / tot:6.2f}% "
                   f"{fmt_value(r['cum'], unit):>16} {100 * r['cum'] / tot:6.2f}%  {r['name']}")
    return 0
