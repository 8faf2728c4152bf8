"""Connect unary routes on a Flask blueprint: parse the request message, call the view, render
the response in the request's codec, and turn every error into a Connect error body."""
from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import NamedTuple

from flask import Blueprint, Response, request
from google.protobuf.message import Message
from werkzeug.exceptions import HTTPException

from ..errors import LimitExceeded, ProfscopeError
from ..wire import connect
from .params import state

log = logging.getLogger("profscope.api")


def connect_error(err: ProfscopeError) -> Response:
    status, body = connect.error_response(err)
    return Response(body, status=status, content_type="application/json")


def _http_error(e: HTTPException) -> ProfscopeError:
    if e.code == 413:
        return LimitExceeded(f"request body is larger than max_body_bytes={state().limits.max_body_bytes}")
    return ProfscopeError(e.description or e.name, kind="http_error", status=e.code or 500)


class RawRequest(NamedTuple):
    """A Connect request not parsed yet (for a view that parses it elsewhere)."""
    body: bytes
    content_type: str | None
    content_encoding: str | None


def connect_method(bp: Blueprint, path: str, request_cls: type[Message] | None):
    """Register ``view(message) -> Message | bytes`` as a Connect unary POST route at ``path``.
    A view may return raw protobuf bytes together with the response class as
    ``(bytes, response_cls)`` to skip re-encoding (pprof responses). With ``request_cls=None``
    the view gets a :class:`RawRequest` and parses it itself (in a worker process, say)."""
    def deco(view: Callable):
        @functools.wraps(view)
        def handler():
            try:
                if request_cls is None:
                    msg = RawRequest(request.get_data(cache=False), request.content_type,
                                     request.headers.get("Content-Encoding"))
                else:
                    msg = connect.parse_request(request.get_data(cache=False), request.content_type,
                                                request_cls(), request.headers.get("Content-Encoding"),
                                                state().limits)
                out = view(msg)
                if isinstance(out, tuple):
                    raw, cls = out
                    if not connect.is_json(request.content_type):
                        return Response(raw, content_type="application/proto")
                    parsed = cls()
                    parsed.ParseFromString(raw)
                    out = parsed
                body, ctype = connect.render_response(out, request.content_type)
                return Response(body, content_type=ctype)
            except ProfscopeError as e:
                return connect_error(e)
            except HTTPException as e:
                return connect_error(_http_error(e))
            except Exception as e:   # the server keeps serving; the client gets a Connect error
                log.exception("unhandled error in %s", path)
                return connect_error(ProfscopeError(f"internal error: {e.__class__.__name__}: {e}"))
        bp.add_url_rule(path, endpoint=view.__name__, view_func=handler, methods=["POST"])
        return view
    return deco
