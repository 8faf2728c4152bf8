"""One adapter that makes a loaded Wasm module look like any other analyzer."""
from __future__ import annotations

from typing import Any

from ..analysis.tree import Tree
from ..hookspecs import hookimpl
from .host import PluginInfo, RunResult, WasmHost


class WasmAnalyzer:
    """``analyze(tree, meta) -> list of findings`` backed by a sandboxed Wasm module.

    Failures raise :class:`~profscope.wasm.errors.PluginFailed` (its ``kind`` is the Wasm
    error kind); callers that run several analyzers catch it per analyzer so one plugin's
    failure never hides another's findings. The instance is also a pluggy plugin: register it
    with ``profscope.plugins.register(pm, adapter, "wasm:<name>")`` and it answers the
    ``profscope_analyze`` and ``profscope_analyze_diff`` hooks.
    """

    def __init__(self, host: WasmHost, plugin: PluginInfo):
        self.host = host
        self.plugin = plugin
        self.last_result: RunResult | None = None

    @property
    def name(self) -> str:
        return self.plugin.name

    @property
    def version(self) -> str:
        return self.plugin.version

    @property
    def description(self) -> str:
        return self.plugin.manifest.description

    def analyze(self, tree: Tree, meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Findings of the plugin on ``tree`` (``meta`` as in :meth:`WasmHost.metadata`)."""
        self.last_result = self.host.run(self.plugin, tree, meta)
        return self.last_result.findings

    @hookimpl
    def profscope_analyze(self, tree: Tree, meta: dict[str, Any]) -> list[dict[str, Any]]:
        """Hook: one selection's tree (one value column)."""
        return self.analyze(tree, meta)

    @hookimpl
    def profscope_analyze_diff(self, tree: Tree, meta: dict[str, Any]) -> list[dict[str, Any]]:
        """Hook: a (base, head) union tree; PSF1 puts head in self/total, base in base_*."""
        return self.analyze(tree, meta)

    def __repr__(self) -> str:
        return f"WasmAnalyzer({self.name!r}, version={self.version!r}, sha256={self.plugin.sha256[:12]})"
