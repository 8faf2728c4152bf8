"""OTLP profiles over HTTP: ``POST /v1development/profiles`` (``application/x-protobuf`` or
``application/json``, optionally gzip). Errors follow OTLP/HTTP: a ``google.rpc.Status`` in the
request's encoding with the matching HTTP status (400 bad payload, 401/403 auth, 413 too large,
415 other content types, 429 overloaded)."""
from __future__ import annotations

import json

from flask import Blueprint, Response, request
from google.protobuf import json_format
from werkzeug.exceptions import HTTPException

from ..errors import LimitExceeded, ProfscopeError
from ..varint import uvarint
from ..wire import connect
from ..wire.otlp import ExportRequest, convert_request, decode_export_request
from .params import state, tenant

bp = Blueprint("otlp", __name__)

ACCEPTED = ("application/x-protobuf", "application/protobuf", "application/json")
# HTTP status -> gRPC status code (google.rpc.Code)
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 413: 8, 415: 3, 429: 8, 500: 13, 501: 12, 503: 14}


def ingest_export_request(req: ExportRequest, tenant_id: str) -> int:
    """Store every profile of a decoded request; returns the number of series stored."""
    items = [(s.profile, s.labels) for s in convert_request(req)]
    if items:                 # checked first, then stored in one transaction (shared: group commit)
        state().store.ingest_many(items, tenant_id)
    return len(items)


def _status_body(status: int, message: str, json_body: bool) -> tuple[bytes, str]:
    code = GRPC_CODES.get(status, 2)
    if json_body:
        return json.dumps({"code": code, "message": message}).encode(), "application/json"
    msg = message.encode()
    # google.rpc.Status{int32 code = 1; string message = 2}, encoded by hand
    body = b"\x08" + uvarint(code) + b"\x12" + uvarint(len(msg)) + msg
    return body, "application/x-protobuf"


@bp.post("/v1development/profiles")
def export():
    json_body = connect.is_json(request.content_type)
    try:
        mt = connect.media_type(request.content_type)
        if mt not in ACCEPTED:
            raise connect.unsupported_media(request.content_type, ACCEPTED)
        t = tenant()
        raw = request.get_data(cache=False)
        limits = state().limits
        if len(raw) > limits.max_body_bytes:
            raise LimitExceeded(f"request body is {len(raw)} bytes; limit max_body_bytes={limits.max_body_bytes}")
        req = decode_export_request(raw, mt, request.headers.get("Content-Encoding"), limits)
        ingest_export_request(req, t)
    except ProfscopeError as e:
        body, ctype = _status_body(e.status, e.message, json_body)
        return Response(body, status=e.status, content_type=ctype)
    except HTTPException as e:
        status = e.code or 500
        msg = (f"request body is larger than max_body_bytes={state().limits.max_body_bytes}"
               if status == 413 else (e.description or e.name))
        body, ctype = _status_body(status, msg, json_body)
        return Response(body, status=status, content_type=ctype)
    from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2 as pb
    resp = pb.ExportProfilesServiceResponse()
    if json_body:
        return Response(json_format.MessageToJson(resp), content_type="application/json")
    return Response(resp.SerializeToString(), content_type="application/x-protobuf")
