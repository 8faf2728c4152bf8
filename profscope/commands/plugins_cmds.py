"""``profscope analyze`` (run the analyzer plugins on profile files) and ``profscope plugins``
(what is installed and what failed to load)."""
from __future__ import annotations

import json

import click

from ..errors import BadInput
from ..hookspecs import SEVERITIES
from .top import load_stackset

SEVERITY_CHOICES = list(SEVERITIES)     # least severe first


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--base", "base_files", multiple=True, type=click.Path(dir_okay=False),
              help="baseline profile file (repeatable): run the diff analyzers on base vs FILES")
@click.option("--sample-type", "sample_type", help="pprof sample type name (cpu, samples, alloc_space, ...)")
@click.option("--granularity", type=click.Choice(["functions", "files", "lines", "addresses"]),
              default="functions", show_default=True)
@click.option("--focus", help="keep samples with a frame matching this regex")
@click.option("--ignore", help="drop samples with a frame matching this regex")
@click.option("--format", "fmt", help="input format (sniffed by default)")
@click.option("--max-nodes", default=8192, show_default=True, help="flame graph size given to the analyzers")
@click.option("--analyzer", "only", multiple=True, help="run only this analyzer plugin (repeatable)")
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default=None,
              help="exit 1 when a finding of this severity or higher is reported")
@click.option("--json", "as_json", is_flag=True, help="print {findings, errors} as JSON")
def analyze(files, base_files, sample_type, granularity, focus, ignore, fmt, max_nodes, only, fail_on, as_json):
    """Run every analyzer plugin on profile files and print the findings."""
    from ..analysis.tree import build_tree
    from ..plugins import run_analyzers, run_diff_analyzers
    head = load_stackset(files, sample_type, focus, ignore, fmt=fmt)
    meta = {"profile_type": None, "sample_type": head.sample_type.type, "unit": head.sample_type.unit,
            "total": int(head.total), "profiles": len(files), "duration_nanos": int(head.duration_nanos),
            "query": "", "from": None, "until": None, "granularity": granularity}
    if base_files:
        base = load_stackset(base_files, sample_type, focus, ignore, fmt=fmt)
        if base.sample_type != head.sample_type:
            raise BadInput(f"cannot compare {base.sample_type.type}/{base.sample_type.unit} (--base) with "
                           f"{head.sample_type.type}/{head.sample_type.unit}: pick one with --sample-type")
        tree = build_tree([base, head], granularity, max_nodes)
        result = run_diff_analyzers(tree, {**meta, "base_total": int(base.total)}, only=only or None)
    else:
        result = run_analyzers(build_tree([head], granularity, max_nodes), meta, only=only or None)
    if as_json:
        click.echo(json.dumps(result))
    else:
        for f in result["findings"]:
            where = f" [{f['function']}]" if f.get("function") else ""
            click.echo(f"{f['severity']:<8} {f['plugin']}: {f['title']}{where}: {f['message']}")
        if not result["findings"]:
            click.echo("no findings")
    for e in result["errors"]:
        click.echo(f"profscope: analyzer {e['plugin']} failed ({e['kind']}): {e['error']}", err=True)
    if fail_on is not None:
        worst = SEVERITY_CHOICES.index(fail_on)
        if any(SEVERITY_CHOICES.index(f["severity"]) >= worst for f in result["findings"]):
            click.get_current_context().exit(1)      # exit code 1: findings at --fail-on or above
    return 0


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the list as JSON")
def plugins(as_json):
    """List the registered plugins, their hooks, and plugins that failed to load."""
    from ..plugins import cli_commands, decoders, default_plugin_manager, describe, exporters
    pm = default_plugin_manager()
    decoders(pm), exporters(pm), cli_commands(pm)      # claim names now, so conflicts show up below
    listing = {"plugins": describe(pm), "errors": pm.load_errors}
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return 0
    for p in listing["plugins"]:
        version = f" {p['version']}" if p.get("version") else ""
        click.echo(f"{p['name']}{version} ({p['source']}): {', '.join(p['hooks']) or '(no hooks)'}")
    for e in listing["errors"]:
        click.echo(f"error: {e['plugin']} ({e['kind']}): {e['error']}", err=True)
    return 0
