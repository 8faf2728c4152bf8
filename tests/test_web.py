"""The browser UI against a real server: headless Chromium renders the page from real profiles
ingested through the API; the DOM is compared with what the API itself answers."""
from __future__ import annotations

import re
import struct
import urllib.parse
import zlib
from pathlib import Path

import numpy as np
import pytest
import requests
from browser import WINDOW, Chromium, find_chromium, parse_dom

from profscope.analysis.stacks import profile_to_stackset
from profscope.formats import decode

CHROMIUM = find_chromium()
STATIC = Path(__file__).resolve().parent.parent / "profscope" / "web" / "static"
XSS_ALERT = "<img src=x onerror=alert(1)>"
XSS_MARK = "<img src=x onerror=document.body.dataset.pwned=1>"
XSS_LABEL = "<script>document.body.dataset.pwned=2</script>"


def upload(srv, path_or_bytes, **params) -> dict:
    body = path_or_bytes if isinstance(path_or_bytes, bytes) else path_or_bytes.read_bytes()
    r = requests.post(srv.url + "/api/v1/ingest", params=params, data=body, timeout=60)
    assert r.status_code == 201, r.text
    return r.json()


def api(srv, path, **params) -> dict:
    r = requests.get(srv.url + path, params=params, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def js_regex_escape(s: str) -> str:
    """What the UI's escapeRegex does (the characters special in a JS regex)."""
    return re.sub(r"[.*+?^${}()|[\]\\]", lambda m: "\\" + m.group(0), s)


def page_url(srv, **state) -> str:
    return srv.url + "/?" + urllib.parse.urlencode(state)


@pytest.fixture
def browser(tmp_path) -> Chromium:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    return Chromium(CHROMIUM, tmp_path)


@pytest.fixture
def server(live_server, data):
    """A live server holding real CPU profiles of two services and one hostile folded profile."""
    res = upload(live_server, data / "pprof/gp_sample.cpu.pb.gz", service="api", label="env=prod")
    live_server.cpu_type = next(t for t in res["profile_types"] if ":cpu:nanoseconds:" in t)
    upload(live_server, data / "pprof/parca_fib_bigint.cpu.pb.gz", service="fib")
    folded = f"main;{XSS_ALERT};leaf 10\nmain;{XSS_MARK} 5\n".encode()
    live_server.xss_type = upload(live_server, folded, format="folded", service=XSS_LABEL)["profile_types"][0]
    return live_server


# ------------------------------------------------------------------ serving (no browser needed)
def test_index_and_module_graph_are_served_with_csp(client):
    r = client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    # every module the page loads, followed through its imports, is served as JavaScript
    todo = re.findall(r'<script type="module" src="([^"]+)"', r.get_data(as_text=True))
    seen = set()
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        js = client.get(url)
        assert js.status_code == 200 and js.mimetype == "text/javascript", url
        base = url.rsplit("/", 1)[0]
        todo += [f"{base}/{m[2:]}" for m in re.findall(r'from "(\./[\w.]+\.js)"', js.get_data(as_text=True))]
    assert {"/ui/js/app.js", "/ui/js/flame.js", "/ui/js/top.js", "/ui/js/diff.js", "/ui/js/query.js"} <= seen
    for name in ("style.css", "favicon.svg"):
        assert client.get(f"/ui/{name}").status_code == 200
    missing = client.get("/ui/nope.js")
    assert missing.status_code == 404 and missing.get_json()["error"]["kind"] == "not_found"
    assert client.get("/ui/../api/web.py").status_code == 404


def test_static_files_have_no_html_sinks_and_no_external_code():
    files = list(STATIC.rglob("*.js")) + list(STATIC.rglob("*.html")) + list(STATIC.rglob("*.css"))
    assert len(files) >= 8
    for f in files:
        text = f.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{f.name} uses {sink}"
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f"{f.name} loads something from elsewhere"
        assert not re.search(r"import[^;]*from\s+\"(?!\./)", text), f"{f.name} imports a non-local module"


# ------------------------------------------------------------------ rendering
def _api_layout(root: dict) -> list[tuple[str, int, float, float]]:
    """(name, depth, left%, width%) of every node, icicle layout, from the API's nested JSON."""
    out = []
    total = root["total"]
    stack = [(root, 0, 0.0)]
    while stack:
        node, depth, start = stack.pop()
        out.append((node["name"], depth, 100 * start / total, 100 * node["total"] / total))
        offset = start
        for child in node["children"]:
            stack.append((child, depth + 1, offset))
            offset += child["total"]
    return out


def _style(e, prop: str) -> str:
    m = re.search(rf"(?:^|;)\s*{prop}:\s*([^;]+)", e.attrs.get("style", ""))
    assert m, f"no {prop} in style of {e.attrs}"
    return m.group(1).strip()


def _pct(e, prop: str) -> float:
    """A percentage from an inline style (the browser keeps 6 significant digits)."""
    return float(_style(e, prop).rstrip("%"))


def test_flame_graph_and_top_table_match_the_api(server, browser):
    state = {"type": server.cpu_type, "query": '{service_name="api"}'}
    params = {"query": server.cpu_type + state["query"]}
    doc = parse_dom(browser.dump_dom(page_url(server, **state)))
    assert doc.by_id("app").attrs["data-state"] == "ready", doc.by_id("error").text

    fg = api(server, "/api/v1/flamegraph", **params)
    drawn = [(e.attrs["data-name"], int(e.attrs["data-depth"]), _pct(e, "left"), _pct(e, "width"), e.text)
             for e in doc.find_all("div", cls="fg-node")]
    assert drawn and drawn[0][:2] == ("total", 0) and drawn[0][3] == pytest.approx(100)
    for name, _depth, _left, _width, text in drawn:
        assert text == name
    expected = _api_layout(fg["flamegraph"])
    for name, depth, left, width in expected:
        if width >= 1.0:   # everything wider than 1% of the graph must be drawn, at the right place
            assert any(d[:2] == (name, depth) and d[2] == pytest.approx(left, abs=1e-3)
                       and d[3] == pytest.approx(width, abs=1e-3) for d in drawn), (name, depth, left, width)
    for d in drawn:      # and nothing is drawn that the API did not send
        assert any(d[:2] == e[:2] and d[2] == pytest.approx(e[2], abs=1e-3) for e in expected), d

    top = api(server, "/api/v1/top", **params, limit=500)
    rows = doc.by_id("top").find_all("tbody")[0].find_all("tr")
    assert len(rows) == len(top["rows"]) == top["rows_total"]
    first = [td.text for td in rows[0].find_all("td")]
    want = top["rows"][0]
    assert first[4] == want["name"] and rows[0].attrs["data-name"] == want["name"]
    assert first[1] == f"{100 * want['flat'] / top['total']:.2f}%"
    assert first[3] == f"{100 * want['cum'] / top['total']:.2f}%"
    assert [tr.attrs["data-name"] for tr in rows] == [r["name"] for r in top["rows"]]

    # export links carry the selection: each downloads the same profile
    for fmt in ("pprof", "speedscope", "folded"):
        href = doc.by_id(f"export-{fmt}").attrs["href"]
        q = urllib.parse.parse_qs(urllib.parse.urlparse(href).query)
        assert q["query"] == [params["query"]] and q["format"] == [fmt]
        r = requests.get(href, timeout=30)
        assert r.status_code == 200
        st = "samples" if fmt == "folded" else "cpu"
        assert profile_to_stackset(decode(r.content), st).total == fg["total"]


def test_names_and_labels_render_as_text_never_as_html(server, browser):
    state = {"type": server.xss_type, "query": '{service_name="' + XSS_LABEL + '"}',
             "search": "img"}
    html = browser.dump_dom(page_url(server, **state))
    doc = parse_dom(html)
    assert doc.by_id("app").attrs["data-state"] == "ready", doc.by_id("error").text
    assert "data-pwned" not in html                           # no injected handler ran
    assert not doc.find_all("img")
    assert [s.attrs.get("src") for s in doc.find_all("script")] == ["/ui/js/app.js"]
    for payload in (XSS_ALERT, XSS_MARK):
        nodes = doc.find_all("div", cls="fg-node", data_name=payload)
        assert len(nodes) == 1 and nodes[0].text == payload and "fg-match" in nodes[0].classes
        assert [td.text for td in doc.by_id("top").find_all("td", cls="name") if td.text == payload] == [payload]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_api_errors_are_shown_with_their_message(server, browser):
    state = {"type": server.cpu_type, "query": '{service_name="api"', "focus": "main"}
    r = requests.get(server.url + "/api/v1/flamegraph", timeout=30,
                     params={"query": server.cpu_type + state["query"], "focus": "main"})
    assert r.status_code == 400
    doc = parse_dom(browser.dump_dom(page_url(server, **state)))
    box = doc.by_id("error")
    assert doc.by_id("app").attrs["data-state"] == "error"
    assert "hidden" not in box.attrs
    assert box.find_all("span", cls="error-message")[0].text == r.json()["error"]["message"]
    assert "bad_input" in box.text


def test_empty_store_says_how_to_ingest(live_server, browser):
    doc = parse_dom(browser.dump_dom(live_server.url + "/"))
    assert doc.by_id("app").attrs["data-state"] == "ready"
    summary = doc.by_id("summary").text
    assert "No profiles stored yet" in summary and f"{live_server.url}/api/v1/ingest" in summary
    assert not doc.find_all("div", cls="fg-node") and "hidden" in doc.by_id("error").attrs


def _png_pixels_info(png: bytes) -> tuple[int, int, bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", chunk[:8])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert size is not None
    return size[0], size[1], zlib.decompress(idat)


def test_screenshot_shows_a_drawn_page(server, browser, tmp_path):
    url = page_url(server, type=server.cpu_type, query='{service_name="api"}')
    shot = browser.screenshot(url, tmp_path / "ui.png")
    width, height, raw = _png_pixels_info(shot.read_bytes())
    assert (width, height) == WINDOW
    bytes_per_row = len(raw) // height
    assert bytes_per_row in (1 + 3 * width, 1 + 4 * width)
    pixels = np.frombuffer(raw, np.uint8).reshape(height, bytes_per_row)[:, 1:]
    # a blank or single-colour page filters to (nearly) all zeros; a drawn page does not
    assert np.count_nonzero(pixels) > 0.02 * pixels.size
    assert len(np.unique(pixels)) > 100


def test_diff_view_uses_the_diff_endpoint_or_says_it_is_missing(server, browser):
    state = {"view": "diff", "type": server.cpu_type, "bquery": '{service_name="api"}',
             "hquery": '{service_name=~"api|fib"}'}
    body = {"base": {"query": server.cpu_type + state["bquery"]},
            "head": {"query": server.cpu_type + state["hquery"]}, "granularity": "functions"}
    answer = requests.post(server.url + "/api/v1/diff", json=body, timeout=60)
    doc = parse_dom(browser.dump_dom(page_url(server, **state), budget_ms=8000))
    assert doc.by_id("app").attrs["data-state"] == "ready", doc.by_id("error").text
    message = doc.by_id("diff-message")
    if answer.status_code == 404:
        assert "hidden" not in message.attrs and message.attrs.get("data-kind") == "unavailable"
        assert "diff endpoint is not available" in message.text and "404" in message.text
        assert "hidden" in doc.by_id("diff-flame-panel").attrs
        return
    assert answer.status_code == 200, answer.text
    root = answer.json()["flamegraph"]
    bt, ht = root["base"]["total"], root["head"]["total"]
    nodes = {(e.attrs["data-name"], int(e.attrs["data-depth"])): e
             for e in doc.by_id("diff-flame").find_all("div", cls="fg-node")}
    stack, checked = [(root, 0)], 0
    while stack:
        n, depth = stack.pop()
        stack += [(c, depth + 1) for c in n["children"]]
        bs, hs = n["base"]["total"] / bt, n["head"]["total"] / ht
        if (bs + hs) / 2 < 0.02 or depth == 0:
            continue
        e = nodes[(n["name"], depth)]
        r, g, _b = (int(x) for x in re.findall(r"\d+", _style(e, "background-color"))[:3])
        if hs > 1.05 * bs:
            assert r > g, (n["name"], bs, hs)       # regression: red
            checked += 1
        elif hs < 0.95 * bs:
            assert g > r, (n["name"], bs, hs)       # improvement: green
            checked += 1
    assert checked >= 2


# ------------------------------------------------------------------ interaction (DevTools protocol)
def test_zoom_hover_search_sort_and_label_hints(server, browser, data):
    pytest.importorskip("websocket", reason="websocket-client is needed to drive chromium (pip install websocket-client)")
    params = {"query": server.cpu_type + '{service_name="api"}'}
    fg = api(server, "/api/v1/flamegraph", **params)["flamegraph"]
    top = api(server, "/api/v1/top", **params, limit=500)
    busy = fg["children"][0]["children"][0]["children"][0]
    path = [fg["children"][0]["name"], fg["children"][0]["children"][0]["name"], busy["name"]]
    url = page_url(server, type=server.cpu_type, query='{service_name="api"}')
    b = browser.devtools()
    try:
        b.open(url)
        node = f'#flame .fg-node[data-name="{busy["name"]}"]'
        # hover: the tooltip names the frame and gives self, total and share
        x, y = b.center(node)
        b.mouse("mouseMoved", x, y)
        b.wait("!document.getElementById('tooltip').hidden")
        tip = b.js("document.getElementById('tooltip').textContent")
        assert busy["name"] in tip and "Self" in tip and "Total" in tip
        assert f"{100 * busy['total'] / fg['total']:.2f}%" in tip

        # click zooms: the node spans the graph, its children are scaled to it, the URL records it
        b.click(node)
        b.wait(f"document.getElementById('flame').dataset.zoom === {busy['name']!r}")
        search = urllib.parse.parse_qs(b.js("location.search")[1:])
        assert search["zoom"] == path
        assert b.js(f"document.querySelector('{node}').style.width") == "100%"
        for child in busy["children"]:
            w = b.js(f"document.querySelector('#flame .fg-node[data-name=\"{child['name']}\"]').style.width")
            assert float(w.rstrip("%")) == pytest.approx(100 * child["total"] / busy["total"], abs=1e-3)
        assert b.js("document.querySelectorAll('#flame .fg-ancestor').length") == 3   # total + 2 callers
        # the back button undoes the zoom; a reload of the zoomed URL restores it
        b.js("history.back()")
        b.wait("document.getElementById('flame').dataset.zoom === 'total'")
        b.open(url + "&" + urllib.parse.urlencode([("zoom", p) for p in path]))
        assert b.js("document.getElementById('flame').dataset.zoom") == busy["name"]
        b.click("#reset-zoom")
        assert b.js("document.getElementById('flame').dataset.zoom") == "total"
        assert "zoom=" not in b.js("location.search")

        # a top-table row highlights exactly that function in the flame graph
        first = top["rows"][0]["name"]
        b.click("#top tbody tr:first-child")
        assert b.js("document.getElementById('search').value") == "^" + js_regex_escape(first) + "$"
        assert b.js("document.querySelector('#top tbody tr:first-child').classList.contains('selected')")
        marks = b.js("[...document.querySelectorAll('#flame .fg-node')].map(e => [e.dataset.name, "
                     "e.classList.contains('fg-match')])")
        assert marks and all(m == (name == first) for name, m in marks)

        # sorting by cum, descending then ascending
        b.click('#top th[data-key="cum"]')
        names = b.js("[...document.querySelectorAll('#top tbody tr')].map(r => r.dataset.name)")
        assert names == [r["name"] for r in sorted(top["rows"], key=lambda r: (-r["cum"], r["name"]))]
        b.click('#top th[data-key="cum"]')
        names = b.js("[...document.querySelectorAll('#top tbody tr')].map(r => r.dataset.name)")
        assert names == [r["name"] for r in sorted(top["rows"], key=lambda r: (r["cum"], r["name"]))]
        assert "sort=cum%3Aasc" in b.js("location.search")

        # label hints: names after "{", then values inside the quotes, then query
        b.js("document.getElementById('q-query').value = ''")
        b.click("#q-query")
        b.type_text("{")
        hints = "[...document.querySelectorAll('#q .hints li')].map(li => li.textContent)"
        names = api(server, "/api/v1/labels", profile_type=server.cpu_type)["names"]
        b.wait(f"!document.querySelector('#q .hints').hidden && {hints}.length === {len(names)}")
        assert b.js(hints) == names
        b.click(f"#q .hints li:nth-child({names.index('service_name') + 1})")
        assert b.js("document.getElementById('q-query').value") == '{service_name=""}'
        values = api(server, "/api/v1/labels/service_name/values", profile_type=server.cpu_type)["values"]
        assert "fib" in values
        b.wait(f"{hints}.length === {len(values)}")
        b.click(f"#q .hints li:nth-child({values.index('fib') + 1})")
        assert b.js("document.getElementById('q-query').value") == '{service_name="fib"}'
        b.click("#query-form button[type=submit]")
        b.wait("document.getElementById('app').dataset.state === 'ready'")
        fib_top = api(server, "/api/v1/top", query=server.cpu_type + '{service_name="fib"}', limit=500)
        names = b.js("[...document.querySelectorAll('#top tbody tr')].map(r => r.dataset.name)")
        assert names == [r["name"] for r in sorted(fib_top["rows"], key=lambda r: (r["cum"], r["name"]))]  # sort kept
        assert urllib.parse.parse_qs(b.js("location.search")[1:])["query"] == ['{service_name="fib"}']

        # the Diff tab carries the selection over as base and head
        b.navigation(lambda: b.click("#tab-diff"))
        q = urllib.parse.parse_qs(b.js("location.search")[1:])
        assert q["view"] == ["diff"] and q["bquery"] == q["hquery"] == ['{service_name="fib"}']
        assert b.js("document.getElementById('base-query').value") == '{service_name="fib"}'
        assert "Choose a base and a head" in b.js("document.getElementById('diff-message').textContent")

        # a hostile label value is offered as plain text
        b.open(page_url(server, type=server.xss_type))
        b.click("#q-query")
        b.type_text('{service_name="')
        b.wait(f"{hints}.length === 1")
        assert b.js(hints) == [XSS_LABEL]
        assert b.js("document.querySelectorAll('script').length") == 1
        assert not b.dialogs()
        assert not [e for e in b.events if e.get("method") == "Runtime.exceptionThrown"]
    finally:
        b.close()
