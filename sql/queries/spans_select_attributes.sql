-- Like spans_select, with the span attributes.
SELECT trace_hi, trace_lo, span_id, parent_span_id, name, service, kind, start_ns, end_ns,
       status_code, status_message, profile_span_id, attributes
FROM spans
WHERE tenant = $tenant
