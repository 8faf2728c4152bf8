"""The browser UI: ``/`` serves a single page; ``/ui/<file>`` its static HTML, CSS and JS modules.

No build step and no third-party code: the files under ``profscope/web/static`` are served as they
are. A strict Content-Security-Policy (scripts and styles only from this origin, no inline script)
backs up the UI's rule that data only ever reaches the page as text.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

bp = Blueprint("web", __name__)


def _secure(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.get("/")
def index() -> Response:
    """The single-page UI; its state lives in the query string (shareable links)."""
    return _secure(send_from_directory(STATIC, "index.html", mimetype="text/html"))


@bp.get("/ui/<path:name>")
def static_file(name: str) -> Response:
    """CSS, JS modules and the icon (send_from_directory refuses paths outside the folder)."""
    mimetype = "text/javascript" if name.endswith(".js") else None
    return _secure(send_from_directory(STATIC, name, mimetype=mimetype))
