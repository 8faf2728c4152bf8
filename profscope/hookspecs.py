"""The plugin hooks of profscope (pluggy project name ``"profscope"``).

A plugin is any object (usually a module) with functions named like the hooks below and
decorated with :data:`hookimpl`. Plugins are found through the ``profscope`` entry-point group
(see :mod:`profscope.plugins` and ``docs/plugins.md``). The built-in formats and exporters are
plugins too (:mod:`profscope.builtin_plugins`).

Every hook is called once per plugin, in isolation: one plugin raising does not stop the
others, and its failure is reported as ``{"plugin", "kind", "error"}``. A plugin may implement
any subset of the hooks; implementing a hook whose name is not listed here (a typo) makes
start-up fail.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypedDict

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Flask

    from .analysis.tree import Tree
    from .config import Config
    from .formats import Decoder
    from .formats.exporters import Exporter
    from .model import Profile

PROJECT = "profscope"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


class _FindingRequired(TypedDict):
    severity: Severity
    title: str
    message: str


class Finding(_FindingRequired, total=False):
    """One observation of an analyzer (the same shape a Wasm analyzer returns).

    ``severity``, ``title`` and ``message`` are required. ``function`` names the frame the
    finding is about, ``value`` is in the profile's unit (for a diff: the head minus the base)
    and ``share`` is a fraction of the total (0.25 = 25%). Extra JSON keys are kept.
    The runner adds ``plugin``, the name of the plugin that returned the finding."""
    function: str
    value: int | float
    share: float
    plugin: str


class AnalysisMeta(TypedDict, total=False):
    """What an analyzer is told about the tree besides the tree itself.

    The same keys a Wasm analyzer finds in the PSF1 metadata: ``profile_type``,
    ``sample_type``, ``unit``, ``query``, ``from``, ``until`` (unix ns or None), ``config`` (the
    plugin's own settings from the ``plugins_config`` configuration key, ``{}`` when none),
    plus ``total``, ``profiles``, ``duration_nanos``, ``granularity`` and ``diff``."""
    profile_type: str | None
    sample_type: str
    unit: str
    query: str
    config: dict[str, Any]
    total: int
    profiles: int
    duration_nanos: int
    granularity: str
    diff: bool


@hookspec(historic=True)
def profscope_configure(config: Config) -> None:
    """Start-up: receives the loaded :class:`~profscope.config.Config`; returns nothing.

    Historic: a plugin registered later (e.g. a Wasm analyzer uploaded at run time) is called
    at registration. A plugin's own settings are ``config["plugins_config"].get(<plugin name>)``.
    Raising here disables the plugin (it is unregistered) and the error is reported.
    Keep no process-wide state: one process may hold several configured managers."""


@hookspec
def profscope_decoders() -> dict[str, Decoder] | None:
    """Input formats this plugin decodes: receives nothing, returns ``{format name: decoder}``.

    A decoder is ``decoder(data: bytes, options: DecodeOptions) -> Profile``: ``data`` is
    already gunzipped (bounded by ``max_decompressed_bytes``), ``options`` carries ``limits``
    and ``sample_rate``. Raise :class:`~profscope.errors.MalformedProfile` with a clear message
    for bad bytes. A name is used by ``decode(data, fmt=name)``, ``?format=name`` on ingest and
    ``--format name`` on the command line; the first plugin to claim a name keeps it (the
    built-in ``pprof``, ``folded`` and ``speedscope`` come first)."""


@hookspec(firstresult=True)
def profscope_sniff(data: bytes) -> str | None:
    """Recognize a plugin format: receives gunzipped bytes, returns a format name or None.

    Asked only when the format was not given and the bytes are not a valid built-in format
    (built-in sniffing runs first, so ``profscope top`` never pays for plugins). The first
    non-None answer wins; the name must be one of the decoders' names. Look at the first bytes
    only: this runs for every unrecognized upload."""


@hookspec
def profscope_transform_profile(profile: Profile, labels: dict[str, str]) -> Profile | None:
    """Ingest-time transform: receives the decoded profile and its series labels (a mutable
    dict), returns a new :class:`~profscope.model.Profile` or None to keep the one given.

    Transforms run one after the other, each on the previous one's output (e.g. symbolize
    addresses, drop frames, rename labels: change ``labels`` in place). A transform that
    raises is skipped (its label changes are undone) and a warning names it; the profile is
    still stored."""


@hookspec
def profscope_analyze(tree: Tree, meta: AnalysisMeta) -> list[Finding] | None:
    """Analyze one selection: receives its flame graph :class:`~profscope.analysis.tree.Tree`
    (one value column, read-only numpy arrays) and :class:`AnalysisMeta`; returns a list of
    :class:`Finding` dicts (or None for nothing to say).

    Used by ``GET /api/v1/analyze`` and ``profscope analyze``. Wasm analyzers take part
    through one adapter object registered like any plugin."""


@hookspec
def profscope_analyze_diff(tree: Tree, meta: AnalysisMeta) -> list[Finding] | None:
    """Analyze a comparison: receives the union tree of two selections with two value columns
    (column 0 = base, column 1 = head) and :class:`AnalysisMeta` (``diff`` is True); returns a
    list of :class:`Finding` dicts (or None), e.g. regressions of a function."""


@hookspec
def profscope_exporters() -> dict[str, Exporter] | None:
    """Output formats this plugin renders: receives nothing, returns ``{format name: Exporter}``.

    An :class:`~profscope.formats.exporters.Exporter` holds ``render(stackset) -> bytes``,
    the content type and a file extension. Used by ``GET /api/v1/export?format=name`` and
    ``profscope export --format name``; the built-in names cannot be taken over."""


@hookspec
def profscope_register_routes(app: Flask) -> None:
    """Extra HTTP routes: receives the Flask app once at start-up, returns nothing.

    Register a blueprint (``app.register_blueprint``) under ``/api/v1/<plugin>/...``; raise
    :class:`~profscope.errors.ProfscopeError` subclasses in views to get the standard error
    body. Shared state is ``app.extensions["profscope"]``."""


@hookspec
def profscope_cli_commands() -> list[click.Command] | None:
    """Extra ``profscope`` subcommands: receives nothing, returns a list of click commands.

    A command whose name is already taken (built-in or an earlier plugin) is refused and
    reported. Raise :class:`~profscope.errors.ProfscopeError` subclasses for clean exits."""
