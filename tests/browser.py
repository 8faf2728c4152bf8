"""Headless Chromium for the UI tests: ``--dump-dom``, ``--screenshot`` and a small DevTools
protocol session (websocket-client) for clicks, hovers and typing. Plus a tiny DOM reader over
the standard library's HTML parser."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]
WINDOW = (1400, 900)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """One headless browser binary; every call uses a fresh profile directory under ``tmp``."""

    def __init__(self, binary: str, tmp: Path):
        self.binary = binary
        self.tmp = tmp
        self.runs = 0

    def _profile(self) -> Path:
        self.runs += 1
        p = self.tmp / f"chromium-profile-{self.runs}"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [self.binary, *FLAGS, f"--user-data-dir={self._profile()}",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", *args]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)

    def dump_dom(self, url: str, budget_ms: int = 5000) -> str:
        """The serialized DOM after the page settled (virtual time budget)."""
        r = self._run(f"--virtual-time-budget={budget_ms}", "--dump-dom", url)
        assert r.returncode == 0 and r.stdout, f"chromium --dump-dom failed: {r.stderr.decode()[-2000:]}"
        return r.stdout.decode("utf-8")

    def screenshot(self, url: str, path: Path, budget_ms: int = 5000) -> Path:
        r = self._run(f"--virtual-time-budget={budget_ms}", f"--screenshot={path}", url)
        assert r.returncode == 0 and path.is_file(), f"chromium --screenshot failed: {r.stderr.decode()[-2000:]}"
        return path

    def devtools(self) -> DevTools:
        return DevTools(self.binary, self._profile())


class DevTools:
    """A browser with ``--remote-debugging-port=0`` and one page driven over the DevTools protocol."""

    def __init__(self, binary: str, profile: Path):
        import websocket  # websocket-client, from the "test" extra
        self.proc = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = self._port(profile / "DevToolsActivePort")
            pages = [t for t in self._targets(port) if t.get("type") == "page"]
            self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30,
                                                  suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self.next_id = 0
        self.events: list[dict] = []
        self.call("Page.enable")
        self.call("Runtime.enable")

    def _port(self, active: Path) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.proc.returncode} before DevTools came up")
            if active.is_file():
                lines = active.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not write DevToolsActivePort within 30 s")

    @staticmethod
    def _targets(port: int) -> list[dict]:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:
                    targets = json.load(r)
                if any(t.get("type") == "page" for t in targets):
                    return targets
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("no DevTools page target")
            time.sleep(0.05)

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def js(self, expression: str):
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page exception in {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                state = self.js("document.getElementById('app') && document.getElementById('app').dataset.state")
                raise TimeoutError(f"timed out waiting for {expression} (page state {state!r})")
            time.sleep(0.05)

    def open(self, url: str) -> None:
        """Navigate and wait until the UI has settled."""
        self.navigation(lambda: self.call("Page.navigate", url=url))

    def navigation(self, action) -> None:
        """Run ``action`` (which loads a new page) and wait until the new page's UI has settled:
        ``#app[data-state]`` is no longer "loading"."""
        self.js("window.__stale = true")
        action()
        self.wait("!window.__stale && document.readyState === 'complete' && document.getElementById('app')"
                  " && document.getElementById('app').dataset.state !== 'loading'")

    def center(self, selector: str) -> tuple[float, float]:
        box = self.js(f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
                      " return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        return box[0], box[1]

    def mouse(self, kind: str, x: float, y: float, **extra) -> None:
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        x, y = self.center(selector)
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, button="left", clickCount=1)
        self.mouse("mouseReleased", x, y, button="left", clickCount=1)

    def type_text(self, text: str) -> None:
        self.call("Input.insertText", text=text)

    def dialogs(self) -> list[dict]:
        return [e for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]

    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# ------------------------------------------------------------------ reading the dumped DOM
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)   # own text and children's text, in order

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def iter(self):
        yield self
        for c in self.children:
            yield from c.iter()

    def find_all(self, tag: str | None = None, cls: str | None = None, **attrs: str) -> list[Element]:
        out = []
        for e in self.iter():
            if tag and e.tag != tag:
                continue
            if cls and cls not in e.classes:
                continue
            if any(e.attrs.get(k.replace("_", "-")) != v for k, v in attrs.items()):
                continue
            out.append(e)
        return out

    def by_id(self, ident: str) -> Element:
        found = [e for e in self.iter() if e.attrs.get("id") == ident]
        assert found, f"no element with id {ident!r}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        e = Element(tag, {k: (v if v is not None else "") for k, v in attrs})
        self.stack[-1].children.append(e)
        if tag not in VOID:
            self.stack.append(e)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                while len(self.stack) > i:           # (also closes what was left open inside)
                    child = self.stack.pop()
                    self.stack[-1].parts.append(child.text)
                return

    def handle_data(self, data):
        self.stack[-1].parts.append(data)


def parse_dom(html: str) -> Element:
    b = _Builder()
    b.feed(html)
    b.close()
    while len(b.stack) > 1:                          # close what the document left open
        b.handle_endtag(b.stack[-1].tag)
    return b.root
