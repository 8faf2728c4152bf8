"""Build hook: compiles ``profscope/formats/_pprofscan.c`` (the compiled pprof table reading) with
the C compiler Python was built with, or ``cc``/``gcc``/``clang``. Without a compiler or Python's
headers the package still installs, pure Python, and a warning says so: pprof decoding then takes
the numpy path, about twice as slow on pyroscope-sized profiles (``tests/test_pprof_scan.py``
fails, to say the speed-up is missing)."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "profscope/formats/_pprofscan.c"


def _compilers() -> list[list[str]]:
    found: list[list[str]] = []
    for cmd in (os.environ.get("CC"), sysconfig.get_config_var("CC"), "cc", "gcc", "clang"):
        if cmd and shutil.which(shlex.split(cmd)[0]) and shlex.split(cmd) not in found:
            found.append(shlex.split(cmd))
    return found


def compile_extension(root: Path) -> Path | None:
    """The built module's path, or None (after a warning) when it could not be built."""
    src = root / SOURCE
    out = src.with_name("_pprofscan" + sysconfig.get_config_var("EXT_SUFFIX"))
    include = sysconfig.get_paths()["include"]
    errors = []
    for cc in _compilers():
        cmd = [*cc, "-O2", "-fPIC", "-shared", "-Wall", f"-I{include}", str(src), "-o", str(out)]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode == 0:
            return out
        errors.append(f"{' '.join(cmd)}\n{run.stderr.strip()}")
    print("WARNING: profscope's C pprof reader was not built (no working C compiler or no Python.h); "
          "decoding falls back to numpy.\n" + "\n".join(errors), file=sys.stderr)
    return None


class NativeBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        out = compile_extension(Path(self.root))
        if out is None:
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":          # an editable install imports it from the source tree
            build_data["force_include"][str(out)] = f"profscope/formats/{out.name}"
