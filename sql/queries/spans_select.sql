-- Spans of one tenant; the caller appends filters ("AND ...", bound parameters only).
SELECT trace_hi, trace_lo, span_id, parent_span_id, name, service, kind, start_ns, end_ns,
       status_code, status_message, profile_span_id
FROM spans
WHERE tenant = $tenant
