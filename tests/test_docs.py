"""Docs that cannot drift: every hook documented with its exact signature and exercised by a
test, every command (and its options) documented, every configuration key and limit documented
with its default. The failure messages say which file to extend."""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import fields
from pathlib import Path

import click
import pytest

from profscope import hookspecs
from profscope.cli import COMMANDS, cli
from profscope.config import DEFAULTS
from profscope.limits import Limits
from profscope.plugins import HOOK_NAMES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def hook_signature(name: str) -> str:
    """``name(arg: Type, ...) -> Return`` as written in hookspecs.py."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_hooks_are_the_hookspecs():
    specs = {n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "profscope_spec")}
    assert specs == set(HOOK_NAMES) and len(specs) >= 9


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_is_documented_with_its_exact_signature(name):
    headings = re.findall(r"^### `(profscope_\w+\(.*\).*)`$", _read(DOCS / "plugins.md"), re.M)
    assert hook_signature(name) in headings, (
        f"docs/plugins.md needs a heading: ### `{hook_signature(name)}`")


def test_no_documented_hook_is_gone():
    documented = re.findall(r"^### `(profscope_\w+)\(", _read(DOCS / "plugins.md"), re.M)
    assert set(documented) <= set(HOOK_NAMES), f"docs/plugins.md documents unknown hooks: {set(documented) - set(HOOK_NAMES)}"


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_has_a_test(name):
    # a test implements the hook (def <name>) or calls it through profscope.plugins
    source = _read(ROOT / "tests" / "test_plugins.py") + _read(ROOT / "plugins" / "profscope-example" /
                                                                "profscope_example" / "__init__.py")
    tests = _read(ROOT / "tests" / "test_plugins.py")
    assert re.search(rf"def {name}\(", source), f"no plugin used in tests implements {name}"
    callers = {"profscope_configure": "configured", "profscope_decoders": "decode(",
               "profscope_sniff": "sniff(", "profscope_transform_profile": "transform_profile(",
               "profscope_analyze": "run_analyzers(", "profscope_analyze_diff": "run_diff_analyzers(",
               "profscope_exporters": "export(", "profscope_register_routes": "/api/v1/example/hello",
               "profscope_cli_commands": "example-patterns"}
    assert name in callers, f"tests/test_docs.py: say how tests/test_plugins.py exercises the new hook {name}"
    assert callers[name] in tests, f"tests/test_plugins.py does not exercise {name} ({callers[name]!r} not found)"


def _command_sections() -> dict[str, str]:
    text = _read(DOCS / "cli.md") + "\n" + _read(ROOT / "README.md")
    parts = re.split(r"^##+ `profscope ([\w-]+)`\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name):
    sections = _command_sections()
    assert name in sections, f"docs/cli.md (or README.md) needs a section: ## `profscope {name}`"
    cmd = cli.get_command(click.Context(cli), name)
    for param in cmd.params:
        for opt in param.opts + getattr(param, "secondary_opts", []):
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}`" in sections[name], f"docs/cli.md, section profscope {name}: document `{opt}`"


def _table_defaults(section: str) -> dict[str, str]:
    text = _read(DOCS / "configuration.md")
    m = re.search(rf"^## {section}\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"docs/configuration.md needs a '## {section}' section"
    return dict(re.findall(r"^\| `(\w+)` \| `(.*?)` \|", m.group(1), re.M))


@pytest.mark.parametrize("key", list(DEFAULTS))
def test_every_config_key_is_documented_with_its_default(key):
    rows = _table_defaults("Settings")
    assert key in rows, (f"docs/configuration.md, table 'Settings': add "
                         f"| `{key}` | `{json.dumps(DEFAULTS[key])}` | <meaning> |")
    assert json.loads(rows[key]) == DEFAULTS[key], f"docs/configuration.md: default of {key} is {json.dumps(DEFAULTS[key])}"


@pytest.mark.parametrize("key", [f.name for f in fields(Limits)])
def test_every_limit_is_documented_with_its_default(key):
    rows = _table_defaults("Limits")
    default = getattr(Limits(), key)
    assert key in rows, f"docs/configuration.md, table 'Limits': add | `{key}` | `{json.dumps(default)}` | <meaning> |"
    assert json.loads(rows[key]) == default, f"docs/configuration.md: default of {key} is {json.dumps(default)}"


def test_documented_keys_exist():
    documented = set(_table_defaults("Settings")) | set(_table_defaults("Limits"))
    known = set(DEFAULTS) | {f.name for f in fields(Limits)}
    assert documented <= known, f"docs/configuration.md documents unknown keys: {documented - known}"
