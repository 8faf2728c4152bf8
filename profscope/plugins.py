"""Plugins: the manager factory, entry-point loading, and hook calls isolated per plugin.

``get_plugin_manager(config)`` builds a fresh manager (there is no global one): it registers
:data:`DEFAULT_PLUGINS` (the built-in formats and exporters), then the installed plugins of the
``profscope`` entry-point group allowed by ``plugins_allowlist``, and runs ``check_pending`` so
a misspelled hook stops start-up. The HTTP app keeps its manager in
``app.extensions["profscope"].extras["plugins"]`` (see :func:`register_routes`); the command
line uses :func:`default_plugin_manager`, built once per process on first need.

Hooks are never called through pluggy's one-shot ``pm.hook.X()``, which stops at the first
plugin that raises: every implementation is called on its own, and a failure becomes an error
record ``{"plugin", "kind", "error"}`` next to the other plugins' results.

Nothing here is imported by ``profscope top`` or by decoding a built-in format.
"""
from __future__ import annotations

import functools
import importlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .config import Config, load_config
from .errors import BadInput, MalformedProfile, PluginError, ProfscopeError
from .findings import check_findings, read_only
from .hookspecs import SEVERITIES, AnalysisMeta

if TYPE_CHECKING:
    import click
    from flask import Flask

    from .analysis.tree import Tree
    from .formats import DecodeOptions, Decoder
    from .formats.exporters import Exporter
    from .model import Profile, StackSet

log = logging.getLogger("profscope.plugins")

ENTRY_POINT_GROUP = "profscope"
# built-in features, registered like third-party plugins (module paths)
DEFAULT_PLUGINS: list[str] = [
    "profscope.builtin_plugins.formats",
    "profscope.builtin_plugins.exporters",
]
HOOK_NAMES: tuple[str, ...] = tuple(sorted(n for n in vars(hookspecs) if n.startswith("profscope_")))
APP_KEY = "plugins"              # app.extensions["profscope"].extras[APP_KEY]

ErrorRecord = dict[str, str]     # {"plugin", "kind", "error"}


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for project ``profscope``, plus what start-up learned.

    ``config`` is the configuration the plugins were configured with; ``load_errors`` lists
    plugins that failed to load, configure, register routes or claim a name; ``sources`` says
    where each registered plugin came from."""

    def __init__(self, config: Config):
        super().__init__(hookspecs.PROJECT)
        self.config = config
        self.load_errors: list[ErrorRecord] = []
        self.sources: dict[str, dict[str, str]] = {}
        self._tables: dict[str, dict[str, Any]] = {}

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        self._tables.clear()
        return super().register(plugin, name)

    def unregister(self, plugin: Any = None, name: str | None = None) -> Any:
        self._tables.clear()
        return super().unregister(plugin, name)


# ---------------------------------------------------------------------------- the manager

def get_plugin_manager(config: Config | dict[str, Any] | None = None, *, entry_points: bool = True,
                       plugins: Iterable[Any] | dict[str, Any] = ()) -> PluginManager:
    """A new manager: built-ins, then entry points (unless ``entry_points=False``), then
    ``plugins`` (objects or modules, or ``{name: plugin}``). ``config`` is a
    :class:`~profscope.config.Config` or overrides for :func:`~profscope.config.load_config`.
    ``profscope_configure`` is called for each plugin as it is registered. Raises
    :class:`PluginError` when a plugin implements a hook that does not exist or does not match
    its specification."""
    cfg = config if isinstance(config, Config) else load_config(config)
    pm = PluginManager(cfg)
    pm.add_hookspecs(hookspecs)
    pm.hook.profscope_configure.call_historic(kwargs={"config": cfg})
    for module in DEFAULT_PLUGINS:
        register(pm, importlib.import_module(module), module, source="built-in")
    if entry_points:
        _load_entry_points(pm, parse_allowlist(cfg["plugins_allowlist"]))
    named = plugins.items() if isinstance(plugins, dict) else ((None, p) for p in plugins)
    for name, plugin in named:
        register(pm, plugin, name)
    check(pm)
    return pm


@functools.lru_cache(maxsize=1)
def default_plugin_manager() -> PluginManager:
    """The command line's manager: configuration from the environment, built on first need."""
    return get_plugin_manager()


def _pm(pm: PluginManager | None) -> PluginManager:
    return default_plugin_manager() if pm is None else pm


def register(pm: PluginManager, plugin: Any, name: str | None = None, *, source: str = "registered",
             **info: str) -> str | None:
    """Register ``plugin`` and configure it (``profscope_configure`` is historic). Returns its
    name, or None when it could not be registered or configured (recorded in
    ``pm.load_errors``). A hook implementation that breaks its specification raises
    :class:`PluginError`: that is a bug to fix before start-up, not a run-time failure."""
    name = name or pm.get_canonical_name(plugin)
    if pm.has_plugin(name) or pm.is_registered(plugin):
        _record(pm, name, "duplicate", f"a plugin named {name!r} (or the same object) is already registered")
        return None
    _check_names(plugin, name)
    try:
        pm.register(plugin, name)
    except pluggy.PluginValidationError as e:
        _unregister_quietly(pm, plugin)
        raise PluginError(f"plugin {name!r}: {e}") from None
    except Exception as e:          # its profscope_configure raised: leave it out, keep the others
        _unregister_quietly(pm, plugin)
        _record(pm, name, _kind(e), f"configure failed: {_message(e)}", exc=e)
        return None
    try:
        check(pm)                   # also for plugins registered at run time (Wasm adapters)
    except PluginError:
        _unregister_quietly(pm, plugin)
        raise
    pm.sources[name] = {"source": source, **info}
    return name


def _check_names(plugin: Any, name: str) -> None:
    """Refuse what pluggy would silently ignore: a ``profscope_*`` function without
    ``@hookimpl`` (a forgotten decorator or a typo), and hook wrappers (not isolable)."""
    for attr in dir(plugin):
        if not attr.startswith("profscope_"):
            continue
        fn = getattr(plugin, attr, None)
        if not callable(fn):
            continue
        opts = getattr(fn, hookspecs.PROJECT + "_impl", None)
        if opts is None:
            hint = "missing @hookimpl" if attr in HOOK_NAMES else "not a profscope hook"
            raise PluginError(f"plugin {name!r}: {attr} is {hint}; hooks: {', '.join(HOOK_NAMES)}")
        if opts.get("wrapper") or opts.get("hookwrapper"):
            raise PluginError(f"plugin {name!r}: {attr} is a hook wrapper; profscope calls each "
                              "plugin on its own, so wrappers are not supported")


def _unregister_quietly(pm: PluginManager, plugin: Any) -> None:
    if pm.is_registered(plugin):
        pm.unregister(plugin)


def check(pm: PluginManager) -> None:
    """``pm.check_pending()``: a hook implementation without a specification (a misspelled
    hook name) raises :class:`PluginError` naming the plugin, the hook and the valid hooks."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        plugin = pm.get_name(e.plugin) or repr(e.plugin)
        raise PluginError(f"plugin {plugin!r}: {e}; hooks: {', '.join(HOOK_NAMES)}") from None


def parse_allowlist(raw: str | Iterable[str]) -> set[str]:
    """``"a, b"`` -> {"a", "b"} (normalized like distribution names); empty = allow all."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return {_norm(i) for i in items if i.strip()}


def _norm(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _load_entry_points(pm: PluginManager, allow: set[str]) -> None:
    found: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ""
        keys = {_norm(ep.name)} | ({_norm(dist)} if dist else set())
        if allow and not keys & allow:
            continue
        found |= keys
        try:
            plugin = ep.load()
        except Exception as e:
            _record(pm, ep.name, "load_error", f"cannot load entry point {ep.value!r}: {_message(e)}", exc=e)
            continue
        version = ep.dist.version if ep.dist is not None else ""
        register(pm, plugin, ep.name, source="entry point", dist=dist, version=version)
    for missing in sorted(allow - found):
        _record(pm, missing, "not_installed",
                f"plugins_allowlist names {missing!r}, but no installed plugin of the "
                f"{ENTRY_POINT_GROUP!r} entry-point group has that name")


# ---------------------------------------------------------------------------- isolated calls

@dataclass
class Outcome:
    """What each plugin answered (non-None answers, in call order) and which plugins failed."""
    results: list[tuple[str, Any]] = field(default_factory=list)
    errors: list[ErrorRecord] = field(default_factory=list)


def _impls(pm: PluginManager, hook: str, call_order: bool = True) -> list[pluggy.HookImpl]:
    impls = getattr(pm.hook, hook).get_hookimpls()
    return impls[::-1] if call_order else impls   # pluggy calls the last registered first


def call_each(pm: PluginManager | None, hook: str, *, firstresult: bool = False,
              call_order: bool = True, **kwargs: Any) -> Outcome:
    """Call every implementation of ``hook`` separately with ``kwargs``; collect answers and
    failures. ``call_order=False`` walks in registration order (built-ins first)."""
    pm = _pm(pm)
    out = Outcome()
    for impl in _impls(pm, hook, call_order):
        try:
            res = impl.function(*[kwargs[a] for a in impl.argnames])
        except Exception as e:
            out.errors.append(error_record(impl.plugin_name, e, hook))
            continue
        if res is not None:
            out.results.append((impl.plugin_name, res))
            if firstresult:
                break
    return out


def error_record(plugin: str, exc: BaseException, hook: str = "") -> ErrorRecord:
    """``{"plugin", "kind", "error"}`` for a failed plugin call (``kind`` from the exception's
    ``kind`` attribute when it has one, as Wasm run errors and ProfscopeErrors do)."""
    log.warning("plugin %s failed%s: %s", plugin, f" in {hook}" if hook else "", exc,
                exc_info=not isinstance(exc, ProfscopeError))
    return {"plugin": plugin, "kind": _kind(exc), "error": _message(exc)}


def _kind(exc: BaseException) -> str:
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) and kind else "exception"


def _message(exc: BaseException) -> str:
    if isinstance(exc, ProfscopeError):
        return exc.message
    return f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__


def _record(pm: PluginManager, plugin: str, kind: str, message: str, exc: BaseException | None = None) -> None:
    log.warning("plugin %s: %s", plugin, message, exc_info=exc is not None and not isinstance(exc, ProfscopeError))
    pm.load_errors.append({"plugin": plugin, "kind": kind, "error": message})


def _named_table(pm: PluginManager, hook: str, what: str, check: Callable[[Any], bool]) -> dict[str, tuple[str, Any]]:
    """``{name: (plugin, value)}`` merged from a hook returning dicts; the first plugin (in
    registration order) to claim a name keeps it; later claims are recorded as errors."""
    cached = pm._tables.get(hook)
    if cached is not None:
        return cached
    table: dict[str, tuple[str, Any]] = {}
    outcome = call_each(pm, hook, call_order=False)
    pm.load_errors.extend(outcome.errors)
    for plugin, answer in outcome.results:
        if not isinstance(answer, dict):
            _record(pm, plugin, "bad_output", f"{hook} returned {type(answer).__name__}, expected a dict")
            continue
        for name, value in answer.items():
            if not isinstance(name, str) or not name or not check(value):
                _record(pm, plugin, "bad_output", f"{hook}: {what} {name!r} is not valid")
            elif name in table:
                _record(pm, plugin, "duplicate", f"{what} {name!r} is already provided by {table[name][0]!r}")
            else:
                table[name] = (plugin, value)
    pm._tables[hook] = table
    return table


# ---------------------------------------------------------------------------- formats

def decoders(pm: PluginManager | None = None) -> dict[str, Decoder]:
    """Every input format: ``{name: decoder}``, built-ins first."""
    return {name: fn for name, (_, fn) in _named_table(_pm(pm), "profscope_decoders", "format", callable).items()}


def decoder_for(fmt: str, pm: PluginManager | None = None) -> Decoder:
    """The decoder of ``fmt``, guarded: a plugin's crash becomes a :class:`MalformedProfile`
    naming the plugin, a wrong return type a :class:`PluginError`."""
    table = _named_table(_pm(pm), "profscope_decoders", "format", callable)
    if fmt not in table:
        raise BadInput(f"format {fmt!r} is not one of: {', '.join(table)}")
    plugin, fn = table[fmt]

    def guarded(data: bytes, options: DecodeOptions) -> Profile:
        from .model import Profile
        try:
            profile = fn(data, options)
        except ProfscopeError:
            raise
        except Exception as e:
            raise MalformedProfile(f"format {fmt!r} (plugin {plugin}): cannot decode: {_message(e)}") from None
        if not isinstance(profile, Profile):
            raise PluginError(f"format {fmt!r} (plugin {plugin}): the decoder returned "
                              f"{type(profile).__name__}, not a Profile")
        return profile
    return guarded


def sniff(data: bytes, pm: PluginManager | None = None) -> str | None:
    """The plugin format that claims ``data`` (gunzipped), or None. A sniffer that raises or
    names a format no plugin decodes is skipped (and logged)."""
    pm = _pm(pm)
    known = _named_table(pm, "profscope_decoders", "format", callable)
    for impl in _impls(pm, "profscope_sniff"):
        try:
            answer = impl.function(data)
        except Exception as e:
            error_record(impl.plugin_name, e, "profscope_sniff")     # logged; the next sniffer decides
            continue
        if answer is None:
            continue
        if answer in known:
            return answer
        log.warning("plugin %s: profscope_sniff answered %r, which no plugin decodes", impl.plugin_name, answer)
    return None


# ---------------------------------------------------------------------------- exporters

def _is_exporter(value: Any) -> bool:
    from .formats.exporters import Exporter
    return isinstance(value, Exporter)


def exporters(pm: PluginManager | None = None) -> dict[str, Exporter]:
    """Every output format: ``{name: Exporter}``, built-ins first."""
    return {name: ex for name, (_, ex) in _named_table(_pm(pm), "profscope_exporters", "export format",
                                                        _is_exporter).items()}


def exporter_for(fmt: str, pm: PluginManager | None = None) -> Exporter:
    """The exporter of ``fmt``; a plugin's ``render`` is guarded (crash or non-bytes answer ->
    :class:`PluginError` naming the plugin)."""
    table = _named_table(_pm(pm), "profscope_exporters", "export format", _is_exporter)
    if fmt not in table:
        raise BadInput(f"export format {fmt!r} is not one of: {', '.join(table)}")
    plugin, ex = table[fmt]

    def render(ss: StackSet) -> bytes:
        try:
            body = ex.render(ss)
        except ProfscopeError:
            raise
        except Exception as e:
            raise PluginError(f"export format {fmt!r} (plugin {plugin}) failed: {_message(e)}") from None
        if not isinstance(body, (bytes, bytearray)):
            raise PluginError(f"export format {fmt!r} (plugin {plugin}) returned {type(body).__name__}, not bytes")
        return bytes(body)
    return replace(ex, render=render)


# ---------------------------------------------------------------------------- ingest

def transform_profile(profile: Profile, labels: dict[str, str], pm: PluginManager | None = None) -> Profile:
    """Run every ``profscope_transform_profile`` in turn; ``labels`` is changed in place. A
    transform that fails is skipped, its label changes undone, and a warning naming it is
    added to the returned profile's ``warnings``."""
    from .model import Profile
    pm = _pm(pm)
    for impl in _impls(pm, "profscope_transform_profile"):
        profile.frames.changed()           # a transform may change the frames in place
        before = dict(labels)
        try:
            result = impl.function(*[{"profile": profile, "labels": labels}[a] for a in impl.argnames])
            if result is not None and not isinstance(result, Profile):
                raise PluginError(f"returned {type(result).__name__}, not a Profile or None")
            bad = [k for k, v in labels.items() if not isinstance(k, str) or not isinstance(v, str)]
            if bad:
                raise PluginError(f"left non-string labels {bad[:5]}")
        except Exception as e:
            labels.clear()
            labels.update(before)
            rec = error_record(impl.plugin_name, e, "profscope_transform_profile")
            profile.warnings.append(f"plugin {rec['plugin']}: transform skipped ({rec['kind']}): {rec['error']}")
            continue
        if result is not None:
            result.warnings[:0] = [w for w in profile.warnings if w not in result.warnings]
            profile = result
    return profile


# ---------------------------------------------------------------------------- analyzers

def analyzers(pm: PluginManager | None = None, diff: bool = False) -> list[str]:
    """Names of the plugins implementing ``profscope_analyze`` (or ``_diff``), in call order."""
    hook = "profscope_analyze_diff" if diff else "profscope_analyze"
    return [i.plugin_name for i in _impls(_pm(pm), hook)]


def run_analyzers(tree: Tree, meta: AnalysisMeta | dict[str, Any], pm: PluginManager | None = None, *,
                  only: Iterable[str] | None = None) -> dict[str, list]:
    """Findings of every analyzer on one selection's tree: ``{"findings": [...], "errors":
    [...]}``. Each finding carries its ``plugin``; findings are ordered critical, warning, info
    (stable within a severity). ``only`` restricts the run to these plugin names."""
    return _analyze("profscope_analyze", tree, {**meta, "diff": False}, pm, only)


def run_diff_analyzers(tree: Tree, meta: AnalysisMeta | dict[str, Any], pm: PluginManager | None = None, *,
                       only: Iterable[str] | None = None) -> dict[str, list]:
    """Like :func:`run_analyzers` for a two-column (base, head) union tree."""
    if tree.self_.ndim != 2 or tree.self_.shape[1] != 2:
        raise BadInput("a diff analysis needs a tree with two value columns (base, head)")
    return _analyze("profscope_analyze_diff", tree, {**meta, "diff": True}, pm, only)


def _analyze(hook: str, tree: Tree, meta: dict[str, Any], pm: PluginManager | None,
             only: Iterable[str] | None) -> dict[str, list]:
    pm = _pm(pm)
    names = analyzers(pm, diff=hook.endswith("_diff"))
    wanted = None if only is None else set(only)
    if wanted is not None and wanted - set(names):
        raise BadInput(f"analyzer(s) {', '.join(sorted(wanted - set(names)))} not found; "
                       f"available: {', '.join(names) or '(none)'}")
    settings = pm.config.get("plugins_config") or {}
    frozen = read_only(tree)
    findings: list[dict] = []
    errors: list[ErrorRecord] = []
    for impl in _impls(pm, hook):
        name = impl.plugin_name
        if wanted is not None and name not in wanted:
            continue
        own_config = settings.get(name, {})
        args = {"tree": replace(frozen, names=list(frozen.names)),
                "meta": {**meta, "config": json.loads(json.dumps(own_config))}}
        try:
            findings.extend(check_findings(impl.function(*[args[a] for a in impl.argnames]), name))
        except Exception as e:
            errors.append(error_record(name, e, hook))
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    findings.sort(key=lambda f: rank[f["severity"]])
    return {"findings": findings, "errors": errors}


# ---------------------------------------------------------------------------- app and CLI

def register_routes(app: Flask) -> PluginManager:
    """Set up the plugins of ``app`` (called by ``create_app``): build its manager from the
    app's configuration, keep it in ``app.extensions["profscope"].extras["plugins"]``, and let
    every plugin add routes (``profscope_register_routes``). Failures are recorded in
    ``load_errors`` and logged; the other plugins' routes are registered."""
    state = app.extensions.get("profscope")
    pm = get_plugin_manager(state.config if state is not None else None)
    if state is not None:
        state.extras[APP_KEY] = pm
    else:
        app.extensions["profscope.plugins"] = pm
    pm.load_errors.extend(call_each(pm, "profscope_register_routes", call_order=False, app=app).errors)
    decoders(pm), exporters(pm)     # claim format names now: conflicts are reported at start-up
    return pm


def app_plugin_manager(app: Flask | None = None) -> PluginManager:
    """The manager of ``app`` (default: the current Flask app)."""
    if app is None:
        from flask import current_app
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get("profscope")
    pm = state.extras.get(APP_KEY) if state is not None else app.extensions.get("profscope.plugins")
    if pm is None:
        raise PluginError("this app has no plugin manager: create it with profscope.api.create_app")
    return pm


def cli_commands(pm: PluginManager | None = None) -> dict[str, click.Command]:
    """``{name: command}`` from ``profscope_cli_commands``; a name already used by a built-in
    command or an earlier plugin is refused and recorded in ``load_errors``."""
    import click

    from .cli import COMMANDS
    pm = _pm(pm)
    cached = pm._tables.get("profscope_cli_commands")
    if cached is not None:
        return {name: cmd for name, (_, cmd) in cached.items()}
    table: dict[str, tuple[str, click.Command]] = {}
    outcome = call_each(pm, "profscope_cli_commands", call_order=False)
    pm.load_errors.extend(outcome.errors)
    for plugin, answer in outcome.results:
        for cmd in answer if isinstance(answer, (list, tuple)) else [answer]:
            if not isinstance(cmd, click.Command) or not cmd.name:
                _record(pm, plugin, "bad_output", f"profscope_cli_commands returned {cmd!r}, not a named click.Command")
            elif cmd.name in COMMANDS or cmd.name in table:
                owner = "a built-in command" if cmd.name in COMMANDS else f"plugin {table[cmd.name][0]!r}"
                _record(pm, plugin, "duplicate", f"command {cmd.name!r} is already provided by {owner}")
            else:
                table[cmd.name] = (plugin, cmd)
    pm._tables["profscope_cli_commands"] = table
    return {name: cmd for name, (_, cmd) in table.items()}


def describe(pm: PluginManager | None = None) -> list[dict[str, Any]]:
    """One entry per registered plugin: name, source (built-in / entry point / registered),
    distribution and version when known, and the hooks it implements."""
    pm = _pm(pm)
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        out.append({"name": name, **pm.sources.get(name, {"source": "registered"}), "hooks": hooks})
    return out
