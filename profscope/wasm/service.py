"""The Wasm plugins of one running app: a :class:`PluginRegistry` kept in step with the app's
plugin manager, and the automatic runs after an ingest.

``WasmPlugins.open(data_dir, pm)`` opens the registry in ``<data_dir>/plugins`` (compiled code
cached in ``<data_dir>/wasm-cache``; with ``data_dir=":memory:"`` a temporary directory that is
removed with the app) and registers every loaded module into ``pm`` as ``wasm:<name>``, so
``GET /api/v1/analyze`` runs it like any other analyzer. :meth:`~WasmPlugins.upload` and
:meth:`~WasmPlugins.delete` change the registry and the manager together, under one lock, so
the manager always holds exactly the registry's loaded modules.
"""
from __future__ import annotations

import json
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..hookspecs import SEVERITIES
from .host import HostPolicy, WasmHost
from .registry import PluginRegistry

if TYPE_CHECKING:
    from ..model import Profile
    from ..plugins import PluginManager
    from ..store import IngestResult

PM_PREFIX = "wasm:"                  # pluggy name of a Wasm plugin: wasm:<registry name>
REGISTRY_DIR = "plugins"
CACHE_DIR = "wasm-cache"


class WasmPlugins:
    """Registry + plugin-manager sync + auto-run on ingest. Thread-safe."""

    def __init__(self, registry: PluginRegistry, pm: PluginManager, *,
                 tmp: tempfile.TemporaryDirectory | None = None):
        self.registry = registry
        self.pm = pm
        self._lock = threading.Lock()
        self._tmp = tmp                      # owns the registry dir of an in-memory app
        with self._lock:
            for name in registry.analyzers():
                self._sync(name.removeprefix(PM_PREFIX))

    @classmethod
    def open(cls, data_dir: str, pm: PluginManager, policy: HostPolicy | None = None) -> WasmPlugins:
        """The registry of ``data_dir``; the host's policy comes from ``PROFSCOPE_WASM_*``
        (``policy`` overrides it), its compile cache defaults to ``<data_dir>/wasm-cache``."""
        policy = policy or HostPolicy.from_env()
        tmp = None
        if data_dir == ":memory:":
            tmp = tempfile.TemporaryDirectory(prefix="profscope-plugins-")
            root = Path(tmp.name)
        else:
            root = Path(data_dir)
            if policy.cache_dir is None:
                policy = replace(policy, cache_dir=str(root / CACHE_DIR))
        host = WasmHost(policy)
        try:
            return cls(PluginRegistry(root / REGISTRY_DIR, host), pm, tmp=tmp)
        except BaseException:
            host.close()
            raise

    def close(self) -> None:
        """Stop the host's ticker; remove the temporary registry of an in-memory app."""
        self.registry.host.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    # ------------------------------------------------------------------ management
    def _sync(self, name: str) -> None:
        """Make the manager's ``wasm:<name>`` match the registry (caller holds the lock)."""
        from ..plugins import register
        pm_name = PM_PREFIX + name
        old = self.pm.get_plugin(pm_name)
        if old is not None:
            self.pm.unregister(old, pm_name)
            self.pm.sources.pop(pm_name, None)
        try:
            adapter = self.registry.analyzer(name)
        except NotFound:             # deleted, or installed but not loadable
            return
        register(self.pm, adapter, pm_name, source="wasm", version=adapter.version,
                 sha256=adapter.plugin.sha256)

    def upload(self, data: bytes, *, on_ingest: bool | None = None,
               on_diff: bool | None = None) -> dict[str, Any]:
        """Install (or replace) a module and register it as ``wasm:<name>``; raises
        :class:`~profscope.wasm.errors.PluginRejected` (HTTP 400) and keeps nothing then."""
        with self._lock:
            info = self.registry.upload(data, on_ingest=on_ingest, on_diff=on_diff)
            self._sync(info["name"])
        return info

    def delete(self, name: str) -> dict[str, Any]:
        """Uninstall ``name`` (404 when absent) and unregister ``wasm:<name>``."""
        with self._lock:
            removed = self.registry.delete(name)
            self._sync(name)
        return removed

    def set_auto_run(self, name: str, *, on_ingest: bool | None = None,
                     on_diff: bool | None = None) -> dict[str, Any]:
        return self.registry.set_auto_run(name, on_ingest=on_ingest, on_diff=on_diff)

    # ------------------------------------------------------------------ auto-run
    def analyze_ingested(self, profile: Profile, result: IngestResult, labels: dict[str, str],
                         max_nodes: int) -> dict[str, list]:
        """Run the ``on_ingest`` plugins over the flame graph of a just-stored profile (its
        default sample type, built from the decoded profile: nothing is read back from the
        store). Returns ``{"findings": [...], "plugin_errors": [...]}``; never raises. Costs
        one lookup when no plugin has ``on_ingest``."""
        names = self.registry.auto_run("on_ingest")
        if not names:
            return {"findings": [], "plugin_errors": []}
        from ..plugins import error_record
        try:
            tree, meta = _ingested_tree(profile, result, labels, max_nodes)
        except Exception as e:       # never fail an ingest that is already stored
            return {"findings": [], "plugin_errors": [error_record(n, e, "on_ingest") for n in names]}
        settings = self.pm.config.get("plugins_config") or {}
        findings: list[dict[str, Any]] = []
        errors: list[dict[str, str]] = []
        for name in names:
            own = json.loads(json.dumps(settings.get(PM_PREFIX + name, {})))
            try:
                run = self.registry.run(name, tree, {**meta, "config": own})
            except Exception as e:
                errors.append(error_record(name, e, "on_ingest"))
                continue
            findings.extend({**f, "plugin": name} for f in run["findings"])
        rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
        findings.sort(key=lambda f: rank.get(f["severity"], len(rank)))
        return {"findings": findings, "plugin_errors": errors}


def _ingested_tree(profile: Profile, result: IngestResult, labels: dict[str, str], max_nodes: int):
    """The default sample type's tree of ``profile`` and the metadata the plugins get."""
    from ..analysis.stacks import profile_to_stackset
    from ..analysis.tree import build_tree
    ti = profile.type_index(None)
    st = profile.sample_types[ti]
    ss = profile_to_stackset(profile, f"{st.type}:{st.unit}")
    tree = build_tree([ss], "functions", max_nodes)
    ptype = result.profile_types[ti] if ti < len(result.profile_types) else None
    start = profile.time_nanos or None
    until = start + profile.duration_nanos if start is not None and profile.duration_nanos else start
    selector = ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    meta = {"profile_type": ptype, "sample_type": st.type, "unit": st.unit,
            "query": f"{ptype or st.type}{{{selector}}}", "from": start, "until": until,
            "profile_ids": list(result.profile_ids), "total": int(ss.total), "granularity": "functions",
            "diff": False}
    return tree, meta
