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
    _q("tagfocus", "[key=]regex[,regex] on string labels or [key=]min:max with units (bytes=1kb:) on "
       "numeric labels, pprof -tagfocus rules; keeps the selection's total (repeatable)", many=True),
    _q("tagignore", "like tagfocus, drops the matching samples (repeatable)", many=True),
]
VIEW_PARAMS = [
    _q("granularity", "functions | files | lines | addresses",
       schema={"type": "string", "enum": ["functions", "files", "lines", "addresses"]}),
    _q("focus", "keep samples with a frame matching this regex"),
    _q("ignore", "drop samples with a frame matching this regex"),
    _q("max_nodes", "flame graph size; the rest is merged into 'other'", schema={"type": "integer"}),
]
ADMIN = {"name": "Authorization", "in": "header", "required": False,
         "description": "Bearer <admin_token>: required when admin_token is configured", "schema": {"type": "string"}}
PLUGIN_NAME = {"name": "name", "in": "path", "required": True, "description": "plugin name from its manifest",
               "schema": {"type": "string"}}
TENANT = {"name": "X-Scope-OrgID", "in": "header", "required": False,
          "description": "tenant id (required when multi-tenancy is on)", "schema": {"type": "string"}}


def _ok(desc: str, schema: dict | None = None, ctype: str = "application/json") -> dict:
    return {"description": desc, "content": {ctype: {"schema": schema or {"type": "object"}}}}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": "error", "content": {"application/json": {"schema": ERROR}}} for c in codes}


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/ingest": {"post": {
        "summary": "Upload one profile (pprof, folded, speedscope; gzip or raw; format sniffed)",
        "parameters": [TENANT, _q("format", "pprof | folded | speedscope, or a format added by a plugin (default: sniffed)"),
                       _q("service", "service_name label"), _q("label", "k=v (repeatable)", many=True),
                       _q("labels", '{k="v", ...}'), _q("name", "__name__ of the series (default from sample type)"),
                       _q("sample_rate", "Hz, for folded input: adds cpu:nanoseconds", schema={"type": "integer"})],
        "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                                    "multipart/form-data": {"schema": {"type": "object", "properties": {
                                        "profile": {"type": "string", "format": "binary"}}}}}},
        "responses": {"201": _ok("stored", {"type": "object", "properties": {
            "profile_ids": {"type": "array", "items": {"type": "integer"}},
            "profile_types": {"type": "array", "items": {"type": "string"}},
            "samples": {"type": "integer"}, "source_id": {"type": "string"},
            "warnings": {"type": "array", "items": {"type": "string"}},
            "findings": {"type": "array", "description": "findings of the Wasm plugins flagged on_ingest, on the "
                         "stored profile's default sample type (each with its plugin's name)",
                         "items": {"$ref": "#/components/schemas/Finding"}},
            "plugin_errors": {"type": "array", "description": "on_ingest plugins that failed (the profile is "
                              "stored anyway)", "items": {"$ref": "#/components/schemas/PluginError"}}}}),
            **_errors(400, 401, 413, 429)}}},
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
                       _q("format", "pprof | speedscope | folded, or an export format added by a plugin (default pprof)")],
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
        "summary": "Stored profiles of a selection, newest first (id, labels, type, time, duration, "
                   "samples, total, source, pprof comments)",
        "parameters": [TENANT, *SELECTION_PARAMS, _q("limit", "rows", schema={"type": "integer"})],
        "responses": {"200": _ok("profiles"), **_errors(400, 401)}}},
    "/api/v1/diff": {"post": {
        "summary": "Diff two stored selections: regressions (with significance when each side has several "
                   "profiles), top table of changes, stacks and a union flame graph with both sides",
        "parameters": [TENANT],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/DiffRequest"}}}},
        "responses": {"200": _ok("diff report", {"$ref": "#/components/schemas/DiffReport"}),
                      **_errors(400, 401)}}},
    "/api/v1/stats": {"get": {"summary": "Store statistics (rows, dictionaries, bytes on disk)",
                              "responses": {"200": _ok("stats")}}},
    "/api/v1/analyze": {"get": {
        "summary": "Findings of every analyzer plugin on the flame graph of a selection; with base_query, "
                   "the diff analyzers on the union tree of the baseline and the selection",
        "parameters": [TENANT, *SELECTION_PARAMS, *VIEW_PARAMS,
                       _q("analyzer", "run only these analyzer plugins (repeatable; default: all)", many=True),
                       _q("base_query", "baseline selection for a comparison (its type defaults to query's)"),
                       _q("base_from", "baseline start (default: from)"),
                       _q("base_until", "baseline end (default: until)")],
        "responses": {"200": _ok("findings and per-plugin errors", {"$ref": "#/components/schemas/Analysis"}),
                      **_errors(400, 401)}}},
    "/api/v1/plugins": {
        "post": {
            "summary": "Install a Wasm analyzer (ABI v1, wasm/ABI.md); replaces an installed plugin of the same "
                       "name. Needs the admin role when admin_token is set",
            "parameters": [ADMIN, _q("on_ingest", "run it after every ingest (default: the manifest's auto_run)",
                                     schema={"type": "boolean"}),
                           _q("on_diff", "run it on every diff (default: the manifest's auto_run)",
                              schema={"type": "boolean"})],
            "requestBody": {"required": True, "content": {
                "application/wasm": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {"schema": {"type": "object", "required": ["module"], "properties": {
                    "module": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": _ok("installed", {"$ref": "#/components/schemas/WasmPlugin"}),
                          **_errors(400, 401, 403, 413)}},
        "get": {"summary": "Installed Wasm analyzers, by name",
                "responses": {"200": _ok("plugins", {"type": "object", "properties": {"plugins": {
                    "type": "array", "items": {"$ref": "#/components/schemas/WasmPlugin"}}}})}}},
    "/api/v1/plugins/{name}": {
        "get": {"summary": "One installed Wasm analyzer", "parameters": [PLUGIN_NAME],
                "responses": {"200": _ok("plugin", {"$ref": "#/components/schemas/WasmPlugin"}), **_errors(404)}},
        "delete": {"summary": "Uninstall a Wasm analyzer. Needs the admin role when admin_token is set",
                   "parameters": [ADMIN, PLUGIN_NAME],
                   "responses": {"200": _ok("removed", {"type": "object", "properties": {
                       "deleted": {"$ref": "#/components/schemas/WasmPlugin"}}}), **_errors(401, 403, 404)}}},
    "/api/v1/plugins/{name}/settings": {"patch": {
        "summary": "Change when a Wasm analyzer runs by itself. Needs the admin role when admin_token is set",
        "parameters": [ADMIN, PLUGIN_NAME],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "properties": {
                "on_ingest": {"type": "boolean"}, "on_diff": {"type": "boolean"}}}}}},
        "responses": {"200": _ok("the plugin with its new flags", {"$ref": "#/components/schemas/WasmPlugin"}),
                      **_errors(400, 401, 403, 404)}}},
    "/api/v1/plugins/{name}/run": {"post": {
        "summary": "Run a Wasm analyzer on the flame graph of a stored selection, or on the union tree of a "
                   "baseline and a head selection (a diff)",
        "parameters": [TENANT, PLUGIN_NAME],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/WasmRunRequest"}}}},
        "responses": {"200": _ok("findings", {"$ref": "#/components/schemas/WasmRun"}),
                      "422": {"description": "the run failed; error.kind is timeout, out_of_fuel, memory_limit, "
                              "stack_overflow, trap or bad_output",
                              "content": {"application/json": {"schema": ERROR}}},
                      **_errors(400, 401, 404, 429)}}},
    "/api/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": _ok("OpenAPI 3.1")}}},
}

# ---------------------------------------------------------------- trace joins (api/traces.py)
JOIN_PARAMS = [
    _q("query", "profile type and label selector of the profiles to join (default: the only type, else CPU time)"),
    _q("span_id", "span id, up to 16 hex digits (repeatable)", many=True),
    _q("trace_id", "trace id, up to 32 hex digits (repeatable)", many=True),
    _q("service", "span query: service.name of the spans"),
    _q("span_name", "span query: span name"),
    _q("min_duration", "span query: minimum span duration (500ms, 1.5s, 250us, or ns)"),
    _q("max_duration", "span query: maximum span duration"),
    _q("attr", "span query: attribute equality key=value on span (else resource) attributes (repeatable)", many=True),
    _q("status", "span query: unset | ok | error", schema={"type": "string", "enum": ["unset", "ok", "error"]}),
    _q("from", "span query: spans overlapping [from, until] (unix s/ms/us/ns, now-1h, ISO 8601)"),
    _q("until", "span query: end of the time range"),
    _q("descendants", "include samples of the spans below each span (default true)", schema={"type": "boolean"}),
    _q("approximate", "spans without samples of their own get their nearest sampled ancestor's samples in "
       "profiles overlapping the span (default true; the response says approximate)", schema={"type": "boolean"}),
    _q("unlinked", "spans without linked samples get unlinked samples of their service in profiles overlapping "
       "the span, matching thread_id/pid (default false; approximate)", schema={"type": "boolean"}),
]
JOIN_INFO = {"type": "object", "description": "what was joined", "properties": {
    "span_ids": {"type": "array", "items": {"type": "string"}},
    "trace_ids": {"type": "array", "items": {"type": "string"}},
    "span_query": {"type": "object"}, "spans_matched": {"type": "integer"},
    "linked_pairs": {"type": "integer", "description": "(profile, label set) pairs joined"},
    "approximate": {"type": "boolean", "description": "true when part of the result comes from a time-window "
                    "approximation rather than span/trace ids in the samples"},
    "notes": {"type": "array", "items": {"type": "string"}}}}
PATHS.update({
    "/v1/traces": {"post": {
        "summary": "OTLP/HTTP trace export (ExportTraceServiceRequest, protobuf or JSON with hex ids; gzip ok)",
        "parameters": [TENANT],
        "requestBody": {"content": {"application/x-protobuf": {}, "application/json": {}}},
        "responses": {"200": _ok("ExportTraceServiceResponse (same encoding as the request)"),
                      **_errors(400, 401, 413, 415, 429)}}},
    "/api/v1/traces/flamegraph": {"get": {
        "summary": "Flame graph of the samples of spans (span_id), traces (trace_id) or a span query",
        "parameters": [TENANT, *JOIN_PARAMS, *VIEW_PARAMS],
        "responses": {"200": _ok("flame graph with the join description", {"allOf": [
            {"$ref": "#/components/schemas/FlameGraph"},
            {"type": "object", "properties": {"join": JOIN_INFO}}]}), **_errors(400, 401)}}},
    "/api/v1/traces/top": {"get": {
        "summary": "Top table of the samples of spans, traces or a span query",
        "parameters": [TENANT, *JOIN_PARAMS, *VIEW_PARAMS, _q("limit", "rows (0 = all)", schema={"type": "integer"})],
        "responses": {"200": _ok("top table with the join description", {"allOf": [
            {"$ref": "#/components/schemas/Top"},
            {"type": "object", "properties": {"join": JOIN_INFO}}]}), **_errors(400, 401)}}},
    "/api/v1/traces/exemplars": {"get": {
        "summary": "Spans and traces that spent the most in a function or in frames matching a regex",
        "parameters": [TENANT, *SELECTION_PARAMS[:3],
                       _q("function", "function name (exact, as in the top table)"),
                       _q("frame", "regex on function name, file or mapping"),
                       _q("limit", "spans and traces to return (default 10)", schema={"type": "integer"})],
        "responses": {"200": _ok("exemplars", {"type": "object", "properties": {
            "total": {"type": "integer", "description": "linked value spent in the function"},
            "spans": {"type": "array", "items": {"type": "object", "properties": {
                "span_id": {"type": ["string", "null"]}, "trace_id": {"type": ["string", "null"]},
                "value": {"type": "integer"}, "span_total": {"type": "integer"},
                "name": {"type": ["string", "null"]}, "service": {"type": ["string", "null"]},
                "start_ns": {"type": ["integer", "null"]}, "duration_ns": {"type": ["integer", "null"]}}}},
            "traces": {"type": "array", "items": {"type": "object", "properties": {
                "trace_id": {"type": "string"}, "value": {"type": "integer"}, "spans": {"type": "integer"}}}}}}),
            **_errors(400, 401)}}},
    "/api/v1/traces/spans": {"get": {
        "summary": "Stored spans matching a span query, newest first",
        "parameters": [TENANT, *[p for p in JOIN_PARAMS if p["name"] in (
            "service", "span_name", "min_duration", "max_duration", "attr", "status", "from", "until")],
            _q("limit", "spans (default 100)", schema={"type": "integer"})],
        "responses": {"200": _ok("spans"), **_errors(400, 401)}}},
    "/api/v1/traces/{trace_id}/spans": {"get": {
        "summary": "Per-span sampled time of a trace: each span's self and total (self + descendants)",
        "parameters": [TENANT, {"name": "trace_id", "in": "path", "required": True, "schema": {"type": "string"}},
                       JOIN_PARAMS[0]],
        "responses": {"200": _ok("span table", {"type": "object", "properties": {
            "trace_id": {"type": "string"}, "total": {"type": "integer"},
            "spans": {"type": "array", "items": {"type": "object", "properties": {
                "span_id": {"type": "string"}, "parent_span_id": {"type": ["string", "null"]},
                "name": {"type": ["string", "null"]}, "service": {"type": ["string", "null"]},
                "depth": {"type": "integer"}, "start_ns": {"type": ["integer", "null"]},
                "duration_ns": {"type": ["integer", "null"]}, "self": {"type": "integer"},
                "total": {"type": "integer"}, "stored": {"type": "boolean"}}}},
            "notes": {"type": "array", "items": {"type": "string"}}}}), **_errors(400, 401)}}},
})
_SIDE = {"type": "object", "properties": {
    "query": {"type": "string", "description": 'type{matchers}, e.g. cpu{service_name="api"}'},
    "from": {"type": ["string", "integer", "null"]}, "until": {"type": ["string", "integer", "null"]}}}
_DIFF_SIDE = {"type": "object", "required": ["query"], "properties": {
    "query": {"type": "string", "description": 'type{matchers}, e.g. cpu{service_name="api",version="1.4.0"}'},
    "from": {"type": ["string", "integer", "null"]}, "until": {"type": ["string", "integer", "null"]}}}
_DIFF_ROW = {"type": "object", "properties": {
    "name": {"type": "string"}, "base": {"type": "number"}, "head": {"type": "number"},
    "delta": {"type": "number"}, "delta_pct": {"type": ["number", "null"]},
    "p_value": {"type": ["number", "null"]}, "q_value": {"type": ["number", "null"]},
    "base_share_pct": {"type": "number"}, "head_share_pct": {"type": "number"},
    "delta_of_base_total_pct": {"type": ["number", "null"]},
    "flat": {"type": "object"}, "cum": {"type": "object"}, "raw": {"type": "object"}}}
_DIFF_SUMMARY = {"type": "object", "properties": {"profiles": {"type": "integer"}, "total": {"type": "integer"},
                                                  "duration_seconds": {"type": "number"}}}

SCHEMAS: dict[str, Any] = {
    "DiffRequest": {"type": "object", "required": ["base", "head"], "properties": {
        "base": _DIFF_SIDE, "head": _DIFF_SIDE,
        "sample_type": {"type": "string", "description": "profile type when the queries name none"},
        "normalize": {"type": "string", "enum": ["total", "duration", "none"], "default": "total"},
        "granularity": {"type": "string", "enum": ["functions", "files", "lines", "addresses"]},
        "metric": {"type": "string", "enum": ["flat", "cum"], "default": "flat"},
        "threshold": {"type": "number", "default": 10, "description": "minimum relative change, percent"},
        "min_share": {"type": "number", "default": 1, "description": "minimum share of the total, percent"},
        "min_delta": {"type": "number", "default": 0.1, "description": "minimum change, percent of the base total"},
        "alpha": {"type": "number", "default": 0.01, "description": "false discovery rate of the test"},
        "max_nodes": {"type": "integer"}, "limit": {"type": "integer", "default": 100},
        "stacks": {"type": "integer", "default": 20}, "flamegraph": {"type": "boolean", "default": True}}},
    "DiffNode": {"type": "object", "properties": {
        "name": {"type": "string"},
        "base": {"type": "object", "properties": {"self": {"type": "integer"}, "total": {"type": "integer"}}},
        "head": {"type": "object", "properties": {"self": {"type": "integer"}, "total": {"type": "integer"}}},
        "children": {"type": "array", "items": {"$ref": "#/components/schemas/DiffNode"}}}},
    "DiffReport": {"type": "object", "properties": {
        "sample_type": {"type": "string"}, "unit": {"type": "string"}, "value_unit": {"type": "string"},
        "normalize": {"type": "string"}, "granularity": {"type": "string"}, "metric": {"type": "string"},
        "method": {"type": "string", "enum": ["mann-whitney", "threshold"]}, "method_note": {"type": "string"},
        "thresholds": {"type": "object"}, "base": _DIFF_SUMMARY, "head": _DIFF_SUMMARY,
        "regressed": {"type": "boolean"},
        "regressions": {"type": "array", "items": _DIFF_ROW}, "improvements": {"type": "array", "items": _DIFF_ROW},
        "functions": {"type": "array", "items": _DIFF_ROW},
        "stacks": {"type": "array", "items": {"type": "object"}},
        "warnings": {"type": "array", "items": {"type": "string"}},
        "flamegraph": {"$ref": "#/components/schemas/DiffNode"}}},
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
    "Finding": {"type": "object", "required": ["severity", "title", "message", "plugin"], "properties": {
        "severity": {"type": "string", "enum": ["info", "warning", "critical"]},
        "title": {"type": "string"}, "message": {"type": "string"}, "function": {"type": "string"},
        "value": {"type": "number"}, "share": {"type": "number"}, "plugin": {"type": "string"}}},
    "PluginError": {"type": "object", "required": ["plugin", "kind", "error"], "properties": {
        "plugin": {"type": "string"}, "kind": {"type": "string"}, "error": {"type": "string"}}},
    "Analysis": {"type": "object", "properties": {
        "profile_type": {"type": ["string", "null"]}, "sample_type": {"type": "string"}, "unit": {"type": "string"},
        "total": {"type": "integer"}, "profiles": {"type": "integer"}, "nodes": {"type": "integer"},
        "analyzers": {"type": "array", "items": {"type": "string"}},
        "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/PluginError"}}}},
    "WasmPlugin": {"type": "object", "required": ["name", "version", "sha256", "abi"], "properties": {
        "name": {"type": "string"}, "version": {"type": "string"}, "sha256": {"type": "string"},
        "abi": {"type": "integer"}, "description": {"type": "string"}, "size": {"type": "integer"},
        "on_ingest": {"type": "boolean"}, "on_diff": {"type": "boolean"}, "uploaded_at": {"type": "string"},
        "config": {"type": "object"}, "limits": {"type": "object", "properties": {
            "fuel": {"type": "integer"}, "memory_mb": {"type": "integer"}, "timeout_ms": {"type": "integer"}}},
        "replaced": {"type": ["string", "null"], "description": "upload only: version this upload replaced"},
        "error": {"type": "string", "description": "why an installed module could not be loaded"}}},
    "WasmSelection": _SIDE,
    "WasmRunRequest": {"type": "object", "description": "query/from/until for one selection, or base and head "
                       "for a diff", "properties": {
        **_SIDE["properties"], "base": _SIDE, "head": _SIDE,
        "config": {"type": "object", "description": "overrides of the manifest's config"},
        "granularity": {"type": "string", "enum": ["functions", "files", "lines", "addresses"]},
        "max_nodes": {"type": "integer"}}},
    "WasmRun": {"type": "object", "required": ["plugin", "version", "findings", "fuel_used", "wall_ms"],
                "properties": {
        "plugin": {"type": "string"}, "version": {"type": "string"},
        "findings": {"type": "array", "items": {"type": "object", "required": ["severity", "title", "message"]}},
        "fuel_used": {"type": ["integer", "null"]}, "wall_ms": {"type": "number"},
        "logs": {"type": "array", "items": {"type": "object", "properties": {
            "level": {"type": "string"}, "message": {"type": "string"}}}},
        "logs_dropped": {"type": "integer"}, "nodes": {"type": "integer"}, "diff": {"type": "boolean"}}},
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
