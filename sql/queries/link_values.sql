-- Sampled value per link (span, trace, local root) over the pairs in temp table sel_links.
SELECT p.span_id, p.trace_hi, p.trace_lo, p.root_span_id, SUM(s.value)::BIGINT AS value
FROM samples s
JOIN sel_links p ON p.profile_id = s.profile_id AND p.labelset_id = s.labelset_id
GROUP BY ALL
