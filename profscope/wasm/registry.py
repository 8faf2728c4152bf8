"""Installed Wasm plugins, persisted in a data directory.

Layout: ``<dir>/<sha256>.wasm`` (the module bytes exactly as uploaded) and ``<dir>/index.json``
(``{"version": 1, "plugins": [{name, version, sha256, abi, description, size, on_ingest,
on_diff, uploaded_at}]}``). Files are written to a temporary name and renamed, so a crash never
leaves a half-written module or index.

One module per name: uploading a module whose manifest has a name already installed replaces
it, whatever the two versions are (the newest upload wins; the response's ``replaced`` field
gives the version it replaced). Re-uploading identical bytes changes nothing but the auto-run
flags given. Modules are pinned by sha256: at start-up a file whose hash does not match the
index is not loaded (the plugin is listed with an ``error``).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from ..analysis.tree import Tree
from ..errors import BadInput, NotFound, ProfscopeError
from .adapter import WasmAnalyzer
from .errors import PluginError
from .host import PluginInfo, WasmHost

INDEX = "index.json"
INDEX_VERSION = 1
EVENTS = ("on_ingest", "on_diff")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class PluginRegistry:
    """Upload, list, get, delete and run Wasm plugins; thread-safe."""

    def __init__(self, data_dir: str | os.PathLike[str], host: WasmHost | None = None):
        self.dir = Path(data_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = host or WasmHost()
        self._lock = threading.RLock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._loaded: dict[str, PluginInfo] = {}
        self._broken: dict[str, str] = {}
        self._load_index()

    # ------------------------------------------------------------------ persistence
    def _load_index(self) -> None:
        path = self.dir / INDEX
        if not path.is_file():
            return
        try:
            doc = json.loads(path.read_text("utf-8"))
            entries = doc["plugins"]
        except (ValueError, KeyError, TypeError) as e:
            raise ProfscopeError(f"plugin index {path} is unreadable: {e}") from None
        for entry in entries:
            name = entry["name"]
            self._entries[name] = entry
            try:
                data = (self.dir / f"{entry['sha256']}.wasm").read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise BadInput("module file does not match its sha256")
                info = self.host.load_module(data)
                if info.name != name:
                    raise BadInput(f"module manifest names {info.name!r}")
                self._loaded[name] = info
            except (OSError, ProfscopeError) as e:
                self._broken[name] = str(e)

    def _save_index(self) -> None:
        doc = {"version": INDEX_VERSION,
               "plugins": [self._entries[n] for n in sorted(self._entries)]}
        _write_atomic(self.dir / INDEX, json.dumps(doc, indent=1).encode("utf-8"))

    def _drop_file_if_unused(self, sha: str) -> None:
        if all(e["sha256"] != sha for e in self._entries.values()):
            (self.dir / f"{sha}.wasm").unlink(missing_ok=True)

    # ------------------------------------------------------------------ management
    def upload(self, data: bytes, *, on_ingest: bool | None = None,
               on_diff: bool | None = None) -> dict[str, Any]:
        """Validate and install a module. Returns ``{name, version, sha256, abi, ...,
        replaced}``; raises :class:`~profscope.wasm.errors.PluginRejected` (HTTP 400)."""
        info = self.host.load_module(data)
        m = info.manifest
        with self._lock:
            old = self._entries.get(info.name)
            entry = {"name": m.name, "version": m.version, "sha256": info.sha256, "abi": m.abi,
                     "description": m.description, "size": info.size,
                     "on_ingest": bool(m.auto_run.get("on_ingest", False)),
                     "on_diff": bool(m.auto_run.get("on_diff", False)),
                     "uploaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if old is not None and old["sha256"] == info.sha256:
                entry.update(on_ingest=old["on_ingest"], on_diff=old["on_diff"],
                             uploaded_at=old["uploaded_at"])
            for key, flag in (("on_ingest", on_ingest), ("on_diff", on_diff)):
                if flag is not None:
                    entry[key] = bool(flag)
            path = self.dir / f"{info.sha256}.wasm"
            if not path.is_file():
                _write_atomic(path, info.wasm)
            self._entries[info.name] = entry
            self._loaded[info.name] = info
            self._broken.pop(info.name, None)
            self._save_index()
            if old is not None and old["sha256"] != info.sha256:
                self._drop_file_if_unused(old["sha256"])
        replaced = old["version"] if old is not None and old["sha256"] != info.sha256 else None
        return {**self._public(entry), "replaced": replaced}

    def _public(self, entry: dict[str, Any]) -> dict[str, Any]:
        out = dict(entry)
        info = self._loaded.get(entry["name"])
        if info is not None:
            out["config"] = info.manifest.config
            out["limits"] = self.host.limits_for(info)
        if entry["name"] in self._broken:
            out["error"] = self._broken[entry["name"]]
        return out

    def list(self) -> list[dict[str, Any]]:
        """Every installed plugin, sorted by name."""
        with self._lock:
            return [self._public(self._entries[n]) for n in sorted(self._entries)]

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._public(self._entry(name))

    def _entry(self, name: str) -> dict[str, Any]:
        entry = self._entries.get(name)
        if entry is None:
            have = ", ".join(sorted(self._entries)) or "none"
            raise NotFound(f"no plugin named {name!r}; installed: {have}")
        return entry

    def delete(self, name: str) -> dict[str, Any]:
        """Uninstall ``name``; returns what was removed."""
        with self._lock:
            entry = self._entry(name)
            del self._entries[name]
            self._loaded.pop(name, None)
            self._broken.pop(name, None)
            self._save_index()
            self._drop_file_if_unused(entry["sha256"])
        return entry

    def set_auto_run(self, name: str, *, on_ingest: bool | None = None,
                     on_diff: bool | None = None) -> dict[str, Any]:
        """Change when a plugin runs by itself (after an ingest, on every diff)."""
        with self._lock:
            entry = self._entry(name)
            for key, flag in (("on_ingest", on_ingest), ("on_diff", on_diff)):
                if flag is not None:
                    entry[key] = bool(flag)
            self._save_index()
            return self._public(entry)

    def auto_run(self, event: str) -> list[str]:
        """Names of loaded plugins flagged for ``event`` (``on_ingest`` or ``on_diff``)."""
        if event not in EVENTS:
            raise BadInput(f"event {event!r} is not one of {', '.join(EVENTS)}")
        with self._lock:
            return [n for n in sorted(self._entries) if self._entries[n][event] and n in self._loaded]

    # ------------------------------------------------------------------ running
    def plugin(self, name: str) -> PluginInfo:
        with self._lock:
            self._entry(name)
            info = self._loaded.get(name)
            if info is None:
                raise NotFound(f"plugin {name!r} is installed but could not be loaded: "
                               f"{self._broken.get(name)}")
            return info

    def analyzer(self, name: str) -> WasmAnalyzer:
        return WasmAnalyzer(self.host, self.plugin(name))

    def analyzers(self) -> dict[str, WasmAnalyzer]:
        """An adapter per loaded plugin, keyed ``wasm:<name>`` (the pluggy plugin name)."""
        with self._lock:
            return {f"wasm:{n}": WasmAnalyzer(self.host, info) for n, info in sorted(self._loaded.items())}

    def run(self, name: str, tree: Tree, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """``{"plugin", "version", "findings", "fuel_used", "wall_ms", "logs", ...}``; raises
        :class:`~profscope.wasm.errors.PluginFailed` (HTTP 422) when the run fails."""
        return self.host.run(self.plugin(name), tree, meta).to_dict()

    def run_many(self, names: list[str], tree: Tree,
                 meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run several plugins; a failing one yields ``{"plugin", "error": {kind, message}}``
        in its place and never hides the others' results."""
        out = []
        for name in names:
            try:
                out.append(self.run(name, tree, meta))
            except (PluginError, NotFound) as e:
                out.append({"plugin": name, "error": {"kind": e.kind, "message": e.message}})
        return out
