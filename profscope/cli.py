"""The ``profscope`` command line. Thin: parse options, call the library, print.

Exit codes: 0 ok, 1 regression found, 2 usage or bad input, 3 operational error.
Subcommands live in :mod:`profscope.commands` and are imported lazily, so ``profscope top``
does not pay for Flask, DuckDB or wasmtime.
"""
from __future__ import annotations

import importlib
import sys

import click

# name -> "module:attribute"; modules are imported only when their command runs
COMMANDS: dict[str, str] = {
    "top": "profscope.commands.top:top",
    "ingest": "profscope.commands.store_cmds:ingest",
    "export": "profscope.commands.store_cmds:export",
    "serve": "profscope.commands.serve:serve",
    "analyze": "profscope.commands.plugins_cmds:analyze",
    "plugins": "profscope.commands.plugins_cmds:plugins",
    "record": "profscope.commands.record:record",
    "diff": "profscope.commands.diff:diff",
}

EXIT_OK, EXIT_REGRESSION, EXIT_BAD_INPUT, EXIT_OPERATIONAL = 0, 1, 2, 3


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)) | set(_plugin_commands()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            mod, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(mod), attr)
        cmd = super().get_command(ctx, name)
        if cmd is None:
            cmd = _plugin_commands().get(name)
        return cmd


def _plugin_commands() -> dict[str, click.Command]:
    """Commands contributed by plugins through the ``profscope_cli_commands`` hook."""
    if "--help" not in sys.argv and len(sys.argv) > 1 and sys.argv[1] in COMMANDS:
        return {}
    try:
        from .plugins import cli_commands
    except ImportError:
        return {}
    return cli_commands()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="profscope")
def cli() -> None:
    """profscope: continuous-profiling analysis (pprof, OTLP, py-spy) on DuckDB."""


def main(argv: list[str] | None = None) -> None:
    from .errors import ProfscopeError
    try:
        rv = cli.main(args=argv, prog_name="profscope", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_OPERATIONAL)
    except click.UsageError as e:
        e.show()
        sys.exit(EXIT_BAD_INPUT)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_BAD_INPUT)
    except ProfscopeError as e:
        click.echo(f"profscope: error: {e.message}", err=True)
        sys.exit(e.exit_code)
    except OSError as e:
        click.echo(f"profscope: error: {e}", err=True)
        sys.exit(EXIT_OPERATIONAL)
    except Exception as e:  # an operational failure: say what, without a traceback
        click.echo(f"profscope: internal error: {e.__class__.__name__}: {e}", err=True)
        sys.exit(EXIT_OPERATIONAL)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
