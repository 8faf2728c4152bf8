"""profscope-example: one implementation of each kind of profscope hook (see README.md)."""
from __future__ import annotations

from typing import Any

import click
from flask import Blueprint, Flask, jsonify

from profscope import hookimpl

from .cpuprofile import decode_cpuprofile, looks_cpuprofile
from .hotpath import Settings, hot_path_findings, hot_path_growth

PLUGIN_NAME = "example"
SERVICE_ALIASES = ("service", "app", "application")


@hookimpl
def profscope_configure(config: Any) -> None:
    # refuse bad settings at start-up: profscope then leaves this plugin out and reports why
    Settings.from_config((config.get("plugins_config") or {}).get(PLUGIN_NAME, {}))


@hookimpl
def profscope_decoders():
    return {"cpuprofile": decode_cpuprofile}


@hookimpl
def profscope_sniff(data: bytes) -> str | None:
    return "cpuprofile" if looks_cpuprofile(data) else None


@hookimpl
def profscope_transform_profile(profile, labels: dict[str, str]):
    if "service_name" not in labels:
        for alias in SERVICE_ALIASES:
            if labels.get(alias):
                labels["service_name"] = labels.pop(alias)
                break
    return None           # the profile itself is unchanged


@hookimpl
def profscope_analyze(tree, meta):
    return hot_path_findings(tree, meta, Settings.from_config(meta.get("config") or {}))


@hookimpl
def profscope_analyze_diff(tree, meta):
    return hot_path_growth(tree, meta, Settings.from_config(meta.get("config") or {}))


bp = Blueprint("profscope_example", __name__, url_prefix="/api/v1/example")


@bp.get("/hello")
def hello():
    from profscope.plugins import analyzers, app_plugin_manager
    return jsonify({"message": "hello from profscope-example", "analyzers": analyzers(app_plugin_manager())})


@hookimpl
def profscope_register_routes(app: Flask) -> None:
    app.register_blueprint(bp)


@click.command("example-patterns")
@click.option("--json", "as_json", is_flag=True, help="print the patterns as a JSON list")
def example_patterns(as_json: bool) -> None:
    """Print the function-name patterns the example analyzer flags (from plugins_config)."""
    import json

    from profscope.plugins import default_plugin_manager
    settings = Settings.from_config(default_plugin_manager().config["plugins_config"].get(PLUGIN_NAME, {}))
    if as_json:
        click.echo(json.dumps(list(settings.patterns)))
    else:
        for p in settings.patterns:
            click.echo(p)


@hookimpl
def profscope_cli_commands():
    return [example_patterns]
