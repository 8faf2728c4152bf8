"""The OpenAPI 3.1 document served at ``/api/v1/openapi.json``.

Each resource adds its paths to ``PATHS``; a test checks that every ``/api/v1`` route of the app
is documented here.
"""
from __future__ import annotations

from typing import Any

from .. import __version__

ERROR = {"$ref": "#/components/schemas/Error"}


def _q(name: str, desc: str, required: bool = False, schema: dict | None = None, many: bool = False) -> dict:
    sch = schema or {"type": "string"}
    if many:
        sch = {"type": "array", "items": sch}
    return {"name": name, "in": "query", "required": required, "description": desc, "schema": sch}


SELECTION_PARAMS = [
    _q("query", 'profile type and label selector, e.g. process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="api"}'
       ' or cpu{env!="dev"}'),
    _q("from", "start: unix s/ms/us/ns, now-1h, or ISO 8601"),
    _q("until", "end: same forms as from"),
    _q("tagfocus", "key=regex on labels (repeatable)", many=True),
    _q("tagignore", "key=regex on labels to exclude (repeatable)", many=True),
]
VIEW_PARAMS = [
    _q("granularity", "functions | files | lines | addresses",
       schema={"type": "string", "enum": ["functions", "files", "lines", "addresses"]}),
    _q("focus", "keep samples with a frame matching this regex"),
    _q("ignore", "drop samples with a frame matching this regex"),
    _q("max_nodes", "flame graph size; the rest is merged into 'other'", schema={"type": "integer"}),
]
TENANT = {"name": "X-Scope-OrgID", "in": "header", "required": False,
          "description": "tenant id (required when multi-tenancy is on)", "schema": {"type": "string"}}


def _ok(desc: str, schema: dict | None = None, ctype: str = "application/json") -> dict:
    return {"description": desc, "content": {ctype: {"schema": schema or {"type": "object"}}}}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for c in codes}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/ingest": {"post": {
        "summary": "Upload one profile (pprof, folded, speedscope; gzip or raw; format sniffed)",
        "parameters": [TENANT, _q("format", "pprof | folded | speedscope (default: sniffed)"),
                       _q("service", "service_name label"), _q("label", "k=v (repeatable)", many=True),
                       _q("labels", '{k="v", ...}'), _q("name", "__name__ of the series (default from sample type)"),
                       _q("sample_rate", "Hz, for folded input: adds cpu:nanoseconds", schema={"type": "integer"})],
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                                        "profile": {"type": "string", "format": "binary"}}}}}},
        "responses": {"201": _ok("stored", {"type": "object", "properties": {
            "profile_ids": {"type": "array", "items": {"type": "integer"}},
            "profile_types": {"type": "array", "items": {"type": "string"}},
            "samples": {"type": "integer"}, "source_id": {"type": "string"}}}), **_errors(400, 401, 413, 429)}}},
    "/api/v1/flamegraph": {"get": {
        "summary": "Merged flame graph of a selection: nested nodes with self and total",
        "parameters": [TENANT, *SELECTION_PARAMS, *VIEW_PARAMS],
        "responses": {"200": _ok("flame graph", {"$ref": "#/components/schemas/FlameGraph"}), **_errors(400, 401)}}},
    "/api/v1/top": {"get": {
        "summary": "Flat and cumulative value per function (pprof -top order)",
        "parameters": [TENANT, *SELECTION_PARAMS, *VIEW_PARAMS, _q("limit", "rows (0 = all)", schema={"type": "integer"})],
        "responses": {"200": _ok("top table", {"$ref": "#/components/schemas/Top"}), **_errors(400, 401)}}},
    "/api/v1/export": {"get": {
        "summary": "Export a selection as pprof (gzipped), speedscope JSON or folded text",
        "parameters": [TENANT, *SELECTION_PARAMS, *VIEW_PARAMS,
                       _q("format", "pprof | speedscope | folded", schema={"type": "string", "enum": ["pprof", "speedscope", "folded"]})],
        "responses": {"200": {"description": "the profile", "content": {
            "application/octet-stream": {}, "application/json": {}, "text/plain": {}}}, **_errors(400, 401)}}},
    "/api/v1/profile_types": {"get": {
        "summary": "Profile types with data (name:sample_type:unit:period_type:period_unit)",
        "parameters": [TENANT, SELECTION_PARAMS[1], SELECTION_PARAMS[2]],
        "responses": {"200": _ok("profile types"), **_errors(400, 401)}}},
    "/api/v1/labels": {"get": {
        "summary": "Label names (series and sample labels)", "parameters": [TENANT, *SELECTION_PARAMS[:3]],
        "responses": {"200": _ok("names"), **_errors(400, 401)}}},
    "/api/v1/labels/{name}/values": {"get": {
        "summary": "Values of one label",
        "parameters": [TENANT, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                       *SELECTION_PARAMS[:3]],
        "responses": {"200": _ok("values"), **_errors(400, 401)}}},
    "/api/v1/series": {"get": {
        "summary": "Series (label sets and profile types) with data", "parameters": [TENANT, *SELECTION_PARAMS[:3]],
        "responses": {"200": _ok("series"), **_errors(400, 401)}}},
    "/api/v1/profiles": {"get": {
        "summary": "Stored profiles of a selection, newest first",
        "parameters": [TENANT, *SELECTION_PARAMS, _q("limit", "rows", schema={"type": "integer"})],
        "responses": {"200": _ok("profiles"), **_errors(400, 401)}}},
    "/api/v1/stats": {"get": {"summary": "Store statistics (rows, dictionaries, bytes on disk)",
                              "responses": {"200": _ok("stats")}}},
    "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI 3.1")}}},
}

SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["kind", "message"],
        "properties": {"kind": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}}},
    "Node": {"type": "object", "properties": {"name": {"type": "string"}, "self": {"type": "integer"},
                                              "total": {"type": "integer"},
                                              "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}}}},
    "FlameGraph": {"type": "object", "properties": {
        "profile_type": {"type": ["string", "null"]}, "sample_type": {"type": "string"}, "unit": {"type": "string"},
        "total": {"type": "integer"}, "profiles": {"type": "integer"}, "duration_nanos": {"type": "integer"},
        "nodes": {"type": "integer"}, "flamegraph": {"$ref": "#/components/schemas/Node"}}},
    "Top": {"type": "object", "properties": {
        "sample_type": {"type": "string"}, "unit": {"type": "string"}, "total": {"type": "integer"},
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "flat": {"type": "integer"}, "cum": {"type": "integer"}}}}}},
}


def document() -> dict:
    return {"openapi": "3.1.0",
            "info": {"title": "profscope API", "version": __version__,
                     "description": "Native profscope API. Every error is {\"error\": {\"kind\", \"message\"}}."},
            "paths": PATHS, "components": {"schemas": SCHEMAS}}
