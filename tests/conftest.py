"""Shared fixtures. Test data comes from ``../shared`` beside the project (or $PROFSCOPE_SHARED)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("PROFSCOPE_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared test data not found at {DATA}: put ../shared beside the project "
                    "or set PROFSCOPE_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def data(shared) -> Path:
    return shared / "data"


class LiveServer:
    """A real profscope server (waitress) on 127.0.0.1 in a background thread."""

    def __init__(self, app):
        import threading

        import waitress.server
        self.app = app
        self.server = waitress.server.create_server(app, host="127.0.0.1", port=0, threads=8)
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.server.run()
        except (OSError, ValueError):
            if not self.closing:  # closing the socket under select() is how waitress stops here
                raise

    @property
    def store(self):
        return self.app.extensions["profscope"].store

    def close(self):
        self.closing = True
        self.server.close()
        self.thread.join(timeout=5)


@pytest.fixture
def app(tmp_path):
    from profscope.api import create_app
    app = create_app({"data_dir": str(tmp_path / "store")})
    yield app
    app.extensions["profscope"].store.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def live_server(app):
    srv = LiveServer(app)
    yield srv
    srv.close()


@pytest.fixture
def runner():
    from click.testing import CliRunner
    return CliRunner()


def pprof_files(data: Path) -> list[Path]:
    """Every pprof file in the shared data that go tool pprof accepts (per MANIFEST)."""
    out = sorted((data / "pprof").glob("*.pb*"))
    out += sorted(p for p in (data / "pyroscope-agpl").glob("pyro_*") if "fnid0" not in p.name)
    out += sorted((data / "edge").glob("ok_*"))
    return out


@contextlib.contextmanager
def serve_process(data_dir, env: dict | None = None, extra: tuple[str, ...] = ()):
    """A real ``profscope serve`` process on a free 127.0.0.1 port; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "profscope.cli", "serve", "--port", str(port), "--no-otlp-grpc",
                             "--data-dir", str(data_dir), *extra], cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    pytest.fail(f"profscope serve did not start: {proc.stderr.read().decode()[-500:]}")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
