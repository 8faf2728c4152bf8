"""Sandboxed WebAssembly analyzers: PSF1 input, a wasmtime host, an analyzer adapter and a
persistent plugin registry. The contract is in ``wasm/ABI.md`` at the top of the repository.

Typical use::

    registry = PluginRegistry(data_dir / "plugins", WasmHost(HostPolicy.from_env()))
    registry.upload(wasm_bytes)                      # -> {name, version, sha256, abi, ...}
    registry.run("hotspots", tree, {"sample_type": "cpu"})   # -> {plugin, findings, ...}
"""
from .adapter import WasmAnalyzer
from .errors import PluginError, PluginFailed, PluginRejected
from .host import HostPolicy, PluginInfo, RunResult, WasmHost
from .psf1 import decode_psf1, encode_psf1, plan_psf1
from .registry import PluginRegistry

__all__ = ["HostPolicy", "PluginError", "PluginFailed", "PluginInfo", "PluginRegistry",
           "PluginRejected", "RunResult", "WasmAnalyzer", "WasmHost", "decode_psf1",
           "encode_psf1", "plan_psf1"]
